import Foundation

/// One evaluation of a PSDiff denoising head on the current noisy boxes and embeddings; the image features are
/// bound inside (one backbone pass per image, only the head runs per step).
public protocol DenoisingHead {
    /// `boxes`: N×4 xyxy pixels of the network input; `embeddings`: N×C in [-1, 1]. Returns N×K class logits,
    /// N×4 predicted boxes (xyxy pixels) and N×C predicted (un-normalised) embeddings.
    mutating func predict(boxes: [Float], embeddings: [Float], timestep: Int) throws -> HeadPrediction
}

public struct HeadPrediction: Sendable {
    public var logits: [Float]
    public var boxes: [Float]
    public var embeddings: [Float]
    public init(logits: [Float], boxes: [Float], embeddings: [Float]) {
        (self.logits, self.boxes, self.embeddings) = (logits, boxes, embeddings)
    }
}

/// The sampler's settings (PSDiff: box signal scale s1 = 2, embedding scale s2 = 3, DDIM eta 1, box renewal,
/// ensembling over steps, NMS 0.5).
public struct PSDiffSettings: Sendable {
    public var numProposals = 100
    public var embeddingDim = 256
    public var numClasses = 1
    public var boxScale: Float = 2
    public var embeddingScale: Float = 3
    public var eta = 1.0
    public var boxRenewal = true
    public var renewalThreshold: Float = 0.5
    public var ensemble = true
    public var nmsThreshold: Float = 0.5
    public init() {}
}

/// What one DDIM step saw and decided (for parity tests and debugging).
public struct SamplerStep: Sendable {
    public var t: Int, next: Int
    public var xBox: [Float], xEmb: [Float]
    public var boxesIn: [Float], embIn: [Float]
    public var prediction: HeadPrediction
    public var keep: [Bool]
}

/// DDIM over boxes and re-ID embeddings, as in PSDiff (built on DiffusionDet's sampler):
///
///   x_T ~ N(0, I) for N boxes (cx, cy, w, h) and N embeddings;
///   for each (t, t'): decode x into head inputs, predict (x̂0_box, ê0), re-encode x̂0, imply ε;
///     keep the proposals whose score > renewal threshold, x_{t'} = x̂0·√ā' + c·ε + σ·z for those,
///     and top up with fresh noise (box renewal);
///   the predictions of every step are ensembled, then NMS.
public struct PSDiffSampler {
    public var settings: PSDiffSettings
    public var schedule: DiffusionSchedule

    public init(settings: PSDiffSettings, schedule: DiffusionSchedule) {
        self.settings = settings
        self.schedule = schedule
    }

    /// The noise keys in draw order for `steps` steps: box_T, emb_T, then per non-final step k the DDIM and renewal
    /// noise of boxes and embeddings.
    public static func noiseKeys(steps: Int) -> [String] {
        var keys = ["box_T", "emb_T"]
        for k in 0..<max(steps - 1, 0) { keys += ["box_ddim_\(k)", "emb_ddim_\(k)", "box_renew_\(k)", "emb_renew_\(k)"] }
        return keys
    }

