import Foundation

/// The diffusion buffers a PSDiff-style head was trained with, and the DDIM arithmetic on them.
///
/// The values come from the checkpoint (`alphas_cumprod`, `sqrt_recip_alphas_cumprod`,
/// `sqrt_recipm1_alphas_cumprod`, float32) rather than being recomputed, so the sampler sees the numbers the
/// reference saw.
public struct DiffusionSchedule: Sendable {
    public let alphasCumprod: [Float]
    public let sqrtRecipAlphasCumprod: [Float]
    public let sqrtRecipm1AlphasCumprod: [Float]

    public var timesteps: Int { alphasCumprod.count }

    public init(alphasCumprod: [Float], sqrtRecipAlphasCumprod: [Float], sqrtRecipm1AlphasCumprod: [Float]) throws {
        let n = alphasCumprod.count
        guard n > 1, sqrtRecipAlphasCumprod.count == n, sqrtRecipm1AlphasCumprod.count == n else {
            throw PipelineError.invalidModel("diffusion buffers must have one value per timestep (got \(n), \(sqrtRecipAlphasCumprod.count), \(sqrtRecipm1AlphasCumprod.count))")
        }
        guard alphasCumprod.allSatisfy({ $0 > 0 && $0 < 1 }) else {
            throw PipelineError.invalidModel("alphas_cumprod must lie in (0, 1)")
        }
        self.alphasCumprod = alphasCumprod
        self.sqrtRecipAlphasCumprod = sqrtRecipAlphasCumprod
        self.sqrtRecipm1AlphasCumprod = sqrtRecipm1AlphasCumprod
    }

    /// DDIM (t, t') pairs for `steps` steps: trunc(linspace(-1, T-1, steps+1)) reversed and paired; the last t' is -1.
    public func timePairs(steps: Int) -> [(t: Int, next: Int)] {
        let T = Double(timesteps)
        let times = (0...steps).map { k -> Int in
            let v = Float(-1 + Double(k) * T / Double(steps))
            return Int(v.rounded(.towardZero))
        }.reversed().map { $0 }
        return (0..<steps).map { (times[$0], times[$0 + 1]) }
    }

    /// sqrt(a'), c and sigma of one DDIM step, computed in float64 from the float32 buffer values and rounded
    /// to float32: sigma = eta·sqrt((1 - a/a')(1 - a')/(1 - a)), c = sqrt(max(1 - a' - sigma², 0)).
    public func ddimCoefficients(t: Int, next: Int, eta: Double) -> (sqrtAlphaNext: Float, c: Float, sigma: Float) {
        let a = Double(alphasCumprod[t]), an = Double(alphasCumprod[next])
        let sigma = eta * ((1 - a / an) * (1 - an) / (1 - a)).squareRoot()
        let c = max(1 - an - sigma * sigma, 0).squareRoot()
        return (Float(an.squareRoot()), Float(c), Float(sigma))
    }
}
