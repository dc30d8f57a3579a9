import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeModels
import PSEdgePasses
import PSEdgeRuntime
import PSEdgeSafetensors
import XCTest

/// The PSDiff head built from weights.safetensors + config.json (Models/Builders/PSDiffHead.swift) against the
/// PyTorch reference outputs of the psdiff_small fixture and against its ONNX export (cdl_head.onnx) run by PSEdge.
final class PSDiffHeadBuilderTests: XCTestCase {
    func testPSDiffHeadMatchesTorchAndOnnxExport() throws {
        let fx = try HeadFixture("psdiff_small")
        let graph = try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: fx.weightsPath)
        XCTAssertEqual(graph.inputs.map(\.name), ["p2", "p3", "p4", "p5", "boxes", "emb_in", "t"])
        XCTAssertEqual(graph.outputs.map(\.name), ["logits", "pred_boxes", "pred_emb"])
        XCTAssertNil(graph.metadata["unused_weights"], "every head weight should be used")
        let inputs = try fx.files("cdl_head", "inputs")
        let built = try runBuilt(graph, inputs)
        checkOutputs(built, try fx.files("cdl_head", "outputs"), rtol: fx.rtol, atol: fx.atol, "cdl_head builder vs torch")
        let onnx = try fx.runONNX("cdl_head", inputs)
        let rel = checkOutputs(built, onnx, rtol: fx.rtol, atol: fx.atol, "cdl_head builder vs ONNX export")
        XCTAssertLessThanOrEqual(rel, 1e-5)
    }

    /// Every recorded step of the 1-, 2- and 4-step samplings (t = 999 … 249, boxes from pure noise to refined).
    func testPSDiffHeadMatchesTorchAtEveryRecordedStep() throws {
        let fx = try HeadFixture("psdiff_small")
        let graph = try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: fx.weightsPath)
        var report = PassReport()
        let plan = try Plan(graph: try StaticShapes.run(graph, report: &report), threads: 2)
        var feeds: [String: Tensor] = [:]
        for p in ["p2", "p3", "p4", "p5"] { feeds[p] = try fx.npy("features/\(p).npy") }
        let runs = fx.json["runs"] as! [String: [String: Any]]
        var evaluations = 0
        for (steps, run) in runs.sorted(by: { $0.key < $1.key }) {
            for (k, pair) in (run["timesteps"] as! [[Int]]).enumerated() {
                let base = "outputs_steps\(steps)/step\(k)_"
                feeds["boxes"] = try fx.npy(base + "boxes_in.npy")
                feeds["emb_in"] = try fx.npy(base + "emb_in.npy")
                feeds["t"] = Tensor([Float(pair[0])], shape: [1])
                let out = try plan.run(feeds)
                var expected: [String: Tensor] = [:]
                for name in PSDiffHeadBuilder.outputNames { expected[name] = try fx.npy(base + "\(name).npy") }
                checkOutputs(out, expected, rtol: fx.rtol, atol: fx.atol, "\(base) t=\(pair[0])")
                evaluations += 1
            }
        }
        XCTAssertEqual(evaluations, 7)
    }

    static func fixtureConfig(_ fx: HeadFixture) throws -> PSDiffHeadBuilder.Config {
        try PSDiffHeadBuilder.Config.load(path: fx.configPath)
    }

    static func tensors(_ fx: HeadFixture) throws -> [String: Tensor] {
        let file = try SafetensorsFile.load(path: fx.weightsPath)
        var d: [String: Tensor] = [:]
        for (name, t) in file.tensors where name.hasPrefix("head.") { d[String(name.dropFirst(5))] = t }
        return d
    }

    /// The level floor(4 + log2(sqrt(area) / 32 + 1e-8)) clamped to [2, 5], computed here in double.
    static func level(_ box: ArraySlice<Float>) -> Int {
        let a = box.map(Double.init)
        let s = ((a[2] - a[0]) * (a[3] - a[1])).squareRoot()
        return min(max(Int(floor(4 + log2(s / 32 + 1e-8))), 2), 5)
    }

    /// Levels are general: built for strides [4, 8, 16] (p2..p4, as the shipped model), the head gives what the
    /// four-level head gives for boxes that all fall on levels 2…4 (rescaled step-1 boxes of 10…60 px).
    func testThreeLevelHeadEqualsFourLevelHeadOnBoxesOfTheSharedLevels() throws {
        let fx = try HeadFixture("psdiff_small")
        var inputs = try fx.files("cdl_head", "inputs")
        let src = inputs["boxes"]!.floats
        var boxes = src
        for i in 0..<(src.count / 4) {
            let (x1, y1, x2, y2) = (src[4 * i], src[4 * i + 1], src[4 * i + 2], src[4 * i + 3])
            let target = Float([10, 20, 40, 60][i % 4])
            let f = target / max(((x2 - x1) * (y2 - y1)).squareRoot(), 1e-3)
            let (cx, cy, w, h) = ((x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * f, (y2 - y1) * f)
            boxes.replaceSubrange(4 * i..<4 * i + 4, with: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        }
        let levels = Set(stride(from: 0, to: boxes.count, by: 4).map { Self.level(boxes[$0..<$0 + 4]) })
        XCTAssertEqual(levels, [2, 3, 4])
        inputs["boxes"] = Tensor(boxes, shape: [1, boxes.count / 4, 4])

        let four = try runBuilt(try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: fx.weightsPath), inputs)
        var config = try Self.fixtureConfig(fx)
        config.fpnStrides = [4, 8, 16]
        let graph = try PSDiffHeadBuilder.build(config: config, weights: StateDict(try Self.tensors(fx)),
                                                inputs: .init(featureSizes: [[32, 32], [16, 16], [8, 8]]))
        XCTAssertEqual(graph.inputs.map(\.name), ["p2", "p3", "p4", "boxes", "emb_in", "t"])
        inputs["p5"] = nil
        let three = try runBuilt(graph, inputs)
        for name in PSDiffHeadBuilder.outputNames {
            XCTAssertEqual(compare(three[name]!, four[name]!).maxAbs, 0, name)
        }
    }

    /// Two CDLs: the second gets the first's boxes and normalize(ê0). Checked against the one-CDL head run twice,
    /// with the normalisation done here (head_series.1 holds a copy of head_series.0's weights).
    func testTwoCDLsChainBoxesAndNormalizedEmbeddings() throws {
        let fx = try HeadFixture("psdiff_small")
        var tensors = try Self.tensors(fx)
        for (k, v) in tensors where k.hasPrefix("head_series.0.") { tensors["head_series.1." + k.dropFirst(14)] = v }
        var config = try Self.fixtureConfig(fx)
        config.layers = 2
        let sizes = PSDiffHeadBuilder.InputShapes(proposals: 50, featureSizes: [[32, 32], [16, 16], [8, 8], [4, 4]])
        let weights = StateDict(tensors)
        let two = try PSDiffHeadBuilder.build(config: config, weights: weights, inputs: sizes)
        XCTAssertEqual(weights.unusedNames.filter { $0.hasPrefix("head_series") }, [])

        let one = try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: fx.weightsPath)
        var inputs = try fx.files("cdl_head", "inputs")
        let first = try runBuilt(one, inputs)
        let e = first["pred_emb"]!.floats, c = 64
        var normalized = e
        for i in 0..<(e.count / c) {
            let row = e[i * c..<(i + 1) * c]
            let norm = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            for j in 0..<c { normalized[i * c + j] = e[i * c + j] / norm }
        }
        let expectedInputs = ["boxes": first["pred_boxes"]!, "emb_in": Tensor(normalized, shape: [1, 50, c])]
        let chained = try runBuilt(two, inputs)
        inputs.merge(expectedInputs) { $1 }
        let second = try runBuilt(one, inputs)
        checkOutputs(chained, second, rtol: 1e-4, atol: 1e-5, "two CDLs vs one CDL twice")
    }

    /// Batch 2: two images (the same features) with different boxes, embeddings and timesteps (steps 1 and 2 of the
    /// 4-step run, t = 749 and 499) give each image's torch outputs: RoIs, attention and time stay per image.
    func testBatchOfTwoImagesWithTheirOwnTimesteps() throws {
        let fx = try HeadFixture("psdiff_small")
        func cat(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor(a.floats + b.floats, shape: [2] + a.shape.dropFirst()) }
        var feeds: [String: Tensor] = [:]
        for p in ["p2", "p3", "p4", "p5"] {
            let f = try fx.npy("features/\(p).npy")
            feeds[p] = cat(f, f)
        }
        let steps = ["outputs_steps4/step1_", "outputs_steps4/step2_"]
        feeds["boxes"] = cat(try fx.npy(steps[0] + "boxes_in.npy"), try fx.npy(steps[1] + "boxes_in.npy"))
        feeds["emb_in"] = cat(try fx.npy(steps[0] + "emb_in.npy"), try fx.npy(steps[1] + "emb_in.npy"))
        feeds["t"] = Tensor([749, 499], shape: [2])
        let graph = try PersonSearchHeads.build(part: "cdl_head", configPath: fx.configPath, weightsPath: fx.weightsPath,
                                                inputShapes: feeds.mapValues(\.shape))
        var expected: [String: Tensor] = [:]
        for name in PSDiffHeadBuilder.outputNames {
            expected[name] = cat(try fx.npy(steps[0] + "\(name).npy"), try fx.npy(steps[1] + "\(name).npy"))
        }
        checkOutputs(try runBuilt(graph, feeds), expected, rtol: fx.rtol, atol: fx.atol, "batch of 2")
    }
}
