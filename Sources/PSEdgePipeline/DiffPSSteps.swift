import Foundation

/// The non-neural steps of DiffPS (tools/psref/README.md states each formula), in float32.
public enum DiffPSSteps {
    /// torchvision `AnchorGenerator`, one level: base anchors ratio-major then size, round half to even;
    /// stride = image // feature per axis; order (y, x, anchor).
    public static func anchors(imageHW: (Int, Int), featureHW: (Int, Int), sizes: [Float], ratios: [Float]) -> [Box] {
        var base: [Box] = []
        for r in ratios {
            let hr = r.squareRoot(), wr = 1 / hr
            for s in sizes {
                let ws = wr * s, hs = hr * s
                base.append(Box((-ws / 2).rounded(.toNearestOrEven), (-hs / 2).rounded(.toNearestOrEven),
                                (ws / 2).rounded(.toNearestOrEven), (hs / 2).rounded(.toNearestOrEven)))
            }
        }
        let sh = imageHW.0 / featureHW.0, sw = imageHW.1 / featureHW.1
        var out: [Box] = []
        out.reserveCapacity(featureHW.0 * featureHW.1 * base.count)
        for y in 0..<featureHW.0 {
            for x in 0..<featureHW.1 {
                let dx = Float(x * sw), dy = Float(y * sh)
                for b in base { out.append(Box(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy)) }
            }
        }
        return out
    }

    /// Test-time RPN: top-k logits, decode (weights 1), sigmoid, clip, min size, score threshold, NMS, first `postTopN`.
    /// `objectness` [A, H, W] and `deltas` [4A, H, W] of one image, flattened in anchor order (y, x, a).
    public static func proposals(objectness: [Float], deltas: [Float], anchors: [Box], featureHW: (Int, Int), imageHW: (Int, Int),
                                 preTopN: Int, postTopN: Int, nmsThreshold: Float, minSize: Float, scoreThreshold: Float) -> (boxes: [Box], scores: [Float]) {
        let (h, w) = featureHW
        let a = objectness.count / (h * w)
        var obj = [Float](repeating: 0, count: h * w * a)
        var d = [(Float, Float, Float, Float)](repeating: (0, 0, 0, 0), count: h * w * a)
        for ai in 0..<a {
            for y in 0..<h {
                for x in 0..<w {
                    let i = (y * w + x) * a + ai
                    obj[i] = objectness[(ai * h + y) * w + x]
                    func delta(_ k: Int) -> Float { deltas[((ai * 4 + k) * h + y) * w + x] }
                    d[i] = (delta(0), delta(1), delta(2), delta(3))
                }
            }
        }
        let top = descendingOrder(obj).prefix(min(preTopN, obj.count))
        let coder = BoxCoder(weights: (1, 1, 1, 1))
        var boxes: [Box] = [], scores: [Float] = []
        for i in top {
            let b = coder.decode(d[i], reference: anchors[i]).clipped(width: Float(imageHW.1), height: Float(imageHW.0))
            let p = sigmoid(obj[i])
            if b.width >= minSize && b.height >= minSize && p >= scoreThreshold { boxes.append(b); scores.append(p) }
        }
        let keep = nonMaximumSuppression(boxes, scores: scores, iouThreshold: nmsThreshold).prefix(postTopN)
        return (keep.map { boxes[$0] }, keep.map { scores[$0] })
    }

