import XCTest
import PSEdgeIR
import PSEdgeKernels
import Foundation
@testable import PSEdgeRuntime

/// One input of a single-node test graph: a graph input fed at run time, a constant (initializer),
/// or an omitted optional input.
enum OpInput {
    case input(String, Tensor)
    case constant(String, Tensor)
    case omitted
}

/// Tensor literals for tests.
enum T {
    static func f(_ v: [Float], _ shape: [Int]) -> Tensor { Tensor(v, shape: shape) }
    static func i64(_ v: [Int64], _ shape: [Int]) -> Tensor { Tensor(int64: v, shape: shape) }
    static func i32(_ v: [Int32], _ shape: [Int]) -> Tensor {
        v.withUnsafeBytes { Tensor(bytes: $0, dtype: .int32, shape: shape) }
    }
    static func u8(_ v: [UInt8], _ shape: [Int]) -> Tensor {
        v.withUnsafeBytes { Tensor(bytes: $0, dtype: .uint8, shape: shape) }
    }
    static func i8(_ v: [Int8], _ shape: [Int]) -> Tensor {
        v.withUnsafeBytes { Tensor(bytes: $0, dtype: .int8, shape: shape) }
    }
    static func b(_ v: [Bool], _ shape: [Int]) -> Tensor {
        v.map { UInt8($0 ? 1 : 0) }.withUnsafeBytes { Tensor(bytes: $0, dtype: .bool, shape: shape) }
    }
}

/// Builds a one-node graph, plans it with 1 and with 3 threads, and runs it.
func runOp(_ op: String, opset: Int, attrs: [String: Attribute] = [:], inputs: [OpInput], outputs: [String] = ["y"],
           threads: Int = 1, name: String = "n0") throws -> [String: Tensor] {
    var g = Graph(name: "test", opsets: ["": opset])
    var nodeInputs: [String] = []
    var feeds: [String: Tensor] = [:]
    for i in inputs {
        switch i {
        case .input(let n, let t):
            g.inputs.append(ValueInfo(name: n, type: TensorType(t.dtype, static: t.shape)))
            feeds[n] = t
            nodeInputs.append(n)
        case .constant(let n, let t):
            g.initializers[n] = t
            nodeInputs.append(n)
        case .omitted:
            nodeInputs.append("")
        }
    }
    g.nodes = [Node(name: name, opType: op, inputs: nodeInputs, outputs: outputs, attributes: attrs)]
    g.outputs = outputs.filter { !$0.isEmpty }.map { ValueInfo(name: $0, type: nil) }
    let plan = try Plan(graph: g, threads: threads)
    return try plan.run(feeds)
}

final class RuntimeOpsTests: XCTestCase {
    /// Runs the op single- and multi-threaded and compares every named output with `expected`.
    func check(_ op: String, opset: Int, attrs: [String: Attribute] = [:], inputs: [OpInput],
               expected: [(String, Tensor)], rtol: Double = 1e-4, atol: Double = 1e-5,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let outputs = expected.map(\.0)
        for threads in [1, 3] {
            let got = try runOp(op, opset: opset, attrs: attrs, inputs: inputs, outputs: outputs, threads: threads)
            for (name, want) in expected {
                guard let t = got[name] else { XCTFail("\(op): no output \(name)", file: file, line: line); continue }
                XCTAssertEqual(t.dtype, want.dtype, "\(op) output \(name) dtype", file: file, line: line)
                XCTAssertEqual(t.shape, want.shape, "\(op) output \(name) shape", file: file, line: line)
                guard t.shape == want.shape, t.dtype == want.dtype else { continue }
                var bad = 0
                for i in 0..<t.count {
                    let a = t.double(at: i), b = want.double(at: i)
                    let ok = (a.isNaN && b.isNaN) || a == b || abs(a - b) <= atol + rtol * abs(b)
                    if !ok {
                        if bad < 5 { XCTFail("\(op) output \(name)[\(i)] (threads \(threads)): got \(a), want \(b)", file: file, line: line) }
                        bad += 1
                    }
                }
                if bad > 5 { XCTFail("\(op) output \(name): \(bad) mismatches in total", file: file, line: line) }
            }
        }
    }

