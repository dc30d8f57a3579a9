import XCTest
import PSEdgeIR
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

    func testSoftmaxRejectsIntegerInput() {
        checkError("Softmax", opset: 13, inputs: [.input("x", T.i64([1, 2], [2]))], contains: ["bad_node", "i64"])
    }
}
