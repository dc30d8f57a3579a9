import Foundation
import PSEdgeEval
import PSEdgeIR
import XCTest

/// The person-search protocol on cases small enough to score by hand (arithmetic in the comments), the
/// sklearn average_precision_score semantics, and malformed inputs (each error names the entry).
final class EvalProtocolTests: XCTestCase {
    // MARK: helpers

    func load(_ manifest: String, _ detections: String) throws -> (Manifest, Detections) {
        let m = try Manifest.decode(Array(manifest.utf8), source: "manifest.json")
        let d = try Detections.decode(Array(detections.utf8), source: "detections.json", manifest: m)
        return (m, d)
    }

    func score(_ m: Manifest, _ d: Detections, _ o: EvalOptions = .init()) throws -> EvalResult {
        try PersonSearchEval.evaluate(manifest: m, detections: d, options: o)
    }

    func assertResult(_ r: EvalResult, mAP: Double, top1: Double, top5: Double, top10: Double,
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.mAP, mAP, accuracy: 1e-12, "mAP", file: file, line: line)
        XCTAssertEqual(r.top1, top1, accuracy: 1e-12, "top-1", file: file, line: line)
        XCTAssertEqual(r.top5, top5, accuracy: 1e-12, "top-5", file: file, line: line)
        XCTAssertEqual(r.top10, top10, accuracy: 1e-12, "top-10", file: file, line: line)
    }

    // MARK: hand-worked cases

    /// Tests/Fixtures/eval/example_cuhk (also the example in docs/EVALUATION.md). One CUHK-style query,
    /// pid 7, query embedding [1, 0]; listed gallery g1, g2, g3, g4. Embeddings [10, k] have similarity
    /// 10/sqrt(100+k²) with the query, so k ranks them: k=1 (B) > k=2 (C) > k=3 (D) > k=4 (A).
    ///
    ///   g1: pid 7 at [10,10,50,110] (w 40, h 100: threshold min(0.5, 4000/(50·110)=0.73) = 0.5).
    ///       A = the exact box (IoU 1), k=4; B = the unlabeled person's box (IoU 0 with pid 7), k=1.
    ///       → A is the true positive of g1.
    ///   g2: pid 7 at [0,0,10,20], tiny: threshold min(0.5, 200/(20·30)) = 1/3.
    ///       C = [0,0,10,8]: inter 80, union 200 → IoU 0.4 ≥ 1/3 → true positive (k=2).
    ///   g3: pid 7, its only detection scores 0.3 < 0.5 → not searched; the image still counts in count_gt.
    ///   g4: no pid 7; D (k=3) is a negative.
    ///   count_gt = 3 (g1, g2, g3), count_tp = 2.
    ///   Ranking B(0) C(1) D(0) A(1). sklearn AP over distinct thresholds:
    ///     B: tp 0;  C: tp 1, n 2 → P 1/2, ΔR 1/2;  D: no new tp;  A: tp 2, n 4 → P 1/2, ΔR 1/2
    ///     AP = 1/2·1/2 + 1/2·1/2 = 1/2; recall correction × 2/3 → mAP = 1/3.
    ///   top-1: B is negative → 0; top-5, top-10: C is 2nd → 1.
    /// With --iou-fixed (DiffPS): C's IoU 0.4 < 0.5 → g2 has no true positive; count_tp = 1.
    ///   Ranking B(0) C(0) D(0) A(1): AP = 1 · 1/4 = 1/4; × 1/3 → mAP = 1/12; top-1 0, top-5 1.
    /// Detection (score ≥ 0.01, IoU 0.5, all 6 persons incl. the query image's and the unlabeled ones):
    ///   B 0.95 ✓ (unlabeled person, IoU 1), A 0.9 ✓, D 0.8 ✓, C 0.6 ✗ (IoU 0.4), g3's 0.3 ✓ → tp 4, gt 6.
    ///   AP = 1/4·(1 + 1 + 1 + 4/5) = 0.95; det_ap = 0.95 · 4/6 = 0.6333…, det_recall = 2/3.
    func testHandWorkedCUHKListedGallery() throws {
        let m = try Manifest.load(path: Fixtures.path("eval/example_cuhk/manifest.json"))
        let d = try Detections.load(path: Fixtures.path("eval/example_cuhk/detections.json"), manifest: m)
        let r = try score(m, d)
        assertResult(r, mAP: 1.0 / 3, top1: 0, top5: 1, top10: 1)
        XCTAssertEqual(r.detAP, 0.95 * 4 / 6, accuracy: 1e-12)
        XCTAssertEqual(r.detRecall, 4.0 / 6, accuracy: 1e-12)

        let f = try score(m, d, EvalOptions(iouFixed: true))
        assertResult(f, mAP: 1.0 / 12, top1: 0, top5: 1, top10: 1)
        XCTAssertEqual(f.detAP, r.detAP, "the fixed IoU only changes search")

        // --gallery-size 2 keeps g1, g2: count_gt 2, count_tp 2; ranking B(0) C(1) A(1):
        // AP = 1/2·1/2 + 1/2·2/3 = 7/12, × 2/2.
        assertResult(try score(m, d, EvalOptions(gallerySize: 2)), mAP: 7.0 / 12, top1: 0, top5: 1, top10: 1)
        // --gallery-size 1 keeps g1: ranking B(0) A(1): AP 1/2, × 1/1.
        assertResult(try score(m, d, EvalOptions(gallerySize: 1)), mAP: 0.5, top1: 0, top5: 1, top10: 1)
        // --gallery-size -1 adds nothing here (every image but the query's is listed).
        assertResult(try score(m, d, EvalOptions(gallerySize: -1)), mAP: 1.0 / 3, top1: 0, top5: 1, top10: 1)
    }

    /// PRW style: no listed galleries (the gallery is every other image), cameras, a tie, a query whose
    /// identity appears nowhere else. Query embedding [1, 0] for query 0.
    ///
    ///   a.jpg cam 1: query 0 (pid 3) and query 1 (pid 5, seen only here).
    ///   b.jpg cam 1: pid 3; E = exact box, embedding [1, 3].
    ///   c.jpg cam 2: pid 3; F = exact box, embedding [1, 1].
    ///   d.jpg cam 2: no pid 3; G = embedding [1, 1] as F → an exact tie with F.
    ///   Query 0, all cameras: gallery b, c, d; count_gt 2, TPs E and F.
    ///     Ranking {F(1), G(0)} tied, then E(1). Thresholds at distinct values:
    ///     F/G: tp 1, n 2 → P 1/2, ΔR 1/2;  E: tp 2, n 3 → P 2/3, ΔR 1/2.  AP = 1/4 + 1/3 = 7/12, × 2/2.
    ///     top-1: a negative ties with the best true positive; ties rank negatives first → miss. top-5 hit.
    ///   Query 1: no image but its own holds pid 5 → count_gt 0 → AP 0, misses (SeqNet would divide by zero).
    ///   mAP = (7/12 + 0)/2 = 7/24; top-1 0; top-5 = top-10 = 1/2.
    ///   Cross-camera (query cam 1): gallery c, d; count_gt 1; {F(1), G(0)}: AP = 1 · 1/2 = 1/2.
    ///     mAP = 1/4, top-1 0, top-5 1/2.
    func testHandWorkedPRWAllGalleryTiesCrossCamera() throws {
        let manifest = """
        {"protocol": "prw", "images": [
          {"name": "a.jpg", "camera": 1, "persons": [{"box": [0, 0, 50, 100], "pid": 3}, {"box": [60, 0, 110, 100], "pid": 5}]},
          {"name": "b.jpg", "camera": 1, "persons": [{"box": [0, 0, 50, 100], "pid": 3}]},
          {"name": "c.jpg", "camera": 2, "persons": [{"box": [100, 0, 150, 100], "pid": 3}]},
          {"name": "d.jpg", "camera": 2, "persons": []}],
         "queries": [{"image": "a.jpg", "box": [0, 0, 50, 100], "pid": 3},
                     {"image": "a.jpg", "box": [60, 0, 110, 100], "pid": 5}]}
        """
        let detections = """
        {"images": {
          "b.jpg": {"boxes": [[0, 0, 50, 100]], "scores": [0.9], "embeddings": [[1, 3]]},
          "c.jpg": {"boxes": [[100, 0, 150, 100]], "scores": [0.9], "embeddings": [[1, 1]]},
          "d.jpg": {"boxes": [[0, 0, 50, 100]], "scores": [0.9], "embeddings": [[1, 1]]}},
         "queries": [{"embedding": [1, 0]}, {"embedding": [0, 1]}]}
        """
        let (m, d) = try load(manifest, detections)
        let r = try score(m, d)
        assertResult(r, mAP: 7.0 / 24, top1: 0, top5: 0.5, top10: 0.5)
        XCTAssertEqual(r.queryAP[0], 7.0 / 12, accuracy: 1e-12)
        XCTAssertEqual(r.queriesWithoutGroundTruth, 1)
        assertResult(try score(m, d, EvalOptions(crossCamera: true)), mAP: 0.25, top1: 0, top5: 0.5, top10: 0.5)
        // Listed galleries are a CUHK-SYSU notion.
        XCTAssertThrowsError(try score(m, d, EvalOptions(gallerySize: 50))) { e in
            XCTAssertTrue("\(e)".contains("--gallery-size"), "\(e)")
        }
    }

    /// Full-set mode (--gallery-size -1): the listed gallery keeps its labels; every other image except the
    /// query's joins as all-negative, adding nothing to count_gt.
    ///   q.jpg: query pid 1. g.jpg (listed): pid 1, TP T embedding [1, 1]. x.jpg (not listed): N [1, 0.5].
    ///   Listed only: ranking T(1) → AP 1, top-1 1.
    ///   Full set: N is more similar than T: ranking N(0) T(1) → AP = 1 · 1/2 = 1/2 × 1/1; top-1 0, top-5 1.
    func testHandWorkedFullSet() throws {
        let manifest = """
        {"protocol": "cuhk-sysu", "images": [
          {"name": "q.jpg", "persons": [{"box": [0, 0, 20, 40], "pid": 1}]},
          {"name": "g.jpg", "persons": [{"box": [0, 0, 20, 40], "pid": 1}]},
          {"name": "x.jpg", "persons": [{"box": [0, 0, 20, 40], "pid": -1}]}],
         "queries": [{"image": "q.jpg", "box": [0, 0, 20, 40], "pid": 1, "gallery": ["g.jpg"]}]}
        """
        let detections = """
        {"images": {
          "g.jpg": {"boxes": [[0, 0, 20, 40]], "scores": [0.7], "embeddings": [[1, 1]]},
          "x.jpg": {"boxes": [[0, 0, 20, 40]], "scores": [0.7], "embeddings": [[1, 0.5]]}},
         "queries": [{"embedding": [1, 0]}]}
        """
        let (m, d) = try load(manifest, detections)
        assertResult(try score(m, d), mAP: 1, top1: 1, top5: 1, top10: 1)
        assertResult(try score(m, d, EvalOptions(gallerySize: -1)), mAP: 0.5, top1: 0, top5: 1, top10: 1)
    }

    /// Detection metrics alone. Image X: persons P1 [0,0,10,10] and P2 [20,0,30,10] (unlabeled, still counted);
    /// d1 = P1's box, 0.9 (IoU 1); d2 = [0,0,10,5], 0.8 (IoU 0.5 with P1, but P1's best detection is d1 → FP);
    /// d3 = [20,0,30,6], 0.6 (IoU 0.6 with P2 → TP); d4, 0.005 < 0.01 → ignored.
    /// Image Y: one person, no detection (counts in gt). Image Z: no person; d5 0.7 → FP.
    /// gt 3, tp 2 → recall 2/3. Ranking d1(1) d2(0) d5(0) d3(1): AP = 1/2·1 + 1/2·2/4 = 3/4; det_ap = 3/4 · 2/3 = 1/2.
    func testHandWorkedDetection() throws {
        let manifest = """
        {"protocol": "prw", "images": [
          {"name": "X", "persons": [{"box": [0, 0, 10, 10], "pid": 4}, {"box": [20, 0, 30, 10], "pid": -1}]},
          {"name": "Y", "persons": [{"box": [0, 0, 10, 10], "pid": 4}]},
          {"name": "Z", "persons": []}],
         "queries": []}
        """
        let detections = """
        {"images": {
          "X": {"boxes": [[0, 0, 10, 10], [0, 0, 10, 5], [20, 0, 30, 6], [50, 50, 60, 60]], "scores": [0.9, 0.8, 0.6, 0.005],
                "embeddings": [[1], [1], [1], [1]]},
          "Z": {"boxes": [[0, 0, 5, 5]], "scores": [0.7], "embeddings": [[1]]}},
         "queries": []}
        """
        let (m, d) = try load(manifest, detections)
        let r = try score(m, d)
        XCTAssertEqual(r.detRecall, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.detAP, 0.5, accuracy: 1e-12)
        assertResult(r, mAP: 0, top1: 0, top5: 0, top10: 0)
    }

    /// sklearn's documented example and its tie semantics (one threshold per distinct score).
    func testAveragePrecisionMatchesSklearnSemantics() {
        // sklearn docs: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333…
        XCTAssertEqual(AveragePrecision.compute(labels: [false, false, true, true], scores: [0.1, 0.4, 0.35, 0.8]),
                       5.0 / 6, accuracy: 1e-15)
        // A tie between a positive and a negative enters as one threshold: tp 1, n 2 → 1/2 (not 1).
        XCTAssertEqual(AveragePrecision.compute(labels: [true, false], scores: [0.5, 0.5]), 0.5)
        // [1, 0, 1] with the last two tied: t=0.9: P 1, ΔR 1/2; t=0.2: P 2/3, ΔR 1/2 → 5/6.
        XCTAssertEqual(AveragePrecision.compute(labels: [true, false, true], scores: [0.9, 0.2, 0.2]), 5.0 / 6, accuracy: 1e-15)
        XCTAssertEqual(AveragePrecision.compute(labels: [false, false], scores: [0.9, 0.2]), 0)
    }

    func testSearchIoUThreshold() {
        // w=10, h=20: 200/(20·30) = 1/3 (the reference's example); large boxes cap at 0.5.
        XCTAssertEqual(PersonSearchEval.searchIoUThreshold(Box(0, 0, 10, 20), fixed: false), 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(PersonSearchEval.searchIoUThreshold(Box(5, 5, 45, 105), fixed: false), 0.5)
        XCTAssertEqual(PersonSearchEval.searchIoUThreshold(Box(0, 0, 10, 20), fixed: true), 0.5)
    }

    // MARK: malformed inputs

    let goodManifest = """
    {"protocol": "cuhk-sysu", "images": [
      {"name": "a.jpg", "path": "a.jpg", "width": 100, "height": 100, "camera": null, "persons": [{"box": [0, 0, 10, 20], "pid": 1}]},
      {"name": "b.jpg", "path": "b.jpg", "width": 100, "height": 100, "camera": null, "persons": [{"box": [5, 5, 15, 25], "pid": 1}]}],
     "queries": [{"image": "a.jpg", "box": [0, 0, 10, 20], "pid": 1, "gallery": ["b.jpg"]}]}
    """
    let goodDetections = """
    {"images": {"b.jpg": {"boxes": [[5, 5, 15, 25], [0, 0, 3, 3]], "scores": [0.9, 0.6], "embeddings": [[1, 0], [0, 1]]}},
     "queries": [{"embedding": [1, 0]}]}
    """

    func assertManifestError(_ text: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Manifest.decode(Array(text.utf8), source: "manifest.json"), file: file, line: line) { e in
            let msg = "\(e)"
            for f in fragments + ["manifest.json"] { XCTAssertTrue(msg.contains(f), "'\(msg)' should mention '\(f)'", file: file, line: line) }
        }
    }

    func assertDetectionsError(_ text: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        let m = try! Manifest.decode(Array(goodManifest.utf8), source: "manifest.json")
        XCTAssertThrowsError(try Detections.decode(Array(text.utf8), source: "detections.json", manifest: m), file: file, line: line) { e in
            let msg = "\(e)"
            for f in fragments + ["detections.json"] { XCTAssertTrue(msg.contains(f), "'\(msg)' should mention '\(f)'", file: file, line: line) }
        }
    }

    func replacing(_ s: String, _ a: String, _ b: String) -> String {
        precondition(s.contains(a), "fixture text lacks \(a)")
        return s.replacingOccurrences(of: a, with: b)
    }

    func testGoodInputsDecode() throws {
        let (m, d) = try load(goodManifest, goodDetections)
        XCTAssertEqual(m.images.count, 2)
        XCTAssertEqual(d.dim, 2)
        XCTAssertEqual(d.images[1].count, 2)
        XCTAssertEqual(d.images[0].count, 0, "an image absent from the detections has none")
    }

    func testMalformedManifestsNameTheEntry() {
        let m = goodManifest
        assertManifestError(replacing(m, "\"protocol\": \"cuhk-sysu\", ", ""), ["missing field 'protocol'"])
        assertManifestError(replacing(m, "\"cuhk-sysu\"", "\"market\""), ["protocol", "market"])
        assertManifestError(replacing(m, ", \"persons\": [{\"box\": [5, 5, 15, 25], \"pid\": 1}]", ""),
                            ["images[1] ('b.jpg') is missing field 'persons'"])
        assertManifestError(replacing(m, "[5, 5, 15, 25], \"pid\": 1", "[5, 5, 15, 25]"),
                            ["images[1] ('b.jpg').persons[0] is missing field 'pid'"])
        assertManifestError(replacing(m, "[5, 5, 15, 25]", "[15, 5, 5, 25]"),
                            ["images[1] ('b.jpg').persons[0].box", "x2 (5)", "x1 (15)"])
        assertManifestError(replacing(m, "[5, 5, 15, 25]", "[5, 5, 15]"), ["images[1] ('b.jpg').persons[0].box has 3 values"])
        assertManifestError(replacing(m, "[5, 5, 15, 25]", "[5, 5, 15, NaN]"), ["images[1] ('b.jpg').persons[0].box[3] is NaN"])
        assertManifestError(replacing(m, "\"pid\": 1}]}]", "\"pid\": 1.5}]}]"), ["images[1] ('b.jpg').persons[0].pid should be an integer"])
        assertManifestError(replacing(m, "\"name\": \"b.jpg\"", "\"name\": \"a.jpg\""), ["images[1] ('a.jpg') repeats the name of images[0]"])
        assertManifestError(replacing(m, "\"gallery\": [\"b.jpg\"]", "\"gallery\": [\"b.jpg\", \"zz.jpg\"]"),
                            ["queries[0].gallery[1] is 'zz.jpg', which is not an image of the manifest"])
        assertManifestError(replacing(m, "{\"image\": \"a.jpg\"", "{\"image\": \"q.jpg\""), ["queries[0].image is 'q.jpg'"])
        assertManifestError(replacing(m, "\"pid\": 1, \"gallery\"", "\"pid\": -1, \"gallery\""), ["queries[0].pid is -1"])
        assertManifestError(replacing(m, "\"queries\": [{", "\"queries\": [{\"box\": [0, 0, 1, 1], "), ["duplicate key \"box\"", "line 4"])
        assertManifestError(replacing(m, "\"width\": 100, \"height\": 100, \"camera\": null, \"persons\": [{\"box\": [0",
                                      "\"width\": -3, \"height\": 100, \"camera\": null, \"persons\": [{\"box\": [0"),
                            ["images[0] ('a.jpg').width is -3"])
    }

    func testMalformedDetectionsNameTheEntry() {
        let d = goodDetections
        assertDetectionsError(replacing(d, "\"scores\": [0.9, 0.6]", "\"scores\": [0.9, NaN]"), ["images['b.jpg'].scores[1] is NaN"])
        assertDetectionsError(replacing(d, "\"scores\": [0.9, 0.6]", "\"scores\": [0.9, Infinity]"), ["images['b.jpg'].scores[1] is infinite"])
        assertDetectionsError(replacing(d, "\"scores\": [0.9, 0.6]", "\"scores\": [0.9]"), ["images['b.jpg'] has 2 boxes but 1 scores"])
        assertDetectionsError(replacing(d, "[0, 0, 3, 3]", "[4, 0, 3, 3]"), ["images['b.jpg'].boxes[1]", "x2 (3) < x1 (4)"])
        assertDetectionsError(replacing(d, "[0, 0, 3, 3]", "[0, 5, 3, 3]"), ["images['b.jpg'].boxes[1]", "y2 (3) < y1 (5)"])
        assertDetectionsError(replacing(d, "[[1, 0], [0, 1]]", "[[1, 0], [0, 1, 2]]"),
                              ["images['b.jpg'].embeddings[1] has 3 values; expected 2 like queries[0].embedding"])
        assertDetectionsError(replacing(d, "{\"embedding\": [1, 0]}", "{\"embedding\": [1, 0, 0]}"),
                              ["images['b.jpg'].embeddings[0] has 2 values; expected 3 like queries[0].embedding"])
        assertDetectionsError(replacing(d, "[[1, 0], [0, 1]]", "[[1, 0], [0, NaN]]"), ["images['b.jpg'].embeddings[1][1] is NaN"])
        assertDetectionsError(replacing(d, "\"b.jpg\": {", "\"c.jpg\": {"), ["images['c.jpg'] is not an image of the manifest"])
        assertDetectionsError(replacing(d, ", \"embeddings\": [[1, 0], [0, 1]]", ""), ["images['b.jpg'] is missing field 'embeddings'"])
        assertDetectionsError(replacing(d, "[{\"embedding\": [1, 0]}]", "[]"), ["queries has 0 entries; the manifest has 1 queries"])
        assertDetectionsError(replacing(d, "{\"embedding\": [1, 0]}", "{\"embedding\": []}"), ["queries[0].embedding is empty"])
        assertDetectionsError(replacing(d, "{\"embedding\": [1, 0]}", "{\"feature\": [1, 0]}"), ["queries[0] is missing field 'embedding'"])
        assertDetectionsError(replacing(d, "\"scores\": [0.9, 0.6]", "\"scores\": [0.9, \"high\"]"),
                              ["images['b.jpg'].scores[1] should be a number, found a string"])
        assertDetectionsError("{\"images\": {}, \"queries\": [", ["JSON syntax error", "unexpected end"])
    }

    func testOptionErrors() throws {
        let (m, d) = try load(goodManifest, goodDetections)
        XCTAssertThrowsError(try score(m, d, EvalOptions(gallerySize: 0))) { XCTAssertTrue("\($0)".contains("--gallery-size"), "\($0)") }
        XCTAssertThrowsError(try score(m, d, EvalOptions(crossCamera: true))) { e in
            XCTAssertTrue("\(e)".contains("queries[0]") && "\(e)".contains("a.jpg") && "\(e)".contains("no camera id"), "\(e)")
        }
    }

    // MARK: scale

    /// 1000 gallery images × 200 queries (PRW style: every query searches every other image, the heaviest
    /// gallery), 10 detections per image with 256-d embeddings. Must take well under a few seconds.
    func testBenchmarkScaleIsFast() throws {
        var rng = SeededRandom(seed: 7)
        let nImages = 1000, nIDs = 150, dim = 256, detsPerImage = 10
        var images: [ManifestImage] = []
        var dets: [ImageDetections] = []
        var protos: [[Double]] = (0..<nIDs).map { _ in (0..<dim).map { _ in rng.normal() } }
        protos.append((0..<dim).map { _ in 0 })
        var firstSeen: [Int: (Int, Box)] = [:]
        for i in 0..<nImages {
            var persons: [Person] = []
            var d = ImageDetections()
            for k in 0..<detsPerImage {
                let x = Double(k * 60), box = Box(x, 10, x + 40, 110)
                let pid = k < 4 ? Int(rng.next() % UInt64(nIDs)) : -1
                if k < 5 { persons.append(Person(box: box, pid: pid)) }
                if pid >= 0 && firstSeen[pid] == nil { firstSeen[pid] = (i, box) }
                d.boxes.append(Box(x + 2, 12, x + 42, 112))
                d.scores.append(k < 7 ? 0.5 + 0.4 * rng.uniform() : 0.3)
                let base = pid >= 0 ? protos[pid] : protos[nIDs]
                for v in 0..<dim { d.embeddings.append(base[v] + rng.normal()) }
            }
            images.append(ManifestImage(name: "c\(i % 6 + 1)_\(i).jpg", camera: String(i % 6 + 1), persons: persons))
            dets.append(d)
        }
        var queries: [ManifestQuery] = []
        var qemb: [Double] = []
        for pid in firstSeen.keys.sorted() {
            let (im, box) = firstSeen[pid]!
            queries.append(ManifestQuery(image: im, box: box, pid: pid, gallery: nil))
            for v in 0..<dim { qemb.append(protos[pid][v] + 0.5 * rng.normal()) }
        }
        while queries.count < 200 { queries.append(queries[queries.count % nIDs]); qemb.append(contentsOf: qemb[0..<dim]) }
        queries.removeSubrange(200...)
        qemb.removeSubrange((200 * dim)...)
        let m = try Manifest(evalProtocol: .prw, images: images, queries: queries)
        let d = try Detections(dim: dim, images: dets, queryEmbeddings: qemb)
        let t0 = Date()
        let r = try PersonSearchEval.evaluate(manifest: m, detections: d)
        let t1 = Date()
        let rc = try PersonSearchEval.evaluate(manifest: m, detections: d, options: EvalOptions(crossCamera: true))
        let t2 = Date()
        print(String(format: "eval 1000 images x 200 queries: %.3f s all-gallery, %.3f s cross-camera (mAP %.4f / %.4f)",
                     t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), r.mAP, rc.mAP))
        XCTAssertGreaterThan(r.mAP, 0.05)
        XCTAssertLessThan(t1.timeIntervalSince(t0), 2.0)
        XCTAssertLessThan(t2.timeIntervalSince(t1), 2.0)
    }

    // MARK: the command line

    func psedge(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let binary = Bundle.main.bundleURL.appendingPathComponent("psedge")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("psedge binary not found at \(binary.path) (swift build first)")
            throw XCTSkip("no binary")
        }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, "psedge crashed: \(String(decoding: e, as: UTF8.self))")
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testCommandLine() throws {
        let m = Fixtures.path("eval/example_cuhk/manifest.json"), d = Fixtures.path("eval/example_cuhk/detections.json")
        let r = try psedge(["eval", "--manifest", m, "--detections", d, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double]
        XCTAssertEqual(Set(obj?.keys.map { $0 } ?? []), ["mAP", "top1", "top5", "top10", "det_ap", "det_recall"])
        XCTAssertEqual(obj?["mAP"] ?? -1, 1.0 / 3, accuracy: 1e-12)

        let fixed = try psedge(["eval", "--manifest", m, "--detections", d, "--iou-fixed", "--gallery-size", "-1", "--json"])
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
        XCTAssertTrue(fixed.stdout.contains("\"mAP\": 0.0833333"), fixed.stdout)

        let text = try psedge(["eval", "--manifest", m, "--detections", d])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("mAP    = 33.33%"), text.stdout)

        // A malformed detections file: exit 1, one line naming the entry.
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("psedge-eval-\(getpid())-\(UUID().uuidString.prefix(8)).json")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let bad = try String(contentsOfFile: d, encoding: .utf8).replacingOccurrences(of: "\"scores\": [0.6]", with: "\"scores\": [NaN]")
        try bad.write(to: tmp, atomically: true, encoding: .utf8)
        let e = try psedge(["eval", "--manifest", m, "--detections", tmp.path])
        XCTAssertEqual(e.status, 1)
        XCTAssertTrue(e.stderr.contains("images['g2.jpg'].scores[0] is NaN"), e.stderr)
        XCTAssertEqual(e.stderr.split(separator: "\n").count, 1, e.stderr)

        let missing = try psedge(["eval", "--manifest", m + ".nope", "--detections", d])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no such file"), missing.stderr)
    }
}

