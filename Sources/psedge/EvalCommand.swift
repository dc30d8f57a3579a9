import ArgumentParser
import Foundation
import PSEdgeEval
import PSEdgeIR
import PSEdgePipeline

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score person-search output with the standard protocol (SeqNet/COAT eval_func.py), or run a model over a test set and report accuracy, latency and memory per step count and precision.",
        discussion: """
        MANIFEST describes the test set (images, annotated persons, queries and their galleries); DETECTIONS is a \
        system's output (per-image boxes, scores and embeddings, one embedding per query). Formats and the \
        protocol: docs/EVALUATION.md.
        """
    )

    @Option(name: .long, help: "Dataset manifest (JSON).")
    var manifest: String

    @Option(name: .long, help: "Detections file (JSON) to score. Or give --model to run the pipeline.")
    var detections: String?

    @Option(name: .long, help: "Run this model package over the manifest instead of reading --detections.")
    var model: String?

    @Option(name: .long, help: "With --model: comma-separated DDIM step counts.")
    var steps: String = "1,2,4,8"

    @Option(name: .long, help: "With --model: comma-separated precisions (fp32, int8).")
    var precision: String = "fp32"

    @Option(name: .long, help: "With --model: write results.json, results.csv and speed_accuracy.png into this directory.")
    var out: String?

    @Option(name: .long, help: "Redraw speed_accuracy.png into --out from the results.json of an earlier --model run (nothing is run).")
    var replot: String?

    @Option(name: .long, help: "With --model: threads.")
    var threads: Int = 2

    @Option(name: .long, help: "With --model: seed of the DDIM noise (image i uses seed + i).")
    var seed: UInt64 = 0

    @Option(name: .long, parsing: .unconditional,
            help: "First N images of each listed (CUHK-SYSU TestG) gallery; -1: full set (listed gallery plus every other image as negatives).")
    var gallerySize: Int?

    @Flag(name: .long, help: "Drop gallery images from the query image's camera (PRW cross-camera).")
    var crossCamera = false

    @Flag(name: .long, help: "Search IoU threshold fixed at 0.5 (DiffPS's evaluator) instead of min(0.5, wh/((w+10)(h+10))).")
    var iouFixed = false

    @Option(name: .long, help: "Gallery detections scoring at least this are searched (the protocol's det_thresh, 0.5).")
    var searchScoreThreshold: Double = EvalOptions.standardSearchScoreThreshold

    @Flag(name: .long, help: "Print {\"mAP\", \"top1\", \"top5\", \"top10\", \"det_ap\", \"det_recall\"} as JSON (fractions).")
    var json = false

    func run() throws {
        try reportingErrors {
            if let replot {
                guard let out else { throw PSEdgeError.invalid("--replot needs --out DIR") }
                let rows: [PipelineEvaluation.Row]
                do { rows = try JSONDecoder().decode([PipelineEvaluation.Row].self, from: Data(contentsOf: URL(fileURLWithPath: replot))) } catch {
                    throw PSEdgeError.invalid("'\(replot)' is not the results.json of psedge eval --model")
                }
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                let title = "\(((model ?? "model") as NSString).lastPathComponent.uppercased()): \(rows.first?.images ?? 0) IMAGES, \(rows.first?.queries ?? 0) QUERIES"
                try writePNGAtomically(SpeedAccuracyPlot.render(rows, title: title), to: (out as NSString).appendingPathComponent("speed_accuracy.png"))
                return
            }
            let m = try Manifest.load(path: manifest)
            guard searchScoreThreshold >= 0 && searchScoreThreshold <= 1 else {
                throw PSEdgeError.invalid("--search-score-threshold must be in [0, 1], got \(searchScoreThreshold)")
            }
            let options = EvalOptions(gallerySize: gallerySize, crossCamera: crossCamera, iouFixed: iouFixed,
                                      searchScoreThreshold: searchScoreThreshold)
            if let model {
                guard detections == nil else { throw PSEdgeError.invalid("give either --detections or --model, not both") }
                return try evaluateModel(model, manifest: m, options: options)
            }
            guard let detections else { throw PSEdgeError.invalid("eval needs --detections FILE or --model PACKAGE") }
            let d = try Detections.load(path: detections, manifest: m)
            let r = try PersonSearchEval.evaluate(manifest: m, detections: d, options: options)
            if json {
                print(r.json)
                return
            }
            print(describe(m, options))
            print("search (\(m.queries.count) queries):")
            print("  mAP    = \(percent(r.mAP))")
            print("  top-1  = \(percent(r.top1))")
            print("  top-5  = \(percent(r.top5))")
            print("  top-10 = \(percent(r.top10))")
            if r.queriesWithoutGroundTruth > 0 {
                print("  note: \(r.queriesWithoutGroundTruth) queries have no image of their identity in their gallery (scored 0)")
            }
            print("detection (score >= \(EvalOptions.detectionScoreThreshold), IoU \(EvalOptions.detectionIoU), all annotated persons):")
            print("  AP     = \(percent(r.detAP))")
            print("  recall = \(percent(r.detRecall))")
        }
    }

    func describe(_ m: Manifest, _ o: EvalOptions) -> String {
        let listed = m.queries.contains { $0.gallery != nil }
        var gallery: String
        switch o.gallerySize {
        case nil: gallery = listed ? "listed gallery of each query" : "all other images"
        case .some(-1): gallery = "full set (listed gallery + all other images)"
        case let n?: gallery = "first \(n) images of each listed gallery"
        }
        if o.crossCamera { gallery += ", other cameras only" }
        if o.searchScoreThreshold != EvalOptions.standardSearchScoreThreshold {
            gallery += String(format: ", gallery detections scoring >= %g (protocol: 0.5)", o.searchScoreThreshold)
        }
        let iou = o.iouFixed ? "IoU >= 0.5 (fixed, DiffPS)" : "IoU >= min(0.5, wh/((w+10)(h+10)))"
        return "\(m.evalProtocol.rawValue): \(m.images.count) images, \(m.queries.count) queries; gallery: \(gallery); search match: \(iou)"
    }

    func evaluateModel(_ model: String, manifest m: Manifest, options: EvalOptions) throws {
        let stepList = try steps.split(separator: ",").map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v >= 1, v <= 1000 else {
                throw PSEdgeError.invalid("--steps '\(steps)': expected comma-separated counts in 1...1000")
            }
            return v
        }
        let precisions = try precision.split(separator: ",").map { s -> Precision in
            guard let p = Precision(rawValue: s.trimmingCharacters(in: .whitespaces)) else {
                throw PSEdgeError.invalid("--precision '\(precision)': expected fp32 and/or int8")
            }
            return p
        }
        guard !stepList.isEmpty, !precisions.isEmpty else { throw PSEdgeError.invalid("--steps and --precision must not be empty") }
        guard threads >= 1 && threads <= 256 else { throw PSEdgeError.invalid("--threads must be between 1 and 256, got \(threads)") }
        var e = PipelineEvaluation(manifest: m, manifestPath: manifest, modelDir: model, steps: stepList, precisions: precisions,
                                   threads: threads, seed: seed, options: options)
        e.progress = !json
        let rows = try e.run()
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(rows), as: UTF8.self))
        } else {
            print(describe(m, options))
            print(PipelineEvaluation.table(rows))
        }
        if let out {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            func path(_ f: String) -> URL { URL(fileURLWithPath: (out as NSString).appendingPathComponent(f)) }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(rows).write(to: path("results.json"), options: .atomic)
            try Data(PipelineEvaluation.csv(rows).utf8).write(to: path("results.csv"), options: .atomic)
            let title = "\((model as NSString).lastPathComponent.uppercased()): \(m.images.count) IMAGES, \(m.queries.count) QUERIES"
            try writePNGAtomically(SpeedAccuracyPlot.render(rows, title: title), to: path("speed_accuracy.png").path)
            if !json { print("wrote \(out)/results.json, results.csv, speed_accuracy.png") }
        }
    }

    func percent(_ v: Double) -> String { String(format: "%.2f%%", v * 100) }
}
