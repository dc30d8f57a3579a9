import Foundation
import XCTest

/// int8 against fp32 on the synthetic small preset, end to end through the CLI: the default model converted with
/// int8 parts (calibrated on the preset's *train* images), then `psedge eval --model` at 1, 2, 4, 8 steps.
/// int8 must lose at most 0.5 mAP points at every step count.
final class DefaultModelInt8Tests: CLITestCase {
    func testInt8LosesAtMostHalfAMapPointAtEveryStepCount() throws {
        let model = ProcessInfo.processInfo.environment["PSEDGE_DEFAULT_MODEL"] ?? Fixtures.repo.appendingPathComponent("Models/default").path
        let preset = Fixtures.path("synthetic_small")
        // Calibration images: the train split only (the test split is what is measured).
        let calib = tmp.appendingPathComponent("calib").path
        try FileManager.default.createDirectory(atPath: calib, withIntermediateDirectories: true)
        let train = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: preset + "/train.json"))) as! [String: Any]
        for im in train["images"] as! [[String: Any]] {
            let rel = im["path"] as! String
            try FileManager.default.createSymbolicLink(atPath: "\(calib)/\((rel as NSString).lastPathComponent)", withDestinationPath: "\(preset)/\(rel)")
        }
        let package = tmp.appendingPathComponent("default.psedge").path
        let c = try psedge("convert", model, "-o", package, "--quantize", "int8", "--calibration", calib, "--threads", "2")
        XCTAssertEqual(c.status, 0, c.stderr)
        let e = try psedge("eval", "--model", package, "--manifest", preset + "/test.json", "--steps", "1,2,4,8", "--precision", "fp32,int8",
                           "--threads", "2", "--json")
        XCTAssertEqual(e.status, 0, e.stderr)
        let rows = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(rows.count, 8)
        for steps in [1, 2, 4, 8] {
            func map(_ p: String) -> Double {
                rows.first { $0["precision"] as? String == p && $0["steps"] as? Int == steps }?["mAP"] as? Double ?? -1
            }
            let fp32 = map("fp32"), int8 = map("int8")
            print(String(format: "default model, %d steps: mAP fp32 %.2f, int8 %.2f", steps, fp32 * 100, int8 * 100))
            XCTAssertGreaterThanOrEqual(fp32, Self.fp32Floor, "the model should find people (fp32 mAP at \(steps) steps)")
            XCTAssertLessThanOrEqual(fp32 - int8, 0.005, "int8 loses \((fp32 - int8) * 100) mAP points at \(steps) steps")
        }
    }

    /// fp32 mAP the shipped model reaches on the small preset at every step count, with margin (a check that the
    /// comparison is not between two broken models).
    static let fp32Floor = 0.30
}
