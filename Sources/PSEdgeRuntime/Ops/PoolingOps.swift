import PSEdgeIR
import PSEdgeKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension OpRegistry {
    static let poolingOps: [String: KernelFactory] = [
        "MaxPool": PoolOps.maxPool,
        "AveragePool": PoolOps.averagePool,
        "GlobalAveragePool": { try PoolOps.globalPool($0, max: false) },
        "GlobalMaxPool": { try PoolOps.globalPool($0, max: true) },
        "LpPool": PoolOps.lpPool,
        "GlobalLpPool": PoolOps.globalLpPool,
    ]
}

/// Element types max pooling handles (compared natively, no conversion).
protocol PoolElement: Comparable {
    static var lowest: Self { get }
}
extension Float: PoolElement { static var lowest: Float { -.infinity } }
extension UInt8: PoolElement { static var lowest: UInt8 { 0 } }
extension Int8: PoolElement { static var lowest: Int8 { .min } }
extension Int32: PoolElement { static var lowest: Int32 { .min } }
extension Int64: PoolElement { static var lowest: Int64 { .min } }

enum PoolOps {
    /// Window geometry of an N-d pooling (N = 1...3), padded to 3 spatial dims with leading unit dims.
    struct Geometry {
        var inS = [1, 1, 1], outS = [1, 1, 1]
        var kernel = [1, 1, 1], stride = [1, 1, 1], dilation = [1, 1, 1], padBegin = [0, 0, 0], padEnd = [0, 0, 0]
        /// Per dim and output index: first input position of the window, first and end valid tap,
        /// and the number of taps inside the padded input (count_include_pad divisor).
        var start: [[Int]] = [], lo: [[Int]] = [], hi: [[Int]] = [], padded: [[Int]] = []
        var inPlane: Int { inS[0] * inS[1] * inS[2] }
        var outPlane: Int { outS[0] * outS[1] * outS[2] }
    }

