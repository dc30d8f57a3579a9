import Foundation
import XCTest

/// int8 against fp32 on the synthetic small preset, end to end through the CLI: the default model converted with
/// int8 parts (calibrated on the preset's *train* images), then `psedge eval --model` at 1, 2, 4, 8 steps.
/// int8 must lose at most 0.5 mAP points at every step count.
///
/// Searched gallery detections are those scoring ≥ 0.2 instead of the protocol's 0.5: the shipped model's focal
/// scores rarely reach 0.5 (docs/DEFAULT_MODEL.md), so at 0.5 both precisions score mAP 0 and the bound would say
/// nothing. Detection AP (all detections ≥ 0.01) is bounded to 5 points: the small preset has 24 images and ~60
/// persons, so one box more or less moves it by ~2 points (on the 1,200-image benchmark preset int8 loses ≤ 1 point,
/// BENCHMARKS.md).
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
                           "--threads", "2", "--search-score-threshold", "0.2", "--json")
        XCTAssertEqual(e.status, 0, e.stderr)
        let rows = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(rows.count, 8)
        for steps in [1, 2, 4, 8] {
            func metric(_ p: String, _ key: String) -> Double {
                rows.first { $0["precision"] as? String == p && $0["steps"] as? Int == steps }?[key] as? Double ?? -1
            }
            let fp32 = metric("fp32", "mAP"), int8 = metric("int8", "mAP")
            let det32 = metric("fp32", "det_ap"), det8 = metric("int8", "det_ap")
            print(String(format: "default model, %d steps: mAP fp32 %.2f, int8 %.2f; detection AP fp32 %.2f, int8 %.2f",
                         steps, fp32 * 100, int8 * 100, det32 * 100, det8 * 100))
            XCTAssertGreaterThanOrEqual(det32, Self.fp32DetectionFloor, "the model should find people (fp32 detection AP at \(steps) steps)")
            XCTAssertLessThanOrEqual(fp32 - int8, 0.005, "int8 loses \((fp32 - int8) * 100) mAP points at \(steps) steps")
            XCTAssertLessThanOrEqual(det32 - det8, 0.05, "int8 loses \((det32 - det8) * 100) detection AP points at \(steps) steps")
        }
    }

    /// fp32 detection AP the shipped model reaches on the small preset at every step count (measured 21–38 %), with
    /// margin: a check that the comparison is not between two broken models.
    static let fp32DetectionFloor = 0.10
}
