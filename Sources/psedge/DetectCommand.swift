import ArgumentParser
import Foundation
import PSEdgeImage
import PSEdgeIR
import PSEdgePipeline

struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Detect the persons in images: boxes (image pixels) and scores, optionally annotated PNGs."
    )

    @OptionGroup var pipeline: PipelineOptions

    @Argument(help: "Image files (PNG or JPEG).")
    var images: [String]

    @Flag(help: "Print JSON: {\"images\": [{\"path\", \"width\", \"height\", \"detections\": [{\"box\", \"score\"}]}]}.")
    var json = false

    @Flag(help: "Include each detection's re-ID embedding in the JSON.")
    var embeddings = false

    @Option(help: "Write <image name>.png with the boxes drawn into this directory.")
    var annotate: String?

    func run() throws {
        try reportingErrors {
            guard !images.isEmpty else { throw PSEdgeError.invalid("detect needs at least one image") }
            let model = try pipeline.load()
            if let annotate { try FileManager.default.createDirectory(atPath: annotate, withIntermediateDirectories: true) }
            var results: [[String: Any]] = []
            for path in images {
                let image = try readImage(path)
                let dets = try model.detect(image, steps: pipeline.steps, seed: pipeline.seed)
                var list: [[String: Any]] = []
                for d in dets {
                    var e: [String: Any] = ["box": d.box.array.map { rounded($0) }, "score": rounded(d.score, 4)]
                    if embeddings { e["embedding"] = d.embedding.map { rounded($0, 6) } }
                    list.append(e)
                }
                results.append(["path": path, "width": image.width, "height": image.height, "detections": list,
                                "milliseconds": (model.lastBackboneMilliseconds + model.lastHeadMilliseconds).rounded()])
                if !json {
                    print("\(path): \(dets.count) person\(dets.count == 1 ? "" : "s") (\(String(format: "%.0f", model.lastBackboneMilliseconds + model.lastHeadMilliseconds)) ms)")
                    for d in dets { print(String(format: "  [%.1f, %.1f, %.1f, %.1f]  score %.3f", d.box.x1, d.box.y1, d.box.x2, d.box.y2, d.score)) }
                }
                if let annotate {
                    var canvas = image
                    for d in dets {
                        canvas.strokeRect(x1: Double(d.box.x1), y1: Double(d.box.y1), x2: Double(d.box.x2), y2: Double(d.box.y2), .green)
                        canvas.text(String(format: "%.2f", d.score), x: Int(d.box.x1) + 3, y: Int(d.box.y1) + 3, .green)
                    }
                    let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension + ".png"
                    try writePNGAtomically(canvas, to: (annotate as NSString).appendingPathComponent(name))
                }
            }
            if json { print(try jsonString(["images": results, "steps": pipeline.steps, "precision": pipeline.precision])) }
        }
    }
}
