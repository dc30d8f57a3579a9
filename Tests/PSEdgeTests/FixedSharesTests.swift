import PSEdgeIR
import PSEdgePasses
@testable import PSEdgeRuntime
import XCTest

/// Convolutions, the stem's max pooling and attention split across threads in fixed shares (each thread its own
/// columns and its own packing buffers; Winograd by bands of tile rows; pooling by bands of output rows; attention by
/// heads, with its own transposed keys and values) give exactly the results of the shared split and of one thread.
final class FixedSharesTests: XCTestCase {
    override func tearDown() {
        ThreadPool.fixedShares = true
    }

    /// One FusedConv with bias, a residual and ReLU.
    func conv(c: Int, m: Int, h: Int, w: Int, kernel: Int, stride: Int, pad: Int, residualFirst: Bool, seed: UInt64) -> (Graph, [String: Tensor]) {
        var rng = SeededRandom(seed: seed)
        let oh = (h + 2 * pad - kernel) / stride + 1, ow = (w + 2 * pad - kernel) / stride + 1
        let out = [1, m, oh, ow]
        let inits = ["w": Tensor((0..<(m * c * kernel * kernel)).map { _ in rng.float(-0.3, 0.3) }, shape: [m, c, kernel, kernel]),
                     "b": Tensor((0..<m).map { _ in rng.float(-1, 1) }, shape: [m])]
        let node = Node(name: "conv", opType: "FusedConv", domain: "psedge", inputs: ["x", "w", "b", "r"], outputs: ["y"],
                        attributes: ["kernel_shape": .ints([kernel, kernel]), "strides": .ints([stride, stride]),
                                     "pads": .ints([pad, pad, pad, pad]), "activation": .string("relu"),
                                     "residual_before_activation": .int(residualFirst ? 1 : 0)])
        let g = Graph(nodes: [node],
                      inputs: [ValueInfo(name: "x", type: TensorType(.float32, static: [1, c, h, w])),
                               ValueInfo(name: "r", type: TensorType(.float32, static: out))],
                      outputs: [ValueInfo(name: "y", type: TensorType(.float32, static: out))],
                      initializers: inits, valueTypes: ["y": TensorType(.float32, static: out)], opsets: ["": 17])
        let feeds = ["x": Tensor((0..<(c * h * w)).map { _ in rng.float(-2, 2) }, shape: [1, c, h, w]),
                     "r": Tensor((0..<(m * oh * ow)).map { _ in rng.float(-2, 2) }, shape: out)]
        return (g, feeds)
    }