    /// Expects planning the op to fail with an error whose message contains every fragment.
    func checkError(_ op: String, opset: Int, attrs: [String: Attribute] = [:], inputs: [OpInput],
                    outputs: [String] = ["y"], contains fragments: [String],
                    file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try runOp(op, opset: opset, attrs: attrs, inputs: inputs, outputs: outputs, name: "bad_node")
            XCTFail("\(op): expected an error", file: file, line: line)
        } catch let e as PSEdgeError {
            for f in fragments {
                XCTAssertTrue(e.message.contains(f), "'\(e.message)' should mention '\(f)'", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    // MARK: error handling

    func testUnsupportedBatchNormTrainingModeNamesNode() {
        let x = T.f([1, 2, 3, 4], [1, 2, 2, 1])
        let p = T.f([1, 1], [2])
        checkError("BatchNormalization", opset: 15, attrs: ["training_mode": .int(1)],
                   inputs: [.input("x", x), .constant("s", p), .constant("b", p), .constant("m", p), .constant("v", p)],
                   contains: ["bad_node", "training_mode"])
    }

    func testUnsupportedResizeModeNamesNodeAndAttribute() {
        let x = T.f([1, 2, 3, 4], [1, 1, 2, 2])
        let scales = T.f([1, 1, 2, 2], [4])
        checkError("Resize", opset: 19, attrs: ["mode": .string("bicubic")],
                   inputs: [.input("x", x), .omitted, .constant("s", scales)], contains: ["bad_node", "mode", "bicubic"])
        checkError("Resize", opset: 19, attrs: ["antialias": .int(1)],
                   inputs: [.input("x", x), .omitted, .constant("s", scales)], contains: ["bad_node", "antialias"])
        checkError("Resize", opset: 19, attrs: ["coordinate_transformation_mode": .string("tf_half_pixel")],
                   inputs: [.input("x", x), .omitted, .constant("s", scales)], contains: ["bad_node", "coordinate_transformation_mode"])
        checkError("Resize", opset: 19, attrs: ["nearest_mode": .string("round")],
                   inputs: [.input("x", x), .omitted, .constant("s", scales)], contains: ["bad_node", "nearest_mode"])
    }

    func testResizeScalesComputedAtRunTimeAreRejected() {
        checkError("Resize", opset: 19, inputs: [.input("x", T.f([1, 2, 3, 4], [1, 1, 2, 2])), .omitted, .input("s", T.f([1, 1, 2, 2], [4]))],
                   contains: ["bad_node", "scales", "constant"])
    }

    func testUnsupportedAttributesOfOtherOpsNameNode() {
        let x = T.f([1, 2, 3, 4, 5, 6], [1, 1, 2, 3])
        checkError("Pad", opset: 18, attrs: ["mode": .string("symmetric")],
                   inputs: [.input("x", x), .constant("p", T.i64([0, 0, 1, 1, 0, 0, 1, 1], [8]))], contains: ["bad_node", "mode", "symmetric"])
        checkError("MaxPool", opset: 12, attrs: ["kernel_shape": .ints([1, 1]), "auto_pad": .string("SAME")],
                   inputs: [.input("x", x)], contains: ["bad_node", "auto_pad"])
        checkError("MaxPool", opset: 12, attrs: ["kernel_shape": .ints([1, 1, 1, 1])],
                   inputs: [.input("x", T.f([1], [1, 1, 1, 1, 1, 1]))], contains: ["bad_node", "4-d"])
        checkError("RoiAlign", opset: 16, attrs: ["mode": .string("sum")],
                   inputs: [.input("x", T.f([1, 2, 3, 4], [1, 1, 2, 2])), .input("r", T.f([0, 0, 1, 1], [1, 4])), .input("b", T.i64([0], [1]))],
                   contains: ["bad_node", "mode"])
        checkError("Dropout", opset: 13, inputs: [.input("x", x), .omitted, .constant("t", T.b([true], []))], contains: ["bad_node", "training_mode"])
        let p = T.f([1], [1])
        checkError("BatchNormalization", opset: 9, inputs: [.input("x", x), .constant("s", p), .constant("b", p), .constant("m", p), .constant("v", p)],
                   outputs: ["y", "running_mean"], contains: ["bad_node", "running_mean"])
        checkError("GroupNormalization", opset: 21, attrs: ["num_groups": .int(1)],
                   inputs: [.input("x", T.f([1, 2, 3, 4], [1, 2, 2])), .constant("s", p), .constant("b", p)], contains: ["bad_node", "channels"])
        checkError("ReduceSum", opset: 11, inputs: [.input("x", x), .constant("a", T.i64([1], [1]))], contains: ["bad_node", "attribute"])
        checkError("Einsum", opset: 12, attrs: ["equation": .string("ij,jk->ik")], inputs: [.input("x", x)], contains: ["bad_node", "operands"])
    }

    func testSoftmaxRejectsIntegerInput() {
        checkError("Softmax", opset: 13, inputs: [.input("x", T.i64([1, 2], [2]))], contains: ["bad_node", "i64"])
    }
}

// MARK: threading and numerics

extension RuntimeOpsTests {
    /// Deterministic pseudo-random floats in [-2, 2).
    static func noise(_ shape: [Int], seed: UInt32 = 7) -> Tensor {
        var s = seed
        let n = shape.reduce(1, *)
        var v = [Float](repeating: 0, count: n)
        for i in 0..<n {
            s = s &* 1664525 &+ 1013904223
            v[i] = Float(s >> 8) / Float(1 << 24) * 4 - 2
        }
        return Tensor(v, shape: shape)
    }

    /// Large inputs split into many chunks: every output must not depend on how work is partitioned.
    func testThreadedRunsMatchSerialRuns() throws {
        let x4 = Self.noise([2, 8, 37, 41])
        let cases: [(String, Int, [String: Attribute], [OpInput])] = [
            ("Softmax", 13, ["axis": .int(1)], [.input("x", x4)]),
            ("Softmax", 13, [:], [.input("x", x4)]),
            ("LogSoftmax", 11, ["axis": .int(2)], [.input("x", x4)]),
            ("LayerNormalization", 17, ["axis": .int(2)], [.input("x", x4), .constant("s", Self.noise([37, 41], seed: 3))]),
            ("GroupNormalization", 21, ["num_groups": .int(4)], [.input("x", x4), .constant("s", Self.noise([8], seed: 4)), .constant("b", Self.noise([8], seed: 5))]),
            ("InstanceNormalization", 17, [:], [.input("x", x4), .constant("s", Self.noise([8], seed: 4)), .constant("b", Self.noise([8], seed: 5))]),
            ("LRN", 13, ["size": .int(3)], [.input("x", x4)]),
            ("MaxPool", 12, ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], [.input("x", x4)]),
            ("AveragePool", 19, ["kernel_shape": .ints([3, 2]), "dilations": .ints([2, 1]), "ceil_mode": .int(1)], [.input("x", x4)]),
            ("Resize", 19, ["mode": .string("linear")], [.input("x", x4), .omitted, .constant("s", Tensor([1, 1, 1.7, 2.3], shape: [4]))]),
            ("Resize", 19, ["mode": .string("cubic")], [.input("x", x4), .omitted, .constant("s", Tensor([1, 1, 0.6, 1.5], shape: [4]))]),
            ("Resize", 19, [:], [.input("x", x4), .omitted, .constant("s", Tensor([1, 2, 1.5, 2], shape: [4]))]),
            ("Pad", 18, ["mode": .string("reflect")], [.input("x", x4), .constant("p", Tensor(int64: [0, 1, 3, 2, 1, 0, 4, 5], shape: [8]))]),
            ("Pad", 18, [:], [.input("x", x4), .constant("p", Tensor(int64: [1, 0, -3, 2, 0, 2, 4, -5], shape: [8]))]),
            ("Tile", 13, [:], [.input("x", x4), .constant("r", Tensor(int64: [1, 2, 1, 3], shape: [4]))]),
            ("ReduceSum", 13, [:], [.input("x", x4), .constant("a", Tensor(int64: [0, 2], shape: [2]))]),
            ("ReduceMax", 18, ["keepdims": .int(0)], [.input("x", x4), .constant("a", Tensor(int64: [1], shape: [1]))]),
            ("ReduceMean", 18, [:], [.input("x", x4), .constant("a", Tensor(int64: [-1], shape: [1]))]),
            ("ArgMax", 13, ["axis": .int(2)], [.input("x", x4)]),
            ("Einsum", 12, ["equation": .string("nchw->nwhc")], [.input("x", x4)]),
            ("Einsum", 12, ["equation": .string("nchw,nchw->nc")], [.input("x", x4), .input("b", Self.noise([2, 8, 37, 41], seed: 9))]),
        ]
        for (op, opset, attrs, inputs) in cases {
            let a = try runOp(op, opset: opset, attrs: attrs, inputs: inputs, threads: 1)["y"]!
            let b = try runOp(op, opset: opset, attrs: attrs, inputs: inputs, threads: 4)["y"]!
            XCTAssertEqual(a.shape, b.shape, op)
            XCTAssertEqual(a.byteCount, b.byteCount, op)
            XCTAssertTrue(memcmp(a.raw, b.raw, a.byteCount) == 0, "\(op) \(attrs): threaded result differs")
        }
    }

    /// The vector activations against double precision over [-20, 20] (sigmoid, SiLU: relative; GELU: absolute,
    /// bounded by the polynomial erf's 1.5e-7 times |x|/2 plus rounding), and their special values.
    func testFastActivationAccuracy() {
        let xs = stride(from: Float(-20), through: 20, by: 0.00731).map { $0 }
        var sig = [Float](repeating: 0, count: xs.count), silu = sig, gelu = sig
        pse_ops_sigmoid(xs, &sig, xs.count)
        pse_ops_silu(xs, &silu, xs.count)
        pse_ops_gelu(xs, &gelu, xs.count)
        var worst = (sigmoid: 0.0, silu: 0.0, gelu: 0.0)
        for (i, x) in xs.enumerated() {
            let d = Double(x), s = 1 / (1 + Foundation.exp(-d))
            worst.sigmoid = max(worst.sigmoid, abs(Double(sig[i]) - s) / s)
            if x != 0 { worst.silu = max(worst.silu, abs(Double(silu[i]) - d * s) / abs(d * s)) }
            let g = 0.5 * d * (1 + Foundation.erf(d / 2.0.squareRoot()))
            worst.gelu = max(worst.gelu, abs(Double(gelu[i]) - g) / max(1, abs(d)))
        }
        XCTAssertLessThan(worst.sigmoid, 1e-6)
        XCTAssertLessThan(worst.silu, 1e-6)
        XCTAssertLessThan(worst.gelu, 3e-7)
        let special: [Float] = [.infinity, -.infinity, .nan, 0, -0.0, 100, -100]
        var out = [Float](repeating: 0, count: special.count)
        pse_ops_sigmoid(special, &out, special.count)
        XCTAssertEqual(Array(out[0...1]), [1, 0])
        XCTAssertTrue(out[2].isNaN)
        XCTAssertEqual(Array(out[3...]), [0.5, 0.5, 1, 0])
        pse_ops_gelu(special, &out, special.count)
        XCTAssertEqual(out[0], .infinity)
        XCTAssertTrue(out[2].isNaN)
        XCTAssertEqual(Array(out[3...]), [0, 0, 100, 0])
    }

    func testFastExpAccuracy() {
        var worst: Double = 0
        var xs: [Float] = []
        var v: Float = -87
        while v < 88 { xs.append(v); v += 0.0137 }
        var ys = [Float](repeating: 0, count: xs.count)
        pse_ops_exp(xs, &ys, xs.count)
        for (x, y) in zip(xs, ys) {
            let want = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(y) - want) / want)
        }
        XCTAssertLessThan(worst, 1e-6, "worst relative error of pse_ops_exp")
        // Softmax of a row with -inf entries and huge values stays finite and sums to one.
        let row: [Float] = [-.infinity, 1e30, 1e30, -1e30, 0]
        var out = [Float](repeating: 0, count: row.count)
        pse_ops_softmax_row(row, &out, row.count, 0)
        XCTAssertEqual(out, [0, 0.5, 0.5, 0, 0])
    }
}
