import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgePasses
@testable import PSEdgePipeline
import PSEdgeRuntime
import XCTest

/// The Swift DDIM sampler against the PyTorch PSDiff reference (tools/psref/psdiff.py) on the psdiff_small fixture:
/// same features, same recorded noise, the CDL head as the exported ONNX graph run by PSEdge.
final class PSDiffPipelineTests: XCTestCase {
    static let dir = Fixtures.path("models/psdiff_small")

    func npy(_ rel: String) throws -> Tensor { try NPY.read(path: Self.dir + "/" + rel) }

    func schedule() throws -> DiffusionSchedule {
        let spec = PipelineSpec(format: "psedge-pipeline", version: 1, kind: "psdiff", weights: "weights.safetensors")
        return try PersonSearchModel.loadSchedule(spec: spec, directory: Self.dir)
    }

    func headPlan() throws -> (Plan, [String: Tensor]) {
        var report = PassReport()
        let graph = try convertONNXGraph(path: Self.dir + "/cdl_head.onnx", report: &report)
        var features: [String: Tensor] = [:]
        for p in ["p2", "p3", "p4", "p5"] { features[p] = try npy("features/\(p).npy") }
        return (try Plan(graph: graph), features)
    }

    static let headSpec = PipelineSpec.HeadSpec(
        onnx: "cdl_head.onnx", psm: nil, psmInt8: nil, features: ["p2", "p3", "p4", "p5"], boxes: "boxes", embeddings: "emb_in",
        timestep: "t", outputs: .init(logits: "logits", boxes: "pred_boxes", embeddings: "pred_emb"))

    func sampler() throws -> PSDiffSampler {
        var s = PSDiffSettings()
        s.numProposals = 50
        s.embeddingDim = 64
        return PSDiffSampler(settings: s, schedule: try schedule())
    }

