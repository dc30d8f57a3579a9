import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeModels
import PSEdgeONNX
import PSEdgePasses
import PSEdgeRuntime
import XCTest

/// Graphs built from safetensors + config (Models/Builders) against independent references: ONNX Runtime on the
/// exported model, PyTorch forward hooks, torchvision's own logits, and the ONNX-imported graph of the same model.
final class ModelBuilderTests: XCTestCase {
    static let unetDir = Fixtures.root.appendingPathComponent("models/unet_sd21_mini")

    static func unetConfig() throws -> DiffusersUNet2DCondition.Config {
        try DiffusersUNet2DCondition.Config.load(path: unetDir.appendingPathComponent("config.json").path)
    }

    static func unetWeights() throws -> StateDict {
        try StateDict(path: unetDir.appendingPathComponent("weights.safetensors").path)
    }

    /// Static shapes + folding, then one run.
    static func run(_ graph: Graph, _ inputs: [String: Tensor], threads: Int = 2) throws -> [String: Tensor] {
        var report = PassReport()
        let g = try StaticShapes.run(graph, report: &report)
        return try Plan(graph: g, threads: threads).run(inputs)
    }

    // MARK: UNet

    func testUNetBuiltFromSafetensorsMatchesOnnxRuntimeAndOnnxImport() throws {
        let graph = try DiffusersUNet2DCondition.build(config: try Self.unetConfig(), weights: try Self.unetWeights())
        XCTAssertEqual(graph.outputs.map(\.name), ["out_sample"])
        XCTAssertEqual(graph.inputs.map(\.name), ["sample", "timestep", "encoder_hidden_states"])
        XCTAssertNil(graph.metadata["unused_weights"], "every weight should be used")
        let mc = ModelCase(dir: Self.unetDir)
        let inputs = try mc.npyFiles("inputs")
        let built = try Self.run(graph, inputs)["out_sample"]!

        let ort = try NPY.read(path: Self.unetDir.appendingPathComponent("outputs/out_sample.npy").path)
        let c = compare(built, ort)
        print("unet builder vs ORT: max abs error \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)

        let (_, imported, _) = try mc.run(threads: 2)
        let c2 = compare(built, imported["out_sample"]!)
        print("unet builder vs ONNX import: max abs error \(c2.maxAbs), relative \(c2.relativeToMax)")
        XCTAssertLessThanOrEqual(c2.relativeToMax, 1e-5, c2.worst)
    }
}
