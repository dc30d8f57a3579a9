import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeONNX
import PSEdgePasses
import PSEdgeRuntime
import XCTest

/// Real exported models against references computed by independent code (ONNX Runtime, the onnx package).
final class RealModelTests: XCTestCase {
    /// The "light" models shipped inside the onnx package, with the runner's inputs and tolerances.
    func testOnnxLightModelsMatchExpectedOutputs() throws {
        let dir = try Fixtures.generatedDir("light")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertEqual(names.count, 9, "expected the 9 light models, found \(names)")
        for name in names {
            let mc = ModelCase(dir: dir.appendingPathComponent(name))
            let (graph, outs, expected) = try mc.run()
            for o in graph.outputs {
                let e = try XCTUnwrap(expected[o.name], "\(name): expected output missing")
                let rtol = name.contains("densenet") ? 2e-3 : 1e-3
                XCTAssertNil(mismatch(outs[o.name]!, e, rtol: rtol, atol: 1e-7), "\(name) output \(o.name)")
            }
        }
    }

    /// diffusers UNet2DConditionModel with the SD-2.1-base block structure, exported by torch.onnx, vs ONNX Runtime.
    func testMiniSD21UNetMatchesOnnxRuntime() throws {
        let mc = ModelCase(dir: Fixtures.root.appendingPathComponent("models/unet_sd21_mini"))
        let (_, outs, expected) = try mc.run(threads: 2)
        let c = compare(outs["out_sample"]!, expected["out_sample"]!)
        print("unet: max abs error \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
    }

    /// torchvision ResNet-50 (seeded weights, external data) vs ONNX Runtime.
    func testTorchvisionResNet50MatchesOnnxRuntime() throws {
        let dir = try Fixtures.generatedDir("resnet50")
        let (_, outs, expected) = try ModelCase(dir: dir).run(threads: 2)
        let c = compare(outs["logits"]!, expected["logits"]!)
        print("resnet50: max abs error \(c.maxAbs), max |ref| \(c.maxRef), relative \(c.relativeToMax)")
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
    }

    /// What `psedge convert` does to an fp32 model (fusions, then Winograd 3×3 convolutions) keeps both models
    /// within the same bound of ONNX Runtime's outputs.
    func testOptimizedWinogradModelsMatchOnnxRuntime() throws {
        func optimized(_ g: Graph) throws -> Graph {
            var report = PassReport()
            let o = WinogradConvolution.run(try Optimizer.run(g, report: &report), report: &report)
            XCTAssertGreaterThan(o.nodes.filter { $0.opType == "WinogradConv" }.count, 10, "\(report.lines)")
            return o
        }
        let resnet = try ModelCase(dir: try Fixtures.generatedDir("resnet50")).run(threads: 2, transform: optimized)
        let r = compare(resnet.outputs["logits"]!, resnet.expected["logits"]!)
        print("resnet50 optimized: max abs error \(r.maxAbs), max |ref| \(r.maxRef), relative \(r.relativeToMax)")
        XCTAssertLessThanOrEqual(r.relativeToMax, 1e-4, r.worst)
        let unet = try ModelCase(dir: Fixtures.root.appendingPathComponent("models/unet_sd21_mini")).run(threads: 2, transform: optimized)
        let u = compare(unet.outputs["out_sample"]!, unet.expected["out_sample"]!)
        print("unet optimized: max abs error \(u.maxAbs), max |ref| \(u.maxRef), relative \(u.relativeToMax)")
        XCTAssertLessThanOrEqual(u.relativeToMax, 1e-4, u.worst)
    }

    /// The whole path a user takes: convert to .psm, load it (mmap), run, same numbers.
    func testUNetThroughPSMRoundTrip() throws {
        let dir = Fixtures.root.appendingPathComponent("models/unet_sd21_mini")
        var report = PassReport()
        let g = try StaticShapes.run(try ONNXImporter.load(path: dir.appendingPathComponent("model.onnx").path), report: &report)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("unet-\(getpid()).psm").path
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try PSMWriter.write(g, to: tmp)
        let model = try PSMModel.load(path: tmp, verifyTensorChecksums: true)
        let inputs = try ModelCase(dir: dir).npyFiles("inputs")
        let out = try Plan(graph: model.graph, threads: 1).run(inputs)["out_sample"]!
        let c = compare(out, try NPY.read(path: dir.appendingPathComponent("outputs/out_sample.npy").path))
        XCTAssertLessThanOrEqual(c.relativeToMax, 1e-4, c.worst)
        XCTAssertTrue(report.lines.contains { $0.contains("constant-folding") }, "shape subgraphs should fold: \(report.lines)")
    }
}
