import ArgumentParser
import Foundation
import PSEdgeGallery
import PSEdgeImage
import PSEdgeIR
import PSEdgePipeline

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Index a gallery folder: detect every person, store boxes and embeddings in a SQLite database.",
        discussion: """
        Each image is committed in its own transaction, so an interrupted run leaves a consistent database with every \
        image finished so far; running the same command again continues with the rest.
        """
    )

    @OptionGroup var pipeline: PipelineOptions

    @Argument(help: "The gallery: a folder of PNG/JPEG images (searched recursively).")
    var gallery: String

    @Option(help: "The SQLite database to create or extend.")
    var db: String

    @Flag(help: "Skip images that cannot be decoded (reported on stderr) instead of stopping.")
    var skipBad = false

    @Option(help: "Store only detections scoring at least this (default: the model's score_thresh).")
    var minScore: Float?

    @Flag(help: "Show no progress bar.")
    var quiet = false

    @Option(help: "Every N images, print a resource line to stderr: images=… rss_mb=… open_fds=… (for soak tests).")
    var reportEvery: Int?

    func run() throws {
        try reportingErrors {
            let files = try galleryImages(in: gallery)
            let model = try pipeline.load()
            let store = try GalleryStore(path: db)
            try store.checkOrSetMeta(["model": model.spec.name ?? (model.directory as NSString).lastPathComponent,
                                      "precision": pipeline.precision, "steps": String(pipeline.steps),
                                      "seed": String(pipeline.seed), "min_score": minScore.map { String($0) } ?? "model", "embedding_dim": String(model.sampler.settings.embeddingDim),
                                      "gallery": URL(fileURLWithPath: gallery).standardizedFileURL.path])
            var bar = ProgressBar(total: files.count, label: "indexing")
            if quiet { bar.enabled = false }
            var added = 0, skipped = 0, bad = 0
            if let n = reportEvery, n < 1 { throw PSEdgeError.invalid("--report-every must be at least 1, got \(n)") }
            for (i, rel) in files.enumerated() {
                defer {
                    bar.update(i + 1)
                    if let n = reportEvery, (i + 1) % n == 0 {
                        let line = String(format: "images=%d rss_mb=%.1f open_fds=%d\n", i + 1, currentRSSMegabytes(), openFileDescriptors())
                        FileHandle.standardError.write(Data(line.utf8))
                    }
                }
                if try store.contains(imagePath: rel) { skipped += 1; continue }
                let path = (gallery as NSString).appendingPathComponent(rel)
                let image: PSEdgeImage.RGB8Image
                do { image = try readImage(path) } catch let e as PSEdgeError where skipBad {
                    FileHandle.standardError.write(Data("\npsedge: skipped: \(e.message)\n".utf8))
                    bad += 1
                    continue
                }
                let dets = try model.detect(image, steps: pipeline.steps, seed: pipeline.seed).filter { $0.score >= (minScore ?? 0) }
                try store.add(imagePath: rel, width: image.width, height: image.height,
                              milliseconds: model.lastBackboneMilliseconds + model.lastHeadMilliseconds,
                              entries: dets.map { .init(box: ($0.box.x1, $0.box.y1, $0.box.x2, $0.box.y2), score: $0.score, embedding: $0.embedding) })
                added += 1
            }
            let (images, detections) = try store.counts()
            print("indexed \(added) new image\(added == 1 ? "" : "s")\(skipped > 0 ? ", \(skipped) already indexed" : "")\(bad > 0 ? ", \(bad) unreadable skipped" : ""): \(db) holds \(images) images, \(detections) persons")
        }
    }
}
