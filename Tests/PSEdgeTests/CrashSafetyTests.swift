import Foundation
import PSEdgeFormat
import PSEdgeGallery
import XCTest

/// SIGKILL in the middle of `psedge index` and `psedge convert`: what was committed survives, nothing half-written
/// appears under the output name.
final class CrashSafetyTests: CLITestCase {
    /// Starts psedge, waits until `ready(stderr so far)` (or the process ends), then SIGKILLs it.
    func killMidway(_ args: [String], when ready: (String) -> Bool) throws {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var seen = ""
        let handle = err.fileHandleForReading
        while p.isRunning && !ready(seen) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    func testKilledIndexKeepsEveryCommittedImageAndResumes() throws {
        let images = Fixtures.path("synthetic_small/images")
        let gallery = tmp.appendingPathComponent("gallery").path
        try FileManager.default.createDirectory(atPath: gallery, withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: images).filter { $0.hasSuffix(".png") }.sorted().prefix(12)
        for n in names { try FileManager.default.copyItem(atPath: "\(images)/\(n)", toPath: "\(gallery)/\(n)") }
        let package = Fixtures.path("models/psdiff_package")
        let db = tmp.appendingPathComponent("killed.sqlite").path
        try killMidway(["index", "--model", package, gallery, "--db", db, "--quiet", "--report-every", "1"]) { $0.contains("images=4 ") }
        let store = try GalleryStore(path: db, create: false)
        let (committed, persons) = try store.counts()
        XCTAssertGreaterThanOrEqual(committed, 4)
        XCTAssertLessThan(committed, names.count, "the kill should land before the end")
        XCTAssertGreaterThan(persons, 0)
        // Resume, and compare with an uninterrupted run: same images, same detections.
        let resumed = try psedge("index", "--model", package, gallery, "--db", db, "--quiet")
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("\(committed) already indexed"), resumed.stdout)
        let clean = tmp.appendingPathComponent("clean.sqlite").path
        XCTAssertEqual(try psedge("index", "--model", package, gallery, "--db", clean, "--quiet").status, 0)
        let a = try GalleryStore(path: db, create: false).counts(), b = try GalleryStore(path: clean, create: false).counts()
        XCTAssertEqual(a.images, b.images)
        XCTAssertEqual(a.detections, b.detections)
    }

    func testKilledConvertLeavesNoPartialOutput() throws {
        let model = Fixtures.path("models/unet_sd21_mini/model.onnx")
        let out = tmp.appendingPathComponent("unet.psm").path
        var sawAbsent = false
        for delay in [0.05, 0.15, 0.3, 0.6] {
            try? FileManager.default.removeItem(atPath: out)
            let p = Process()
            p.executableURL = binary
            p.arguments = ["convert", model, "-o", out, "--quantize", "int8-weights"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: delay)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if FileManager.default.fileExists(atPath: out) {
                // Finished before the kill: then it is complete and verifies.
                XCTAssertNoThrow(try PSMModel.load(path: out, verifyTensorChecksums: true), "delay \(delay)")
            } else {
                sawAbsent = true
            }
        }
        XCTAssertTrue(sawAbsent, "at least one kill should land during the conversion")
        // A package conversion killed midway leaves the previous package intact.
        let pkg = tmp.appendingPathComponent("pk").path
        XCTAssertEqual(try psedge("convert", Fixtures.path("models/psdiff_package"), "-o", pkg).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: pkg + "/pipeline.json"))
        let p = Process()
        p.executableURL = binary
        p.arguments = ["convert", Fixtures.path("models/psdiff_package"), "-o", pkg, "--quantize", "int8", "--calibration", Fixtures.path("synthetic_small/images")]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 0.3)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let after = try Data(contentsOf: URL(fileURLWithPath: pkg + "/pipeline.json"))
        let spec = try JSONSerialization.jsonObject(with: after) as! [String: Any]
        if after != before { XCTAssertEqual(spec["precisions"] as? [String], ["fp32", "int8"], "replaced only by a complete package") }
        XCTAssertNoThrow(try PSMModel.load(path: pkg + "/head.psm", verifyTensorChecksums: true))
    }
}
