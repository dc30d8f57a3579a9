import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeONNX
import PSEdgePasses
import PSEdgeRuntime
import XCTest

/// Where the fixtures live: committed ones under Tests/Fixtures, generated ones (tools/make_fixtures.sh)
/// under Tests/Fixtures/generated.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let generated = root.appendingPathComponent("generated")
    static let repo = root.deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ rel: String) -> String { root.appendingPathComponent(rel).path }

    /// A generated fixture directory; fails the test (not skips) when it was not generated.
    static func generatedDir(_ rel: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let url = generated.appendingPathComponent(rel)
        guard FileManager.default.fileExists(atPath: url.path) else {
            XCTFail("missing generated fixtures \(url.path): run `bash tools/make_fixtures.sh` first", file: file, line: line)
            throw XCTSkip("fixtures missing")
        }
        return url
    }
}

/// A model case in the fixture layout: model.onnx, inputs/<name>.npy, outputs/<name>.npy.
extension Graph {
    /// A graph input and the value a test feeds it.
    typealias Input = (info: ValueInfo, value: Tensor)
}

struct ModelCase {
    let dir: URL
    var name: String { dir.lastPathComponent }
    var modelPath: String { dir.appendingPathComponent("model.onnx").path }

    func npyFiles(_ sub: String) throws -> [String: Tensor] {
        let d = dir.appendingPathComponent(sub)
        var out: [String: Tensor] = [:]
        for f in (try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? [] where f.hasSuffix(".npy") {
            out[String(f.dropLast(4))] = try NPY.read(path: d.appendingPathComponent(f).path)
        }
        return out
    }

    /// Imports, fixes shapes, folds and runs the model on its inputs. Inputs are matched to graph inputs by
    /// sanitized file name.
    /// `fix` names graph inputs to freeze as constants (PSEdge compiles static graphs: a shape or axes argument
    /// fed as a graph input must be known at convert time).
    func run(threads: Int = 1, fix: (Graph.Input) -> Bool = { _ in false },
             transform: (Graph) throws -> Graph = { $0 }) throws -> (graph: Graph, outputs: [String: Tensor], expected: [String: Tensor]) {
        let raw = try ONNXImporter.load(path: modelPath)
        let files = try npyFiles("inputs")
        var feeds: [String: Tensor] = [:]
        var options = StaticShapes.Options()
        for i in raw.inputs {
            guard let t = files[sanitize(i.name)] else { throw PSEdgeError.invalid("\(name): no input file for '\(i.name)'") }
            if fix((i, t)) { options.fixedInputs[i.name] = t; continue }
            feeds[i.name] = t
            options.inputShapes[i.name] = t.shape
        }
        var report = PassReport()
        let graph = try transform(try StaticShapes.run(raw, options: options, report: &report))
        let plan = try Plan(graph: graph, threads: threads)
        let outs = try plan.run(feeds)
        var expected: [String: Tensor] = [:]
        let files2 = try npyFiles("outputs")
        for o in graph.outputs { expected[o.name] = files2[sanitize(o.name)] }
        return (graph, outs, expected)
    }
}

func sanitize(_ name: String) -> String {
    String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" })
}

struct Comparison {
    var maxAbs: Double = 0
    var maxRef: Double = 0
    var worst: String = ""
    var relativeToMax: Double { maxRef > 0 ? maxAbs / maxRef : maxAbs }
}

/// Element-wise check |a - b| <= atol + rtol * |b|, as ONNX's backend test runner does. Returns a failure
/// description, or nil when everything is within tolerance.
func mismatch(_ actual: Tensor, _ expected: Tensor, rtol: Double, atol: Double) -> String? {
    guard actual.shape == expected.shape else {
        return "shape \(Shapes.describe(actual.shape)) != expected \(Shapes.describe(expected.shape))"
    }
    let exactTypes = !expected.dtype.isFloat
    if exactTypes && actual.dtype != expected.dtype && !(actual.dtype == .bool || expected.dtype == .bool) {
        return "dtype \(actual.dtype.name) != expected \(expected.dtype.name)"
    }
    for i in 0..<expected.count {
        let a = actual.double(at: i), b = expected.double(at: i)
        if a.isNaN && b.isNaN { continue }
        if a == b { continue }
        if abs(a - b) > atol + rtol * abs(b) || a.isNaN != b.isNaN {
            return "element \(i): \(a) vs expected \(b)"
        }
    }
    return nil
}

/// max|a-b| and max|b|: the "relative to the largest value" error the 1e-4 bound uses.
func compare(_ actual: Tensor, _ expected: Tensor) -> Comparison {
    var c = Comparison()
    for i in 0..<min(actual.count, expected.count) {
        let a = actual.double(at: i), b = expected.double(at: i)
        let d = abs(a - b)
        if d > c.maxAbs || d.isNaN { c.maxAbs = d.isNaN ? .infinity : d; c.worst = "element \(i): \(a) vs \(b)" }
        c.maxRef = max(c.maxRef, abs(b))
    }
    return c
}

