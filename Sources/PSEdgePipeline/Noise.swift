import Foundation

/// Where the sampler's Gaussian noise comes from. Draws happen in a fixed order of keys (`PSDiffSampler.noiseKeys`)
/// with full [N, dim] shapes, so the draws of S steps are a prefix of those of more steps.
public protocol NoiseSource {
    mutating func normal(key: String, count: Int) throws -> [Float]
}

/// Reproducible standard normal noise: xoshiro256** seeded through SplitMix64, Box–Muller in double precision.
public struct SeededNoise: NoiseSource {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spare: Double?

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    private mutating func nextUInt64() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in (0, 1): 53 random bits, never 0 (log(0) in Box–Muller).
    private mutating func uniform() -> Double { (Double(nextUInt64() >> 11) + 0.5) / 9_007_199_254_740_992.0 }

    public mutating func normal(key: String, count: Int) -> [Float] {
        (0..<count).map { _ in Float(standardNormal()) }
    }

    private mutating func standardNormal() -> Double {
        if let v = spare { spare = nil; return v }
        let r = (-2 * log(uniform())).squareRoot(), theta = 2 * Double.pi * uniform()
        spare = r * sin(theta)
        return r * cos(theta)
    }
}

/// Noise recorded elsewhere (e.g. by the PyTorch reference), replayed by key.
public struct ReplayedNoise: NoiseSource {
    public var arrays: [String: [Float]]
    public init(_ arrays: [String: [Float]]) { self.arrays = arrays }

    public mutating func normal(key: String, count: Int) throws -> [Float] {
        guard let a = arrays[key] else { throw PipelineError.invalidInput("replayed noise has no '\(key)'") }
        guard a.count >= count else { throw PipelineError.invalidInput("replayed noise '\(key)' has \(a.count) values, \(count) needed") }
        return Array(a.prefix(count))
    }
}
