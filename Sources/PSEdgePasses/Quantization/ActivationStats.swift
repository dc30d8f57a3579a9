import Foundation
import PSEdgeIR
import PSEdgeRuntime

/// How a static activation range is chosen from calibration statistics.
public enum CalibrationMethod: Sendable, Equatable {
    /// The observed minimum and maximum.
    case minMax
    /// Clip both tails at the given percentile (e.g. 99.99).
    case percentile(Double)
    /// The clipping range that minimizes the expected squared quantization error over the observed histogram.
    case mse

    public init?(name: String) {
        switch name.lowercased() {
        case "minmax", "min-max": self = .minMax
        case "mse": self = .mse
        case "percentile": self = .percentile(99.99)
        default:
            if name.lowercased().hasPrefix("percentile:"), let p = Double(name.dropFirst("percentile:".count)), p > 50, p <= 100 {
                self = .percentile(p)
            } else {
                return nil
            }
        }
    }

    public var name: String {
        switch self {
        case .minMax: return "minmax"
        case .mse: return "mse"
        case .percentile(let p): return "percentile:\(p)"
        }
    }
}

/// Statistics of one activation tensor over the calibration set: its range, then a histogram over that range.
struct ActivationStats {
    static let bins = 2048
    var lo = Float.infinity, hi = -Float.infinity
    var histogram: [Double] = []

    /// First pass: range.
    mutating func observeRange(_ t: Tensor) {
        let p = t.pointer(Float.self)
        for i in 0..<t.count where p[i].isFinite {
            lo = min(lo, p[i])
            hi = max(hi, p[i])
        }
    }

    /// Second pass: histogram over [lo, hi].
    mutating func observeHistogram(_ t: Tensor) {
        if histogram.isEmpty { histogram = [Double](repeating: 0, count: Self.bins) }
        guard hi > lo else { histogram[0] += Double(t.count); return }
        let p = t.pointer(Float.self)
        let scale = Float(Self.bins) / (hi - lo)
        histogram.withUnsafeMutableBufferPointer { h in
            for i in 0..<t.count where p[i].isFinite {
                let b = Int((p[i] - lo) * scale)
                h[min(max(b, 0), Self.bins - 1)] += 1
            }
        }
    }

    var observed: Bool { lo <= hi }

    /// The value below which `fraction` of the observations lie (from the histogram).
    func quantile(_ fraction: Double) -> Float {
        let total = histogram.reduce(0, +)
        guard total > 0, hi > lo else { return lo }
        let width = (hi - lo) / Float(Self.bins)
        var acc = 0.0
        for (i, c) in histogram.enumerated() {
            if acc + c >= fraction * total {
                let within = c > 0 ? (fraction * total - acc) / c : 0
                return lo + width * (Float(i) + Float(within))
            }
            acc += c
        }
        return hi
    }

    /// Expected squared error of quantizing the histogram to u8 over [a, b].
    func expectedError(lo a: Float, hi b: Float) -> Double {
        let range = U8Range(lo: a, hi: b)
        let step = Double(range.scale)
        let rounding = step * step / 12
        let width = (hi - lo) / Float(Self.bins)
        var err = 0.0
        let top = Double(range.scale) * Double(255 - range.zeroPoint), bottom = -Double(range.scale) * Double(range.zeroPoint)
        for (i, c) in histogram.enumerated() where c > 0 {
            let v = Double(lo + width * (Float(i) + 0.5))
            if v > top { err += c * (v - top) * (v - top) }
            else if v < bottom { err += c * (bottom - v) * (bottom - v) }
            else { err += c * rounding }
        }
        return err
    }

    /// The static range for a method.
    func range(_ method: CalibrationMethod) -> (lo: Float, hi: Float) {
        guard observed else { return (0, 0) }
        switch method {
        case .minMax:
            return (lo, hi)
        case .percentile(let p):
            return (quantile(1 - p / 100), quantile(p / 100))
        case .mse:
            var best = (lo, hi), bestErr = expectedError(lo: lo, hi: hi)
            // Candidates: clip each tail at matching percentiles, from none to a few percent.
            for tail in [1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2] {
                let a = quantile(tail), b = quantile(1 - tail)
                let e = expectedError(lo: a, hi: b)
                if e < bestErr { bestErr = e; best = (a, b) }
                for (a2, b2) in [(lo, b), (a, hi)] {
                    let e2 = expectedError(lo: a2, hi: b2)
                    if e2 < bestErr { bestErr = e2; best = (a2, b2) }
                }
            }
            return best
        }
    }
}
