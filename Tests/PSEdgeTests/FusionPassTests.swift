import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeONNX
import PSEdgePasses
import PSEdgeRuntime
import XCTest

/// The fusion passes (Sources/PSEdgePasses/Fusion): for each pass, on small fixtures in the forms exporters
/// produce (tools/make_fusion_fixtures.py → Tests/Fixtures/fusion) and on the real UNet and ResNet-50, the
/// graph shrinks as expected and the outputs do not change (max |Δ| / max |ref| ≤ 1e-5).
final class FusionPassTests: XCTestCase {
    typealias Kind = Optimizer.PassKind

    // MARK: - Helpers

    /// A fusion fixture imported with static shapes and folded constants (the state `convert` optimizes).
    func fixture(_ name: String) throws -> Graph {
        var report = PassReport()
        return try StaticShapes.run(try ONNXImporter.load(path: Fixtures.path("fusion/\(name).onnx")), report: &report)
    }

    /// Seeded N(0,1) values for every float input.
    func inputs(for g: Graph, seed: UInt64 = 1) -> [String: Tensor] {
        var state = seed &* 0x9E3779B97F4A7C15 | 1
        func uniform() -> Double {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        var out: [String: Tensor] = [:]
        for i in g.inputs {
            let shape = i.type!.staticShape!
            let n = shape.reduce(1, *)
            let v = (0..<n).map { _ in Float((-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())) }
            out[i.name] = Tensor(v, shape: shape)
        }
        return out
    }

    func run(_ g: Graph, _ feeds: [String: Tensor], threads: Int = 1) throws -> [String: Tensor] {
        try Plan(graph: g, threads: threads).run(feeds)
    }

    func optimize(_ g: Graph, _ kinds: [Kind]) throws -> (Graph, PassReport) {
        var report = PassReport()
        var options = Optimizer.Options()
        options.passes = Set(kinds)
        return (try Optimizer.run(g, report: &report, options: options), report)
    }

    /// Op counts; psedge-domain ops as "psedge.<Op>".
    func ops(_ g: Graph) -> [String: Int] {
        g.nodes.reduce(into: [:]) { $0[$1.domain == "psedge" ? "psedge.\($1.opType)" : $1.opType, default: 0] += 1 }
    }

    func nodes(_ g: Graph, _ op: String) -> [Node] { g.nodes.filter { ($0.domain == "psedge" ? "psedge.\($0.opType)" : $0.opType) == op } }

    /// Same graph outputs (names, in order) with values within `tolerance` of the reference, relative to its max.
    func assertSameOutputs(_ optimized: Graph, _ reference: Graph, _ feeds: [String: Tensor], tolerance: Double = 1e-5,
                           threads: Int = 1, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(optimized.outputs.map(\.name), reference.outputs.map(\.name), "\(what): graph outputs renamed", file: file, line: line)
        let a = try run(optimized, feeds, threads: threads), b = try run(reference, feeds, threads: threads)
        for o in reference.outputs {
            let x = try XCTUnwrap(a[o.name], file: file, line: line), y = b[o.name]!
            XCTAssertEqual(x.shape, y.shape, "\(what): \(o.name) shape", file: file, line: line)
            let c = compare(x, y)
            XCTAssertLessThanOrEqual(c.relativeToMax, tolerance, "\(what): output \(o.name): \(c.worst)", file: file, line: line)
        }
    }

    /// Runs `kinds` on a fixture; checks the outputs and returns the optimized graph and report.
    @discardableResult
    func check(_ name: String, _ kinds: [Kind], nodes before: Int? = nil, after: Int? = nil,
               file: StaticString = #filePath, line: UInt = #line) throws -> (Graph, PassReport) {
        let g = try fixture(name)
        let (o, report) = try optimize(g, kinds)
        if let before { XCTAssertEqual(g.nodes.count, before, "\(name): nodes before", file: file, line: line) }
        if let after { XCTAssertEqual(o.nodes.count, after, "\(name): nodes after \(report.lines)", file: file, line: line) }
        try assertSameOutputs(o, g, inputs(for: g), "\(name) \(kinds)", file: file, line: line)
        return (o, report)
    }

    func reportLine(_ r: PassReport, _ pass: String) -> String { r.entries.first { $0.pass == pass }?.message ?? "(no line)" }

    // MARK: - Passes on fixtures

    func testIdentityElimination() throws {
        let (g, report) = try check("identity_ops", [.identity], nodes: 15, after: 4)
        XCTAssertEqual(ops(g), ["Relu": 1, "Add": 1, "Mul": 1, "Sub": 1], report.lines.joined(separator: "\n"))
        // The graph output 'y' (written by an Identity) is now written by the Relu.
        XCTAssertEqual(g.nodes.first { $0.opType == "Relu" }?.outputs, ["y"])
        XCTAssertEqual(g.nodes.first { $0.opType == "Relu" }?.inputs, ["x"])
        XCTAssertTrue(reportLine(report, "identity").contains("removed 11 no-op nodes"), report.lines.joined(separator: "\n"))
    }

    func testBatchNormFolding() throws {
        let (g, report) = try check("batchnorm", [.batchNorm], nodes: 13, after: 8)
        // The BatchNorm after the Conv whose output is also read by a Relu stays.
        XCTAssertEqual(ops(g), ["Conv": 3, "ConvTranspose": 1, "Gemm": 2, "BatchNormalization": 1, "Relu": 1])
        XCTAssertEqual(reportLine(report, "batchnorm-folding"), "folded 5 BatchNormalization (into Conv 2, Gemm 2, ConvTranspose 1)")
        for gemm in nodes(g, "Gemm") { XCTAssertEqual(try gemm.attrs.float("alpha"), 1) }
        // Caffe-converted form: BatchNorm then a per-channel Mul both fold into the Conv; the epilogue then takes
        // the bias Add + Relu, and a two-input Sum residual + Relu.
        let (c, cr) = try check("batchnorm_scale", [.batchNorm], nodes: 8, after: 6)
        XCTAssertEqual(reportLine(cr, "batchnorm-folding"), "folded 1 BatchNormalization (into Conv 1), 1 per-channel Mul (into Conv 1)")
        XCTAssertNil(ops(c)["Mul"])
        let (f, _) = try check("batchnorm_scale", [.batchNorm, .linearEpilogue], nodes: 8, after: 2)
        XCTAssertEqual(ops(f), ["psedge.FusedConv": 2])
    }

    func testGroupNormRecognition() throws {
        // torch nn.GroupNorm: affine + SiLU, affine=False (Mul 1 / Add 0 removed first), on a 3-D input + SiLU.
        let (t, tr) = try check("groupnorm_torch", [.identity, .groupNorm])
        XCTAssertEqual(ops(t)["psedge.GroupNorm"], 3, tr.lines.joined(separator: "\n"))
        XCTAssertEqual(nodes(t, "psedge.GroupNorm").filter { (try? $0.attrs.string("activation")) == "silu" }.count, 2)
        XCTAssertNil(ops(t)["InstanceNormalization"])
        XCTAssertNil(ops(t)["Sigmoid"])
        // Per-group InstanceNormalization affine folded; a normalized value that is a graph output keeps its SiLU apart.
        let (h, hr) = try check("groupnorm_helper", [.groupNorm], nodes: 14, after: 6)
        XCTAssertEqual(ops(h)["psedge.GroupNorm"], 2, hr.lines.joined(separator: "\n"))
        XCTAssertEqual(nodes(h, "psedge.GroupNorm").compactMap { try? $0.attrs.string("activation") }.sorted(), ["none", "silu"])
        XCTAssertEqual(nodes(h, "psedge.GroupNorm").compactMap { try? $0.attrs.int("groups") }, [2, 2])
        // ONNX GroupNormalization: per-group scale/bias at opset 18, per-channel at 21.
        for name in ["groupnorm_onnx18", "groupnorm_onnx21"] {
            let (g, _) = try check(name, [.groupNorm], nodes: 3, after: 1)
            XCTAssertEqual(try nodes(g, "psedge.GroupNorm").first?.attrs.string("activation"), "silu", name)
        }
    }

    func testLayerNormRecognition() throws {
        // torch at opset 16: last dim, last two dims (axis -2), no affine.
        let (t, tr) = try check("layernorm_torch", [.layerNorm], nodes: 26, after: 4)
        XCTAssertEqual(ops(t)["LayerNormalization"], 3, tr.lines.joined(separator: "\n"))
        XCTAssertEqual(nodes(t, "LayerNormalization").compactMap { try? $0.attrs.int("axis") }, [2, 1, 2])
        // opset 18 axes input, Mul(d, d), Reciprocal, [1,1,C] affine, reversed operands.
        let (h, _) = try check("layernorm_helper", [.layerNorm], nodes: 10, after: 1)
        XCTAssertEqual(ops(h), ["LayerNormalization": 1])
    }

    func testGeluRecognition() throws {
        let (t, tr) = try check("gelu_torch", [.gelu])
        XCTAssertEqual(ops(t)["Gelu"], 3, tr.lines.joined(separator: "\n"))
        XCTAssertNil(ops(t)["Erf"])
        let (h, _) = try check("gelu_helper", [.gelu], nodes: 5, after: 1)
        XCTAssertEqual(ops(h), ["Gelu": 1])
    }

    func testSiLURecognition() throws {
        let (g, r) = try check("silu_torch", [.silu], nodes: 10, after: 7)
        XCTAssertEqual(ops(g)["psedge.SiLU"], 3, r.lines.joined(separator: "\n"))
        XCTAssertNil(ops(g)["Sigmoid"])
    }

    func testLinearEpilogueFusion() throws {
        // BN-free residual block, depthwise conv + sigmoid + residual, Conv1d + relu, Gemm + relu, Gemm + residual,
        // 3-D Linear (MatMul + Add) + residual.
        let (t, tr) = try check("epilogue_torch", [.linearEpilogue], nodes: 25, after: 15)
        XCTAssertEqual(ops(t)["psedge.FusedConv"], 4, tr.lines.joined(separator: "\n"))
        XCTAssertEqual(ops(t)["psedge.FusedMatMul"], 3)
        XCTAssertNil(ops(t)["Relu"])
        XCTAssertNil(ops(t)["Conv"])
        let resBefore = nodes(t, "psedge.FusedConv").filter { (try? $0.attrs.int("residual_before_activation")) == 1 }
        XCTAssertEqual(resBefore.count, 1, "relu(conv + x) adds the residual before the activation")
        // Conv without bias + bias Add + relu + residual; Gemm transB=0 with alpha/beta; MatMul + bias + sigmoid.
        let (h, _) = try check("epilogue_helper", [.linearEpilogue], nodes: 10, after: 3)
        XCTAssertEqual(ops(h), ["psedge.FusedConv": 1, "psedge.FusedMatMul": 2])
        // SiLU after Gemm and Conv: recognized, then absorbed.
        let (s, _) = try check("silu_torch", [.silu, .linearEpilogue], nodes: 10, after: 4)
        XCTAssertEqual(ops(s), ["psedge.SiLU": 1, "Mul": 1, "psedge.FusedConv": 1, "psedge.FusedMatMul": 1])
        // GELU after a Linear: absorbed once recognized.
        let (ge, _) = try check("gelu_torch", [.gelu, .linearEpilogue])
        XCTAssertEqual(nodes(ge, "psedge.FusedMatMul").first.flatMap { try? $0.attrs.string("activation") }, "gelu")
    }

    func testAttentionFusion() throws {
        // diffusers SDPA export (scale split over Q and K), cross-attention, twice.
        let (s, sr) = try check("attention_sdpa_torch", [.attention])
        XCTAssertEqual(ops(s)["psedge.Attention"], 2, sr.lines.joined(separator: "\n"))
        XCTAssertNil(ops(s)["Softmax"])
        XCTAssertNil(ops(s)["Transpose"])
        // Hand-written 4-D attention with Kᵀ by transpose(-2, -1), L 300.
        let (c, cr) = try check("attention_classic_torch", [.attention], nodes: 16, after: 5)
        XCTAssertEqual(ops(c)["psedge.Attention"], 1, cr.lines.joined(separator: "\n"))
        // Heads folded into the batch, baddbmm(beta=0) (its Add of zeros is a no-op) and bmm.
        let (b, br) = try check("attention_bmm_torch", [.identity, .attention], nodes: 21, after: 4)
        XCTAssertEqual(ops(b), ["MatMul": 3, "psedge.Attention": 1], br.lines.joined(separator: "\n"))
        let att = try XCTUnwrap(nodes(b, "psedge.Attention").first)
        XCTAssertEqual(try att.attrs.int("heads"), 4)
        XCTAssertEqual(Double(try att.attrs.float("scale")!), 0.5, accuracy: 1e-6)
    }

    /// The kernel's tiling: many query and key tiles (with ragged last tiles) and the online softmax across them,
    /// on one and two threads, against the unfused graph.
    func testAttentionKernelTiles() throws {
        for name in ["attention_classic_torch", "attention_sdpa_torch"] {
            let g = try fixture(name)
            var (o, _) = try optimize(g, [.attention])
            for (qt, kt) in [(7, 32), (1, 1), (64, 5), (300, 300)] {
                for i in o.nodes.indices where o.nodes[i].opType == "Attention" {
                    o.nodes[i].attributes["kernel"] = .string("tiles")
                    o.nodes[i].attributes["q_tile"] = .int(qt)
                    o.nodes[i].attributes["k_tile"] = .int(kt)
                }
                for threads in [1, 2] {
                    try assertSameOutputs(o, g, inputs(for: g, seed: 7), threads: threads, "\(name) tiles \(qt)x\(kt), \(threads) threads")
                }
            }
        }
    }

    /// GEGLU with the gate in either half (axis given as -1 or as the last index, or left out for a 1-D tensor),
    /// bit-identical to Slice, Gelu and Mul; a Slice that is not an exact half is left alone.
    func testGEGLUFusion() throws {
        func graph(gateFirst: Bool, axis: Int64?, shape: [Int], firstStart: Int64 = 0) -> Graph {
            let f = Int64(shape.last! / 2)
            var inits: [String: Tensor] = ["start": Tensor(int64: [firstStart], shape: [1]), "f": Tensor(int64: [f], shape: [1]),
                                           "end": Tensor(int64: [Int64.max], shape: [1]), "fend": Tensor(int64: [firstStart + f], shape: [1])]
            if let axis { inits["axis"] = Tensor(int64: [axis], shape: [1]) }
            let ax = axis == nil ? [String]() : ["axis"]
            let first = Node(name: "s0", opType: "Slice", inputs: ["t", "start", "fend"] + ax, outputs: ["a"])
            let second = Node(name: "s1", opType: "Slice", inputs: ["t", "f", "end"] + ax, outputs: ["b"])
            let gelu = Node(name: "g", opType: "Gelu", inputs: [gateFirst ? "a" : "b"], outputs: ["gb"])
            let mul = Node(name: "m", opType: "Mul", inputs: [gateFirst ? "b" : "a", "gb"], outputs: ["y"])
            var r = PassReport()
            return try! StaticShapes.run(Graph(nodes: [first, second, gelu, mul], inputs: [ValueInfo(name: "t", type: TensorType(.float32, static: shape))],
                                               outputs: [ValueInfo(name: "y", type: nil)], initializers: inits, opsets: ["": 20]), report: &r)
        }
        for (gateFirst, axis, shape) in [(false, Int64(-1), [2, 5, 8]), (true, Int64(2), [2, 5, 8]), (false, nil, [6]), (true, Int64(-1), [3, 130])] {
            let g = graph(gateFirst: gateFirst, axis: axis, shape: shape)
            let (o, report) = try optimize(g, [.geglu])
            XCTAssertEqual(ops(o), ["psedge.GEGLU": 1], "\(gateFirst) \(String(describing: axis)) \(shape): \(report.lines)")
            let feeds = inputs(for: g, seed: 5)
            XCTAssertEqual(try run(o, feeds, threads: 2)["y"]!.floats, try run(g, feeds)["y"]!.floats)
        }
        let (o, _) = try optimize(graph(gateFirst: false, axis: -1, shape: [2, 8], firstStart: 1), [.geglu])
        XCTAssertNil(ops(o)["psedge.GEGLU"], "columns 1..<5 are no half")
    }

    /// The small-head kernel (`kernel` = rows; the default below 17 dims) on the same graphs, on one and two threads.
    func testAttentionKernelRows() throws {
        for name in ["attention_classic_torch", "attention_sdpa_torch", "attention_bmm_torch"] {
            let g = try fixture(name)
            var (o, _) = try optimize(g, name == "attention_bmm_torch" ? [.identity, .attention] : [.attention])
            for i in o.nodes.indices where o.nodes[i].opType == "Attention" { o.nodes[i].attributes["kernel"] = .string("rows") }
            for threads in [1, 2] {
                try assertSameOutputs(o, g, inputs(for: g, seed: 11), threads: threads, "\(name) rows, \(threads) threads")
            }
        }
    }

    func testFullPipelineOnFixtures() throws {
        for name in (try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("fusion"))).filter({ $0.hasSuffix(".onnx") }).sorted() {
            let base = String(name.dropLast(5))
            let g = try fixture(base)
            var report = PassReport()
            let o = try Optimizer.run(g, report: &report)
            XCTAssertLessThan(o.nodes.count, g.nodes.count, "\(base): \(report.lines)")
            for kind in Kind.allCases where kind != .batchNorm {
                XCTAssertTrue(report.entries.contains { $0.pass == Optimizer.pipeline.first { $0.0 == kind }!.1.name }, "\(base): no line for \(kind)")
            }
            try assertSameOutputs(o, g, inputs(for: g, seed: 3), threads: 2, "\(base) optimized")
        }
    }

