import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeModels
import PSEdgeONNX
import PSEdgePasses
import PSEdgeRuntime
import XCTest

/// A person-search parity fixture (Tests/Fixtures/models/{psdiff_small,diffps_small}): config.json lists, per ONNX
/// part, the .npy files of its inputs and of the PyTorch reference outputs, and the tolerance.
struct HeadFixture {
    let dir: URL
    let json: [String: Any]

    init(_ name: String) throws {
        dir = Fixtures.root.appendingPathComponent("models/\(name)")
        json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
    }

    var configPath: String { dir.appendingPathComponent("config.json").path }
    var weightsPath: String { dir.appendingPathComponent("weights.safetensors").path }
    var rtol: Double { (json["tolerance"] as! [String: Double])["rtol"]! }
    var atol: Double { (json["tolerance"] as! [String: Double])["atol"]! }

    func npy(_ rel: String) throws -> Tensor { try NPY.read(path: dir.appendingPathComponent(rel).path) }

    func part(_ name: String) -> [String: Any] { (json["onnx_parts"] as! [String: Any])[name] as! [String: Any] }

    /// The part's input tensors and its torch reference outputs, by graph name.
    func files(_ part: String, _ kind: String) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, file) in self.part(part)[kind] as! [String: String] { out[name] = try npy(file) }
        return out
    }

    /// The part's ONNX export imported and run by PSEdge on `feeds`.
    func runONNX(_ part: String, _ feeds: [String: Tensor]) throws -> [String: Tensor] {
        let raw = try ONNXImporter.load(path: dir.appendingPathComponent(self.part(part)["model"] as! String).path)
        var options = StaticShapes.Options()
        for (k, v) in feeds { options.inputShapes[k] = v.shape }
        var report = PassReport()
        return try Plan(graph: try StaticShapes.run(raw, options: options, report: &report), threads: 2).run(feeds)
    }
}

extension XCTestCase {
    /// Checks `outputs` against `expected` element-wise (|a - b| <= atol + rtol |b|) and returns the worst
    /// relative-to-max error, printing both measures.
    @discardableResult
    func checkOutputs(_ outputs: [String: Tensor], _ expected: [String: Tensor], rtol: Double, atol: Double, _ what: String,
               file: StaticString = #filePath, line: UInt = #line) -> Double {
        var worst = 0.0
        for (name, ref) in expected.sorted(by: { $0.key < $1.key }) {
            guard let got = outputs[name] else { XCTFail("\(what): no output \(name)", file: file, line: line); continue }
            let c = compare(got, ref)
            print("\(what) \(name): max abs \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
            worst = max(worst, c.relativeToMax)
            if let m = mismatch(got, ref, rtol: rtol, atol: atol) { XCTFail("\(what) \(name): \(m)", file: file, line: line) }
        }
        return worst
    }

    /// Static shapes + folding, then one run.
    func runBuilt(_ graph: Graph, _ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try ModelBuilderTests.run(graph, inputs)
    }

    /// Expects a PSEdgeError whose message contains every fragment.
    func assertHeadError(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        do {
            _ = try body()
            XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
        } catch let e as PSEdgeError {
            for f in fragments { XCTAssertTrue(e.message.contains(f), "'\(e.message)' should mention '\(f)'", file: file, line: line) }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}
