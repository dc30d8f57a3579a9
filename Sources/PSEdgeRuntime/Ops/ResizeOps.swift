import PSEdgeIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension OpRegistry {
    static let resizeOps: [String: KernelFactory] = [
        "Resize": ResizeOps.resize,
        "Upsample": ResizeOps.upsample,
        "RoiAlign": RoiAlignOp.make,
    ]
}

/// Resize and Upsample. Interpolation is separable, so each resized axis gets a table of taps
/// (input index, weight) per output index, built at plan time in Double from the ONNX formulas;
/// nearest becomes an index gather (any dtype), linear and cubic become weighted passes (float32).
enum ResizeOps {
    struct Spec {
        var mode = "nearest"
        var coord = "half_pixel"
        var nearestMode = "round_prefer_floor"
        var cubicA = -0.75
        var excludeOutside = false
        var extrapolation: Float = 0
        var antialias = false
    }

    /// One resized axis.
    struct AxisTaps {
        let axis: Int
        let inSize: Int
        let outSize: Int
        let n: Int
        var index: [Int]      // outSize * n, clamped to [0, inSize)
        var weight: [Float]   // outSize * n
        var extrapolate: [Bool]
    }

    // MARK: factories

    static func resize(_ ctx: KernelContext) throws -> Kernel {
        let shape = try ctx.shape(0)
        let dtype = try ctx.dtype(0)
        let rank = shape.count
        let a = ctx.attrs
        var spec = Spec()
        spec.mode = try a.string("mode", default: "nearest")
        var scales: [Double]? = nil
        var sizes: [Int]? = nil
        var roi: [Double]? = nil
        var axes = Array(0..<rank)
        var policy = "stretch"
        if ctx.opset < 11 {
            try ctx.requireInputs(2...2)
            spec.coord = "asymmetric"
            spec.nearestMode = "legacy"
            guard let s = try OpsKit.constFloats(ctx, 1, "scales") else {
                throw PSEdgeError.malformed("\(ctx.label): input 'scales' is required")
            }
            scales = s.map(Double.init)
        } else {
            try ctx.requireInputs(1...4)
            spec.coord = try a.string("coordinate_transformation_mode", default: "half_pixel")
            spec.nearestMode = try a.string("nearest_mode", default: "round_prefer_floor")
            spec.cubicA = Double(try a.float("cubic_coeff_a", default: -0.75))
            spec.excludeOutside = try a.int("exclude_outside", default: 0) != 0
            spec.extrapolation = try a.float("extrapolation_value", default: 0)
            spec.antialias = try a.int("antialias", default: 0) != 0
            policy = try a.string("keep_aspect_ratio_policy", default: "stretch")
            if let ax = try a.ints("axes") { axes = try OpsKit.axes(ax, rank: rank, ctx) }
            if let s = try OpsKit.constFloats(ctx, 2, "scales"), !s.isEmpty { scales = s.map(Double.init) }
            if scales == nil, let s = try OpsKit.constInts(ctx, 3, "sizes"), !s.isEmpty { sizes = s }
            if scales != nil, OpsKit.present(ctx, 3), let s = ctx.optionalConstant(3), s.count > 0 {
                throw OpsKit.invalid(ctx, "only one of 'scales' and 'sizes' may be given")
            }
            guard scales != nil || sizes != nil else {
                throw OpsKit.invalid(ctx, "one of 'scales' (input 2) and 'sizes' (input 3) must be given")
            }
            if spec.coord == "tf_crop_and_resize" {
                guard let r = try OpsKit.constFloats(ctx, 1, "roi") else {
                    throw OpsKit.invalid(ctx, "coordinate_transformation_mode tf_crop_and_resize needs the 'roi' input")
                }
                roi = r.map(Double.init)
            }
        }
        let modes = ["nearest", "linear", "cubic"]
        guard modes.contains(spec.mode) else {
            throw OpsKit.unsupported(ctx, "mode", spec.mode, supported: modes.joined(separator: ", "))
        }
        let coords = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                      "tf_crop_and_resize", "tf_half_pixel_for_nn"]
        guard coords.contains(spec.coord) else {
            throw OpsKit.unsupported(ctx, "coordinate_transformation_mode", spec.coord, supported: coords.joined(separator: ", "))
        }
        let nearestModes = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "legacy"]
        guard nearestModes.contains(spec.nearestMode) else {
            throw OpsKit.unsupported(ctx, "nearest_mode", spec.nearestMode, supported: nearestModes.dropLast().joined(separator: ", "))
        }
        guard ["stretch", "not_larger", "not_smaller"].contains(policy) else {
            throw OpsKit.unsupported(ctx, "keep_aspect_ratio_policy", policy, supported: "stretch, not_larger, not_smaller")
        }
        if spec.antialias && spec.mode == "nearest" {
            throw OpsKit.unsupported(ctx, "antialias", "1", supported: "0 with mode nearest")
        }

        // Full-rank scales and output sizes.
        var fullScale = [Double](repeating: 1, count: rank)
        var outShape = shape
        if let scales {
            guard scales.count == axes.count else {
                throw OpsKit.invalid(ctx, "scales has \(scales.count) values for \(axes.count) axes (input rank \(rank))")
            }
            for (i, ax) in axes.enumerated() {
                guard scales[i] > 0 else { throw OpsKit.invalid(ctx, "scale \(scales[i]) must be positive") }
                fullScale[ax] = scales[i]
                outShape[ax] = Int((scales[i] * Double(shape[ax])).rounded(.down))
            }
        } else if let sizes {
            guard sizes.count == axes.count else {
                throw OpsKit.invalid(ctx, "sizes has \(sizes.count) values for \(axes.count) axes (input rank \(rank))")
            }
            for (i, ax) in axes.enumerated() {
                guard sizes[i] >= 0 else { throw OpsKit.invalid(ctx, "size \(sizes[i]) must be non-negative") }
                guard shape[ax] > 0 || sizes[i] == 0 else { throw OpsKit.invalid(ctx, "cannot resize the empty axis \(ax) to \(sizes[i])") }
                outShape[ax] = sizes[i]
                fullScale[ax] = shape[ax] > 0 ? Double(sizes[i]) / Double(shape[ax]) : 1
            }
            if policy != "stretch" {
                let picked = axes.map { fullScale[$0] }
                let s = policy == "not_larger" ? picked.min() ?? 1 : picked.max() ?? 1
                for ax in axes {
                    fullScale[ax] = s
                    outShape[ax] = Int(s * Double(shape[ax]) + 0.5)
                }
            }
        }
        var fullRoi: [Double]? = nil
        if let roi {
            if roi.count == 2 * rank && axes.count == rank {
                fullRoi = roi
            } else if roi.count == 2 * axes.count {
                var r = [Double](repeating: 0, count: rank) + [Double](repeating: 1, count: rank)
                for (i, ax) in axes.enumerated() { r[ax] = roi[i]; r[rank + ax] = roi[axes.count + i] }
                fullRoi = r
            } else {
                throw OpsKit.invalid(ctx, "roi has \(roi.count) values; expected \(2 * axes.count)")
            }
        }
        return try build(ctx, shape: shape, dtype: dtype, outShape: outShape, scale: fullScale, roi: fullRoi, spec: spec)
    }

    static func upsample(_ ctx: KernelContext) throws -> Kernel {
        let shape = try ctx.shape(0)
        let dtype = try ctx.dtype(0)
        var spec = Spec()
        spec.mode = try ctx.attrs.string("mode", default: "nearest")
        if spec.mode == "bilinear" { spec.mode = "linear" }
        guard spec.mode == "nearest" || spec.mode == "linear" else {
            throw OpsKit.unsupported(ctx, "mode", spec.mode, supported: "nearest, linear")
        }
        spec.coord = "asymmetric"
        spec.nearestMode = "legacy"
        var scales: [Double]
        if let s = try ctx.attrs.floats("scales") {
            try ctx.requireInputs(1...1)
            scales = s.map(Double.init)
        } else if ctx.opset < 7, let h = try ctx.attrs.float("height_scale"), let w = try ctx.attrs.float("width_scale") {
            scales = [1, 1, Double(h), Double(w)]
        } else {
            try ctx.requireInputs(2...2)
            scales = (try OpsKit.constFloats(ctx, 1, "scales") ?? []).map(Double.init)
        }
        guard scales.count == shape.count, scales.allSatisfy({ $0 > 0 }) else {
            throw OpsKit.invalid(ctx, "scales \(scales) must have one positive value per input axis (rank \(shape.count))")
        }
        let outShape = zip(shape, scales).map { Int((Double($0) * $1).rounded(.down)) }
        return try build(ctx, shape: shape, dtype: dtype, outShape: outShape, scale: scales, roi: nil, spec: spec)
    }

    // MARK: plan

    /// Source coordinate of output index o along one axis, and whether it lies outside a tf_crop_and_resize roi.
    static func sourceCoordinate(_ o: Int, spec: Spec, scale: Double, inSize: Int, outSize: Int,
                                 roi: (Double, Double)?) -> (Double, Bool) {
        let x = Double(o)
        let inW = Double(inSize)
        let outW = scale * inW
        switch spec.coord {
        case "align_corners":
            return (outW == 1 ? 0 : x * (inW - 1) / (outW - 1), false)
        case "asymmetric":
            return (x / scale, false)
        case "tf_half_pixel_for_nn":
            return ((x + 0.5) / scale, false)
        case "tf_crop_and_resize":
            let (r0, r1) = roi ?? (0, 1)
            var v = outW == 1 ? (r1 - r0) * (inW - 1) / 2 : x * (r1 - r0) * (inW - 1) / (outW - 1)
            v += r0 * (inW - 1)
            return (v, v < 0 || v > inW - 1)
        case "pytorch_half_pixel":
            return (outW == 1 ? -0.5 : (x + 0.5) / scale - 0.5, false)
        case "half_pixel_symmetric":
            let adjustment = Double(outSize) / outW
            let offset = inW / 2 * (1 - adjustment)
            return (offset + (x + 0.5) / scale - 0.5, false)
        default: // half_pixel
            return ((x + 0.5) / scale - 0.5, false)
        }
    }

    static func cubicCoeffs(_ ratio: Double, _ A: Double) -> [Double] {
        let r1 = ratio + 1, r0 = ratio, s0 = 1 - ratio, s1 = 2 - ratio
        return [
            ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A,
            ((A + 2) * r0 - (A + 3)) * r0 * r0 + 1,
            ((A + 2) * s0 - (A + 3)) * s0 * s0 + 1,
            ((A * s1 - 5 * A) * s1 + 8 * A) * s1 - 4 * A,
        ]
    }

    static func coefficients(_ ratio: Double, scale: Double, spec: Spec) -> [Double] {
        switch spec.mode {
        case "linear":
            if !spec.antialias { return [1 - ratio, ratio] }
            let s = min(scale, 1)
            let start = Int((-1 / s).rounded(.down)) + 1
            let footprint = 2 - 2 * start
            var c = (0..<footprint).map { i in max(0, min(1, 1 - abs((Double(start + i) - ratio) * s))) }
            let sum = c.reduce(0, +)
            if sum != 0 { c = c.map { $0 / sum } }
            return c
        case "cubic":
            if !spec.antialias { return cubicCoeffs(ratio, spec.cubicA) }
            let s = min(scale, 1)
            let A = spec.cubicA
            let iStart = Int((-2 / s).rounded(.down)) + 1
            let iEnd = 2 - iStart
            var c: [Double] = (iStart..<iEnd).map { i in
                let x = abs(s * (Double(i) - ratio))
                if x <= 1 { return ((A + 2) * x - (A + 3)) * x * x + 1 }
                if x < 2 { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A }
                return 0
            }
            let sum = c.reduce(0, +)
            if sum != 0 { c = c.map { $0 / sum } }
            return c
        default:
            if ratio == 1 { return [0, 1] }
            switch spec.nearestMode {
            case "round_prefer_ceil": return ratio < 0.5 ? [1, 0] : [0, 1]
            case "floor": return [1, 0]
            case "ceil": return [0, 1]
            default: return ratio <= 0.5 ? [1, 0] : [0, 1]
            }
        }
    }

    static func taps(axis: Int, inSize: Int, outSize: Int, scale: Double, roi: (Double, Double)?, spec: Spec) -> AxisTaps {
        var index: [Int] = [], weight: [Float] = [], extrap: [Bool] = []
        var n = 0
        for o in 0..<outSize {
            let (x, outside) = sourceCoordinate(o, spec: spec, scale: scale, inSize: inSize, outSize: outSize, roi: roi)
            extrap.append(outside)
            if spec.mode == "nearest" && spec.nearestMode == "legacy" {
                // Opset < 11 Resize and Upsample: floor when upsampling, ceil when downsampling.
                let i = scale < 1 ? Int(x.rounded(.up)) : Int(x.rounded(.down))
                index.append(min(max(i, 0), inSize - 1)); weight.append(1)
                n = 1
                continue
            }
            let fl = x.rounded(.down)
            let ratio = x == fl ? 1 : x - fl
            var c = coefficients(ratio, scale: scale, spec: spec)
            n = c.count
            let start: Int
            if n % 2 == 0 {
                start = Int(fl) + (x == fl ? -(n / 2) : -(n / 2) + 1)
            } else {
                let base = -((n - 1) / 2)
                start = Int(fl) + (x - fl <= 0.5 ? base : base + 1)
            }
            if spec.excludeOutside {
                for k in 0..<n where start + k < 0 || start + k >= inSize { c[k] = 0 }
                var s = c.reduce(0, +)
                if s == 0 { s = 1 }
                c = c.map { $0 / s }
            }
            for k in 0..<n {
                index.append(min(max(start + k, 0), inSize - 1))
                weight.append(Float(c[k]))
            }
        }
        if spec.mode == "nearest" && n == 2 {
            // Keep the tap with weight 1.
            var idx: [Int] = []
            for o in 0..<outSize { idx.append(weight[2 * o] != 0 ? index[2 * o] : index[2 * o + 1]) }
            return AxisTaps(axis: axis, inSize: inSize, outSize: outSize, n: 1, index: idx,
                            weight: [Float](repeating: 1, count: outSize), extrapolate: extrap)
        }
        return AxisTaps(axis: axis, inSize: inSize, outSize: outSize, n: max(n, 1), index: index, weight: weight, extrapolate: extrap)
    }

    static func build(_ ctx: KernelContext, shape: [Int], dtype: DType, outShape: [Int], scale: [Double], roi: [Double]?,
                      spec: Spec) throws -> Kernel {
        let rank = shape.count
        var axisTaps: [AxisTaps] = []
        for d in 0..<rank {
            let r: (Double, Double)? = roi.map { ($0[d], $0[rank + d]) }
            let trivialRoi = r.map { abs($0.0) < 1e-9 && abs($0.1 - 1) < 1e-9 } ?? true
            if abs(scale[d] - 1) < 1e-9 && outShape[d] == shape[d] && trivialRoi { continue }
            if outShape[d] == 0 || shape[d] == 0 {
                if outShape[d] != 0 { throw OpsKit.invalid(ctx, "cannot resize the empty axis \(d) to \(outShape[d])") }
                continue
            }
            axisTaps.append(taps(axis: d, inSize: shape[d], outSize: outShape[d], scale: scale[d], roi: r, spec: spec))
        }
        let outType = TensorType(dtype, static: outShape)
        let empty = outShape.contains(0)
        if spec.mode == "nearest" {
            var maps = shape.map { Array(0..<$0) }
            for t in axisTaps {
                maps[t.axis] = (0..<t.outSize).map { t.extrapolate[$0] ? -1 : t.index[$0] }
            }
            let gather = IndexGather(inShape: shape, sourceIndex: maps, elemSize: dtype.byteSize)
            let fill = OpsKit.encode(Double(spec.extrapolation), as: dtype)
            return OpsKit.Fn([outType]) { ins, outs, pool in
                if empty { return }
                gather.run(ins[0]!.raw, outs[0].raw, fill: fill, pool: pool)
            }
        }
        guard dtype == .float32 else {
            throw PSEdgeError.unsupported("\(ctx.label): \(spec.mode) resize of \(dtype.name) data is not supported (float32 only; nearest handles every type)")
        }
        // Shrinking axes first keeps the intermediate tensors small.
        // Among equal ratios, the innermost axis (the gather-like pass) goes first, on the smaller tensor.
        let order = axisTaps.sorted {
            let r0 = Double($0.outSize) / Double($0.inSize), r1 = Double($1.outSize) / Double($1.inSize)
            return r0 != r1 ? r0 < r1 : $0.axis > $1.axis
        }
        var passes: [Pass] = []
        var cur = shape
        var maxIntermediate = 0
        for (i, t) in order.enumerated() {
            let outer = OpsKit.product(cur[..<t.axis]), inner = OpsKit.product(cur[(t.axis + 1)...])
            passes.append(Pass(taps: t, outer: outer, inner: inner, fill: spec.extrapolation))
            cur[t.axis] = t.outSize
            if i < order.count - 1 { maxIntermediate = max(maxIntermediate, OpsKit.product(cur)) }
        }
        let scratch = [OpsKit.Scratch(floats: maxIntermediate), OpsKit.Scratch(floats: passes.count > 2 ? maxIntermediate : 0)]
        return OpsKit.Fn([outType]) { ins, outs, pool in
            if empty { return }
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            if passes.isEmpty {
                y.update(from: x, count: outs[0].count)
                return
            }
            var src = UnsafePointer(x)
            for (i, p) in passes.enumerated() {
                let dst = i == passes.count - 1 ? y : scratch[i % 2].floats
                p.run(src, dst, pool)
                src = UnsafePointer(dst)
            }
        }
    }

    /// One separable interpolation pass along an axis of a [outer, inSize, inner] tensor.
    struct Pass {
        let outer: Int, inSize: Int, outSize: Int, inner: Int, n: Int
        let index: [Int], weight: [Float], extrapolate: [Bool]
        let fill: Float
        let anyExtrapolated: Bool

        init(taps t: AxisTaps, outer: Int, inner: Int, fill: Float) {
            self.outer = outer; self.inner = inner
            inSize = t.inSize; outSize = t.outSize; n = t.n
            index = t.index; weight = t.weight; extrapolate = t.extrapolate
            self.fill = fill
            anyExtrapolated = t.extrapolate.contains(true)
        }

        func run(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
            let rows = outer * outSize
            let (n, inner, inSize, outSize, fill, anyEx) = (n, inner, inSize, outSize, fill, anyExtrapolated)
            index.withUnsafeBufferPointer { ib in
                weight.withUnsafeBufferPointer { wb in
                    extrapolate.withUnsafeBufferPointer { eb in
                        let idx = ib.baseAddress!, w = wb.baseAddress!, ex = eb.baseAddress!
                        if inner == 1 {
                            // Along the last axis: per input row, gather-and-weight each output element.
                            pool.parallelChunks(outer, minChunk: max(1, 8192 / max(1, outSize * n))) { range in
                                for o in range {
                                    let src = x + o * inSize, dst = y + o * outSize
                                    if n == 2 {
                                        for j in 0..<outSize {
                                            dst[j] = w[2 * j] * src[idx[2 * j]] + w[2 * j + 1] * src[idx[2 * j + 1]]
                                        }
                                    } else {
                                        for j in 0..<outSize {
                                            var acc: Float = 0
                                            for k in 0..<n { acc += w[j * n + k] * src[idx[j * n + k]] }
                                            dst[j] = acc
                                        }
                                    }
                                    if anyEx {
                                        for j in 0..<outSize where ex[j] { dst[j] = fill }
                                    }
                                }
                            }
                            return
                        }
                        pool.parallelChunks(rows, minChunk: max(1, 8192 / max(1, inner * n))) { range in
                            for r in range {
                                let o = r / outSize, j = r % outSize
                                let dst = y + r * inner
                                if anyEx && ex[j] {
                                    for i in 0..<inner { dst[i] = fill }
                                    continue
                                }
                                let base = x + o * inSize * inner
                                let ti = idx + j * n, tw = w + j * n
                                if inner == 1 {
                                    var acc: Float = 0
                                    for k in 0..<n { acc += tw[k] * base[ti[k]] }
                                    dst[0] = acc
                                } else if n == 2 {
                                    let a = base + ti[0] * inner, b = base + ti[1] * inner
                                    let wa = tw[0], wbv = tw[1]
                                    for i in 0..<inner { dst[i] = wa * a[i] + wbv * b[i] }
                                } else {
                                    let a = base + ti[0] * inner
                                    let w0 = tw[0]
                                    for i in 0..<inner { dst[i] = w0 * a[i] }
                                    for k in 1..<n {
                                        let s = base + ti[k] * inner
                                        let wk = tw[k]
                                        for i in 0..<inner { dst[i] += wk * s[i] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
