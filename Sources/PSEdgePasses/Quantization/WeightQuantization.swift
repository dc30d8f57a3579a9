import PSEdgeIR

/// Symmetric per-output-channel int8 weights: q = round(w / s), s = max|w| / 127, q ∈ [−127, 127].
struct QuantizedWeight {
    let values: Tensor   // int8
    let scales: Tensor   // f32, one per output channel

    /// `rows` × `cols` float matrix; channels along `channelAxis` (0: one scale per row, 1: per column).
    init(_ w: UnsafePointer<Float>, rows: Int, cols: Int, channelAxis: Int) {
        let channels = channelAxis == 0 ? rows : cols
        var maxAbs = [Float](repeating: 0, count: channels)
        for r in 0..<rows {
            for c in 0..<cols {
                let ch = channelAxis == 0 ? r : c
                maxAbs[ch] = max(maxAbs[ch], abs(w[r * cols + c]))
            }
        }
        let scales = maxAbs.map { $0 > 0 && $0.isFinite ? $0 / 127 : 1 }
        let q = Tensor(zeros: .int8, shape: [rows, cols])
        let qp = q.pointer(Int8.self)
        for r in 0..<rows {
            for c in 0..<cols {
                let s = scales[channelAxis == 0 ? r : c]
                let v = (w[r * cols + c] / s).rounded(.toNearestOrEven)
                qp[r * cols + c] = Int8(max(-127, min(127, v.isFinite ? v : 0)))
            }
        }
        values = q
        self.scales = Tensor(scales, shape: [channels])
    }
}