    /// ResNet's stem pooling (3×3, stride 2, pad 1) over 10 planes of 30×31.
    func maxPool() -> (Graph, [String: Tensor], String) {
        var rng = SeededRandom(seed: 10)
        let node = Node(name: "pool", opType: "MaxPool", inputs: ["x"], outputs: ["y"],
                        attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        let out = [1, 10, 15, 16]
        let g = Graph(nodes: [node], inputs: [ValueInfo(name: "x", type: TensorType(.float32, static: [1, 10, 30, 31]))],
                      outputs: [ValueInfo(name: "y", type: TensorType(.float32, static: out))], initializers: [:],
                      valueTypes: ["y": TensorType(.float32, static: out)], opsets: ["": 17])
        return (g, ["x": Tensor((0..<(10 * 30 * 31)).map { _ in rng.float(-2, 2) }, shape: [1, 10, 30, 31])], "max pool")
    }

    /// psedge.Attention the rows way (heads of 4 and 8 dims; fixed shares of heads), ragged query and key counts.
    func attention() -> (Graph, [String: Tensor], String) {
        var rng = SeededRandom(seed: 13)
        let (heads, lq, lk, d, dv) = (12, 50, 37, 4, 8)
        let node = Node(name: "attn", opType: "Attention", domain: "psedge", inputs: ["q", "k", "v"], outputs: ["y"],
                        attributes: ["heads": .int(heads), "kernel": .string("rows")])
        let shapes = ["q": [1, lq, heads * d], "k": [1, lk, heads * d], "v": [1, lk, heads * dv]]
        let out = [1, lq, heads * dv]
        let g = Graph(nodes: [node], inputs: ["q", "k", "v"].map { ValueInfo(name: $0, type: TensorType(.float32, static: shapes[$0]!)) },
                      outputs: [ValueInfo(name: "y", type: TensorType(.float32, static: out))], initializers: [:],
                      valueTypes: ["y": TensorType(.float32, static: out)], opsets: ["": 17])
        var feeds: [String: Tensor] = [:]
        for (name, shape) in shapes { feeds[name] = Tensor((0..<shape.reduce(1, *)).map { _ in rng.float(-2, 2) }, shape: shape) }
        return (g, feeds, "attention")
    }

    /// (Sizes are chosen so that every case gets fixed shares on 2 threads, most on 3 too: at least
    /// ConvKernel.minShareUnits panels a thread, a full panel of Winograd tiles a thread, 32 filters a thread.)
    func testFixedSharesEqualTheSharedSplitBitForBit() throws {
        let cases: [(Graph, [String: Tensor], String)] = [
            { let (g, f) = conv(c: 16, m: 24, h: 50, w: 50, kernel: 3, stride: 2, pad: 1, residualFirst: false, seed: 1); return (g, f, "3×3 stride 2") }(),
            { let (g, f) = conv(c: 3, m: 16, h: 40, w: 38, kernel: 7, stride: 2, pad: 3, residualFirst: false, seed: 2); return (g, f, "7×7 stem") }(),
            // Output rows of 48: bands of 5 whole rows (240 columns, whole panels).
            { let (g, f) = conv(c: 3, m: 16, h: 96, w: 96, kernel: 7, stride: 2, pad: 3, residualFirst: false, seed: 12); return (g, f, "7×7 stem, row bands") }(),
            { let (g, f) = conv(c: 20, m: 40, h: 24, w: 25, kernel: 1, stride: 1, pad: 0, residualFirst: true, seed: 3); return (g, f, "1×1") }(),
            { let (g, f) = conv(c: 24, m: 20, h: 40, w: 40, kernel: 1, stride: 2, pad: 0, residualFirst: false, seed: 4); return (g, f, "1×1 stride 2") }(),
        ] + [(28, 1, 5), (58, 0, 6), (27, 1, 7)].map { (size: Int, pad: Int, seed: UInt64) in
            let (g, f) = conv(c: 16, m: 18, h: size, w: size, kernel: 3, stride: 1, pad: pad, residualFirst: false, seed: seed)
            var report = PassReport()
            let w = WinogradConvolution.run(g, report: &report)
            XCTAssertEqual(w.nodes.map(\.opType), ["WinogradConv"])
            return (w, f, "Winograd \(size)×\(size)")
        }
        let rows: [(Graph, [String: Tensor], String)] = [(32, 96, 3, 1, 8), (32, 50, 3, 0, 11), (64, 40, 1, 0, 9)].map { (c: Int, m: Int, k: Int, pad: Int, seed: UInt64) in
            let (g, f) = conv(c: c, m: m, h: 7, w: 7, kernel: k, stride: 1, pad: pad, residualFirst: false, seed: seed)
            var report = PassReport()
            let r = RowPanelWeights.run(g, report: &report)
            XCTAssertNotNil(r.nodes[0].attributes["weight_layout"], "the 7×7 output takes the rows form")
            return (r, f, "rows form \(k)×\(k) on 7×7")
        }
        for (g, feeds, name) in cases + rows + [maxPool(), attention()] {
            let one = try Plan(graph: g, threads: 1).run(feeds)["y"]!.floats
            for threads in [2, 3] {
                for fixed in [true, false] {
                    ThreadPool.fixedShares = fixed
                    let y = try Plan(graph: g, threads: threads).run(feeds)["y"]!.floats
                    XCTAssertEqual(y.map(\.bitPattern), one.map(\.bitPattern), "\(name): \(threads) threads, fixed shares \(fixed)")
                }
            }
        }
    }
}