    static func geometry(_ ctx: KernelContext, _ shape: [Int]) throws -> Geometry {
        let a = ctx.attrs
        guard let kernel = try a.ints("kernel_shape") else {
            throw PSEdgeError.malformed("\(ctx.label): attribute 'kernel_shape' is required")
        }
        let nd = kernel.count
        guard shape.count == nd + 2 else {
            throw PSEdgeError.shape("\(ctx.label): input of shape \(Shapes.describe(shape)) does not match kernel_shape \(kernel) (rank should be \(nd + 2))")
        }
        guard (1...3).contains(nd) else {
            throw PSEdgeError.unsupported("\(ctx.label): \(nd)-d pooling is not supported (1-d, 2-d and 3-d are)")
        }
        let strides = try a.ints("strides") ?? [Int](repeating: 1, count: nd)
        let dilations = try a.ints("dilations") ?? [Int](repeating: 1, count: nd)
        var pads = try a.ints("pads") ?? [Int](repeating: 0, count: 2 * nd)
        let autoPad = try a.string("auto_pad", default: "NOTSET")
        let ceilMode = try a.int("ceil_mode", default: 0) != 0
        guard strides.count == nd, dilations.count == nd, pads.count == 2 * nd else {
            throw OpsKit.invalid(ctx, "strides \(strides), dilations \(dilations) and pads \(pads) do not match kernel_shape \(kernel)")
        }
        guard kernel.allSatisfy({ $0 > 0 }), strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }),
              pads.allSatisfy({ $0 >= 0 }) else {
            throw OpsKit.invalid(ctx, "kernel_shape \(kernel), strides \(strides) and dilations \(dilations) must be positive and pads \(pads) non-negative")
        }
        // Attributes come from the file: keep the window arithmetic far from overflow.
        guard (kernel + strides + dilations + pads).allSatisfy({ $0 <= 1 << 24 }) else {
            throw OpsKit.invalid(ctx, "kernel_shape \(kernel), strides \(strides), dilations \(dilations) or pads \(pads) exceed 2^24")
        }
        let spatial = Array(shape[2...])
        var outs = [Int](repeating: 0, count: nd)
        for i in 0..<nd {
            let eff = (kernel[i] - 1) * dilations[i] + 1
            switch autoPad {
            case "NOTSET":
                let num = spatial[i] + pads[i] + pads[i + nd] - eff
                guard num >= 0 else {
                    throw PSEdgeError.shape("\(ctx.label): the window (\(eff)) is larger than the padded input (\(spatial[i] + pads[i] + pads[i + nd])) on spatial axis \(i)")
                }
                if ceilMode {
                    outs[i] = (num + strides[i] - 1) / strides[i] + 1
                    if (outs[i] - 1) * strides[i] >= spatial[i] + pads[i] { outs[i] -= 1 }
                } else {
                    outs[i] = num / strides[i] + 1
                }
            case "VALID":
                pads[i] = 0; pads[i + nd] = 0
                guard spatial[i] >= eff else {
                    throw PSEdgeError.shape("\(ctx.label): the window (\(eff)) is larger than the input (\(spatial[i])) on spatial axis \(i)")
                }
                outs[i] = (spatial[i] - eff) / strides[i] + 1
            case "SAME_UPPER", "SAME_LOWER":
                outs[i] = (spatial[i] + strides[i] - 1) / strides[i]
                let total = max(0, (outs[i] - 1) * strides[i] + eff - spatial[i])
                let small = total / 2
                pads[i] = autoPad == "SAME_UPPER" ? small : total - small
                pads[i + nd] = total - pads[i]
            default:
                throw OpsKit.unsupported(ctx, "auto_pad", autoPad, supported: "NOTSET, SAME_UPPER, SAME_LOWER, VALID")
            }
        }
        // The per-position tables below are as long as the output: refuse an absurd one before building them.
        _ = try ResourceLimits.checkPlanned(TensorType(.float32, static: Array(shape[..<2]) + outs), what: "\(ctx.label): output")
        var g = Geometry()
        let off = 3 - nd
        for i in 0..<nd {
            g.inS[off + i] = spatial[i]; g.outS[off + i] = outs[i]
            g.kernel[off + i] = kernel[i]; g.stride[off + i] = strides[i]; g.dilation[off + i] = dilations[i]
            g.padBegin[off + i] = pads[i]; g.padEnd[off + i] = pads[i + nd]
        }
        for d in 0..<3 {
            var st: [Int] = [], lo: [Int] = [], hi: [Int] = [], pc: [Int] = []
            let k = g.kernel[d], s = g.stride[d], dl = g.dilation[d], n = g.inS[d]
            for o in 0..<g.outS[d] {
                let p = o * s - g.padBegin[d]
                st.append(p)
                let j0 = p >= 0 ? 0 : (-p + dl - 1) / dl
                let j1 = n - p <= 0 ? 0 : min(k, (n - p + dl - 1) / dl)
                lo.append(min(j0, j1)); hi.append(j1)
                let lim = n + g.padEnd[d] - p
                pc.append(lim <= 0 ? 0 : min(k, (lim + dl - 1) / dl))
            }
            g.start.append(st); g.lo.append(lo); g.hi.append(hi); g.padded.append(pc)
        }
        return g
    }

    // MARK: MaxPool

    static func maxPool(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32, .uint8, .int8, .int32, .int64])
        let dtype = try ctx.dtype(0)
        let shape = try ctx.shape(0)
        let g = try geometry(ctx, shape)
        let storageOrder = try ctx.attrs.int("storage_order", default: 0)
        guard storageOrder == 0 || storageOrder == 1 else {
            throw OpsKit.unsupported(ctx, "storage_order", "\(storageOrder)", supported: "0, 1")
        }
        let outShape = Array(shape[..<2]) + Array(g.outS.suffix(shape.count - 2))
        var types = [TensorType(dtype, static: outShape)]
        if ctx.node.outputs.count > 1 { types.append(TensorType(.int64, static: outShape)) }
        let wantIndices = OpsKit.wants(ctx, 1)
        let planes = shape[0] * shape[1]
        // Column-major flattening of the spatial position for storage_order = 1.
        let nd = shape.count - 2
        let colMajor = storageOrder == 1
        return OpsKit.Fn(types) { ins, outs, pool in
            let idx: UnsafeMutablePointer<Int64>? = wantIndices ? outs[1].pointer(Int64.self) : nil
            switch dtype {
            case .uint8: maxPoolRun(ins[0]!.pointer(UInt8.self), outs[0].pointer(UInt8.self), idx, g, planes, nd, colMajor, pool)
            case .int8: maxPoolRun(ins[0]!.pointer(Int8.self), outs[0].pointer(Int8.self), idx, g, planes, nd, colMajor, pool)
            case .int32: maxPoolRun(ins[0]!.pointer(Int32.self), outs[0].pointer(Int32.self), idx, g, planes, nd, colMajor, pool)
            case .int64: maxPoolRun(ins[0]!.pointer(Int64.self), outs[0].pointer(Int64.self), idx, g, planes, nd, colMajor, pool)
            default:
                if idx == nil && nd == 2 && g.dilation == [1, 1, 1] {
                    maxPool2D(ins[0]!.pointer(Float.self), outs[0].pointer(Float.self), g, planes, pool)
                } else {
                    maxPoolRun(ins[0]!.pointer(Float.self), outs[0].pointer(Float.self), idx, g, planes, nd, colMajor, pool)
                }
            }
        }
    }

    /// 2-D fp32 without indices or dilation (ResNet's stem pooling): the C kernel, a plane per task.
    static func maxPool2D(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: Geometry, _ planes: Int, _ pool: ThreadPool) {
        let (h, w, oh, ow) = (g.inS[1], g.inS[2], g.outS[1], g.outS[2])
        if ThreadPool.fixedShares, pool.threads > 1, oh >= 4 * pool.threads {
            // Each thread its own band of output rows in every plane: the pixels the convolutions around it give the
            // same thread (fixed column shares), so the activations stay with their core.
            let (sh, padT) = (g.stride[1], g.padBegin[1])
            pool.perThread { t in
                let rows = pool.share(t, of: oh), (oy0, oy1) = (rows.lowerBound, rows.upperBound)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: w) { tmp in
                    for p in 0..<planes {
                        // Rows oy0 ..< oy1 are rows 0 ..< oy1 − oy0 of the same pooling with the padding moved up by oy0·stride.
                        pse_maxpool2d_f32(x + p * h * w, Int32(h), Int32(w), Int32(g.kernel[1]), Int32(g.kernel[2]), Int32(sh),
                                          Int32(g.stride[2]), Int32(padT - oy0 * sh), Int32(g.padBegin[2]), y + p * oh * ow + oy0 * ow,
                                          Int32(oy1 - oy0), Int32(ow), tmp.baseAddress!)
                    }
                }
            }
            return
        }
        pool.parallelChunks(planes, minChunk: max(1, 4096 / max(g.outPlane, 1))) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: w) { t in
                for p in range {
                    pse_maxpool2d_f32(x + p * h * w, Int32(h), Int32(w), Int32(g.kernel[1]), Int32(g.kernel[2]), Int32(g.stride[1]),
                                      Int32(g.stride[2]), Int32(g.padBegin[1]), Int32(g.padBegin[2]), y + p * oh * ow, Int32(oh), Int32(ow),
                                      t.baseAddress!)
                }
            }
        }
    }

    static func maxPoolRun<E: PoolElement>(_ x: UnsafeMutablePointer<E>, _ y: UnsafeMutablePointer<E>,
                                           _ indices: UnsafeMutablePointer<Int64>?, _ g: Geometry, _ planes: Int,
                                           _ nd: Int, _ colMajor: Bool, _ pool: ThreadPool) {
        let inPlane = g.inPlane, outPlane = g.outPlane
        let H = g.inS[1], W = g.inS[2]
        let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
        let (OD, OH, OW) = (g.outS[0], g.outS[1], g.outS[2])
        let (st0, st1, st2) = (g.start[0], g.start[1], g.start[2])
        let (lo0, lo1, lo2) = (g.lo[0], g.lo[1], g.lo[2])
        let (hi0, hi1, hi2) = (g.hi[0], g.hi[1], g.hi[2])
        let inS = g.inS
        pool.parallelChunks(planes, minChunk: max(1, 4096 / max(outPlane, 1))) { range in
            for p in range {
                let xp = x + p * inPlane, yp = y + p * outPlane
                var o = 0
                for od in 0..<OD {
                    let sd = st0[od], a0 = lo0[od], a1 = hi0[od]
                    for oh in 0..<OH {
                        let sh = st1[oh], b0 = lo1[oh], b1 = hi1[oh]
                        for ow in 0..<OW {
                            let sw = st2[ow], c0 = lo2[ow], c1 = hi2[ow]
                            if let indices {
                                var best = E.lowest
                                var bestPos = -1
                                for jd in a0..<a1 {
                                    let rd = (sd + jd * dd) * H
                                    for jh in b0..<b1 {
                                        let row = (rd + sh + jh * dh) * W + sw
                                        for jw in c0..<c1 {
                                            let v = xp[row + jw * dw]
                                            if v > best || bestPos < 0 { best = v; bestPos = row + jw * dw }
                                        }
                                    }
                                }
                                yp[o] = best
                                var flat = bestPos
                                if colMajor && bestPos >= 0 {
                                    let iw = bestPos % W, ih = (bestPos / W) % H, id = bestPos / (W * H)
                                    // Reverse the order of the op's spatial dims.
                                    switch nd {
                                    case 1: flat = iw
                                    case 2: flat = ih + iw * inS[1]
                                    default: flat = id + ih * inS[0] + iw * inS[0] * inS[1]
                                    }
                                }
                                indices[p * outPlane + o] = bestPos < 0 ? -1 : Int64(p * inPlane + flat)
                            } else {
                                var best = E.lowest
                                for jd in a0..<a1 {
                                    let rd = (sd + jd * dd) * H
                                    for jh in b0..<b1 {
                                        let row = xp + (rd + sh + jh * dh) * W + sw
                                        for jw in c0..<c1 {
                                            let v = row[jw * dw]
                                            best = v > best ? v : best
                                        }
                                    }
                                }
                                yp[o] = best
                            }
                            o += 1
                        }
                    }
                }
            }
        }
    }

    // MARK: AveragePool

    static func averagePool(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        let g = try geometry(ctx, shape)
        let includePad = try ctx.attrs.int("count_include_pad", default: 0) != 0
        let outShape = Array(shape[..<2]) + Array(g.outS.suffix(shape.count - 2))
        let planes = shape[0] * shape[1]
        let inPlane = g.inPlane, outPlane = g.outPlane
        // Divisor per output position, precomputed.
        var inv = [Float](repeating: 0, count: outPlane)
        var o = 0
        for od in 0..<g.outS[0] {
            for oh in 0..<g.outS[1] {
                for ow in 0..<g.outS[2] {
                    let n = includePad
                        ? g.padded[0][od] * g.padded[1][oh] * g.padded[2][ow]
                        : (g.hi[0][od] - g.lo[0][od]) * (g.hi[1][oh] - g.lo[1][oh]) * (g.hi[2][ow] - g.lo[2][ow])
                    inv[o] = n > 0 ? 1 / Float(n) : .nan
                    o += 1
                }
            }
        }
        return OpsKit.Fn([TensorType(.float32, static: outShape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            let H = g.inS[1], W = g.inS[2]
            let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
            let (OD, OH, OW) = (g.outS[0], g.outS[1], g.outS[2])
            let (st0, st1, st2) = (g.start[0], g.start[1], g.start[2])
            let (lo0, lo1, lo2) = (g.lo[0], g.lo[1], g.lo[2])
            let (hi0, hi1, hi2) = (g.hi[0], g.hi[1], g.hi[2])
            inv.withUnsafeBufferPointer { invp in
                pool.parallelChunks(planes, minChunk: max(1, 4096 / max(outPlane, 1))) { range in
                    for p in range {
                        let xp = x + p * inPlane, yp = y + p * outPlane
                        var o = 0
                        for od in 0..<OD {
                            let sd = st0[od], a0 = lo0[od], a1 = hi0[od]
                            for oh in 0..<OH {
                                let sh = st1[oh], b0 = lo1[oh], b1 = hi1[oh]
                                for ow in 0..<OW {
                                    let sw = st2[ow], c0 = lo2[ow], c1 = hi2[ow]
                                    var acc: Float = 0
                                    for jd in a0..<a1 {
                                        let rd = (sd + jd * dd) * H
                                        for jh in b0..<b1 {
                                            let row = xp + (rd + sh + jh * dh) * W + sw
                                            for jw in c0..<c1 { acc += row[jw * dw] }
                                        }
                                    }
                                    yp[o] = acc * invp[o]
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: GlobalAveragePool / GlobalMaxPool

    static func globalPool(_ ctx: KernelContext, max isMax: Bool) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        guard shape.count >= 2 else {
            throw PSEdgeError.shape("\(ctx.label): input must have rank >= 2 (N, C, ...), has \(Shapes.describe(shape))")
        }
        let outShape = Array(shape[..<2]) + [Int](repeating: 1, count: shape.count - 2)
        let planes = shape[0] * shape[1], size = OpsKit.product(shape[2...])
        return OpsKit.Fn([TensorType(.float32, static: outShape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            pool.parallelChunks(planes, minChunk: max(1, 16384 / max(size, 1))) { range in
                for p in range {
                    let xp = x + p * size
                    if isMax {
                        y[p] = size > 0 ? pse_ops_max(xp, size) : -.infinity
                    } else {
                        // One running sum, in order (as the reference does): models whose channels are equal up to
                        // rounding (onnx light SqueezeNet) then still average to bitwise-equal values.
                        var s: Float = 0
                        for i in 0..<size { s += xp[i] }
                        y[p] = size > 0 ? s / Float(size) : .nan
                    }
                }
            }
        }
    }

    // MARK: LpPool / GlobalLpPool: (sum |x|^p)^(1/p) over the window (padding contributes nothing)

    static func lpPool(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        let g = try geometry(ctx, shape)
        let p = Float(try ctx.attrs.int("p", default: 2))
        guard p >= 1 else { throw OpsKit.unsupported(ctx, "p", "\(p)", supported: "p >= 1") }
        let outShape = Array(shape[..<2]) + Array(g.outS.suffix(shape.count - 2))
        let planes = shape[0] * shape[1]
        let inPlane = g.inPlane, outPlane = g.outPlane
        return OpsKit.Fn([TensorType(.float32, static: outShape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            let H = g.inS[1], W = g.inS[2]
            let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
            pool.parallelChunks(planes, minChunk: max(1, 4096 / max(outPlane, 1))) { range in
                for pl in range {
                    let xp = x + pl * inPlane, yp = y + pl * outPlane
                    var o = 0
                    for od in 0..<g.outS[0] {
                        for oh in 0..<g.outS[1] {
                            for ow in 0..<g.outS[2] {
                                var acc: Float = 0
                                for jd in g.lo[0][od]..<g.hi[0][od] {
                                    let rd = (g.start[0][od] + jd * dd) * H
                                    for jh in g.lo[1][oh]..<g.hi[1][oh] {
                                        let row = xp + (rd + g.start[1][oh] + jh * dh) * W + g.start[2][ow]
                                        for jw in g.lo[2][ow]..<g.hi[2][ow] {
                                            let v = abs(row[jw * dw])
                                            acc += p == 2 ? v * v : (p == 1 ? v : powf(v, p))
                                        }
                                    }
                                }
                                yp[o] = p == 2 ? acc.squareRoot() : (p == 1 ? acc : powf(acc, 1 / p))
                                o += 1
                            }
                        }
                    }
                }
            }
        }
    }

    static func globalLpPool(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        guard shape.count >= 2 else {
            throw PSEdgeError.shape("\(ctx.label): input must have rank >= 2 (N, C, ...), has \(Shapes.describe(shape))")
        }
        let p = Float(try ctx.attrs.int("p", default: 2))
        guard p >= 1 else { throw OpsKit.unsupported(ctx, "p", "\(p)", supported: "p >= 1") }
        let outShape = Array(shape[..<2]) + [Int](repeating: 1, count: shape.count - 2)
        let planes = shape[0] * shape[1], size = OpsKit.product(shape[2...])
        return OpsKit.Fn([TensorType(.float32, static: outShape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            pool.parallelChunks(planes, minChunk: max(1, 16384 / max(size, 1))) { range in
                for pl in range {
                    let xp = x + pl * size
                    var acc: Float = 0
                    for i in 0..<size {
                        let v = abs(xp[i])
                        acc += p == 2 ? v * v : (p == 1 ? v : powf(v, p))
                    }
                    y[pl] = p == 2 ? acc.squareRoot() : (p == 1 ? acc : powf(acc, 1 / p))
                }
            }
        }
    }
}