    // MARK: - Real models

    func unet() throws -> (graph: Graph, feeds: [String: Tensor], expected: Tensor) {
        let mc = ModelCase(dir: Fixtures.root.appendingPathComponent("models/unet_sd21_mini"))
        var report = PassReport()
        let g = try StaticShapes.run(try ONNXImporter.load(path: mc.modelPath), report: &report)
        return (g, try mc.npyFiles("inputs"), try NPY.read(path: mc.dir.appendingPathComponent("outputs/out_sample.npy").path))
    }

    /// Each pass alone on the UNet: what it matches, and the output unchanged.
    func testEachPassOnUNet() throws {
        let (g, feeds, _) = try unet()
        XCTAssertEqual(g.nodes.count, 1696)
        let reference = try run(g, feeds, threads: 2)["out_sample"]!
        var expectedNodes: [Kind: Int] = [:]
        for kind in Kind.allCases {
            let (o, report) = try optimize(g, [kind])
            let out = try run(o, feeds, threads: 2)["out_sample"]!
            let c = compare(out, reference)
            XCTAssertLessThanOrEqual(c.relativeToMax, 1e-5, "\(kind): \(c.worst)")
            let counts = ops(o)
            print("unet \(kind): \(g.nodes.count) → \(o.nodes.count) nodes; rel. diff \(c.relativeToMax); \(report.lines.first ?? "")")
            expectedNodes[kind] = o.nodes.count
            switch kind {
            case .identity:
                XCTAssertEqual(g.nodes.count - o.nodes.count, 89, report.lines.joined(separator: "\n"))  // 54 Div by 1, 34 Cast, 1 Expand
                XCTAssertNil(counts["Cast"])
            case .batchNorm, .layerNorm:
                XCTAssertEqual(o.nodes.count, g.nodes.count)  // no BatchNorm; LayerNorms already exported as ops (opset 17)
            case .groupNorm:
                XCTAssertEqual(counts["psedge.GroupNorm"], 61)
                XCTAssertEqual(nodes(o, "psedge.GroupNorm").filter { (try? $0.attrs.string("activation")) == "silu" }.count, 45)
                XCTAssertNil(counts["InstanceNormalization"])
                XCTAssertEqual(o.nodes.count, 1696 - 61 * 4 - 45 * 2)
            case .gelu:
                XCTAssertEqual(counts["Gelu"], 16)
                XCTAssertNil(counts["Erf"])
                XCTAssertEqual(o.nodes.count, 1696 - 16 * 4)
            case .geglu:
                XCTAssertEqual(o.nodes.count, g.nodes.count)  // needs the Gelu nodes the gelu pass makes
            case .silu:
                XCTAssertEqual(counts["psedge.SiLU"], 47)  // alone, the 45 after GroupNorms too
                XCTAssertNil(counts["Sigmoid"])
            case .attention:
                XCTAssertEqual(counts["psedge.Attention"], 32)
                XCTAssertNil(counts["Softmax"])
                // per block: 2 head splits (K and V; Q's reshape/transpose too), scale Muls, 2 MatMuls, Softmax, merge
                XCTAssertEqual(counts["MatMul"], 256 - 64)
            case .linearEpilogue:
                XCTAssertEqual(counts["psedge.FusedConv"], 22)        // conv2 + residual in every resnet block
                XCTAssertEqual(counts["psedge.FusedMatMul"], 98)      // 96 MatMul + bias (+ residual), 2 Gemm + raw SiLU
            }
        }
    }

