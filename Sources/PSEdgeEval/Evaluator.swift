import PSEdgeIR

/// What to score. The defaults are the standard protocol (SeqNet/COAT `eval_func.py`): the manifest's listed
/// galleries (or every other image), all cameras, IoU threshold min(0.5, w·h/((w+10)(h+10))).
public struct EvalOptions: Sendable, Equatable {
    /// nil: each query's whole listed gallery. N > 0: the first N names of each listed gallery. −1: SeqNet's
    /// full-set mode, the listed gallery plus every other image (except the query's) as all-negative images.
    /// Queries without a listed gallery always search every other image.
    public var gallerySize: Int?
    /// Drop gallery images taken by the query image's camera (PRW `ignore_cam_id=False`).
    public var crossCamera: Bool
    /// Search IoU threshold fixed at 0.5, as DiffPS's evaluator (`engines/evaluator.py`) uses.
    public var iouFixed: Bool
    /// Gallery detections with at least this score are searched (protocol: `det_thresh=0.5`).
    public var searchScoreThreshold: Double

    public init(gallerySize: Int? = nil, crossCamera: Bool = false, iouFixed: Bool = false,
                searchScoreThreshold: Double = EvalOptions.standardSearchScoreThreshold) {
        self.gallerySize = gallerySize
        self.crossCamera = crossCamera
        self.iouFixed = iouFixed
        self.searchScoreThreshold = searchScoreThreshold
    }

    /// The protocol's gallery score threshold (`det_thresh=0.5`).
    public static let standardSearchScoreThreshold = 0.5
    /// Detections with at least this score enter the detection metrics (SeqNet `engine.py` calls
    /// `eval_detection(det_thresh=0.01)`).
    public static let detectionScoreThreshold = 0.01
    public static let detectionIoU = 0.5
    public static let topK = [1, 5, 10]
}

public struct EvalResult: Sendable {
    public var mAP = 0.0
    public var top1 = 0.0
    public var top5 = 0.0
    public var top10 = 0.0
    public var detAP = 0.0
    public var detRecall = 0.0
    /// AP of each query (recall-scaled), in manifest order.
    public var queryAP: [Double] = []
    /// Queries whose gallery holds no image of their identity (scored 0: SeqNet would divide by zero).
    public var queriesWithoutGroundTruth = 0
    /// Queries with no true positive (AP 0).
    public var queriesWithoutMatch = 0

    /// `{"mAP", "top1", "top5", "top10", "det_ap", "det_recall"}`, fractions in [0, 1].
    public var json: String {
        "{\"mAP\": \(mAP), \"top1\": \(top1), \"top5\": \(top5), \"top10\": \(top10), \"det_ap\": \(detAP), \"det_recall\": \(detRecall)}"
    }
}

public enum PersonSearchEval {
    public static func evaluate(manifest: Manifest, detections: Detections, options: EvalOptions = .init()) throws -> EvalResult {
        guard detections.images.count == manifest.images.count else {
            throw PSEdgeError.invalid("detections cover \(detections.images.count) images; the manifest has \(manifest.images.count)")
        }
        guard detections.dim == 0 || detections.queryEmbeddings.count == manifest.queries.count * detections.dim else {
            throw PSEdgeError.invalid("detections have \(detections.queryEmbeddings.count / max(detections.dim, 1)) query embeddings; the manifest has \(manifest.queries.count) queries")
        }
        var result = EvalResult()
        (result.detAP, result.detRecall) = detectionMetrics(manifest: manifest, detections: detections)
        try SearchEvaluator(manifest: manifest, detections: detections, options: options).run(into: &result)
        return result
    }

    // MARK: detection

