import Foundation
import PSEdgeFormat
import PSEdgeImage
import PSEdgeIR
@testable import PSEdgePipeline
import PSEdgeRuntime
import XCTest

/// The shipped default model (Models/default) through the Swift pipeline against its PyTorch reference
/// (tools/export_default_model.py wrote reference/ with the same noise): letterbox, backbone features, the DDIM loop.
final class DefaultModelTests: XCTestCase {
    static let dir = ProcessInfo.processInfo.environment["PSEDGE_DEFAULT_MODEL"] ?? Fixtures.repo.appendingPathComponent("Models/default").path
    func ref(_ rel: String) throws -> Tensor { try NPY.read(path: "\(Self.dir)/reference/\(rel)") }

    static let model: Result<PersonSearchModel, Error> = Result { try PersonSearchModel(directory: dir, precision: .fp32, threads: 2) }

    func testLetterboxMatchesTorchInterpolate() throws {
        let m = try Self.model.get()
        let image = try ImageCodec.read(path: "\(Self.dir)/reference/image.png")
        let (input, placement) = m.letterbox.tensor(image)
        let expected = try ref("image.npy")
        XCTAssertEqual(input.shape, expected.shape)
        let c = compare(input, expected)
        XCTAssertLessThanOrEqual(c.maxAbs, 1e-4, c.worst)
        XCTAssertEqual(placement.width, 256)
    }

    func testBackboneFeaturesMatchPyTorch() throws {
        let m = try Self.model.get()
        let f = try m.features(try ref("image.npy"))
        for name in ["p2", "p3", "p4"] {
            let c = compare(f[name]!, try ref("\(name).npy"))
            XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, "\(name): \(c.worst)")
        }
    }

    /// The backbone built from weights.safetensors + config.json + unet_config.json (Models/Builders) equals the ONNX
    /// export's graph and PyTorch.
    func testBackboneFromSafetensorsBuilderMatchesPyTorchAndONNX() throws {
        let spec = try PipelineSpec.load(directory: Self.dir)
        let graph = try spec.backbone!.files.graph(in: Self.dir, part: "backbone", precision: .fp32, source: .builder, weights: spec.weights)
        XCTAssertTrue(graph.metadata["builder"]?.hasPrefix("DiffusionFeatureBackbone") ?? false)
        let input = try ref("image.npy")
        let viaBuilder = try Plan(graph: graph, threads: 2).run(["image": input]), viaONNX = try Self.model.get().features(input)
        for name in ["p2", "p3", "p4"] {
            let c = compare(viaBuilder[name]!, try ref("\(name).npy"))
            XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, "\(name) builder vs PyTorch: \(c.worst)")
            let c2 = compare(viaBuilder[name]!, viaONNX[name]!)
            XCTAssertLessThanOrEqual(c2.relativeToMax, 1e-5, "\(name) builder vs ONNX: \(c2.worst)")
        }
    }

    /// The whole model from safetensors + configs (backbone and head builders): the DDIM loop gives what the ONNX
    /// parts give.
    func testBuilderPathDetectsLikeONNXPath() throws {
        let built = try PersonSearchModel(directory: Self.dir, precision: .fp32, threads: 2, source: .builder)
        let image = try ImageCodec.read(path: "\(Self.dir)/reference/image.png")
        for steps in [1, 4] {
            // Sorted by position: detections whose scores tie may come out in either order.
            func byPosition(_ d: [Detection]) -> [Detection] { d.sorted { ($0.box.x1, $0.box.y1, $0.score) < ($1.box.x1, $1.box.y1, $1.score) } }
            let a = byPosition(try built.detect(image, steps: steps, seed: 3)), b = byPosition(try Self.model.get().detect(image, steps: steps, seed: 3))
            XCTAssertEqual(a.count, b.count, "steps \(steps)")
            for (x, y) in zip(a, b) {
                for (u, v) in zip(x.box.array, y.box.array) { XCTAssertEqual(u, v, accuracy: 1e-2, "steps \(steps)") }
                XCTAssertGreaterThanOrEqual(cosineSimilarity(x.embedding, y.embedding), 0.9999)
            }
        }
    }

    /// From the reference features and noise: boxes within 1e-3 relative, embeddings cosine ≥ 0.9999, every step count.
    func testDDIMLoopMatchesPyTorchAtEveryStepCount() throws {
        try checkDDIMLoop(try Self.model.get(), "ONNX parts")
        try checkDDIMLoop(try PersonSearchModel(directory: Self.dir, precision: .fp32, threads: 2, source: .builder), "safetensors builders")
    }

    func checkDDIMLoop(_ m: PersonSearchModel, _ path: String) throws {
        var features: [String: Tensor] = [:]
        for name in ["p2", "p3", "p4"] { features[name] = try ref("\(name).npy") }
        var arrays: [String: [Float]] = [:]
        for key in PSDiffSampler.noiseKeys(steps: 8) { arrays[key] = try ref("noise/\(key).npy").floats }
        for steps in [1, 2, 4, 8] {
            var noise = ReplayedNoise(arrays)
            let dets = try m.sample(features: features, steps: steps, noise: &noise)
            let boxes = try ref("steps\(steps)/boxes.npy").floats, scores = try ref("steps\(steps)/scores.npy").floats
            let emb = try ref("steps\(steps)/embeddings.npy")
            XCTAssertEqual(dets.count, scores.count, "steps \(steps)")
            guard dets.count == scores.count else { continue }
            let scale = boxes.map(abs).max() ?? 1
            var worstBox: Float = 0, worstCos: Float = 1
            // Detections whose scores tie to ~1e-7 may come out in either order: pair each reference detection with
            // the unused Swift detection of (nearly) the same score and the closest box.
            var used = Set<Int>()
            let dim = emb.shape[1]
            for i in 0..<scores.count {
                let refBox = Array(boxes[(4 * i)..<(4 * i + 4)])
                func distance(_ j: Int) -> Float { zip(dets[j].box.array, refBox).map { abs($0 - $1) }.max()! }
                guard let j = dets.indices.filter({ !used.contains($0) && abs(dets[$0].score - scores[i]) <= 1e-4 }).min(by: { distance($0) < distance($1) }) else {
                    XCTFail("steps \(steps): no detection with score \(scores[i])")
                    continue
                }
                used.insert(j)
                worstBox = max(worstBox, distance(j) / scale)
                worstCos = min(worstCos, cosineSimilarity(dets[j].embedding, Array(emb.floats[(i * dim)..<((i + 1) * dim)])))
            }
            print("default model (\(path)), \(steps) steps: \(dets.count) detections, worst box error \(worstBox) (relative), worst embedding cosine \(worstCos)")
            XCTAssertLessThanOrEqual(worstBox, 1e-3, "steps \(steps)")
            XCTAssertGreaterThanOrEqual(worstCos, 0.9999, "steps \(steps)")
        }
    }
}