    /// Detections in network-input pixels (image of `width`×`height`), sorted by descending score.
    public func sample<H: DenoisingHead, R: NoiseSource>(head: inout H, width: Int, height: Int, steps: Int,
                                                         noise: inout R, trace: ((SamplerStep) -> Void)? = nil) throws -> [Detection] {
        guard steps >= 1, steps <= schedule.timesteps else {
            throw PipelineError.invalidInput("steps must be in 1...\(schedule.timesteps), got \(steps)")
        }
        let s = settings
        let n = s.numProposals, c = s.embeddingDim
        var drawn: [String: [Float]] = [:]
        for key in Self.noiseKeys(steps: steps) {
            drawn[key] = try noise.normal(key: key, count: n * (key.hasPrefix("box") ? 4 : c))
        }
        var xBox = drawn["box_T"]!, xEmb = drawn["emb_T"]!
        var ensemble: [Detection] = []
        var last: [Detection] = []
        let pairs = schedule.timePairs(steps: steps)
        let (W, H) = (Float(width), Float(height))
        for (k, pair) in pairs.enumerated() {
            let boxesIn = boxesFromDiffusion(xBox, width: W, height: H)
            let embIn = xEmb.map { min(max($0, -s.embeddingScale), s.embeddingScale) / s.embeddingScale }
            let p = try head.predict(boxes: boxesIn, embeddings: embIn, timestep: pair.t)
            guard p.logits.count == n * s.numClasses, p.boxes.count == n * 4, p.embeddings.count == n * c else {
                throw PipelineError.invalidModel("the head returned \(p.logits.count) logits, \(p.boxes.count / 4) boxes, \(p.embeddings.count) embedding values for \(n) proposals of dimension \(c)")
            }
            let x0Box = diffusionFromBoxes(p.boxes, width: W, height: H)
            var unit: [Float] = []
            unit.reserveCapacity(n * c)
            for i in 0..<n { unit += l2Normalized(p.embeddings[(i * c)..<((i + 1) * c)]) }
            let x0Emb = unit.map { min(max(s.embeddingScale * $0, -s.embeddingScale), s.embeddingScale) }
            let a = schedule.sqrtRecipAlphasCumprod[pair.t], b = schedule.sqrtRecipm1AlphasCumprod[pair.t]
            let epsBox = zip(xBox, x0Box).map { (a * $0 - $1) / b }
            let epsEmb = zip(xEmb, x0Emb).map { (a * $0 - $1) / b }
            var scores = [Float](repeating: 0, count: n)
            for i in 0..<n {
                var best = -Float.infinity
                for j in 0..<s.numClasses { best = max(best, sigmoid(p.logits[i * s.numClasses + j])) }
                scores[i] = best
            }
            let keep = scores.map { !s.boxRenewal || $0 > s.renewalThreshold }
            trace?(SamplerStep(t: pair.t, next: pair.next, xBox: xBox, xEmb: xEmb, boxesIn: boxesIn, embIn: embIn,
                               prediction: p, keep: keep))
            last = stepDetections(p, unitEmbeddings: unit)
            if s.ensemble && steps > 1 { ensemble += last }
            guard pair.next >= 0 else { break }
            let (sa, cc, sigma) = schedule.ddimCoefficients(t: pair.t, next: pair.next, eta: s.eta)
            let kept = keep.indices.filter { keep[$0] }
            let r = kept.count
            let zBox = drawn["box_ddim_\(k)"]!, zEmb = drawn["emb_ddim_\(k)"]!
            var nextBox: [Float] = [], nextEmb: [Float] = []
            nextBox.reserveCapacity(n * 4)
            nextEmb.reserveCapacity(n * c)
            for (row, i) in kept.enumerated() {
                for d in 0..<4 { nextBox.append(x0Box[i * 4 + d] * sa + cc * epsBox[i * 4 + d] + sigma * zBox[row * 4 + d]) }
                for d in 0..<c { nextEmb.append(x0Emb[i * c + d] * sa + cc * epsEmb[i * c + d] + sigma * zEmb[row * c + d]) }
            }
            nextBox += drawn["box_renew_\(k)"]!.prefix((n - r) * 4)
            nextEmb += drawn["emb_renew_\(k)"]!.prefix((n - r) * c)
            (xBox, xEmb) = (nextBox, nextEmb)
        }
        var dets = (s.ensemble && steps > 1) ? ensemble : last
        let keepIdx = nonMaximumSuppression(dets.map(\.box), scores: dets.map(\.score), iouThreshold: s.nmsThreshold)
        dets = keepIdx.map { dets[$0] }
        return dets.compactMap { d in
            var d = d
            d.box = d.box.clipped(width: W, height: H)
            return d.box.width > 0 && d.box.height > 0 ? d : nil
        }
    }

    /// One step's detections, highest (box, class) scores first (DiffusionDet's `inference` top-k).
    private func stepDetections(_ p: HeadPrediction, unitEmbeddings: [Float]) -> [Detection] {
        let k = settings.numClasses, c = settings.embeddingDim
        let scores = p.logits.map(sigmoid)
        let order = descendingOrder(scores).prefix(settings.numProposals)
        return order.map { flat in
            let i = flat / k
            return Detection(box: Box(p.boxes[4 * i], p.boxes[4 * i + 1], p.boxes[4 * i + 2], p.boxes[4 * i + 3]),
                             score: scores[flat], embedding: Array(unitEmbeddings[(i * c)..<((i + 1) * c)]))
        }
    }

    /// Diffusion space → head input: b = (clamp(x, ±s1)/s1 + 1)/2 as (cx, cy, w, h) in [0, 1], to xyxy pixels.
    func boxesFromDiffusion(_ x: [Float], width W: Float, height H: Float) -> [Float] {
        let s1 = settings.boxScale
        var out = [Float](repeating: 0, count: x.count)
        for i in stride(from: 0, to: x.count, by: 4) {
            let b = (0..<4).map { (min(max(x[i + $0], -s1), s1) / s1 + 1) / 2 }
            out[i] = (b[0] - 0.5 * b[2]) * W
            out[i + 1] = (b[1] - 0.5 * b[3]) * H
            out[i + 2] = (b[0] + 0.5 * b[2]) * W
            out[i + 3] = (b[1] + 0.5 * b[3]) * H
        }
        return out
    }

    /// Predicted xyxy pixels → diffusion space: clamp((cxcywh(pred / (W,H,W,H))·2 - 1)·s1, ±s1).
    func diffusionFromBoxes(_ p: [Float], width W: Float, height H: Float) -> [Float] {
        let s1 = settings.boxScale
        var out = [Float](repeating: 0, count: p.count)
        for i in stride(from: 0, to: p.count, by: 4) {
            let x1 = p[i] / W, y1 = p[i + 1] / H, x2 = p[i + 2] / W, y2 = p[i + 3] / H
            let c = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
            for d in 0..<4 { out[i + d] = min(max((c[d] * 2 - 1) * s1, -s1), s1) }
        }
        return out
    }
}

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