    /// SeqNet `eval_detection(det_thresh=0.01, iou_thresh=0.5, labeled_only=False)` over every image:
    /// ground truth = all persons (unlabeled included); a (gt i, det j) pair matches when IoU ≥ 0.5, i is the
    /// argmax of column j and j the argmax of row i (lowest index among equal maxima, as numpy's argmax);
    /// every image's ground truth counts, with or without detections. recall = matches / gt,
    /// AP = average_precision_score × recall (0 without a match). An image without ground truth contributes its
    /// detections as false positives.
    public static func detectionMetrics(manifest: Manifest, detections: Detections) -> (ap: Double, recall: Double) {
        var labels: [Bool] = []
        var scores: [Double] = []
        var countGT = 0, countTP = 0
        var ious: [Double] = []
        var keep: [Int] = []
        for (i, im) in manifest.images.enumerated() {
            let d = detections.images[i]
            let nGT = im.persons.count
            countGT += nGT
            keep.removeAll(keepingCapacity: true)
            for j in 0..<d.count where d.scores[j] >= EvalOptions.detectionScoreThreshold { keep.append(j) }
            let nDet = keep.count
            if nDet == 0 { continue }
            if nGT == 0 {
                for j in keep { labels.append(false); scores.append(d.scores[j]) }
                continue
            }
            ious.removeAll(keepingCapacity: true)
            for p in im.persons { for j in keep { ious.append(p.box.iou(d.boxes[j])) } }
            var rowArg = [Int](repeating: 0, count: nGT)
            var colArg = [Int](repeating: 0, count: nDet)
            for g in 0..<nGT {
                var best = 0
                for j in 1..<nDet where ious[g * nDet + j] > ious[g * nDet + best] { best = j }
                rowArg[g] = best
            }
            for j in 0..<nDet {
                var best = 0
                for g in 1..<nGT where ious[g * nDet + j] > ious[best * nDet + j] { best = g }
                colArg[j] = best
            }
            for (c, j) in keep.enumerated() {
                let g = colArg[c]
                let matched = rowArg[g] == c && ious[g * nDet + c] >= EvalOptions.detectionIoU
                if matched { countTP += 1 }
                labels.append(matched)
                scores.append(d.scores[j])
            }
        }
        guard countGT > 0 else { return (0, 0) }
        let recall = Double(countTP) / Double(countGT)
        let ap = countTP == 0 ? 0 : AveragePrecision.compute(labels: labels, scores: scores) * recall
        return (ap, recall)
    }

    /// The search IoU threshold for a ground-truth box: min(0.5, w·h / ((w+10)(h+10))), or 0.5 when fixed.
    @inline(__always)
    public static func searchIoUThreshold(_ gt: Box, fixed: Bool) -> Double {
        if fixed { return 0.5 }
        let w = gt.width, h = gt.height
        return min(0.5, (w * h) / ((w + 10) * (h + 10)))
    }
}

/// Search metrics (SeqNet `eval_search_cuhk` / `eval_search_prw`, CBGM off).
struct SearchEvaluator {
    let manifest: Manifest
    let detections: Detections
    let options: EvalOptions
    let dim: Int
    /// Searched detections (score ≥ 0.5) of image i are rows rowStart[i]..<rowStart[i+1].
    var rowStart: [Int] = []
    var rowBoxes: [Box] = []
    /// L2-normalized embeddings of the searched detections, row-major.
    var gallery: [Double] = []
    /// L2-normalized query embeddings.
    var queries: [Double] = []
    /// pid → (image, person) of the first person with that pid in each image.
    var pidIndex: [Int: [(image: Int, person: Int)]] = [:]

