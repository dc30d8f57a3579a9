import Foundation
import PSEdgeEval
import PSEdgeImage
import PSEdgeIR
import PSEdgePipeline

/// `psedge eval --model`: runs the pipeline over a manifest for each precision and DDIM step count and scores it.
///
/// Per precision the backbone runs once per image; every step count re-uses those features (only the head runs per
/// step). Latency per image = backbone + head time for that step count. The query embedding comes from the head run
/// once on the query box (`PersonSearchModel.embed`), as `psedge search` does.
struct PipelineEvaluation {
    struct Row: Codable {
        var precision: String
        var steps: Int
        var mAP: Double, top1: Double, detAP: Double, detRecall: Double
        var latencyP50Ms: Double, latencyP95Ms: Double, backboneP50Ms: Double
        var peakRSSMB: Double
        var images: Int, queries: Int
        enum CodingKeys: String, CodingKey {
            case precision, steps, mAP, top1, detAP = "det_ap", detRecall = "det_recall", latencyP50Ms = "latency_p50_ms"
            case latencyP95Ms = "latency_p95_ms", backboneP50Ms = "backbone_p50_ms", peakRSSMB = "peak_rss_mb", images, queries
        }
    }

    let manifest: Manifest
    let manifestPath: String
    let modelDir: String
    let steps: [Int]
    let precisions: [Precision]
    let threads: Int
    let seed: UInt64
    let options: EvalOptions
    var progress = true

    func run() throws -> [Row] {
        let root = (manifestPath as NSString).deletingLastPathComponent
        var rows: [Row] = []
        for precision in precisions {
            let model = try PersonSearchModel(directory: modelDir, precision: precision, threads: threads)
            var perSteps = [[ImageDetections]](repeating: [], count: steps.count)
            var latency = [[Double]](repeating: [], count: steps.count)
            var backbone: [Double] = []
            // Query embeddings: the query boxes of each query image, embedded once from that image's features.
            var queryEmb = [[Float]](repeating: [], count: manifest.queries.count)
            var queriesOf: [Int: [Int]] = [:]
            for (qi, q) in manifest.queries.enumerated() { queriesOf[q.image, default: []].append(qi) }
            var peakRSS = currentRSSMegabytes()
            var bar = ProgressBar(total: manifest.images.count, label: "eval \(precision.rawValue)")
            bar.enabled = progress && bar.enabled
            for (i, im) in manifest.images.enumerated() {
                let path = (root as NSString).appendingPathComponent(im.path ?? im.name)
                let image = try readImage(path)
                let (input, placement) = model.letterbox.tensor(image)
                let features = try model.features(input)
                backbone.append(model.lastBackboneMilliseconds)
                if let qs = queriesOf[i] {
                    let boxes = qs.map { placement.toNetwork(Box(Float(manifest.queries[$0].box.x1), Float(manifest.queries[$0].box.y1),
                                                                 Float(manifest.queries[$0].box.x2), Float(manifest.queries[$0].box.y2))) }
                    for (qi, e) in zip(qs, try model.embed(features: features, boxes: boxes, seed: seed &+ UInt64(i))) { queryEmb[qi] = e }
                }
                for (k, s) in steps.enumerated() {
                    var noise = SeededNoise(seed: seed &+ UInt64(i))
                    let dets = model.finalize(try model.sample(features: features, steps: s, noise: &noise), placement: placement)
                    latency[k].append(model.lastBackboneMilliseconds + model.lastHeadMilliseconds)
                    perSteps[k].append(ImageDetections(boxes: dets.map { PSEdgeEval.Box(Double($0.box.x1), Double($0.box.y1), Double($0.box.x2), Double($0.box.y2)) },
                                                       scores: dets.map { Double($0.score) },
                                                       embeddings: dets.flatMap { $0.embedding.map(Double.init) }))
                }
                peakRSS = max(peakRSS, currentRSSMegabytes())
                bar.update(i + 1)
            }
            let dim = model.sampler.settings.embeddingDim
            for (k, s) in steps.enumerated() {
                let images = perSteps[k]
                let flat = queryEmb.flatMap { $0.map(Double.init) }
                let r = try PersonSearchEval.evaluate(manifest: manifest, detections: try Detections(dim: dim, images: images, queryEmbeddings: flat),
                                                      options: options)
                rows.append(Row(precision: precision.rawValue, steps: s, mAP: r.mAP, top1: r.top1, detAP: r.detAP, detRecall: r.detRecall,
                                latencyP50Ms: percentile(latency[k], 0.5), latencyP95Ms: percentile(latency[k], 0.95),
                                backboneP50Ms: percentile(backbone, 0.5), peakRSSMB: peakRSS,
                                images: manifest.images.count, queries: manifest.queries.count))
            }
        }
        return rows
    }

    static func table(_ rows: [Row]) -> String {
        var lines = ["precision  steps     mAP   top-1  det AP  latency p50   p95 ms  backbone ms  peak RSS MB"]
        for r in rows {
            lines.append(String(format: "%-9@  %5d  %6.2f  %6.2f  %6.2f  %11.1f  %7.1f  %11.1f  %11.1f", r.precision as NSString, r.steps,
                                r.mAP * 100, r.top1 * 100, r.detAP * 100, r.latencyP50Ms, r.latencyP95Ms, r.backboneP50Ms, r.peakRSSMB))
        }
        return lines.joined(separator: "\n")
    }

    static func csv(_ rows: [Row]) -> String {
        var lines = ["precision,steps,mAP,top1,det_ap,det_recall,latency_p50_ms,latency_p95_ms,backbone_p50_ms,peak_rss_mb,images,queries"]
        for r in rows {
            lines.append(String(format: "%@,%d,%.4f,%.4f,%.4f,%.4f,%.2f,%.2f,%.2f,%.1f,%d,%d", r.precision as NSString, r.steps, r.mAP, r.top1, r.detAP,
                                r.detRecall, r.latencyP50Ms, r.latencyP95Ms, r.backboneP50Ms, r.peakRSSMB, r.images, r.queries))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

func percentile(_ v: [Double], _ p: Double) -> Double {
    guard !v.isEmpty else { return 0 }
    let s = v.sorted()
    let x = p * Double(s.count - 1)
    let lo = Int(x.rounded(.down)), hi = min(lo + 1, s.count - 1)
    return s[lo] + (s[hi] - s[lo]) * (x - Double(lo))
}

/// Resident set size now (VmRSS of /proc/self/status), MiB; 0 where /proc is missing.
func currentRSSMegabytes() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kb / 1024
    }
    return 0
}

/// Open file descriptors of this process (entries of /proc/self/fd, minus the one listing it); -1 without /proc.
func openFileDescriptors() -> Int {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return -1 }
    return names.count - 1
}