    /// Fast R-CNN test post-processing: decode (weights 10, 10, 5, 5), clip, min size, p = softmax[:, 1] > threshold
    /// (strict), NMS, first `perImage`. Returns the kept boxes, scores and their proposal indices.
    public static func detections(clsLogits: [Float], boxRegression: [Float], proposals: [Box], imageHW: (Int, Int),
                                  scoreThreshold: Float, nmsThreshold: Float, perImage: Int, minSize: Float,
                                  weights: (Float, Float, Float, Float)) -> (boxes: [Box], scores: [Float]) {
        let coder = BoxCoder(weights: weights)
        var boxes: [Box] = [], scores: [Float] = []
        for (i, p) in proposals.enumerated() {
            let r = boxRegression
            let b = coder.decode((r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]), reference: p)
                .clipped(width: Float(imageHW.1), height: Float(imageHW.0))
            guard b.width >= minSize, b.height >= minSize else { continue }
            let l0 = clsLogits[2 * i], l1 = clsLogits[2 * i + 1]
            let m = max(l0, l1)
            let e0 = expf(l0 - m), e1 = expf(l1 - m)
            let score = e1 / (e0 + e1)
            if score > scoreThreshold { boxes.append(b); scores.append(score) }
        }
        let keep = nonMaximumSuppression(boxes, scores: scores, iouThreshold: nmsThreshold).prefix(perImage)
        return (keep.map { boxes[$0] }, keep.map { scores[$0] })
    }

    /// The cross-attention map of one image: a = A[head, :, token] of [heads, HW, tokens], min-max normalised
    /// (zeros if flat).
    public static func attentionMap(_ crossMap: [Float], heads: Int, pixels: Int, tokens: Int, head: Int, token: Int) -> [Float] {
        let a = (0..<pixels).map { crossMap[(head * pixels + $0) * tokens + token] }
        let lo = a.min()!, hi = a.max()!
        let range = hi - lo
        return range > 0 ? a.map { ($0 - lo) / range } : [Float](repeating: 0, count: pixels)
    }

    public struct DGRPNResult {
        public var features: [Float]
        public var cx: [Int], cy: [Int], peakScores: [Float], sW: [Float], sH: [Float]
        public var g: [Float]
    }

    /// DGRPN (one image; the batch-global normalisation is then per image): peaks of the thresholded attention map
    /// become anisotropic Gaussians G, and F_det = F + gamma·G·F.
    public static func dgrpn(features f: [Float], channels: Int, attention: [Float], height h: Int, width w: Int,
                             beta: Float, gamma: Float, tau: Float, delta: Float, peakWindow: Int, neighbourhood: Int,
                             topK: Int) -> DGRPNResult {
        var m = attention.map { max($0, 0) }
        let mx = m.max() ?? 0
        if mx > 0 { m = m.map { $0 / (mx + 1e-8) } }
        let mth = m.map { $0 > tau ? $0 : 0 }
        let r = peakWindow / 2
        var scores = [Float](repeating: 0, count: h * w)
        for y in 0..<h {
            for x in 0..<w where mth[y * w + x] > 0 {
                var peak = -Float.infinity
                for yy in max(0, y - r)...min(h - 1, y + r) {
                    for xx in max(0, x - r)...min(w - 1, x + r) { peak = max(peak, mth[yy * w + xx]) }
                }
                if mth[y * w + x] == peak { scores[y * w + x] = mth[y * w + x] }
            }
        }
        let k = min(topK, h * w)
        let idx = Array(descendingOrder(scores).prefix(k))
        let cy = idx.map { $0 / w }, cx = idx.map { $0 % w }
        let n = neighbourhood / 2
        var sW = [Float](repeating: 0, count: k), sH = [Float](repeating: 0, count: k)
        for j in 0..<k {
            var sx: Float = 0, sy: Float = 0
            for dy in -n...n {
                for dx in -n...n {
                    let y = cy[j] + dy, x = cx[j] + dx
                    guard y >= 0, y < h, x >= 0, x < w else { continue }
                    let v = mth[y * w + x]
                    sx += v * Float(dx * dx)
                    sy += v * Float(dy * dy)
                }
            }
            sW[j] = Float(max(Double(delta), Double(max(sx, 1e-8)).squareRoot()))
            sH[j] = Float(max(Double(delta), Double(max(sy, 1e-8)).squareRoot()))
        }
        let b = Double(abs(beta) + 1e-6)
        var g = [Float](repeating: 0, count: h * w)
        for y in 0..<h {
            for x in 0..<w {
                var best = -Double.infinity
                for j in 0..<k {
                    let ex = Double(x - cx[j]), ey = Double(y - cy[j])
                    let vw = b * Double(sW[j] * sW[j]), vh = b * Double(sH[j] * sH[j])
                    best = max(best, exp(-(ex * ex) / vw - (ey * ey) / vh))
                }
                g[y * w + x] = k > 0 ? Float(best) : 0
            }
        }
        var out = f
        for ch in 0..<channels {
            for p in 0..<(h * w) { out[ch * h * w + p] = f[ch * h * w + p] + gamma * (g[p] * f[ch * h * w + p]) }
        }
        return DGRPNResult(features: out, cx: cx, cy: cy, peakScores: idx.map { scores[$0] }, sW: sW, sH: sH, g: g)
    }
}
