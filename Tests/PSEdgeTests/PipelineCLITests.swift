import Foundation
import PSEdgeGallery
import PSEdgeImage
import PSEdgePipeline
import XCTest

/// detect / index / search / eval --model / convert of a package, on the tiny test package (random weights: the
/// numbers are meaningless, the machinery and the error handling are what is checked).
final class PipelineCLITests: CLITestCase {
    let package = Fixtures.path("models/psdiff_package")
    let images = Fixtures.path("synthetic_small/images")

    func gallery(_ names: [String]) throws -> String {
        let dir = tmp.appendingPathComponent("gallery-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for n in names { try FileManager.default.copyItem(atPath: "\(images)/\(n)", toPath: "\(dir)/\(n)") }
        return dir
    }

    func testDetectIsReproducibleAndWritesJSON() throws {
        let a = try psedge("detect", "--model", package, "--steps", "2", "--json", "\(images)/s00018.png")
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try psedge("detect", "--model", package, "--steps", "2", "--json", "\(images)/s00018.png")
        let ja = try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as! [String: Any]
        let imgs = ja["images"] as! [[String: Any]]
        XCTAssertEqual(imgs[0]["width"] as? Int, 480)
        let dets = imgs[0]["detections"] as! [[String: Any]]
        XCTAssertFalse(dets.isEmpty)
        XCTAssertLessThanOrEqual(dets.count, 30, "max_detections of the package")
        for d in dets {
            let box = d["box"] as! [Double]
            XCTAssertTrue(box[0] >= 0 && box[2] <= 480 && box[1] >= 0 && box[3] <= 320 && box[0] < box[2] && box[1] < box[3], "\(box)")
            XCTAssertGreaterThanOrEqual(d["score"] as! Double, 0.05)
        }
        // Same seed, same output (timings aside).
        func stripTimes(_ s: String) -> String { s.split(separator: "\n").filter { !$0.contains("milliseconds") }.joined(separator: "\n") }
        XCTAssertEqual(stripTimes(a.stdout), stripTimes(b.stdout))
        let c = try psedge("detect", "--model", package, "--steps", "2", "--seed", "9", "--json", "\(images)/s00018.png")
        XCTAssertNotEqual(stripTimes(a.stdout), stripTimes(c.stdout), "another seed draws other noise")
    }

    func testIndexSearchAndResume() throws {
        let g = try gallery(["s00017.png", "s00018.png", "s00019.png"])
        let db = tmp.appendingPathComponent("g.sqlite").path
        let r = try psedge("index", "--model", package, g, "--db", db, "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("holds 3 images"), r.stdout)
        let again = try psedge("index", "--model", package, g, "--db", db, "--quiet")
        XCTAssertTrue(again.stdout.contains("indexed 0 new images, 3 already indexed"), again.stdout)
        let s = try psedge("search", "--model", package, "--db", db, "--query", "\(g)/s00018.png", "--box", "381,106,436,235",
                           "--top", "4", "--json", "--annotate", tmp.appendingPathComponent("res").path)
        XCTAssertEqual(s.status, 0, s.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as! [String: Any]
        let hits = j["hits"] as! [[String: Any]]
        XCTAssertEqual(hits.count, 4)
        let sims = hits.map { $0["similarity"] as! Double }
        XCTAssertEqual(sims, sims.sorted(by: >))
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp.appendingPathComponent("res/rank01.png").path))
        XCTAssertNoThrow(try ImageCodec.read(path: tmp.appendingPathComponent("res/query.png").path))
        // Another step count is another index: refused rather than mixed.
        assertFails(try psedge("index", "--model", package, "--steps", "2", g, "--db", db), mentioning: ["steps = 1", db])
    }

    func testFailedIndexLeavesConsistentDatabase() throws {
        let g = try gallery(["s00017.png", "s00018.png"])
        // A corrupt image sorts after the good ones: the run stops there, the good ones stay committed.
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]).write(to: URL(fileURLWithPath: "\(g)/s99999.png"))
        let db = tmp.appendingPathComponent("g.sqlite").path
        assertFails(try psedge("index", "--model", package, g, "--db", db, "--quiet"), mentioning: ["s99999.png"])
        let store = try GalleryStore(path: db, create: false)
        XCTAssertEqual(try store.counts().images, 2)
        let skip = try psedge("index", "--model", package, g, "--db", db, "--quiet", "--skip-bad")
        XCTAssertEqual(skip.status, 0, skip.stderr)
        XCTAssertTrue(skip.stdout.contains("1 unreadable skipped"), skip.stdout)
    }

    func testBadInputsGiveClearErrors() throws {
        let db = tmp.appendingPathComponent("g.sqlite").path
        let empty = tmp.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        assertFails(try psedge("index", "--model", package, empty, "--db", db), mentioning: ["has no images", empty])
        assertFails(try psedge("detect", "--model", package, "/nonexistent.png"), mentioning: ["/nonexistent.png", "does not exist"])
        let corrupt = tmp.appendingPathComponent("bad.jpg").path
        try Data([0xFF, 0xD8, 0xFF, 0x00, 0x01]).write(to: URL(fileURLWithPath: corrupt))
        assertFails(try psedge("detect", "--model", package, corrupt), mentioning: ["bad.jpg"])
        assertFails(try psedge("detect", "--model", tmp.path, "\(images)/s00018.png"), mentioning: ["no pipeline.json"])
        let g = try gallery(["s00017.png"])
        XCTAssertEqual(try psedge("index", "--model", package, g, "--db", db, "--quiet").status, 0)
        assertFails(try psedge("search", "--model", package, "--db", db, "--query", "\(images)/s00018.png", "--box", "400,100,500,200"),
                    mentioning: ["outside", "480x320"])
        assertFails(try psedge("search", "--model", package, "--db", db, "--query", "\(images)/s00018.png", "--box", "50,50,40,60"),
                    mentioning: ["empty"])
        assertFails(try psedge("search", "--model", package, "--db", db, "--query", "\(images)/s00018.png", "--box", "1,2,3"),
                    mentioning: ["x1,y1,x2,y2"])
        assertFails(try psedge("search", "--model", package, "--db", tmp.appendingPathComponent("none.sqlite").path,
                               "--query", "\(images)/s00018.png", "--box", "1,2,30,40"), mentioning: ["none.sqlite", "does not exist"])
        // An empty database (created, nothing indexed).
        let emptyDB = tmp.appendingPathComponent("empty.sqlite").path
        _ = try GalleryStore(path: emptyDB)
        assertFails(try psedge("search", "--model", package, "--db", emptyDB, "--query", "\(images)/s00018.png", "--box", "1,2,30,40"),
                    mentioning: ["empty"])
        let notDB = tmp.appendingPathComponent("not.sqlite").path
        try Data("hello, not sqlite".utf8).write(to: URL(fileURLWithPath: notDB))
        assertFails(try psedge("search", "--model", package, "--db", notDB, "--query", "\(images)/s00018.png", "--box", "1,2,30,40"),
                    mentioning: ["not.sqlite"])
    }

    /// A package whose head lacks an output the pipeline needs, and one that names a missing graph file.
    func testModelWithoutNeededOutputs() throws {
        let dir = tmp.appendingPathComponent("broken").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var spec = try String(contentsOfFile: "\(package)/pipeline.json", encoding: .utf8)
        spec = spec.replacingOccurrences(of: "\"backbone.onnx\"", with: "\"\(package)/backbone.onnx\"")
            .replacingOccurrences(of: "\"../psdiff_small/", with: "\"\(Fixtures.path("models/psdiff_small"))/")
        try spec.replacingOccurrences(of: "\"pred_emb\"", with: "\"reid_out\"").write(toFile: "\(dir)/pipeline.json", atomically: true, encoding: .utf8)
        assertFails(try psedge("detect", "--model", dir, "\(images)/s00018.png"), mentioning: ["head", "no output 'reid_out'"])
        try spec.replacingOccurrences(of: "\(package)/backbone.onnx", with: "missing.onnx").write(toFile: "\(dir)/pipeline.json", atomically: true, encoding: .utf8)
        assertFails(try psedge("detect", "--model", dir, "\(images)/s00018.png"), mentioning: ["missing.onnx"])
        assertFails(try psedge("detect", "--model", package, "--precision", "int8", "\(images)/s00018.png"), mentioning: ["no int8"])
    }

    /// convert → .psm parts (fp32 + int8), then eval --model over a 6-image manifest writes its three files.
    func testConvertPackageAndEvalWritesResults() throws {
        let out = tmp.appendingPathComponent("pk").path
        let g = try gallery(["s00017.png", "s00018.png"])
        let c = try psedge("convert", package, "-o", out, "--quantize", "int8", "--calibration", g)
        XCTAssertEqual(c.status, 0, c.stderr)
        for f in ["pipeline.json", "backbone.psm", "head.psm", "backbone.int8.psm", "head.int8.psm", "schedule.npy"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(f)"), f)
        }
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: tmp.path).contains { $0.contains(".tmp-") })
        // fp32 .psm package detects exactly what the ONNX package does.
        let a = try psedge("detect", "--model", package, "--json", "\(images)/s00018.png")
        let b = try psedge("detect", "--model", out, "--json", "\(images)/s00018.png")
        func boxes(_ s: String) -> [[Double]] {
            let j = try! JSONSerialization.jsonObject(with: Data(s.utf8)) as! [String: Any]
            return ((j["images"] as! [[String: Any]])[0]["detections"] as! [[String: Any]]).map { $0["box"] as! [Double] }
        }
        XCTAssertEqual(boxes(a.stdout), boxes(b.stdout))
        let manifest = tmp.appendingPathComponent("m")
        try FileManager.default.createDirectory(at: manifest, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: manifest.appendingPathComponent("images").path, withDestinationPath: images)
        try FileManager.default.copyItem(atPath: Fixtures.path("synthetic_small/test.json"), toPath: manifest.appendingPathComponent("test.json").path)
        let e = try psedge("eval", "--model", out, "--manifest", manifest.appendingPathComponent("test.json").path, "--steps", "1,2",
                           "--precision", "fp32,int8", "--out", tmp.appendingPathComponent("eval").path)
        XCTAssertEqual(e.status, 0, e.stderr)
        let rows = try JSONSerialization.jsonObject(with: Data(contentsOf: tmp.appendingPathComponent("eval/results.json"))) as! [[String: Any]]
        XCTAssertEqual(rows.count, 4)
        XCTAssertEqual(Set(rows.map { "\($0["precision"]!)/\($0["steps"]!)" }), ["fp32/1", "fp32/2", "int8/1", "int8/2"])
        for r in rows { XCTAssertGreaterThan(r["latency_p50_ms"] as! Double, 0); XCTAssertGreaterThan(r["peak_rss_mb"] as! Double, 0) }
        let plot = try ImageCodec.read(path: tmp.appendingPathComponent("eval/speed_accuracy.png").path)
        XCTAssertEqual(plot.width, 1440)
    }
}
