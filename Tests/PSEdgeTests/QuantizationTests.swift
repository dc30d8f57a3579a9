import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeONNX
import PSEdgePasses
import PSEdgeRuntime
import XCTest

/// int8 quantization bounds: int8 output vs fp32 output on held-out inputs the calibration never saw.
final class QuantizationTests: XCTestCase {
    /// Reads <dir>/<split>/sample_NNN/<input>.npy (tools/make_calibration.py).
    func samples(_ model: String, _ split: String) throws -> [[String: Tensor]] {
        let dir = try Fixtures.generatedDir("calibration/\(model)/\(split)")
        return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("sample_") }.sorted().map {
            try ModelCase(dir: dir.appendingPathComponent($0)).npyFiles(".")
        }
    }

    func staticGraph(_ path: String) throws -> Graph {
        var r = PassReport()
        return try StaticShapes.run(try ONNXImporter.load(path: path), report: &r)
    }

    /// Cosine and relative error of the quantized graph's outputs against the fp32 graph's, over `inputs`.
    func fidelity(_ fp32: Graph, _ q: Graph, _ inputs: [[String: Tensor]]) throws -> Fidelity.Accumulator {
        let a = try Plan(graph: fp32, threads: 2), b = try Plan(graph: q, threads: 2)
        var acc = Fidelity.Accumulator()
        for s in inputs {
            let ra = try a.run(s), rb = try b.run(s)
            for o in fp32.outputs { acc.add(reference: ra[o.name]!, rb[o.name]!) }
        }
        return acc
    }

    func quantize(_ g: Graph, _ calib: [[String: Tensor]], configure: (inout QuantizationOptions) -> Void = { _ in }) throws -> (Graph, QuantizationReport) {
        var o = QuantizationOptions()
        o.calibration = calib
        o.threads = 2
        configure(&o)
        var r = PassReport()
        return try Quantizer.run(g, options: o, report: &r)
    }

    func testMiniUNetInt8HeldOutCosineBound() throws {
        let g = try staticGraph(Fixtures.path("models/unet_sd21_mini/model.onnx"))
        let (q, report) = try quantize(g, try samples("unet_sd21_mini", "calib"))
        let f = try fidelity(g, q, try samples("unet_sd21_mini", "heldout"))
        print("unet int8 held-out: cosine \(f.cosine), relative error \(f.relativeError); \(report.lines.last ?? "")")
        XCTAssertGreaterThanOrEqual(f.cosine, 0.995)
        XCTAssertEqual(report.layers.filter { $0.decision.hasPrefix("int8") }.count, report.layers.count, "no target: every layer int8")
        XCTAssertGreaterThan(report.layers.count, 250)
        XCTAssertTrue(q.nodes.contains { $0.opType == "QConv" } && q.nodes.contains { $0.opType == "QMatMul" })
    }

    /// The path `psedge convert` takes: static shapes, fusion (FusedConv/FusedMatMul/Attention…), then int8.
    func testOptimizedMiniUNetInt8HeldOutCosineBound() throws {
        var r = PassReport()
        let g = try Optimizer.run(try staticGraph(Fixtures.path("models/unet_sd21_mini/model.onnx")), report: &r)
        XCTAssertTrue(g.nodes.contains { $0.opType == "FusedMatMul" } && g.nodes.contains { $0.opType == "Attention" })
        let (q, report) = try quantize(g, try samples("unet_sd21_mini", "calib"))
        let f = try fidelity(g, q, try samples("unet_sd21_mini", "heldout"))
        print("optimized unet int8 held-out: cosine \(f.cosine), relative error \(f.relativeError)")
        XCTAssertGreaterThanOrEqual(f.cosine, 0.995)
        XCTAssertEqual(report.layers.count, 281, "every conv/linear layer, fused or not, is a candidate")
        XCTAssertFalse(q.nodes.contains { $0.opType == "FusedMatMul" || $0.opType == "FusedConv" })
        try checkPrepacking(q, sample: try samples("unet_sd21_mini", "heldout")[0])
    }

    /// Convert-time packing of QMatMul weights: bit-identical outputs, no unpacked copy left in the file, and the
    /// packed weights read straight from the file mapping after loading.
    func checkPrepacking(_ q: Graph, sample: [String: Tensor]) throws {
        var r = PassReport()
        let (packed, replaced) = try WeightPrepacking.run(q, report: &r)
        let qmm = packed.nodes.filter { $0.opType == "QMatMul" }
        let packedNodes = qmm.filter { $0.attributes["weight_layout"] != nil }
        print(r.lines.joined(separator: "; "))
        XCTAssertGreaterThan(packedNodes.count, 30)  // the UNet's 32-term products are weight-only by default
        XCTAssertEqual(packedNodes.count, qmm.filter { if case .string(let m)? = $0.attributes["mode"] { return m != "weight_only" }; return false }.count)
        XCTAssertEqual(replaced.count, Set(packedNodes.map { $0.inputs[1] }).count, "every packed weight replaces its row-major original")
        for name in replaced { XCTAssertNil(packed.initializers[name]) }

        let expected = try Plan(graph: q, threads: 2).run(sample)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("psedge-prepack-\(getpid()).psm").path
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try PSMWriter.write(packed, to: tmp)
        let model = try PSMModel.load(path: tmp, verifyTensorChecksums: true)
        let mapped = model.mappedBytes
        for node in model.graph.nodes where node.attributes["weight_layout"] != nil {
            let w = model.graph.initializers[node.inputs[1]]!
            let p = UnsafeRawPointer(w.raw)
            XCTAssertTrue(p >= mapped.baseAddress! && p + w.byteCount <= mapped.baseAddress! + mapped.count, "\(node.inputs[1]) is not file-backed")
        }
        for threads in [1, 2] {
            let got = try Plan(graph: model.graph, threads: threads).run(sample)
            for o in q.outputs {
                XCTAssertEqual(got[o.name]!.floats, expected[o.name]!.floats, "\(o.name) differs with packed weights (threads \(threads))")
            }
        }
    }

    func testResNet50Int8HeldOutCosineBoundAndSize() throws {
        let path = try Fixtures.generatedDir("resnet50").appendingPathComponent("model.onnx").path
        let g = try staticGraph(path)
        let (q, report) = try quantize(g, try samples("resnet50", "calib"))
        let f = try fidelity(g, q, try samples("resnet50", "heldout"))
        print("resnet50 int8 held-out: cosine \(f.cosine), relative error \(f.relativeError)")
        XCTAssertGreaterThanOrEqual(f.cosine, 0.999)

        let dir = FileManager.default.temporaryDirectory
        let a = dir.appendingPathComponent("r50-\(getpid()).psm").path, b = dir.appendingPathComponent("r50q-\(getpid()).psm").path
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        try PSMWriter.write(g, to: a)
        try PSMWriter.write(q, to: b)
        let sa = try FileManager.default.attributesOfItem(atPath: a)[.size] as! Int
        let sb = try FileManager.default.attributesOfItem(atPath: b)[.size] as! Int
        print("resnet50 .psm: fp32 \(sa) B, int8 \(sb) B, ratio \(Double(sb) / Double(sa))")
        XCTAssertLessThanOrEqual(Double(sb), 0.3 * Double(sa))
        // The quantized .psm runs the same and its weights are int8 in the file.
        let loaded = try PSMModel.load(path: b, verifyTensorChecksums: true)
        XCTAssertGreaterThan(loaded.graph.initializers.values.filter { $0.dtype == .int8 }.count, 50)
        XCTAssertEqual(report.weightScales.count, loaded.graph.initializers.values.filter { $0.dtype == .int8 }.count)

    }

    /// Optimized (residual adds fused into the convs) and quantized, each residual conv writes over its dying
    /// shortcut: a smaller arena, the same outputs bit for bit. Chained u8 activations change nothing either.
    func testResNet50Int8ResidualConvsRunInPlace() throws {
        var r = PassReport()
        let g = try Optimizer.run(try staticGraph(try Fixtures.generatedDir("resnet50").appendingPathComponent("model.onnx").path), report: &r)
        let (q, _) = try quantize(g, try samples("resnet50", "calib"))
        XCTAssertEqual(q.nodes.filter { $0.opType == "QConv" && $0.inputs.count > 4 && !$0.inputs[4].isEmpty }.count, 16)
        let sample = try samples("resnet50", "heldout")[0]
        let separate = try Plan(graph: q, threads: 2, inPlace: false), inPlace = try Plan(graph: q, threads: 2)
        print("resnet50 int8 arena: \(separate.arenaBytes) B, in place \(inPlace.arenaBytes) B")
        XCTAssertLessThan(Double(inPlace.arenaBytes), 0.8 * Double(separate.arenaBytes))
        let (x, y) = (try separate.run(sample), try inPlace.run(sample))
        for o in q.outputs { XCTAssertEqual(x[o.name]!.floats, y[o.name]!.floats, o.name) }

        // Chained: QConvs hand u8 activations on; the same outputs bit for bit, through a .psm too.
        var cr = PassReport()
        let chained = ActivationChaining.run(q, report: &cr)
        let producers = chained.nodes.filter { $0.outputs.count == 2 }
        XCTAssertGreaterThan(producers.count, 30, cr.lines.joined(separator: "\n"))
        XCTAssertGreaterThan(producers.filter { $0.outputs[0].isEmpty }.count, 30, "bottleneck-internal fp32 outputs dropped")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("r50chain-\(getpid()).psm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PSMWriter.write(chained, to: path)
        let loaded = try PSMModel.load(path: path, verifyTensorChecksums: true)
        for threads in [1, 2] {
            let plan = try Plan(graph: loaded.graph, threads: threads)
            XCTAssertLessThan(plan.arenaBytes, inPlace.arenaBytes)
            let z = try plan.run(sample)
            for o in q.outputs { XCTAssertEqual(z[o.name]!.floats, x[o.name]!.floats, "\(o.name) chained, \(threads) threads") }
        }
    }

    func testWeightOnlyIsNearLosslessAndDynamicNeedsNoCalibration() throws {
        let g = try staticGraph(Fixtures.path("models/unet_sd21_mini/model.onnx"))
        let heldout = try samples("unet_sd21_mini", "heldout")
        let (w, wr) = try quantize(g, []) { $0.scheme = .weightOnly }
        XCTAssertTrue(wr.layers.allSatisfy { $0.decision == "int8 weight-only" })
        let fw = try fidelity(g, w, heldout)
        XCTAssertGreaterThanOrEqual(fw.cosine, 0.9995, "weight-only int8")
        let (d, dr) = try quantize(g, []) { $0.weightOnlyMaxK = 0 }
        XCTAssertTrue(dr.layers.allSatisfy { $0.decision == "int8 dynamic" })
        XCTAssertGreaterThanOrEqual(try fidelity(g, d, heldout).cosine, 0.995, "dynamic int8")
    }

    /// Mixed precision: a target above what all-int8 reaches keeps the most sensitive layers float, and the
    /// measured cosine on the calibration data then meets it.
    func testTargetCosineKeepsSensitiveLayersFloat() throws {
        let g = try staticGraph(Fixtures.path("models/unet_sd21_mini/model.onnx"))
        let calib = Array(try samples("unet_sd21_mini", "calib").prefix(3))
        let (_, all) = try quantize(g, calib) { $0.measurementSamples = 1 }
        let target = 1 - (1 - all.cosine!) / 4   // a quarter of the all-int8 error
        let (q, r) = try quantize(g, calib) {
            $0.targetCosine = target
            $0.measurementSamples = 1
            $0.modelSensitivityLayers = 4
        }
        let kept = r.layers.filter { $0.decision == "float" }
        print("target \(target): kept \(kept.count) float: \(kept.map(\.name).prefix(6)), cosine \(r.cosine!)")
        XCTAssertFalse(kept.isEmpty)
        XCTAssertGreaterThanOrEqual(r.cosine!, target)
        XCTAssertEqual(r.layers.filter { $0.modelSQNR != nil }.count, 4)
        XCTAssertTrue(kept.allSatisfy { $0.reason.contains("sensitive") })
        XCTAssertEqual(q.nodes.filter { $0.domain == "psedge" }.count, r.layers.count - kept.count)
    }

    /// Products with a short reduction keep fp32 activations by default (int8 weights only); convolutions and
    /// longer products quantize their activations; weightOnlyMaxK = 0 quantizes everything.
    func testShortReductionsKeepFloatActivations() throws {
        let g = try staticGraph(Fixtures.path("models/unet_sd21_mini/model.onnx"))
        let calib = Array(try samples("unet_sd21_mini", "calib").prefix(2))
        let (q, r) = try quantize(g, calib) { $0.measurementSamples = 1 }
        let byName = Dictionary(q.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var weightOnly = 0
        for layer in r.layers {
            guard let node = byName[layer.name], let w = q.initializers[node.inputs[1]] else { continue }
            let shortProduct = node.opType == "QMatMul" && w.shape.count == 2 && w.shape[0] <= 64
            XCTAssertEqual(layer.decision == "int8 weight-only", shortProduct, "\(layer.name) \(node.opType) \(w.shape): \(layer.decision)")
            if shortProduct {
                weightOnly += 1
                XCTAssertEqual(node.attributes["mode"].flatMap { if case .string(let m) = $0 { m } else { nil } }, "weight_only")
                XCTAssertTrue(layer.reason.contains("K = \(w.shape[0])"), layer.reason)
            }
        }
        XCTAssertGreaterThan(weightOnly, 100)
        XCTAssertTrue(r.layers.contains { $0.decision.hasPrefix("int8 static") || $0.decision.hasPrefix("int8 dynamic") }, "convolutions keep u8 activations")
        XCTAssertGreaterThanOrEqual(try fidelity(g, q, try samples("unet_sd21_mini", "heldout")).cosine, 0.995)
        let (_, all) = try quantize(g, calib) { $0.measurementSamples = 1; $0.weightOnlyMaxK = 0 }
        XCTAssertFalse(all.layers.contains { $0.decision == "int8 weight-only" })
    }

    func testCalibrationMethodsDiffer() throws {
        let g = try staticGraph(Fixtures.path("models/unet_sd21_mini/model.onnx"))
        let calib = Array(try samples("unet_sd21_mini", "calib").prefix(2))
        var cos: [String: Double] = [:]
        for m in [CalibrationMethod.minMax, .percentile(99.9), .mse] {
            let (_, r) = try quantize(g, calib) { $0.method = m; $0.allowDynamic = false; $0.measurementSamples = 1; $0.weightOnlyMaxK = 0 }
            cos[m.name] = r.cosine
            XCTAssertTrue(r.layers.allSatisfy { $0.decision == "int8 static" })
        }
        print("static-only cosine by method: \(cos)")
        XCTAssertEqual(Set(cos.values).count, 3, "methods should choose different ranges")
        XCTAssertGreaterThan(cos["mse"]!, 0.99)
    }

    /// The quantized conv kernel on its own: static u8 activations × per-channel int8 weights vs fp32 Conv.
    func testQConvMatchesFloatConvWithinQuantizationError() throws {
        var rng = SystemRandomNumberGenerator()
        let x = Tensor((0..<(2 * 6 * 9 * 9)).map { _ in Float.random(in: -1...2, using: &rng) }, shape: [2, 6, 9, 9])
        let w = Tensor((0..<(8 * 3 * 3 * 3)).map { _ in Float.random(in: -0.5...0.5, using: &rng) }, shape: [8, 3, 3, 3])
        let b = Tensor((0..<8).map { Float($0) / 10 }, shape: [8])
        let conv = Node(name: "c", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
                        attributes: ["group": .int(2), "pads": .ints([1, 0, 1, 2]), "strides": .ints([2, 1])])
        let g = Graph(nodes: [conv], inputs: [ValueInfo(name: "x", type: TensorType(.float32, static: x.shape))],
                      outputs: [ValueInfo(name: "y", type: nil)], initializers: ["w": w, "b": b])
        var r = PassReport()
        let sg = try StaticShapes.run(g, report: &r)
        let (q, _) = try quantize(sg, [["x": x]]) { $0.method = .minMax; $0.allowDynamic = false }
        XCTAssertEqual(q.nodes.map(\.opType), ["QConv"])
        let f = try fidelity(sg, q, [["x": x]])
        XCTAssertGreaterThan(f.cosine, 0.9998)
        XCTAssertLessThan(f.relativeError, 0.02)
    }
}
