import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeModels
import PSEdgeONNX
import PSEdgePasses
import PSEdgePipeline
import XCTest

/// The Swift DiffPS pipeline (taps → aggregation → DGRPN → RPN → RoIAlign → box head → re-ID head) against the
/// PyTorch reference (tools/psref/diffps.py) on the diffps_small fixture, with the neural parts as ONNX graphs.
final class DiffPSPipelineTests: XCTestCase {
    static let dir = Fixtures.path("models/diffps_small")
    static let crossMap = "up-level3-repeat0-vit-block0-cross-map"

    func npy(_ rel: String) throws -> Tensor { try NPY.read(path: Self.dir + "/" + rel) }

    static func onnxParts() throws -> DiffPSPipeline.Parts {
        var report = PassReport()
        func part(_ name: String) throws -> Graph { try convertONNXGraph(path: "\(dir)/\(name).onnx", report: &report) }
        return .init(aggregation: try part("aggregation"), rpnHead: try part("rpn_head"),
                     boxHead: try ONNXImporter.load(path: "\(dir)/box_head.onnx"), reidHead: try ONNXImporter.load(path: "\(dir)/reid_head.onnx"))
    }

    func taps() throws -> [String: Tensor] {
        var t: [String: Tensor] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: Self.dir + "/inputs") where f.hasSuffix(".npy") && f != "query_boxes.npy" {
            t[String(f.dropLast(4))] = try npy("inputs/" + f)
        }
        return t
    }

    func testPipelineMatchesReference() throws {
        let pipeline = try DiffPSPipeline(configPath: Self.dir + "/config.json", weightsPath: Self.dir + "/weights.safetensors",
                                          parts: try Self.onnxParts(), crossMapTap: Self.crossMap)
        try checkAgainstReference(pipeline)
    }

    /// The same pipeline with its four parts built from weights.safetensors + config.json (Models/Builders).
    func testPipelineWithBuilderPartsMatchesReference() throws {
        func part(_ name: String, _ shapes: [String: [Int]] = [:]) throws -> Graph {
            var report = PassReport()
            let g = try PersonSearchHeads.build(part: name, configPath: Self.dir + "/config.json", weightsPath: Self.dir + "/weights.safetensors",
                                                inputShapes: shapes)
            return try Optimizer.run(try StaticShapes.run(g, report: &report), report: &report)
        }
        let parts = DiffPSPipeline.Parts(aggregation: try part("aggregation"), rpnHead: try part("rpn_head"),
                                         boxHead: { try part("box_head", ["rois": [$0, 64, 14, 14]]) },
                                         reidHead: { try part("reid_head", ["rois": [$0, 64, 24, 12]]) })
        let pipeline = try DiffPSPipeline(configPath: Self.dir + "/config.json", weightsPath: Self.dir + "/weights.safetensors",
                                          parts: parts, crossMapTap: Self.crossMap)
        try checkAgainstReference(pipeline)
    }

    func checkAgainstReference(_ pipeline: DiffPSPipeline, file: StaticString = #filePath, line: UInt = #line) throws {
        let query = Box.list(try npy("inputs/query_boxes.npy").floats)
        let out = try pipeline.run(taps: try taps(), queryBoxes: query)
        for name in ["attn_map", "feat_det", "dgrpn_G", "proposals", "proposal_scores", "det_cls_logits", "det_box_regression"] {
            assertClose(out.intermediates[name] ?? [], try npy("outputs/\(name).npy").floats, rel: 1e-4, name, file: file, line: line)
        }
        let refBoxes = try npy("outputs/boxes.npy").floats
        XCTAssertEqual(out.boxes.count, refBoxes.count / 4, "detections", file: file, line: line)
        assertClose(out.boxes.flatMap(\.array), refBoxes, rel: 1e-3, "boxes", file: file, line: line)
        assertClose(out.scores, try npy("outputs/scores.npy").floats, rel: 1e-4, "scores", file: file, line: line)
        for (name, got) in [("embeddings", out.embeddings), ("query_embeddings", out.queryEmbeddings)] {
            let ref = try npy("outputs/\(name).npy")
            XCTAssertEqual(got.count, ref.shape[0], name, file: file, line: line)
            let d = ref.shape[1]
            for (i, e) in got.enumerated() where i < ref.shape[0] {
                XCTAssertGreaterThanOrEqual(cosineSimilarity(e, Array(ref.floats[(i * d)..<((i + 1) * d)])), 0.9999, "\(name) \(i)", file: file, line: line)
            }
        }
    }

    func testAnchorsMatchTorchvision() throws {
        let a = DiffPSSteps.anchors(imageHW: (128, 128), featureHW: (16, 16), sizes: [8, 16, 32, 64, 128], ratios: [0.5, 1, 2])
        XCTAssertEqual(a.flatMap(\.array), try npy("outputs/anchors.npy").floats)
    }
}
