import Foundation
import PSEdgeIR
import XCTest

/// Runs every generated ONNX backend node test case (tools/gen_conformance.py) of a supported op.
/// Cases listed in Tests/Fixtures/conformance-exclusions.txt are skipped, each with its reason there.
final class ConformanceTests: XCTestCase {
    struct Exclusion {
        let pattern: String
        let reason: String
        func matches(_ name: String) -> Bool {
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }

    static func exclusions() throws -> [Exclusion] {
        let text = try String(contentsOfFile: Fixtures.path("conformance-exclusions.txt"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            let l = line.trimmingCharacters(in: .whitespaces)
            if l.isEmpty || l.hasPrefix("#") { return nil }
            let parts = l.split(separator: " ", maxSplits: 1)
            return Exclusion(pattern: String(parts[0]), reason: parts.count > 1 ? String(parts[1]) : "")
        }
    }

    func testEverySupportedOpCasePasses() throws {
        let dir = try Fixtures.generatedDir("conformance")
        let index = try String(contentsOf: dir.appendingPathComponent("index.txt"), encoding: .utf8)
        let cases = index.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }.filter { $0.count == 2 }
        XCTAssertGreaterThan(cases.count, 300, "too few conformance cases generated")
        let exclusions = try Self.exclusions()
        for e in exclusions {
            XCTAssertFalse(e.reason.isEmpty, "exclusion \(e.pattern) has no reason")
            XCTAssertTrue(cases.contains { e.matches($0[0]) }, "exclusion \(e.pattern) matches no generated case (stale?)")
        }
        var failures: [String] = []
        var passed = 0, excluded = 0, unexpectedPasses: [String] = []
        for c in cases {
            let name = c[0]
            let isExcluded = exclusions.contains { $0.matches(name) }
            let result = runCase(dir.appendingPathComponent(name))
            if isExcluded {
                excluded += 1
                if result == nil { unexpectedPasses.append(name) }
                continue
            }
            if let r = result { failures.append("\(name) [\(c[1])]: \(r)") } else { passed += 1 }
        }
        print("conformance: \(passed) passed, \(failures.count) failed, \(excluded) excluded of \(cases.count); \(frozen.count) ran with inputs frozen to constants")
        if !unexpectedPasses.isEmpty { print("excluded but passing (consider removing the exclusion): \(unexpectedPasses.joined(separator: ", "))") }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) conformance cases failed:\n" + failures.joined(separator: "\n"))
    }

    /// Cases that had to freeze inputs to constants (see runCase).
    var frozen: [String] = []

    /// nil on success, else why the case failed. PSEdge plans static graphs, so an argument a kernel needs at
    /// plan time (Reshape's shape, Slice's starts, Squeeze's axes…) that a case feeds as a graph input is
    /// frozen to its value: first the integer inputs, then, if still needed, all of them (the case then runs
    /// entirely in the constant-folding pass, which executes the same kernels).
    func runCase(_ dir: URL) -> String? {
        let mc = ModelCase(dir: dir)
        let attempts: [(String, (Graph.Input) -> Bool)] = [
            ("none", { _ in false }),
            ("integer inputs", { !$0.value.dtype.isFloat }),
            ("all inputs", { _ in true }),
        ]
        var lastError = ""
        for (what, rule) in attempts {
            do {
                let (graph, outs, expected) = try mc.run(fix: rule)
                if what != "none" { frozen.append("\(dir.lastPathComponent) (\(what))") }
                return check(graph, outs, expected)
            } catch let e as PSEdgeError where e.message.contains("must be a constant") {
                lastError = "error: \(e)"
                continue
            } catch {
                return "error: \(error)"
            }
        }
        return lastError
    }

    func check(_ graph: Graph, _ outs: [String: Tensor], _ expected: [String: Tensor]) -> String? {
        for o in graph.outputs {
            guard let e = expected[o.name] else { return "no expected output for '\(o.name)'" }
            guard let a = outs[o.name] else { return "no output '\(o.name)'" }
            if let m = mismatch(a, e, rtol: 1e-3, atol: 1e-7) { return "output '\(o.name)': \(m)" }
        }
        return nil
    }
}