    init(manifest: Manifest, detections: Detections, options: EvalOptions) throws {
        self.manifest = manifest
        self.detections = detections
        self.options = options
        self.dim = detections.dim
        if let n = options.gallerySize {
            guard n > 0 || n == -1 else { throw PSEdgeError.invalid("--gallery-size must be a positive number or -1 (full set), got \(n)") }
            if !manifest.queries.isEmpty && !manifest.queries.contains(where: { $0.gallery != nil }) {
                throw PSEdgeError.invalid("--gallery-size applies to listed galleries (CUHK-SYSU TestG lists), and no query of the manifest lists one; every query searches all other images")
            }
        }
        rowStart.reserveCapacity(manifest.images.count + 1)
        rowStart.append(0)
        for d in detections.images {
            for j in 0..<d.count where d.scores[j] >= options.searchScoreThreshold {
                rowBoxes.append(d.boxes[j])
                d.embeddings.withUnsafeBufferPointer { e in
                    SearchEvaluator.appendNormalized(UnsafeBufferPointer(rebasing: e[(j * dim)..<((j + 1) * dim)]), to: &gallery)
                }
            }
            rowStart.append(rowBoxes.count)
        }
        detections.queryEmbeddings.withUnsafeBufferPointer { e in
            for q in 0..<manifest.queries.count {
                SearchEvaluator.appendNormalized(UnsafeBufferPointer(rebasing: e[(q * dim)..<((q + 1) * dim)]), to: &queries)
            }
        }
        for (i, im) in manifest.images.enumerated() {
            var seen = Set<Int>()
            for (k, p) in im.persons.enumerated() where p.pid >= 0 && seen.insert(p.pid).inserted {
                pidIndex[p.pid, default: []].append((i, k))
            }
        }
    }

    /// x / ‖x‖₂ (a zero vector stays zero). The same arithmetic for every row, so equal vectors stay equal.
    static func appendNormalized(_ x: UnsafeBufferPointer<Double>, to out: inout [Double]) {
        var ss = 0.0
        for v in x { ss += v * v }
        let n = ss.squareRoot()
        if n > 0 { for v in x { out.append(v / n) } } else { out.append(contentsOf: repeatElement(0, count: x.count)) }
    }

    /// The gallery of query q: (listed images, which can hold the query's ground truth; extra images, all
    /// negative: the full-set additions).
    func gallery(of qi: Int) throws -> (listed: [Int], extra: [Int]) {
        let q = manifest.queries[qi]
        let n = manifest.images.count
        var listed: [Int]
        var extra: [Int] = []
        if let g = q.gallery {
            listed = g
            if let size = options.gallerySize {
                if size > 0 {
                    if listed.count > size { listed.removeSubrange(size...) }
                } else {
                    var inList = [Bool](repeating: false, count: n)
                    for i in listed { inList[i] = true }
                    extra = (0..<n).filter { $0 != q.image && !inList[$0] }
                }
            }
        } else {
            listed = (0..<n).filter { $0 != q.image }
        }
        if options.crossCamera {
            guard let cam = manifest.images[q.image].camera else {
                throw PSEdgeError.invalid("--cross-camera: queries[\(qi)] is in image '\(manifest.images[q.image].name)', which has no camera id")
            }
            listed.removeAll { manifest.images[$0].camera == cam }
            extra.removeAll { manifest.images[$0].camera == cam }
        }
        return (listed, extra)
    }

