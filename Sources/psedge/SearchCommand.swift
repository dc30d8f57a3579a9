import ArgumentParser
import Foundation
import PSEdgeGallery
import PSEdgeImage
import PSEdgeIR
import PSEdgePipeline

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search an indexed gallery for the person in a query box; ranked hits, optionally as JSON and annotated PNGs."
    )

    @OptionGroup var pipeline: PipelineOptions

    @Option(help: "The gallery database built by psedge index.")
    var db: String

    @Option(help: "The query image.")
    var query: String

    @Option(help: "The query person's box in the query image: x1,y1,x2,y2 (pixels).")
    var box: String

    @Option(help: "How many hits to return.")
    var top: Int = 10

    @Flag(help: "Print the hits as JSON.")
    var json = false

    @Option(help: "Write the query and the top hits as annotated PNGs into this directory (needs the gallery folder to be where it was indexed).")
    var annotate: String?

    func run() throws {
        try reportingErrors {
            guard top >= 1 else { throw PSEdgeError.invalid("--top must be at least 1, got \(top)") }
            let store = try GalleryStore(path: db, create: false)
            let (images, persons) = try store.counts()
            guard persons > 0 else { throw PSEdgeError.invalid("gallery '\(db)' is empty (\(images) images, no persons); index images first") }
            let image = try readImage(query)
            let qbox = try parseBox(box)
            do { try PersonSearchModel.validate(box: qbox, image: image) } catch let e as PipelineError {
                throw PSEdgeError.invalid("\(e.description) ('\(query)')")
            }
            let model = try pipeline.load()
            let q = try model.queryEmbedding(image, box: qbox, steps: pipeline.steps, seed: pipeline.seed)
            let hits = try store.search(q.embedding, top: top)
            if json {
                let list: [[String: Any]] = hits.enumerated().map { i, h in
                    ["rank": i + 1, "image": h.imagePath, "box": [h.box.0, h.box.1, h.box.2, h.box.3].map { rounded($0) },
                     "similarity": rounded(h.similarity, 4), "score": rounded(h.score, 4)]
                }
                var qj: [String: Any] = ["image": query, "box": qbox.array.map { rounded($0) }, "detected_iou": rounded(q.iou, 3)]
                if let d = q.detected { qj["detected_box"] = d.array.map { rounded($0) } }
                print(try jsonString(["query": qj, "hits": list]))
            } else {
                print(String(format: "query: %@ [%.0f, %.0f, %.0f, %.0f] (best detection there: IoU %.2f); gallery %d images, %d persons",
                             query, qbox.x1, qbox.y1, qbox.x2, qbox.y2, q.iou, images, persons))
                for (i, h) in hits.enumerated() {
                    print(String(format: "%3d. %.3f  %@  [%.0f, %.0f, %.0f, %.0f]", i + 1, h.similarity, h.imagePath, h.box.0, h.box.1, h.box.2, h.box.3))
                }
            }
            if let annotate { try writeAnnotations(annotate, image: image, queryBox: qbox, hits: hits, store: store) }
        }
    }

    func writeAnnotations(_ dir: String, image: RGB8Image, queryBox: Box, hits: [GalleryStore.Hit], store: GalleryStore) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var q = image
        q.strokeRect(x1: Double(queryBox.x1), y1: Double(queryBox.y1), x2: Double(queryBox.x2), y2: Double(queryBox.y2), .red, thickness: 3)
        q.text("QUERY", x: Int(queryBox.x1) + 3, y: Int(queryBox.y1) + 3, .red)
        try writePNGAtomically(q, to: (dir as NSString).appendingPathComponent("query.png"))
        guard let root = try store.meta("gallery") else { return }
        for (i, h) in hits.enumerated() {
            var img = try readImage((root as NSString).appendingPathComponent(h.imagePath))
            img.strokeRect(x1: Double(h.box.0), y1: Double(h.box.1), x2: Double(h.box.2), y2: Double(h.box.3), i == 0 ? .red : .orange, thickness: 3)
            img.text(String(format: "#%d %.2f", i + 1, h.similarity), x: Int(h.box.0) + 3, y: Int(h.box.1) + 3, i == 0 ? .red : .orange)
            try writePNGAtomically(img, to: (dir as NSString).appendingPathComponent(String(format: "rank%02d.png", i + 1)))
        }
    }
}
