import PSEdgeIR
import PSEdgeKernels
import PSEdgePasses
@testable import PSEdgeRuntime
import XCTest

/// psedge.WinogradConv (F(4×4, 3×3), winograd.c) and the converter pass that emits it: the rewritten convolution
/// matches a double-precision direct convolution with the same epilogue, equals itself bit for bit on every GEMM
/// path, transform path and thread count, and only eligible convolutions are rewritten.
final class WinogradConvTests: XCTestCase {
    override func tearDown() {
        for path in [ProcessInfo.processInfo.environment["PSEDGE_SCONV_KERNEL"] ?? "avx512", "avx2", "scalar"]
        where pse_sconv_kernel_select(path) != 0 { break }
        for path in [ProcessInfo.processInfo.environment["PSEDGE_WINOGRAD_KERNEL"] ?? "avx512", "portable"]
        where pse_winograd_kernel_select(path) != 0 { break }
    }

    struct Case {
        let c, m, h, w: Int
        let pads: [Int]  // top, left, bottom, right
        let bias, residual, first: Bool
        let activation: String
    }

    /// One FusedConv (X, W, B?, R?) with static shapes.
    func convGraph(_ cs: Case, seed: UInt64) -> (Graph, [String: Tensor]) {
        var rng = SeededRandom(seed: seed)
        let oh = cs.h + cs.pads[0] + cs.pads[2] - 2, ow = cs.w + cs.pads[1] + cs.pads[3] - 2
        let w = Tensor((0..<(cs.m * cs.c * 9)).map { _ in rng.float(-0.3, 0.3) }, shape: [cs.m, cs.c, 3, 3])
        var inits = ["w": w]
        var inputs = ["x", "w"]
        if cs.bias { inits["b"] = Tensor((0..<cs.m).map { _ in rng.float(-1, 1) }, shape: [cs.m]); inputs.append("b") }
        var graphInputs = [ValueInfo(name: "x", type: TensorType(.float32, static: [1, cs.c, cs.h, cs.w]))]
        var feeds = ["x": Tensor((0..<(cs.c * cs.h * cs.w)).map { _ in rng.float(-2, 2) }, shape: [1, cs.c, cs.h, cs.w])]
        if cs.residual {
            if !cs.bias { inputs.append("") }
            inputs.append("r")
            graphInputs.append(ValueInfo(name: "r", type: TensorType(.float32, static: [1, cs.m, oh, ow])))
            feeds["r"] = Tensor((0..<(cs.m * oh * ow)).map { _ in rng.float(-3, 3) }, shape: [1, cs.m, oh, ow])
        }
        let node = Node(name: "conv", opType: "FusedConv", domain: "psedge", inputs: inputs, outputs: ["y"],
                        attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints(cs.pads), "activation": .string(cs.activation),
                                     "residual_before_activation": .int(cs.first ? 1 : 0)])
        let g = Graph(nodes: [node], inputs: graphInputs, outputs: [ValueInfo(name: "y", type: TensorType(.float32, static: [1, cs.m, oh, ow]))],
                      initializers: inits, valueTypes: ["y": TensorType(.float32, static: [1, cs.m, oh, ow])], opsets: ["": 17])
        return (g, feeds)
    }

    /// The direct convolution and its epilogue in double precision.
    func reference(_ cs: Case, _ g: Graph, _ feeds: [String: Tensor]) -> [Double] {
        let x = feeds["x"]!.floats, wt = g.initializers["w"]!.floats, b = g.initializers["b"]?.floats, r = feeds["r"]?.floats
        let oh = cs.h + cs.pads[0] + cs.pads[2] - 2, ow = cs.w + cs.pads[1] + cs.pads[3] - 2
        var out = [Double](repeating: 0, count: cs.m * oh * ow)
        func act(_ v: Double) -> Double {
            switch cs.activation {
            case "relu": return max(v, 0)
            case "silu": return v / (1 + Foundation.exp(-v))
            default: return v
            }
        }
        for o in 0..<cs.m {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc = b.map { Double($0[o]) } ?? 0
                    for ci in 0..<cs.c {
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = oy - cs.pads[0] + ky, ix = ox - cs.pads[1] + kx
                                guard iy >= 0, iy < cs.h, ix >= 0, ix < cs.w else { continue }
                                acc += Double(wt[((o * cs.c + ci) * 3 + ky) * 3 + kx]) * Double(x[(ci * cs.h + iy) * cs.w + ix])
                            }
                        }
                    }
                    let j = (o * oh + oy) * ow + ox
                    if let r, cs.first { acc += Double(r[j]) }
                    acc = act(acc)
                    if let r, !cs.first { acc += Double(r[j]) }
                    out[j] = acc
                }
            }
        }
        return out
    }

    func winograd(_ g: Graph) -> Graph {
        var report = PassReport()
        return WinogradConvolution.run(g, report: &report)
    }

    func testMatchesDirectConvolutionAndIsBitExactAcrossPaths() throws {
        var cases = [
            Case(c: 16, m: 16, h: 16, w: 16, pads: [1, 1, 1, 1], bias: true, residual: true, first: true, activation: "relu"),
            Case(c: 17, m: 33, h: 15, w: 18, pads: [1, 1, 1, 1], bias: true, residual: false, first: false, activation: "none"),
            Case(c: 20, m: 18, h: 19, w: 14, pads: [0, 2, 1, 0], bias: false, residual: true, first: false, activation: "relu"),
            Case(c: 24, m: 40, h: 13, w: 21, pads: [2, 0, 0, 2], bias: true, residual: true, first: false, activation: "silu"),
            Case(c: 16, m: 16, h: 18, w: 18, pads: [0, 0, 0, 0], bias: false, residual: false, first: false, activation: "none"),
            // Rows of more than 16 tiles (the AVX-512 transforms cut them into 16-tile pieces).
            Case(c: 16, m: 17, h: 9, w: 70, pads: [1, 1, 1, 1], bias: true, residual: true, first: false, activation: "relu"),
        ]
        var rng = SeededRandom(seed: 77)
        for _ in 0..<4 {
            cases.append(Case(c: 16 + Int(rng.next() % 24), m: 16 + Int(rng.next() % 40), h: 14 + Int(rng.next() % 20), w: 14 + Int(rng.next() % 20),
                              pads: (0..<4).map { _ in Int(rng.next() % 3) }, bias: rng.next() % 2 == 0, residual: rng.next() % 2 == 0,
                              first: rng.next() % 2 == 0, activation: ["none", "relu", "silu"][Int(rng.next() % 3)]))
        }
        let paths = [String](["scalar", "avx2", "avx512"]).filter { pse_sconv_kernel_select($0) != 0 }
        let transforms = [String](["portable", "avx512"]).filter { pse_winograd_kernel_select($0) != 0 }
        for (i, cs) in cases.enumerated() {
            let (g, feeds) = convGraph(cs, seed: UInt64(100 + i))
            let w = winograd(g)
            XCTAssertEqual(w.nodes.map(\.opType), ["WinogradConv"], "\(cs)")
            XCTAssertEqual(w.initializers[w.nodes[0].inputs[1]]?.shape, [36, cs.m, cs.c])
            XCTAssertNil(w.initializers["w"], "the 3×3 weights are replaced")
            let expected = reference(cs, g, feeds)
            var first: [Float]? = nil
            for path in paths {
                XCTAssertEqual(pse_sconv_kernel_select(path), 1)
                for (threads, transform) in [1, 2].flatMap({ t in transforms.map { (t, $0) } }) {
                    XCTAssertEqual(pse_winograd_kernel_select(transform), 1)
                    let y = try Plan(graph: w, threads: threads).run(feeds)["y"]!.floats
                    if let first {
                        XCTAssertEqual(y, first, "\(cs): \(path) GEMM, \(transform) transforms on \(threads) threads differ from scalar, portable on 1")
                    } else {
                        first = y
                        // F(4×4, 3×3) in fp32: errors a few times those of the direct sum, relative to the terms' size.
                        let scale = Double(cs.c * 9) * 0.3 * 2
                        var worst = 0.0
                        for j in y.indices { worst = max(worst, abs(Double(y[j]) - expected[j])) }
                        XCTAssertLessThan(worst, 2e-6 * scale, "\(cs)")
                        XCTAssertEqual(y.count, expected.count)
                    }
                }
            }
            // Without a vector panel GEMM the 36 products go through BLAS: same values within the same bound.
            ConvKernel.panelKernel = false
            let blas = try Plan(graph: w, threads: 2).run(feeds)["y"]!.floats
            ConvKernel.panelKernel = true
            for j in blas.indices { XCTAssertEqual(Double(blas[j]), expected[j], accuracy: 2e-6 * Double(cs.c * 9) * 0.6, "\(cs) BLAS") }
            // The unrewritten graph runs the direct convolution: same values within the same bound.
            let direct = try Plan(graph: g, threads: 2).run(feeds)["y"]!.floats
            for j in direct.indices { XCTAssertEqual(Double(direct[j]), expected[j], accuracy: 1e-4, "\(cs) direct") }
        }
    }

    func testOnlyEligibleConvolutionsAreRewritten() {
        let base = Case(c: 32, m: 32, h: 16, w: 16, pads: [1, 1, 1, 1], bias: true, residual: false, first: false, activation: "relu")
        XCTAssertEqual(winograd(convGraph(base, seed: 1).0).nodes[0].opType, "WinogradConv")
        func rewritten(_ change: (inout Node) -> Void, _ cs: Case = base) -> Bool {
            var (g, _) = convGraph(cs, seed: 1)
            change(&g.nodes[0])
            return winograd(g).nodes[0].opType == "WinogradConv"
        }
        XCTAssertFalse(rewritten { $0.attributes["strides"] = .ints([2, 2]) }, "stride 2")
        XCTAssertFalse(rewritten { $0.attributes["dilations"] = .ints([2, 2]) }, "dilated")
        XCTAssertTrue(rewritten { $0.attributes["strides"] = .ints([1, 1]) }, "explicit stride 1")
        XCTAssertTrue(rewritten({ $0.attributes["pads"] = nil; $0.attributes["auto_pad"] = .string("SAME_UPPER") }), "SAME padding")
        XCTAssertFalse(rewritten({ _ in }, Case(c: 8, m: 32, h: 16, w: 16, pads: [1, 1, 1, 1], bias: true, residual: false, first: false, activation: "none")),
                       "too few input channels")
        XCTAssertFalse(rewritten({ _ in }, Case(c: 32, m: 32, h: 7, w: 7, pads: [1, 1, 1, 1], bias: true, residual: false, first: false, activation: "none")),
                       "a 7×7 output has only 4 tiles")
        // A grouped convolution and a 1×1 one are left alone.
        var (g, _) = convGraph(base, seed: 1)
        g.nodes[0].attributes["group"] = .int(2)
        XCTAssertEqual(winograd(g).nodes[0].opType, "FusedConv")
        let one = Tensor([Float](repeating: 0.1, count: 32 * 32), shape: [32, 32, 1, 1])
        g = convGraph(base, seed: 1).0
        g.initializers["w"] = one
        g.nodes[0].attributes["kernel_shape"] = .ints([1, 1])
        XCTAssertEqual(winograd(g).nodes[0].opType, "FusedConv")
    }

    func testBadWinogradNodesAreRejectedWithTheirName() {
        var (g, _) = convGraph(Case(c: 16, m: 16, h: 16, w: 16, pads: [1, 1, 1, 1], bias: false, residual: false, first: false, activation: "none"), seed: 3)
        g = winograd(g)
        g.initializers[g.nodes[0].inputs[1]] = Tensor([Float](repeating: 0, count: 16 * 16 * 9), shape: [16, 16, 9])
        XCTAssertThrowsError(try Plan(graph: g, threads: 1)) { XCTAssertTrue("\($0)".contains("conv"), "\($0)") }
    }
}