    /// The whole pipeline on the UNet: every attention block and GroupNorm fused, output still ONNX Runtime's.
    func testOptimizedUNetMatchesOnnxRuntime() throws {
        let (g, feeds, expected) = try unet()
        var report = PassReport()
        let o = try Optimizer.run(g, report: &report)
        print(report.lines.joined(separator: "\n"))
        let counts = ops(o)
        XCTAssertEqual(counts["psedge.Attention"], 32)
        XCTAssertEqual(counts["psedge.GroupNorm"], 61)
        XCTAssertEqual(nodes(o, "psedge.GroupNorm").filter { (try? $0.attrs.string("activation")) == "silu" }.count, 45)
        XCTAssertEqual(counts["psedge.GEGLU"], 16)  // every feed-forward gate: 2 Slices, Gelu and Mul each
        XCTAssertEqual(counts["psedge.FusedConv"], 22)
        XCTAssertEqual(counts["psedge.FusedMatMul"], 98)  // 96 MatMul + bias, 2 Gemm + SiLU (time embedding)
        for gone in ["Softmax", "InstanceNormalization", "Erf", "Gelu", "Sigmoid", "Cast", "Div", "Expand", "psedge.SiLU"] {
            XCTAssertNil(counts[gone], "\(gone) left: \(counts)")
        }
        XCTAssertEqual(o.nodes.count, 655 - 16 * 3)
        let unoptimized = try Plan(graph: g, threads: 2), optimized = try Plan(graph: o, threads: 2)
        XCTAssertLessThan(optimized.arenaBytes * 10, unoptimized.arenaBytes, "no score matrices in the arena any more")
        let out = try optimized.run(feeds)["out_sample"]!
        let c = compare(out, expected)
        print("optimized unet vs onnxruntime: max abs \(c.maxAbs), relative \(c.relativeToMax); arena \(unoptimized.arenaBytes) → \(optimized.arenaBytes) bytes")
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
        let c2 = compare(out, try unoptimized.run(feeds)["out_sample"]!)
        XCTAssertLessThanOrEqual(c2.relativeToMax, 1e-5, c2.worst)
    }

