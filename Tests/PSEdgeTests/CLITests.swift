import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgePasses
import XCTest

/// The psedge command line as a user runs it: exit codes, messages, files written.
final class CLITests: CLITestCase {
    func testConvertInspectRunRoundTrip() throws {
        let psm = tmp.appendingPathComponent("tiny.psm").path
        let c = try psedge("convert", err("tiny_add.onnx"), "-o", psm, "--report")
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("converted"), c.stdout)
        let i = try psedge("inspect", psm, "--json")
        XCTAssertEqual(i.status, 0, i.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(json?["format"] as? String, "psm")
        XCTAssertEqual((json?["ops"] as? [String: Int])?["Add"], 1)
        let outDir = tmp.appendingPathComponent("out").path
        let r = try psedge("run", psm, "--input", "X=\(err("tiny_add_x.npy"))", "--output-dir", outDir, "--threads", "2")
        XCTAssertEqual(r.status, 0, r.stderr)
        let y = try NPY.read(path: outDir + "/Y.npy")
        let expected = try NPY.read(path: err("tiny_add_y.npy"))
        XCTAssertEqual(y.floats, expected.floats)
        // No temporary files are left beside the outputs.
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        XCTAssertEqual(Set(left), ["tiny.psm", "out"])
    }

    func testInspectSafetensorsListsTensors() throws {
        let r = try psedge("inspect", Fixtures.path("models/unet_sd21_mini/weights.safetensors"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("conv_in.weight"), String(r.stdout.prefix(500)))
    }

    func testMissingFile() throws {
        assertFails(try psedge("convert", tmp.appendingPathComponent("nope.onnx").path, "-o", tmp.appendingPathComponent("x.psm").path),
                    mentioning: ["nope.onnx"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.appendingPathComponent("x.psm").path))
    }

    func testTruncatedONNX() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("models/unet_sd21_mini/model.onnx")))
        let cut = tmp.appendingPathComponent("cut.onnx")
        try data.prefix(data.count / 2).write(to: cut)
        assertFails(try psedge("convert", cut.path, "-o", tmp.appendingPathComponent("cut.psm").path), mentioning: ["cut.onnx"])
    }

    func testTruncatedAndCorruptPSM() throws {
        let psm = tmp.appendingPathComponent("good.psm").path
        XCTAssertEqual(try psedge("convert", err("tiny_add.onnx"), "-o", psm).status, 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: psm))
        for cut in [4, 20, 60, data.count / 2, data.count - 1] {
            let bad = tmp.appendingPathComponent("trunc\(cut).psm")
            try data.prefix(cut).write(to: bad)
            assertFails(try psedge("inspect", bad.path), mentioning: ["trunc\(cut).psm"])
        }
        var wrongMagic = data
        wrongMagic[0] = UInt8(ascii: "X")
        let wm = tmp.appendingPathComponent("magic.psm")
        try wrongMagic.write(to: wm)
        assertFails(try psedge("inspect", wm.path), mentioning: ["magic.psm", "magic"])
    }

    func testUnknownOperatorNamesOpAndNode() throws {
        assertFails(try psedge("convert", err("unknown_op.onnx"), "-o", tmp.appendingPathComponent("u.psm").path),
                    mentioning: ["FrobnicateTensor", "frob1"])
    }

    func testGraphCycle() throws {
        assertFails(try psedge("convert", err("cycle.onnx"), "-o", tmp.appendingPathComponent("c.psm").path), mentioning: ["cycle"])
    }

    func testWrongInputShapeAndBadArguments() throws {
        let psm = tmp.appendingPathComponent("t.psm").path
        XCTAssertEqual(try psedge("convert", err("tiny_add.onnx"), "-o", psm).status, 0)
        let out = tmp.appendingPathComponent("o").path
        assertFails(try psedge("run", psm, "--input", "X=\(err("wrong_shape_x.npy"))", "--output-dir", out), mentioning: ["'X'", "[3,2]", "[2,3]"])
        assertFails(try psedge("run", psm, "--input", "Nope=\(err("tiny_add_x.npy"))", "--output-dir", out), mentioning: ["Nope"])
        assertFails(try psedge("run", psm, "--output-dir", out), mentioning: ["missing input 'X'"])
        assertFails(try psedge("run", psm, "--input", "X", "--output-dir", out), mentioning: ["--input"])
        assertFails(try psedge("run", psm, "--input", "X=\(err("tiny_add.onnx"))", "--output-dir", out), mentioning: ["tiny_add.onnx"])
    }

    // MARK: - convert --quantize

    func testQuantizeConvertReportAndRun() throws {
        let psm = tmp.appendingPathComponent("q.psm").path
        let r = try psedge("convert", err("tiny_conv.onnx"), "-o", psm, "--quantize", "int8",
                               "--calibration", err("tiny_conv_calib"), "--calibration-method", "minmax", "--report")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("2 of 2 layers int8"), r.stdout)
        XCTAssertTrue(r.stdout.contains("cosine"), r.stdout)
        let fp = tmp.appendingPathComponent("f.psm").path
        XCTAssertEqual(try psedge("convert", err("tiny_conv.onnx"), "-o", fp).status, 0)
        let out8 = tmp.appendingPathComponent("o8").path, out32 = tmp.appendingPathComponent("o32").path
        XCTAssertEqual(try psedge("run", psm, "--input", "X=\(err("tiny_conv_x.npy"))", "--output-dir", out8).status, 0)
        XCTAssertEqual(try psedge("run", fp, "--input", "X=\(err("tiny_conv_x.npy"))", "--output-dir", out32).status, 0)
        var acc = Fidelity.Accumulator()
        acc.add(reference: try NPY.read(path: out32 + "/Y.npy"), try NPY.read(path: out8 + "/Y.npy"))
        XCTAssertGreaterThan(acc.cosine, 0.999)
        let inspect = try psedge("inspect", psm)
        XCTAssertTrue(inspect.stdout.contains("QConv") && inspect.stdout.contains("QMatMul"), inspect.stdout)
    }

    func testQuantizeErrors() throws {
        let psm = tmp.appendingPathComponent("q.psm").path
        assertFails(try psedge("convert", err("tiny_conv.onnx"), "-o", psm, "--quantize", "int4"), mentioning: ["int4"])
        assertFails(try psedge("convert", err("tiny_conv.onnx"), "-o", psm, "--quantize", "int8", "--calibration", "/nonexistent/cal"),
                        mentioning: ["/nonexistent/cal"])
        assertFails(try psedge("convert", err("tiny_add.onnx"), "-o", psm, "--quantize", "int8", "--calibration", err("tiny_conv_calib")),
                        mentioning: ["X.npy"])
        assertFails(try psedge("convert", err("tiny_conv.onnx"), "-o", psm, "--quantize", "int8", "--calibration-method", "median"),
                        mentioning: ["median"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: psm))
    }

    // MARK: - bench

    func testBenchReportsJSONTimings() throws {
        let r = try psedge("bench", err("tiny_conv.onnx"), "--runs", "3", "--threads", "2", "--json", "--profile")
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let median = try XCTUnwrap(json["median_ms"] as? Double), p95 = try XCTUnwrap(json["p95_ms"] as? Double)
        XCTAssertGreaterThan(median, 0)
        XCTAssertGreaterThanOrEqual(p95, median)
        XCTAssertGreaterThan(try XCTUnwrap(json["peak_rss_mb"] as? Double), 1)
        // The .onnx is converted (and optimized) on the fly: the conv runs as Conv or psedge.FusedConv.
        XCTAssertTrue((json["per_op_ms"] as? [String: Double] ?? [:]).keys.contains { $0.hasSuffix("Conv") }, r.stdout)
        assertFails(try psedge("bench", err("tiny_conv.onnx"), "--runs", "0"), mentioning: ["--runs"])
    }
}
