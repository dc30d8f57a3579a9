import ArgumentParser
import Foundation
import PSEdgeEval
import PSEdgeIR

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score person-search output with the standard protocol (SeqNet/COAT eval_func.py).",
        discussion: """
        MANIFEST describes the test set (images, annotated persons, queries and their galleries); DETECTIONS is a \
        system's output (per-image boxes, scores and embeddings, one embedding per query). Formats and the \
        protocol: docs/EVALUATION.md.
        """
    )

    @Option(name: .long, help: "Dataset manifest (JSON).")
    var manifest: String

    @Option(name: .long, help: "Detections file (JSON).")
    var detections: String

    @Option(name: .long, parsing: .unconditional,
            help: "First N images of each listed (CUHK-SYSU TestG) gallery; -1: full set (listed gallery plus every other image as negatives).")
    var gallerySize: Int?

    @Flag(name: .long, help: "Drop gallery images from the query image's camera (PRW cross-camera).")
    var crossCamera = false

    @Flag(name: .long, help: "Search IoU threshold fixed at 0.5 (DiffPS's evaluator) instead of min(0.5, wh/((w+10)(h+10))).")
    var iouFixed = false

    @Flag(name: .long, help: "Print {\"mAP\", \"top1\", \"top5\", \"top10\", \"det_ap\", \"det_recall\"} as JSON (fractions).")
    var json = false

    func run() throws {
        try reportingErrors {
            let m = try Manifest.load(path: manifest)
            let d = try Detections.load(path: detections, manifest: m)
            let options = EvalOptions(gallerySize: gallerySize, crossCamera: crossCamera, iouFixed: iouFixed)
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
        let iou = o.iouFixed ? "IoU >= 0.5 (fixed, DiffPS)" : "IoU >= min(0.5, wh/((w+10)(h+10)))"
        return "\(m.evalProtocol.rawValue): \(m.images.count) images, \(m.queries.count) queries; gallery: \(gallery); search match: \(iou)"
    }

    func percent(_ v: Double) -> String { String(format: "%.2f%%", v * 100) }
}
