import PSEdgeIR
import PSEdgeRuntime

/// What `psedge convert --quantize` asked for.
public struct QuantizationOptions: Sendable {
    public enum Scheme: String, Sendable {
        /// int8 weights and u8 activations (static ranges from calibration, or dynamic without it).
        case int8
        /// int8 weights only; activations stay float.
        case weightOnly = "int8-weights"
    }

    public var scheme: Scheme = .int8
    /// Calibration samples: input name → value, one dictionary per sample.
    public var calibration: [[String: Tensor]] = []
    public var method: CalibrationMethod = .mse
    /// Keep the most sensitive layers in float until the output cosine against fp32 on the calibration set
    /// reaches this value.
    public var targetCosine: Double?
    /// A layer goes dynamic (per-row ranges at run time) when that beats its static SQNR by this many dB.
    public var dynamicGainDB = 3.0
    public var allowDynamic = true
    /// Matrix products whose reduction has at most this many terms keep fp32 activations (int8 weights only, the
    /// product in fp32): at such K, quantizing the activations and dequantizing the result cost more than the int8
    /// products save (the mini UNet's 32-term projections: 85 µs int8 vs 30 µs fp32 for 1024×32·32×32). 0 turns
    /// it off. Convolutions are not affected (their K is channels × kernel area).
    public var weightOnlyMaxK = 64
    /// Node names (or output names) never quantized.
    public var keepFloat: Set<String> = []
    /// How many of the worst layers (by layer SQNR) get a model-level sensitivity measurement.
    public var modelSensitivityLayers = 16
    /// Calibration samples used for the per-layer measurements (the range statistics use all of them).
    public var measurementSamples = 4
    public var threads = 1

    public init() {}
}

/// What the quantizer measured and decided, layer by layer.
public struct QuantizationReport: Sendable {
    public struct Layer: Sendable {
        public let name: String
        public let op: String
        /// Layer output SQNR (dB) with static and with dynamic activation ranges, fp32 inputs.
        public var sqnrStatic: Double?
        public var sqnrDynamic: Double?
        /// Model output SQNR (dB) with only this layer int8 (measured for the most sensitive layers).
        public var modelSQNR: Double?
        /// "int8 static", "int8 dynamic", "int8 weight-only" or "float".
        public var decision: String
        public var reason: String
    }

    public var layers: [Layer] = []
    public var scheme: String = ""
    public var method: String = ""
    public var calibrationSamples = 0
    /// Output fidelity against fp32 on the calibration set (nil without calibration).
    public var cosine: Double?
    public var relativeError: Double?
    public var floatWeightBytes = 0
    public var quantizedWeightBytes = 0
    /// Quantized weight constants: name → (channel axis, scales), for the .psm quantization table.
    public var weightScales: [String: (axis: Int, scales: [Float])] = [:]

    public var lines: [String] {
        var out = ["quantization: \(scheme), calibration \(calibrationSamples) samples, method \(method)"]
        func db(_ v: Double?) -> String {
            guard let v else { return "    -" }
            return v.isInfinite ? "  inf" : String(format: "%5.1f", v)
        }
        out.append("  layer                                              op        static  dynamic  model  decision")
        for l in layers {
            let n = l.name.count > 50 ? "…" + l.name.suffix(49) : l.name
            out.append("  \(n.padding(toLength: 50, withPad: " ", startingAt: 0)) \(l.op.padding(toLength: 9, withPad: " ", startingAt: 0)) \(db(l.sqnrStatic))   \(db(l.sqnrDynamic))   \(db(l.modelSQNR))  \(l.decision)\(l.reason.isEmpty ? "" : " (\(l.reason))")")
        }
        let q = layers.filter { $0.decision.hasPrefix("int8") }.count
        out.append("  \(q) of \(layers.count) layers int8; weights \(floatWeightBytes) B fp32 → \(quantizedWeightBytes) B")
        if let c = cosine, let r = relativeError {
            out.append(String(format: "  output vs fp32 on calibration data: cosine %.6f, relative error %.3e", c, r))
        }
        return out
    }
}
