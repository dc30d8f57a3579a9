import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeModels
import PSEdgeONNX
import PSEdgePasses
import PSEdgeRuntime
import PSEdgeSafetensors
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

    /// SD-1.x-style and other config paths (conv projections, per-block heads/layers, two transformer blocks,
    /// freq_shift 1 without flip, downsample_padding 0, mid_block_scale_factor, odd latent sizes, batch 2 with two
    /// timesteps) vs the PyTorch forward pass (tools/export_unet_variant.py).
    func testUNetConfigVariantMatchesPyTorch() throws {
        let dir = Fixtures.root.appendingPathComponent("models/unet_variant")
        let config = try DiffusersUNet2DCondition.Config.load(path: dir.appendingPathComponent("config.json").path)
        XCTAssertFalse(config.useLinearProjection)
        XCTAssertEqual(config.attentionHeads, [2, 4, 4])
        XCTAssertEqual(config.transformerLayersPerBlock, [1, 2, 2])
        let inputs = try ModelCase(dir: dir).npyFiles("inputs")
        var shapes = DiffusersUNet2DCondition.InputShapes()
        (shapes.batch, shapes.height, shapes.width, shapes.sequenceLength, shapes.timesteps) = (2, 10, 14, 7, 2)
        let g = try DiffusersUNet2DCondition.build(config: config, weights: try StateDict(path: dir.appendingPathComponent("weights.safetensors").path),
                                                   inputs: shapes)
        XCTAssertNil(g.metadata["unused_weights"], "every weight should be used")
        let out = try Self.run(g, inputs)["out_sample"]!
        let ref = try NPY.read(path: dir.appendingPathComponent("outputs/out_sample.npy").path)
        XCTAssertEqual(out.shape, [2, 5, 10, 14])
        let c = compare(out, ref)
        print("unet variant builder vs PyTorch: max abs error \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
    }

    static let taps = [
        "up_blocks.3.attentions.0.transformer_blocks.0.attn1.to_k",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.probs",
    ]

    /// Feature taps of a truncated UNet vs PyTorch forward hooks (tools/export_unet_taps.py).
    func testUNetTapsMatchPyTorchHooksAndTruncateTheGraph() throws {
        let config = try Self.unetConfig()
        let full = try DiffusersUNet2DCondition.build(config: config, weights: try Self.unetWeights())
        let cut = try DiffusersUNet2DCondition.build(config: config, weights: try Self.unetWeights(), taps: Self.taps)
        XCTAssertEqual(cut.outputs.map(\.name), Self.taps)
        print("unet nodes: full \(full.nodes.count), truncated at the taps \(cut.nodes.count)")
        XCTAssertLessThan(cut.nodes.count, full.nodes.count)
        XCTAssertFalse(cut.nodes.contains { $0.name.hasPrefix("conv_out") || $0.name.hasPrefix("up_blocks.3.attentions.1") })
        XCTAssertNil(cut.initializers["conv_out.weight"])

        let outs = try Self.run(cut, try ModelCase(dir: Self.unetDir).npyFiles("inputs"))
        XCTAssertEqual(outs[Self.taps[0]]?.shape, [1, 1024, 32])
        XCTAssertEqual(outs[Self.taps[1]]?.shape, [1, 8, 64, 77])
        for tap in Self.taps {
            let ref = try NPY.read(path: Self.unetDir.appendingPathComponent("taps/\(tap).npy").path)
            let c = compare(outs[tap]!, ref)
            print("tap \(tap): max abs error \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
            XCTAssertEqual(outs[tap]!.shape, ref.shape)
            XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, "\(tap): \(c.worst)")
        }
    }

    /// A truncated build reads no weight after its last tap: a checkpoint without them still builds.
    func testUNetTapsNeedNoWeightsAfterTheLastTap() throws {
        let file = try SafetensorsFile.load(path: Self.unetDir.appendingPathComponent("weights.safetensors").path)
        var kept: [String: Tensor] = [:]
        for (name, t) in file.tensors where !name.hasPrefix("conv_out") && !name.hasPrefix("conv_norm_out")
            && !name.hasPrefix("up_blocks.3.attentions.2") { kept[name] = t }
        let g = try DiffusersUNet2DCondition.build(config: try Self.unetConfig(), weights: StateDict(kept), taps: ["up_blocks.2"])
        XCTAssertEqual(g.outputs.map(\.name), ["up_blocks.2"])
        XCTAssertEqual(g.outputs.first?.type?.staticShape, [1, 32, 32, 32])
    }

    // MARK: ResNet

    static func resnetCase(_ name: String) throws -> (dir: URL, graph: Graph, inputs: [String: Tensor]) {
        let dir = try Fixtures.generatedDir("resnet_tv/\(name)")
        let config = try TorchvisionResNet.Config.load(path: dir.appendingPathComponent("config.json").path)
        let weights = try StateDict(path: dir.appendingPathComponent("weights.safetensors").path)
        let inferred = try TorchvisionResNet.Config.infer(from: weights)
        XCTAssertEqual([inferred.depth, inferred.numClasses, inferred.groups, inferred.widthPerGroup],
                       [config.depth, config.numClasses, 1, 64], "\(name): config inferred from the state dict")
        let g = try TorchvisionResNet.build(config: config, weights: weights)
        return (dir, g, try ModelCase(dir: dir).npyFiles("inputs"))
    }

    /// torchvision-named state dicts (tools/make_resnet_safetensors.py) vs ONNX Runtime on an independently written
    /// graph, and vs torchvision's own logits for the same weights.
    func testResNetBuiltFromSafetensorsMatchesOnnxRuntimeAndTorchvision() throws {
        for name in ["resnet50", "resnet18"] {
            let (dir, graph, inputs) = try Self.resnetCase(name)
            XCTAssertEqual(graph.outputs.map(\.name), ["logits"])
            XCTAssertNil(graph.metadata["unused_weights"], "\(name): every weight should be used")
            let logits = try Self.run(graph, inputs)["logits"]!
            let ort = try NPY.read(path: dir.appendingPathComponent("outputs/logits.npy").path)
            let c = compare(logits, ort)
            print("\(name) builder vs ORT: max abs error \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
            XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, "\(name): \(c.worst)")
            let tv = try NPY.read(path: Fixtures.path("models/\(name)_tv_logits.npy"))
            XCTAssertEqual(logits.shape, tv.shape)
            let c2 = compare(logits, tv)
            print("\(name) builder vs torchvision: max abs error \(c2.maxAbs), relative \(c2.relativeToMax)")
            XCTAssertLessThanOrEqual(c2.relativeToMax, 1e-4, "\(name): \(c2.worst)")
        }
    }

    /// As a backbone: stop after layer3, nothing of layer4 or fc is built or read.
    func testResNetBackboneStopsAfterLayer3() throws {
        let dir = try Fixtures.generatedDir("resnet_tv/resnet50")
        let file = try SafetensorsFile.load(path: dir.appendingPathComponent("weights.safetensors").path)
        var kept: [String: Tensor] = [:]
        for (name, t) in file.tensors where !name.hasPrefix("layer4") && !name.hasPrefix("fc") { kept[name] = t }
        let g = try TorchvisionResNet.build(config: TorchvisionResNet.Config(depth: 50), weights: StateDict(kept), outputs: ["layer3"])
        XCTAssertEqual(g.outputs.map(\.name), ["layer3"])
        XCTAssertFalse(g.nodes.contains { $0.name.hasPrefix("layer4") || $0.name.hasPrefix("fc") || $0.name.hasPrefix("avgpool") })
        let out = try Self.run(g, try ModelCase(dir: dir).npyFiles("inputs"))["layer3"]!
        XCTAssertEqual(out.shape, [1, 1024, 14, 14])
        let c = compare(out, try NPY.read(path: dir.appendingPathComponent("outputs/layer3.npy").path))
        print("resnet50 layer3 vs ORT: max abs error \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
    }

    /// float16 / bfloat16 weights are widened to float32; float32 ones are handed out without a copy.
    func testStateDictWidensHalfPrecisionAndTracksUse() throws {
        let f32 = Tensor([1.5, -2.25, 3], shape: [3])
        let f16 = Tensor(zeros: .float16, shape: [2, 2])
        for (i, v) in [0.5, -1, 65504, 0.099975586].enumerated() { f16.setDouble(v, at: i) }
        let sd = StateDict(["a": f32, "h": f16, "unused": f32])
        let a = try sd.tensor("a", [3])
        XCTAssertEqual(a.raw, f32.raw, "float32 weights should not be copied")
        let h = try sd.tensor("h", [2, 2])
        XCTAssertEqual(h.dtype, .float32)
        XCTAssertEqual(h.floats, [0.5, -1, 65504, 0.099975586])
        XCTAssertEqual(sd.unusedNames, ["unused"])
        XCTAssertNil(try sd.optional("absent", [1]))
    }

    // MARK: errors

    func assertError(_ body: @autoclosure () throws -> Any, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            let m = "\(e)"
            for p in parts { XCTAssertTrue(m.contains(p), "'\(m)' should mention '\(p)'", file: file, line: line) }
        }
    }

    func unetTensors() throws -> [String: Tensor] {
        let file = try SafetensorsFile.load(path: Self.unetDir.appendingPathComponent("weights.safetensors").path)
        return Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.tensor) })
    }

    func testMissingTensorIsNamed() throws {
        var d = try unetTensors()
        d["down_blocks.1.resnets.0.conv1.weight"] = nil
        assertError(try DiffusersUNet2DCondition.build(config: try Self.unetConfig(), weights: StateDict(d, source: "'w.safetensors'")),
                    contains: ["'w.safetensors'", "no tensor 'down_blocks.1.resnets.0.conv1.weight'", "[32,32,3,3]"])
        assertError(try TorchvisionResNet.build(config: .init(depth: 18), weights: StateDict([:])), contains: ["no tensor 'conv1.weight'"])
    }

    func testWrongTensorShapeIsNamed() throws {
        var d = try unetTensors()
        d["mid_block.attentions.0.proj_in.weight"] = Tensor(zeros: .float32, shape: [64, 32])
        assertError(try DiffusersUNet2DCondition.build(config: try Self.unetConfig(), weights: StateDict(d)),
                    contains: ["'mid_block.attentions.0.proj_in.weight'", "shape [64,32]", "expected [64,64]"])
        d = try unetTensors()
        d["conv_in.weight"] = Tensor(zeros: .int64, shape: [32, 4, 3, 3])
        assertError(try DiffusersUNet2DCondition.build(config: try Self.unetConfig(), weights: StateDict(d)),
                    contains: ["'conv_in.weight'", "dtype i64"])
    }

    /// A copy of the fixture config.json with `edit` applied to its text.
    func editedUNetConfig(_ edit: (String) -> String) throws -> String {
        let text = try String(contentsOf: Self.unetDir.appendingPathComponent("config.json"), encoding: .utf8)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("unet-config-\(getpid())-\(UUID().uuidString).json").path
        try edit(text).write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testUnsupportedConfigValuesAreErrors() throws {
        let cases: [(String, String, [String])] = [
            ("\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\"", ["act_fn = \"gelu\"", "supported: \"silu\""]),
            ("\"DownBlock2D\"\n", "\"AttnDownBlock2D\"\n", ["down_block_types", "AttnDownBlock2D", "CrossAttnDownBlock2D, DownBlock2D"]),
            ("\"class_embed_type\": null", "\"class_embed_type\": \"timestep\"", ["class_embed_type", "supported: null"]),
            ("\"resnet_time_scale_shift\": \"default\"", "\"resnet_time_scale_shift\": \"scale_shift\"", ["resnet_time_scale_shift"]),
            ("\"act_fn\": \"silu\",", "\"act_fn\": \"silu\", \"new_fancy_option\": 3,", ["unknown setting 'new_fancy_option'"]),
            ("\"cross_attention_dim\": 64", "\"cross_attention_dim\": [64, 64, 64, 64]", ["cross_attention_dim", "a single integer"]),
        ]
        for (from, to, parts) in cases {
            let path = try editedUNetConfig { text in
                XCTAssertTrue(text.contains(from), "fixture config lacks \(from)")
                return text.replacingOccurrences(of: from, with: to)
            }
            assertError(try DiffusersUNet2DCondition.Config.load(path: path), contains: parts)
        }
        assertError(try TorchvisionResNet.build(config: .init(depth: 42), weights: StateDict([:])), contains: ["depth = 42", "18, 34, 50"])
        assertError(try DiffusersUNet2DCondition.build(config: try Self.unetConfig(), weights: try Self.unetWeights(),
                                                       taps: ["up_blocks.3.attentions.0.transformer_blocks.0.attn1.to_kk"]),
                    contains: ["no module output named 'up_blocks.3.attentions.0.transformer_blocks.0.attn1.to_kk'", "attn1.to_k"])
    }
}

