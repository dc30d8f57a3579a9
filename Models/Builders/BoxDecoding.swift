import PSEdgeIR

extension GraphBuilder {
    /// torchvision BoxCoder / Detectron2 `apply_deltas` (tools/psref/boxops.py `decode_deltas`), in torch's op order:
    /// w = x2 - x1, cx = x1 + 0.5 w; dx = d0 / wx, dw = min(d2 / ww, clamp); pcx = dx w + cx, pw = exp(dw) w;
    /// out = (pcx - 0.5 pw, pcy - 0.5 ph, pcx + 0.5 pw, pcy + 0.5 ph). `deltas` and `boxes` are [..., 4] (xyxy).
    func decodeBoxDeltas(_ deltas: Value, boxes: Value, weights: [Float], scaleClamp: Float, scope p: String) throws -> Value {
        guard deltas.shape == boxes.shape, deltas.shape.last == 4, weights.count == 4 else {
            throw PSEdgeError.shape("\(p): deltas \(deltas) and boxes \(boxes) should both be [..., 4]")
        }
        let axis = deltas.rank - 1
        let bx = try split(boxes, sizes: [1, 1, 1, 1], axis: axis, scope: "\(p)/boxes")
        let d = try split(deltas, sizes: [1, 1, 1, 1], axis: axis, scope: "\(p)/deltas")
        let half = scalar(0.5, name: "\(p)/half")
        let clamp = scalar(scaleClamp, name: "\(p)/scale_clamp")
        func w(_ i: Int) -> Value { scalar(weights[i], name: "\(p)/weight\(i)") }

        var corners: [Value] = []
        var centers: [Value] = [], sizes: [Value] = []
        for axisIndex in 0..<2 {  // x, then y
            let lo = bx[axisIndex], hi = bx[axisIndex + 2]
            let size = try binary("Sub", hi, lo, scope: p)
            let center = try add(lo, try mul(half, size, scope: p), scope: p)
            let shift = try div(d[axisIndex], w(axisIndex), scope: p)
            let scaled = try div(d[axisIndex + 2], w(axisIndex + 2), scope: p)
            let clamped = node("Clip", [scaled, nil, clamp], scope: p, outputs: [TensorType(.float32, static: scaled.shape)])[0]
            centers.append(try add(try mul(shift, size, scope: p), center, scope: p))
            sizes.append(try mul(unary("Exp", clamped, scope: p), size, scope: p))
        }
        for sign in ["Sub", "Add"] {
            for axisIndex in 0..<2 {
                corners.append(try binary(sign, centers[axisIndex], try mul(half, sizes[axisIndex], scope: p), scope: p))
            }
        }
        return try concat(corners, axis: axis, scope: p)
    }
}