    /// torchvision ResNet-50 (BatchNorm already folded by the exporter): every Conv + Relu and Conv + Add + Relu fused.
    func testOptimizedResNet50MatchesOnnxRuntime() throws {
        let mc = ModelCase(dir: try Fixtures.generatedDir("resnet50"))
        let feeds = try mc.npyFiles("inputs")
        var report = PassReport()
        var options = StaticShapes.Options()
        options.inputShapes = feeds.mapValues(\.shape)
        let g = try StaticShapes.run(try ONNXImporter.load(path: mc.modelPath), options: options, report: &report)
        let o = try Optimizer.run(g, report: &report)
        print(report.lines.joined(separator: "\n"))
        XCTAssertEqual(ops(o), ["psedge.FusedConv": 49, "Conv": 4, "MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1])
        XCTAssertEqual(nodes(o, "psedge.FusedConv").filter { (try? $0.attrs.int("residual_before_activation")) == 1 }.count, 16)
        let out = try run(o, feeds, threads: 2)["logits"]!
        let c = compare(out, try NPY.read(path: mc.dir.appendingPathComponent("outputs/logits.npy").path))
        print("optimized resnet50 vs onnxruntime: relative \(c.relativeToMax)")
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
        let c2 = compare(out, try run(g, feeds, threads: 2)["logits"]!)
        XCTAssertLessThanOrEqual(c2.relativeToMax, 1e-5, c2.worst)
    }

    /// The "light" models of the onnx package with BatchNorm, Caffe Scale, Sum residuals and Dropout: whatever the
    /// passes find there must not change the outputs. (AlexNet, VGG-19 and ZFNet are left out: only Conv+Relu,
    /// Gemm+Relu and Dropout, covered above, and materializing their FC weights takes most of the suite's time.)
    func testLightModelsUnchanged() throws {
        let dir = try Fixtures.generatedDir("light")
        // Nodes before → after (BatchNorm + Scale folding, Conv epilogues, Sum residuals, Dropout removal).
        let expected = ["densenet121": (668, 432), "inception_v1": (143, 85), "inception_v2": (371, 95), "resnet50": (176, 58),
                        "shufflenet": (203, 111), "squeezenet": (66, 39)]
        for (name, (before, after)) in expected.sorted(by: { $0.key < $1.key }) {
            let mc = ModelCase(dir: dir.appendingPathComponent(name))
            let feeds = try mc.npyFiles("inputs")
            var options = StaticShapes.Options()
            var byName: [String: Tensor] = [:]
            let raw = try ONNXImporter.load(path: mc.modelPath)
            for i in raw.inputs { if let t = feeds[sanitize(i.name)] { byName[i.name] = t; options.inputShapes[i.name] = t.shape } }
            var report = PassReport()
            let g = try StaticShapes.run(raw, options: options, report: &report)
            var optReport = PassReport()
            let o = try Optimizer.run(g, report: &optReport)
            print("\(name): " + optReport.lines.filter { !$0.contains("] no ") && !$0.contains("nothing") }.joined(separator: "; "))
            XCTAssertEqual(g.nodes.count, before, name)
            XCTAssertEqual(o.nodes.count, after, "\(name): \(optReport.lines)")
            try assertSameOutputs(o, g, byName, threads: 2, "light model \(name)")
        }
    }

    // MARK: - CLI

    func testConvertOptimizesUnlessNoOptimize() throws {
        let binary = Bundle.main.bundleURL.appendingPathComponent("psedge")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("psedge binary not found at \(binary.path) (swift build first)")
            return
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("psedge-fusion-\(getpid())")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        func convert(_ extra: [String]) throws -> (String, Graph) {
            let out = tmp.appendingPathComponent("m.psm").path
            let p = Process()
            p.executableURL = binary
            p.arguments = ["convert", Fixtures.path("fusion/attention_sdpa_torch.onnx"), "-o", out, "--report"] + extra
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, text)
            return (text, try PSMModel.load(path: out).graph)
        }
        let (text, g) = try convert([])
        XCTAssertTrue(text.contains("[attention] fused 2 attention blocks"), text)
        XCTAssertTrue(text.contains("[identity]") && text.contains("[linear-epilogue]") && text.contains("[optimize]"), text)
        XCTAssertEqual(ops(g)["psedge.Attention"], 2)
        let (text2, g2) = try convert(["--no-optimize"])
        XCTAssertFalse(text2.contains("[attention]"), text2)
        XCTAssertNil(ops(g2)["psedge.Attention"])
        XCTAssertEqual(ops(g2)["Softmax"], 2)
    }
}