/// `psedge convert WEIGHTS.safetensors --builder …` as a user runs it.
extension CLITests {
    func testModelBuilderConvertUNetWithTapsThenRun() throws {
        let dir = ModelBuilderTests.unetDir
        let psm = tmp.appendingPathComponent("unet-taps.psm").path
        let taps = ModelBuilderTests.taps
        let c = try psedge("convert", dir.appendingPathComponent("weights.safetensors").path, "--builder", "unet",
                           "--config", dir.appendingPathComponent("config.json").path, "--outputs", taps.joined(separator: ","),
                           "-o", psm, "--report")
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("[build] unet:"), c.stdout)
        let outDir = tmp.appendingPathComponent("out").path
        let inputs = dir.appendingPathComponent("inputs")
        let r = try psedge("run", psm, "--input", "sample=\(inputs.appendingPathComponent("sample.npy").path)",
                           "--input", "timestep=\(inputs.appendingPathComponent("timestep.npy").path)",
                           "--input", "encoder_hidden_states=\(inputs.appendingPathComponent("encoder_hidden_states.npy").path)",
                           "--output-dir", outDir)
        XCTAssertEqual(r.status, 0, r.stderr)
        for tap in taps {
            let got = try NPY.read(path: (outDir as NSString).appendingPathComponent("\(tap).npy"))
            let ref = try NPY.read(path: dir.appendingPathComponent("taps/\(tap).npy").path)
            XCTAssertLessThanOrEqual(compare(got, ref).relativeToMax, 1e-4, tap)
        }
    }

    func testModelBuilderConvertErrors() throws {
        let dir = ModelBuilderTests.unetDir
        let weights = dir.appendingPathComponent("weights.safetensors").path
        let config = dir.appendingPathComponent("config.json").path
        let psm = tmp.appendingPathComponent("x.psm").path
        assertFails(try psedge("convert", weights, "--builder", "vit", "-o", psm), mentioning: ["--builder vit", "unet", "resnet"])
        assertFails(try psedge("convert", weights, "--builder", "unet", "-o", psm), mentioning: ["--config"])
        assertFails(try psedge("convert", weights, "--builder", "resnet", "-o", psm), mentioning: ["does not look like a torchvision ResNet"])
        assertFails(try psedge("convert", weights, "--builder", "unet", "--config", config, "--outputs", "mid_block.attn", "-o", psm),
                    mentioning: ["no module output named 'mid_block.attn'", "mid_block.attentions.0"])
        assertFails(try psedge("convert", weights, "--builder", "unet", "--config", config, "--shape", "sample=1x3x32x32", "-o", psm),
                    mentioning: ["--shape sample=1x3x32x32", "Bx4xHxW"])
        assertFails(try psedge("convert", config, "--builder", "unet", "--config", config, "-o", psm), mentioning: ["safetensors"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: psm))
    }
}