/// The `rows16` weight layout (RowPanelWeights): narrow-output convolutions are rewritten and give the same bits.
final class RowPanelWeightsTests: XCTestCase {
    func graph(c: Int, m: Int, hw: Int, kernel: Int, stride: Int, residual: Bool, activation: String) -> (Graph, [String: Tensor]) {
        var rng = SeededRandom(seed: UInt64(c * 1000 + m + kernel))
        let pad = kernel / 2, o = (hw + 2 * pad - kernel) / stride + 1
        var inits = ["w": Tensor((0..<(m * c * kernel * kernel)).map { _ in rng.float(-0.2, 0.2) }, shape: [m, c, kernel, kernel]),
                     "b": Tensor((0..<m).map { _ in rng.float(-1, 1) }, shape: [m])]
        var inputs = ["x", "w", "b"]
        var feeds = ["x": Tensor((0..<(c * hw * hw)).map { _ in rng.float(-2, 2) }, shape: [1, c, hw, hw])]
        var graphInputs = [ValueInfo(name: "x", type: TensorType(.float32, static: [1, c, hw, hw]))]
        if residual {
            inputs.append("r")
            feeds["r"] = Tensor((0..<(m * o * o)).map { _ in rng.float(-1, 1) }, shape: [1, m, o, o])
            graphInputs.append(ValueInfo(name: "r", type: TensorType(.float32, static: [1, m, o, o])))
        }
        inits["unused"] = nil
        let node = Node(name: "narrow", opType: "FusedConv", domain: "psedge", inputs: inputs, outputs: ["y"],
                        attributes: ["kernel_shape": .ints([kernel, kernel]), "pads": .ints([pad, pad, pad, pad]), "strides": .ints([stride, stride]),
                                     "activation": .string(activation), "residual_before_activation": .int(1)])
        let out = TensorType(.float32, static: [1, m, o, o])
        return (Graph(nodes: [node], inputs: graphInputs, outputs: [ValueInfo(name: "y", type: out)], initializers: inits,
                      valueTypes: ["y": out], opsets: ["": 17]), feeds)
    }

