import Foundation
import PSEdgeEval
import PSEdgeIR
import XCTest

/// `psedge eval`'s protocol against the independent Python scorer (tools/ps_eval.py: numpy +
/// sklearn.metrics.average_precision_score) on randomized cases written by tools/gen_eval_cases.py
/// (Tests/Fixtures/generated/eval/<case>/{manifest,detections,expected}.json): every flag combination in
/// expected.json must agree to 1e-6.
final class EvalAgreementTests: XCTestCase {
    static let tolerance = 1e-6
    static let keys = ["mAP", "top1", "top5", "top10", "det_ap", "det_recall"]

    func testAgreesWithIndependentPythonScorer() throws {
        let root = try Fixtures.generatedDir("eval")
        let cases = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted().filter {
            FileManager.default.fileExists(atPath: root.appendingPathComponent($0).appendingPathComponent("expected.json").path)
        }
        guard !cases.isEmpty else {
            XCTFail("no cases under \(root.path): run `bash tools/make_fixtures.sh`")
            return
        }
        var runs = 0
        var worst = 0.0
        var worstWhere = ""
        for name in cases {
            let dir = root.appendingPathComponent(name)
            let m = try Manifest.load(path: dir.appendingPathComponent("manifest.json").path)
            let d = try Detections.load(path: dir.appendingPathComponent("detections.json").path, manifest: m)
            let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as? [String: Any]
            guard let list = expected?["runs"] as? [[String: Any]], !list.isEmpty else {
                XCTFail("\(name)/expected.json: no runs")
                continue
            }
            for run in list {
                let flags = run["flags"] as? [String: Any] ?? [:]
                let options = EvalOptions(gallerySize: flags["gallery_size"] as? Int,
                                          crossCamera: flags["cross_camera"] as? Bool ?? false,
                                          iouFixed: flags["iou_fixed"] as? Bool ?? false)
                let want = run["result"] as? [String: Double] ?? [:]
                let r = try PersonSearchEval.evaluate(manifest: m, detections: d, options: options)
                let got = ["mAP": r.mAP, "top1": r.top1, "top5": r.top5, "top10": r.top10, "det_ap": r.detAP, "det_recall": r.detRecall]
                for k in Self.keys {
                    guard let w = want[k] else { XCTFail("\(name): expected.json lacks \(k)"); continue }
                    let diff = abs(got[k]! - w)
                    if diff > worst { worst = diff; worstWhere = "\(name) \(flags) \(k): \(got[k]!) vs \(w)" }
                    XCTAssertLessThanOrEqual(diff, Self.tolerance, "\(name) \(flags) \(k): psedge \(got[k]!) vs Python \(w)")
                }
                runs += 1
            }
        }
        print("eval agreement: \(cases.count) cases, \(runs) runs, max |diff| \(worst) \(worstWhere)")
    }
}
