import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeModels
import PSEdgePasses
import XCTest

/// torchvision ShuffleNetV2 built from safetensors against torchvision's own outputs (tiny seeded instance,
/// tools/make_shufflenet_fixture.py).
final class ShuffleNetBuilderTests: XCTestCase {
    static let dir = Fixtures.path("models/shufflenet_tiny")

    func testShuffleNetV2MatchesTorchvision() throws {
        let weights = try StateDict(path: Self.dir + "/weights.safetensors")
        var config = try TorchvisionShuffleNetV2.Config.load(path: Self.dir + "/config.json")
        let inferred = try TorchvisionShuffleNetV2.Config.infer(from: weights)
        XCTAssertEqual(inferred.stagesRepeats, config.stagesRepeats)
        XCTAssertEqual(inferred.stagesOutChannels, config.stagesOutChannels)
        config.batch = 1
        let input = try NPY.read(path: Self.dir + "/input.npy")
        let full = try TorchvisionShuffleNetV2.build(config: config, weights: weights)
        XCTAssertEqual(weights.unusedNames, [], "every weight should be used")
        let logits = try ModelBuilderTests.run(full, ["input": input])["logits"]!
        let c = compare(logits, try NPY.read(path: Self.dir + "/logits.npy"))
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
        // As a backbone (C4, C5), through the optimizer too.
        let backbone = try TorchvisionShuffleNetV2.build(config: config, weights: try StateDict(path: Self.dir + "/weights.safetensors"),
                                                         outputs: ["stage3", "stage4"])
        var report = PassReport()
        let optimized = try Optimizer.run(try StaticShapes.run(backbone, report: &report), report: &report)
        let out = try ModelBuilderTests.run(optimized, ["input": input])
        for name in ["stage3", "stage4"] {
            let c = compare(out[name]!, try NPY.read(path: Self.dir + "/\(name).npy"))
            XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, "\(name): \(c.worst)")
        }
        XCTAssertFalse(backbone.nodes.contains { $0.name.hasPrefix("conv5") || $0.name.hasPrefix("fc") })
    }

    func testNotAShuffleNetIsNamed() throws {
        let weights = StateDict(["conv1.weight": Tensor([Float](repeating: 0, count: 27), shape: [1, 3, 3, 3])], source: "resnet.safetensors")
        XCTAssertThrowsError(try TorchvisionShuffleNetV2.Config.infer(from: weights)) { e in
            XCTAssertTrue("\(e)".contains("resnet.safetensors"), "\(e)")
        }
    }
}
