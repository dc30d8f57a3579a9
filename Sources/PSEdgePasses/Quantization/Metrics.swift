import Foundation
import PSEdgeIR

/// Fidelity measures between a reference tensor and an approximation.
public enum Fidelity {
    /// Signal-to-quantization-noise ratio in dB: 10·log10(Σref² / Σ(ref−x)²); +∞ when identical.
    public static func sqnr(reference: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int) -> Double {
        var signal = 0.0, noise = 0.0
        for i in 0..<count {
            let r = Double(reference[i]), d = r - Double(x[i])
            signal += r * r
            noise += d * d
        }
        if noise == 0 { return .infinity }
        if signal == 0 { return -.infinity }
        return 10 * log10(signal / noise)
    }

    /// Accumulates cosine similarity and relative error over many tensors (e.g. every output of every sample).
    public struct Accumulator: Sendable {
        var dot = 0.0, rr = 0.0, xx = 0.0
        var maxAbsError = 0.0, maxAbsReference = 0.0
        public init() {}

        public mutating func add(reference: Tensor, _ x: Tensor) {
            let r = reference.pointer(Float.self), y = x.pointer(Float.self)
            for i in 0..<min(reference.count, x.count) {
                let a = Double(r[i]), b = Double(y[i])
                dot += a * b
                rr += a * a
                xx += b * b
                maxAbsError = max(maxAbsError, abs(a - b))
                maxAbsReference = max(maxAbsReference, abs(a))
            }
        }

        /// Cosine similarity of the concatenated tensors.
        public var cosine: Double { rr == 0 && xx == 0 ? 1 : dot / max((rr * xx).squareRoot(), .leastNormalMagnitude) }
        /// max |ref − x| / max |ref|.
        public var relativeError: Double { maxAbsReference > 0 ? maxAbsError / maxAbsReference : maxAbsError }
    }
}