    func run(into result: inout EvalResult) throws {
        let nq = manifest.queries.count
        let nImages = manifest.images.count
        let totalRows = rowBoxes.count
        let block = 16
        var sims = [Double](repeating: 0, count: block * max(totalRows, 1))
        var mask = [UInt32](repeating: 0, count: nImages)
        var listedStamp = [Int](repeating: -1, count: nImages)
        var touched: [Int] = []
        var counter = RankCounter()
        var positives: [Double] = []
        var apSum = 0.0
        var hits = [Int](repeating: 0, count: EvalOptions.topK.count)
        result.queryAP = []
        result.queryAP.reserveCapacity(nq)

        var start = 0
        while start < nq {
            let end = min(start + block, nq)
            // 1. Galleries of the block and which images each query needs similarities for.
            var galleries: [(listed: [Int], extra: [Int])] = []
            touched.removeAll(keepingCapacity: true)
            for qi in start..<end {
                let g = try gallery(of: qi)
                let bit = UInt32(1) << UInt32(qi - start)
                for i in g.listed where rowStart[i + 1] > rowStart[i] {
                    if mask[i] == 0 { touched.append(i) }
                    mask[i] |= bit
                }
                for i in g.extra where rowStart[i + 1] > rowStart[i] {
                    if mask[i] == 0 { touched.append(i) }
                    mask[i] |= bit
                }
                galleries.append(g)
            }
            // 2. Similarities, image by image so an image's rows stay in cache across the block's queries.
            sims.withUnsafeMutableBufferPointer { S in
                gallery.withUnsafeBufferPointer { G in
                    queries.withUnsafeBufferPointer { Q in
                        for i in touched {
                            var m = mask[i]
                            mask[i] = 0
                            while m != 0 {
                                let l = m.trailingZeroBitCount
                                m &= m - 1
                                let qp = Q.baseAddress! + (start + l) * dim
                                for r in rowStart[i]..<rowStart[i + 1] {
                                    S[l * totalRows + r] = SearchEvaluator.dot(qp, G.baseAddress! + r * dim, dim)
                                }
                            }
                        }
                    }
                }
            }
            // 3. Score each query of the block.
            for qi in start..<end {
                let l = qi - start
                let (listed, extra) = galleries[l]
                let q = manifest.queries[qi]
                for i in listed { listedStamp[i] = qi }
                var countGT = 0
                positives.removeAll(keepingCapacity: true)
                for (i, k) in pidIndex[q.pid] ?? [] where listedStamp[i] == qi {
                    countGT += 1
                    let gt = manifest.images[i].persons[k].box
                    let thr = PersonSearchEval.searchIoUThreshold(gt, fixed: options.iouFixed)
                    // The most similar detection among those overlapping the ground truth enough is the one
                    // true positive of the image (SeqNet: the first match in descending similarity).
                    var best = -Double.infinity
                    var found = false
                    for r in rowStart[i]..<rowStart[i + 1] where rowBoxes[r].iou(gt) >= thr {
                        let s = sims[l * totalRows + r]
                        if !found || s > best { best = s; found = true }
                    }
                    if found { positives.append(best) }
                }
                if countGT == 0 { result.queriesWithoutGroundTruth += 1 }
                if positives.isEmpty {
                    result.queriesWithoutMatch += 1
                    result.queryAP.append(0)
                    continue
                }
                let countTP = positives.count
                counter.reset(positives: &positives)
                sims.withUnsafeBufferPointer { S in
                    let base = l * totalRows
                    for list in [listed, extra] {
                        for i in list {
                            for r in rowStart[i]..<rowStart[i + 1] { counter.add(S[base + r]) }
                        }
                    }
                }
                let ap = counter.averagePrecision * Double(countTP) / Double(countGT)
                result.queryAP.append(ap)
                apSum += ap
                for (t, k) in EvalOptions.topK.enumerated() where counter.hit(k: k) { hits[t] += 1 }
            }
            start = end
        }
        if nq > 0 {
            result.mAP = apSum / Double(nq)
            result.top1 = Double(hits[0]) / Double(nq)
            result.top5 = Double(hits[1]) / Double(nq)
            result.top10 = Double(hits[2]) / Double(nq)
        }
    }

    /// Dot product with one fixed order of operations (8 lane-wise partial sums, a fixed reduction tree, then the
    /// tail in order): equal inputs give bit-identical similarities, so tied embeddings tie exactly.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 8 <= n {
            let x = ra.loadUnaligned(fromByteOffset: i * 8, as: SIMD8<Double>.self)
            let y = rb.loadUnaligned(fromByteOffset: i * 8, as: SIMD8<Double>.self)
            acc = acc + x * y
            i += 8
        }
        var s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        while i < n {
            s = s + a[i] * b[i]
            i += 1
        }
        return s
    }
}