    func testNarrowOutputsUseRowPanelsWithTheSameBits() throws {
        // ResNet's 7×7 stage: 1×1 (in place), 3×3 stride 1 and stride 2 (packed), a SiLU epilogue finished in Swift.
        for (c, m, hw, kernel, stride, residual, act) in [(64, 48, 7, 1, 1, true, "relu"), (32, 40, 7, 3, 1, false, "none"),
                                                          (32, 32, 14, 3, 2, true, "silu"), (16, 64, 5, 1, 1, false, "relu")] {
            let (g, feeds) = graph(c: c, m: m, hw: hw, kernel: kernel, stride: stride, residual: residual, activation: act)
            var report = PassReport()
            let packed = RowPanelWeights.run(g, report: &report)
            XCTAssertEqual(packed.nodes[0].attributes["weight_layout"].flatMap { if case .string(let s) = $0 { s } else { nil } }, "rows16")
            XCTAssertEqual(packed.initializers[packed.nodes[0].inputs[1]]?.shape, [(m + 15) / 16, c * kernel * kernel, 16])
            XCTAssertNil(packed.initializers["w"])
            for threads in [1, 2] {
                let a = try Plan(graph: g, threads: threads).run(feeds)["y"]!.floats
                let b = try Plan(graph: packed, threads: threads).run(feeds)["y"]!.floats
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(c)→\(m) \(kernel)×\(kernel)/\(stride) on \(threads) threads")
            }
        }
        // CPUs without a vector panel GEMM unpack the panels for BLAS: the same values as BLAS on the plain weights.
        let (g, feeds) = graph(c: 64, m: 48, hw: 7, kernel: 1, stride: 1, residual: true, activation: "relu")
        var r = PassReport()
        let packed = RowPanelWeights.run(g, report: &r)
        ConvKernel.panelKernel = false
        defer { ConvKernel.panelKernel = String(cString: pse_sconv_kernel_name()) != "scalar" }
        XCTAssertEqual(try Plan(graph: packed, threads: 2).run(feeds)["y"]!.floats, try Plan(graph: g, threads: 2).run(feeds)["y"]!.floats)
        // Wide outputs (no padding wasted), few channels or groups keep the plain layout.
        var report = PassReport()
        for (m, hw) in [(48, 8), (16, 7)] {
            let g = graph(c: 16, m: m, hw: hw, kernel: 1, stride: 1, residual: false, activation: "none").0
            XCTAssertNil(RowPanelWeights.run(g, report: &report).nodes[0].attributes["weight_layout"], "\(m) channels, \(hw)×\(hw)")
        }
    }

    func testBadRowPanelWeightsAreRejectedWithTheirName() {
        var (g, _) = graph(c: 16, m: 48, hw: 7, kernel: 1, stride: 1, residual: false, activation: "none")
        var report = PassReport()
        g = RowPanelWeights.run(g, report: &report)
        g.initializers[g.nodes[0].inputs[1]] = Tensor([Float](repeating: 0, count: 2 * 16 * 16), shape: [2, 16, 16])
        XCTAssertThrowsError(try Plan(graph: g, threads: 1)) { XCTAssertTrue("\($0)".contains("narrow") && "\($0)".contains("panels"), "\($0)") }
    }
}