    func testTimePairsAndDDIMScalarsMatchReference() throws {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.dir + "/config.json"))) as! [String: Any]
        let scalars = config["ddim_scalars"] as! [String: [[Any]]]
        let sched = try schedule()
        for (steps, rows) in scalars {
            let pairs = sched.timePairs(steps: Int(steps)!)
            XCTAssertEqual(pairs.count, rows.count)
            for (pair, row) in zip(pairs, rows) {
                XCTAssertEqual(pair.t, row[0] as! Int)
                XCTAssertEqual(pair.next, row[1] as! Int)
                guard pair.next >= 0 else { continue }
                let (sa, c, sigma) = sched.ddimCoefficients(t: pair.t, next: pair.next, eta: 1)
                XCTAssertEqual(sa, Float(row[6] as! Double))
                XCTAssertEqual(c, Float(row[7] as! Double))
                XCTAssertEqual(sigma, Float(row[8] as! Double))
            }
        }
        XCTAssertEqual(sched.timePairs(steps: 8).map(\.t), [999, 874, 749, 624, 499, 374, 249, 124])
    }

    /// Every step from the reference's own x_t: head inputs, head outputs, renewal decisions.
    func testEachStepMatchesReferenceTrace() throws {
        let (plan, features) = try headPlan()
        for steps in [1, 2, 4] {
            for k in 0..<steps {
                let base = "outputs_steps\(steps)/step\(k)_"
                var head = PlanDenoisingHead(plan: plan, spec: Self.headSpec, features: features, proposals: 50, embeddingDim: 64)
                let xBox = try npy(base + "x_box.npy").floats, xEmb = try npy(base + "x_emb.npy").floats
                let s = try sampler()
                let boxesIn = s.boxesFromDiffusion(xBox, width: 128, height: 128)
                assertClose(boxesIn, try npy(base + "boxes_in.npy").floats, rel: 1e-6, "\(base)boxes_in")
                let embIn = xEmb.map { min(max($0, -3), 3) / 3 }
                let t = s.schedule.timePairs(steps: steps)[k].t
                let p = try head.predict(boxes: boxesIn, embeddings: embIn, timestep: t)
                assertClose(p.logits, try npy(base + "logits.npy").floats, rel: 1e-4, "\(base)logits")
                assertClose(p.boxes, try npy(base + "pred_boxes.npy").floats, rel: 1e-4, "\(base)pred_boxes")
                assertClose(p.embeddings, try npy(base + "pred_emb.npy").floats, rel: 1e-4, "\(base)pred_emb")
                let keep = try npy(base + "keep.npy")
                let refKeep = (0..<keep.count).map { keep.double(at: $0) != 0 }
                XCTAssertEqual(p.logits.map { 1 / (1 + expf(-$0)) > 0.5 }, refKeep, "\(base)keep")
            }
        }
    }

    /// The whole DDIM loop with the recorded noise: final boxes within 1e-3 relative, embeddings cosine ≥ 0.9999.
    func testSamplerMatchesReferenceEndToEnd() throws {
        let (plan, features) = try headPlan()
        var arrays: [String: [Float]] = [:]
        for key in PSDiffSampler.noiseKeys(steps: 4) { arrays[key] = try npy("noise/\(key).npy").floats }
        for steps in [1, 2, 4] {
            var head = PlanDenoisingHead(plan: plan, spec: Self.headSpec, features: features, proposals: 50, embeddingDim: 64)
            var noise = ReplayedNoise(arrays)
            var traced: [SamplerStep] = []
            let dets = try sampler().sample(head: &head, width: 128, height: 128, steps: steps, noise: &noise) { traced.append($0) }
            let refBoxes = try npy("outputs_steps\(steps)/boxes.npy").floats
            let refScores = try npy("outputs_steps\(steps)/scores.npy").floats
            let refEmb = try npy("outputs_steps\(steps)/embeddings.npy")
            XCTAssertEqual(traced.count, steps)
            XCTAssertEqual(dets.count, refScores.count, "steps \(steps): detection count")
            guard dets.count == refScores.count else { continue }
            let scale = refBoxes.map(abs).max()!
            for (i, d) in dets.enumerated() {
                for (a, b) in zip(d.box.array, refBoxes[(4 * i)..<(4 * i + 4)]) {
                    XCTAssertLessThanOrEqual(abs(a - b) / scale, 1e-3, "steps \(steps) box \(i)")
                }
                XCTAssertEqual(d.score, refScores[i], accuracy: 1e-4, "steps \(steps) score \(i)")
                let c = refEmb.shape[1]
                let cos = cosineSimilarity(d.embedding, Array(refEmb.floats[(i * c)..<((i + 1) * c)]))
                XCTAssertGreaterThanOrEqual(cos, 0.9999, "steps \(steps) embedding \(i)")
            }
        }
    }

    func testSeededNoiseIsReproducibleAndStandardNormal() {
        var a = SeededNoise(seed: 42), b = SeededNoise(seed: 42), c = SeededNoise(seed: 43)
        let x = a.normal(key: "box_T", count: 20000), y = b.normal(key: "box_T", count: 20000), z = c.normal(key: "box_T", count: 10)
        XCTAssertEqual(x, y)
        XCTAssertNotEqual(Array(x.prefix(10)), z)
        let mean = x.reduce(0, +) / Float(x.count)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(x.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.03)
    }

    func testNMSAndIoUFollowTorchvision() {
        let boxes = [Box(0, 0, 10, 10), Box(1, 1, 11, 11), Box(20, 20, 30, 30), Box(0, 0, 10, 10), Box(5, 5, 5, 5), Box(5, 5, 5, 5)]
        let scores: [Float] = [0.9, 0.8, 0.7, 0.9, 0.6, 0.5]
        // IoU(0,1) = 81/119 = 0.68; equal scores keep index order; the identical box 3 is suppressed by box 0;
        // the two empty boxes have IoU 0/0 = NaN and suppress nothing.
        XCTAssertEqual(nonMaximumSuppression(boxes, scores: scores, iouThreshold: 0.5), [0, 2, 4, 5])
        XCTAssertEqual(nonMaximumSuppression(boxes, scores: scores, iouThreshold: 0.7), [0, 1, 2, 4, 5])
        XCTAssertEqual(Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)), 50 / 150, accuracy: 1e-7)
    }
}

func assertClose(_ a: [Float], _ b: [Float], rel: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): count", file: file, line: line)
    let scale = max(b.map(abs).max() ?? 0, 1e-12)
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst / scale, rel, "\(what): max abs diff \(worst) (scale \(scale))", file: file, line: line)
}
