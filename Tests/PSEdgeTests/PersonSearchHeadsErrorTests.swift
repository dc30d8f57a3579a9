import Foundation
import PSEdgeIR
import PSEdgeModels
import PSEdgeSafetensors
import XCTest

/// `PersonSearchHeads.build` refuses what it cannot build, naming the part, the tensor, the config key or the input.
final class PersonSearchHeadsErrorTests: XCTestCase {
    /// A copy of the fixture's config.json with each `from` replaced by its `to`.
    func editedConfig(_ fx: HeadFixture, _ edits: [(from: String, to: String)]) throws -> String {
        var text = try String(contentsOfFile: fx.configPath, encoding: .utf8)
        for (from, to) in edits {
            XCTAssertTrue(text.contains(from), "fixture config lacks \(from)")
            text = text.replacingOccurrences(of: from, with: to)
        }
        return try temporary("config.json", Data(text.utf8))
    }

    func editedConfig(_ fx: HeadFixture, _ from: String, _ to: String) throws -> String {
        try editedConfig(fx, [(from, to)])
    }

    func temporary(_ name: String, _ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("heads-\(getpid())-\(UUID().uuidString)-\(name)").path
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// The fixture's weights with one tensor renamed in the header (same length, so the offsets stay valid).
    func weightsRenaming(_ fx: HeadFixture, _ name: String, to other: String) throws -> String {
        precondition(name.utf8.count == other.utf8.count)
        var data = try Data(contentsOf: URL(fileURLWithPath: fx.weightsPath))
        let range = try XCTUnwrap(data.range(of: Data("\"\(name)\"".utf8)), "no tensor \(name)")
        data.replaceSubrange(range, with: Data("\"\(other)\"".utf8))
        return try temporary("weights.safetensors", data)
    }

    func testPSDiffHeadErrorsNameTheTensorKeyOrInput() throws {
        let fx = try HeadFixture("psdiff_small")
        let weights = try weightsRenaming(fx, "head.head_series.0.norm4.weight", to: "head.head_series.0.norm4.weigxt")
        assertHeadError(["has no tensor 'head_series.0.norm4.weight'", "[64]"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: weights)
        }
        let strides = "\"fpn_strides\": [\n      4,\n      8,\n      16,\n      32\n    ]"
        assertHeadError(["fpn_strides = [4, 8, 12, 32]", "powers of two"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: try self.editedConfig(fx, strides, "\"fpn_strides\": [4, 8, 12, 32]"),
                                        weightsPath: fx.weightsPath)
        }
        assertHeadError(["nheads = 3", "hidden_dim 64"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: try self.editedConfig(fx, "\"nheads\": 2", "\"nheads\": 3"),
                                        weightsPath: fx.weightsPath)
        }
        assertHeadError(["unknown setting 'use_fancy_pooler'"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: try self.editedConfig(fx, "\"nheads\": 2", "\"nheads\": 2, \"use_fancy_pooler\": true"),
                                        weightsPath: fx.weightsPath)
        }
        // Neither "features" nor an image size: the feature sizes must be given.
        let bare = try editedConfig(fx, [("\"features\": {", "\"recorded_features\": {"),
                                         ("\"image_size_hw\"", "\"recorded_size_hw\"")])
        assertHeadError(["no size for input 'p2'", "p2=Bx64xHxW"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: bare, weightsPath: fx.weightsPath)
        }
        let sized = try PersonSearchHeads.build(part: "cdl_head", configPath: bare, weightsPath: fx.weightsPath, inputShapes: [
            "p2": [1, 64, 32, 32], "p3": [1, 64, 16, 16], "p4": [1, 64, 8, 8], "p5": [1, 64, 4, 4], "boxes": [1, 7, 4]])
        XCTAssertEqual(sized.inputs.first { $0.name == "emb_in" }?.type?.staticShape, [1, 7, 64])
        assertHeadError(["cdl_head has no input 'p6'", "p2, p3, p4, p5, boxes, emb_in, t"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: fx.weightsPath, inputShapes: ["p6": [1, 64, 2, 2]])
        }
        assertHeadError(["p3=1x32x16x16", "Bx64xHxW"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: fx.weightsPath, inputShapes: ["p3": [1, 32, 16, 16]])
        }
        assertHeadError(["unknown head part 'mask_head'", "cdl_head"]) {
            try PersonSearchHeads.build(part: "mask_head", configPath: fx.configPath, weightsPath: fx.weightsPath)
        }
        let diffps = try HeadFixture("diffps_small")
        assertHeadError(["has no tensor 'time_mlp.1.weight'", "not the weights of the cdl_head part"]) {
            try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: diffps.weightsPath)
        }
    }

    func testDiffPSHeadErrorsNameTheTensorKeyOrInput() throws {
        let fx = try HeadFixture("diffps_small")
        let weights = try weightsRenaming(fx, "rpn.head.bbox_pred.bias", to: "rpn.head.bbox_pred.biax")
        assertHeadError(["has no tensor 'rpn.head.bbox_pred.bias'", "[60]"]) {
            try PersonSearchHeads.build(part: "rpn_head", configPath: fx.configPath, weightsPath: weights)
        }
        assertHeadError(["text_dim = 32", "proj_dim (64)"]) {
            try PersonSearchHeads.build(part: "reid_head", configPath: try self.editedConfig(fx, "\"text_dim\": 64", "\"text_dim\": 32"),
                                        weightsPath: fx.weightsPath)
        }
        let taps = "\"tap_channels\": [\n      64,\n      32,\n      16\n    ]"
        assertHeadError(["tap_channels", "should have 3 values"]) {
            try PersonSearchHeads.build(part: "aggregation", configPath: try self.editedConfig(fx, taps, "\"tap_channels\": [64, 32]"),
                                        weightsPath: fx.weightsPath)
        }
        assertHeadError(["reid_head: rois=2x32x24x12 should be Bx64xHxW"]) {
            try PersonSearchHeads.build(part: "reid_head", configPath: fx.configPath, weightsPath: fx.weightsPath,
                                        inputShapes: ["rois": [2, 32, 24, 12]])
        }
        assertHeadError(["rpn_head has no input 'feat_reid'", "feat_det"]) {
            try PersonSearchHeads.build(part: "rpn_head", configPath: fx.configPath, weightsPath: fx.weightsPath,
                                        inputShapes: ["feat_reid": [1, 64, 16, 16]])
        }
        let psdiff = try HeadFixture("psdiff_small")
        assertHeadError(["has no tensor 'reid_roi_heads.sfan.part_weights'", "reid_head"]) {
            try PersonSearchHeads.build(part: "reid_head", configPath: fx.configPath, weightsPath: psdiff.weightsPath)
        }
        // The wavelet buffers must be Haar filters: the graph hard-codes them.
        let file = try SafetensorsFile.load(path: fx.weightsPath)
        var tensors = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.tensor) })
        let name = "reid_frq_aggregation_network.frm_level3.IDWT.g1_row"
        tensors[name] = Tensor([0.5, -0.5], shape: [1, 1, 1, 2])
        assertHeadError(["'\(name)' = [0.5, -0.5] is not the Haar filter", "only Haar wavelets"]) {
            try DiffPSHeads.build(part: .aggregation, config: try DiffPSHeads.Config.load(path: fx.configPath), weights: StateDict(tensors))
        }
    }
}
