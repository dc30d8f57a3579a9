import Foundation

/// Box regression decoding (torchvision `BoxCoder.decode_single`, Detectron2 `apply_deltas`) in float32:
/// dx = d0/wx, dy = d1/wy, dw = min(d2/ww, clip), dh = min(d3/wh, clip); the centre moves by (dx·w, dy·h),
/// the size scales by exp(dw), exp(dh).
public struct BoxCoder: Sendable {
    public var weights: (Float, Float, Float, Float)
    public var scaleClamp: Float

    public init(weights: (Float, Float, Float, Float), scaleClamp: Float = Float(log(1000.0 / 16))) {
        self.weights = weights
        self.scaleClamp = scaleClamp
    }

    public func decode(_ d: (Float, Float, Float, Float), reference b: Box) -> Box {
        let w = b.x2 - b.x1, h = b.y2 - b.y1
        let cx = b.x1 + 0.5 * w, cy = b.y1 + 0.5 * h
        let dx = d.0 / weights.0, dy = d.1 / weights.1
        let dw = min(d.2 / weights.2, scaleClamp), dh = min(d.3 / weights.3, scaleClamp)
        let pcx = dx * w + cx, pcy = dy * h + cy
        let pw = expf(dw) * w, ph = expf(dh) * h
        return Box(pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph)
    }
}
