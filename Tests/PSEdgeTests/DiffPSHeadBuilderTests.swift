import Foundation
import PSEdgeIR
import PSEdgeModels
import XCTest

/// The DiffPS heads built from weights.safetensors + config.json (Models/Builders/DiffPSHeads*.swift), each part against
/// the PyTorch reference outputs of the diffps_small fixture and against its ONNX export run by PSEdge.
final class DiffPSHeadBuilderTests: XCTestCase {
    /// Builds `part` through the public entry point with the fixture's input sizes, checks its interface against the
    /// ONNX export's, and compares both ways; returns the builder-vs-ONNX relative error.
    func checkPart(_ part: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let fx = try HeadFixture("diffps_small")
        let inputs = try fx.files(part, "inputs")
        let graph = try PersonSearchHeads.build(part: part, configPath: fx.configPath, weightsPath: fx.weightsPath,
                                                inputShapes: inputs.mapValues(\.shape))
        XCTAssertNil(graph.metadata["unused_weights"], "every weight of \(part) should be used", file: file, line: line)
        let onnxNames = (fx.part(part)["outputs"] as! [String: String]).keys.sorted()
        XCTAssertEqual(graph.outputs.map(\.name).sorted(), onnxNames, file: file, line: line)
        XCTAssertEqual(Set(graph.inputs.map(\.name)), Set(inputs.keys), file: file, line: line)

        let built = try runBuilt(graph, inputs)
        checkOutputs(built, try fx.files(part, "outputs"), rtol: fx.rtol, atol: fx.atol, "\(part) builder vs torch", file: file, line: line)
        let onnx = try fx.runONNX(part, inputs)
        let rel = checkOutputs(built, onnx, rtol: fx.rtol, atol: fx.atol, "\(part) builder vs ONNX export", file: file, line: line)
        XCTAssertLessThanOrEqual(rel, 1e-5, file: file, line: line)
    }

    func testAggregationMatchesTorchAndOnnxExport() throws { try checkPart("aggregation") }
    func testRPNHeadMatchesTorchAndOnnxExport() throws { try checkPart("rpn_head") }
    func testBoxHeadMatchesTorchAndOnnxExport() throws { try checkPart("box_head") }
    func testReIDHeadMatchesTorchAndOnnxExport() throws { try checkPart("reid_head") }

    /// Default input sizes come from the config (image 128x128: taps at 1/32, 1/16, 1/8; RoI counts from
    /// rpn_post_nms_top_n / det_per_img), and the batch of RoIs is free: 5 RoIs give the 2 fixture RoIs' values.
    func testDefaultSizesFromConfigAndAnyRoICount() throws {
        let fx = try HeadFixture("diffps_small")
        let agg = try PersonSearchHeads.build(part: "aggregation", configPath: fx.configPath, weightsPath: fx.weightsPath)
        let shapes = Dictionary(uniqueKeysWithValues: agg.inputs.map { ($0.name, $0.type!.staticShape!) })
        XCTAssertEqual(shapes, (fx.json["inputs"] as! [String: [Int]]).filter { !$0.key.hasSuffix("cross-map") })
        let box = try PersonSearchHeads.build(part: "box_head", configPath: fx.configPath, weightsPath: fx.weightsPath)
        XCTAssertEqual(box.inputs.map { $0.type!.staticShape! }, [[100, 64, 14, 14]])

        let rois = try fx.files("reid_head", "inputs")["rois"]!
        let reid = try PersonSearchHeads.build(part: "reid_head", configPath: fx.configPath, weightsPath: fx.weightsPath,
                                               inputShapes: ["rois": [5, 64, 24, 12]])
        let per = rois.count / 2
        let five = Tensor((0..<5).flatMap { i in rois.floats[(i % 2) * per..<(i % 2 + 1) * per] }, shape: [5, 64, 24, 12])
        let out = try runBuilt(reid, ["rois": five])["embeddings"]!.floats
        let ref = try fx.files("reid_head", "outputs")["embeddings"]!.floats
        let d = ref.count / 2
        for i in 0..<5 {
            let c = compare(Tensor(Array(out[i * d..<(i + 1) * d]), shape: [d]), Tensor(Array(ref[(i % 2) * d..<(i % 2 + 1) * d]), shape: [d]))
            XCTAssertLessThanOrEqual(c.relativeToMax, 1e-5, "roi \(i)")
        }
    }
}
