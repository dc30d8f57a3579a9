import PSEdgeIR
import PSEdgeKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension OpRegistry {
    static let normalizationOps: [String: KernelFactory] = [
        "Softmax": { try NormOps.softmax($0, log: false) },
        "LogSoftmax": { try NormOps.softmax($0, log: true) },
        "LayerNormalization": NormOps.layerNorm,
        "InstanceNormalization": NormOps.instanceNorm,
        "GroupNormalization": NormOps.groupNorm,
        "BatchNormalization": NormOps.batchNorm,
        "LRN": NormOps.lrn,
        "Hardmax": NormOps.hardmax,
        "LpNormalization": NormOps.lpNorm,
        "MeanVarianceNormalization": NormOps.meanVarianceNorm,
    ]
}

enum NormOps {
    // MARK: Softmax / LogSoftmax

    static func softmax(_ ctx: KernelContext, log: Bool) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        let dims = shape.isEmpty ? [1] : shape
        let outer: Int, n: Int, inner: Int
        if ctx.opset < 13 {
            // Coerced to 2-D at `axis`: normalize over all trailing dims together.
            let axis = try ctx.attrs.int("axis", default: 1)
            let a = axis < 0 ? axis + dims.count : axis
            guard a >= 0, a <= dims.count else {
                throw OpsKit.invalid(ctx, "axis \(axis) is out of range for rank \(shape.count)")
            }
            outer = OpsKit.product(dims[..<a])
            n = OpsKit.product(dims[a...])
            inner = 1
        } else {
            let a = try Shapes.axis(ctx.attrs.int("axis", default: -1), rank: dims.count, ctx.label)
            outer = OpsKit.product(dims[..<a])
            n = dims[a]
            inner = OpsKit.product(dims[(a + 1)...])
        }
        return OpsKit.Fn([TensorType(.float32, static: shape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self)
            let y = outs[0].pointer(Float.self)
            if n == 0 || outer == 0 || inner == 0 { return }
            if inner == 1 {
                pool.parallelChunks(outer, minChunk: max(1, 8192 / n)) { rows in
                    for r in rows { softmaxRow(x + r * n, y + r * n, n, log: log) }
                }
            } else {
                // Strided: normalize along the middle axis of [outer, n, inner], a block of columns at a time.
                let colBlock = 256
                let blocks = (inner + colBlock - 1) / colBlock
                pool.parallelChunks(outer * blocks) { items in
                    let tmp = UnsafeMutablePointer<Float>.allocate(capacity: 2 * colBlock)
                    defer { tmp.deallocate() }
                    for item in items {
                        let o = item / blocks, b = item % blocks
                        let c0 = b * colBlock, c1 = min(inner, c0 + colBlock)
                        softmaxColumns(x + o * n * inner, y + o * n * inner, n, inner, c0, c1, tmp, log: log)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
        pse_ops_softmax_row(x, y, n, log ? 1 : 0)
    }

    @inline(__always)
    static func softmaxColumns(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ inner: Int,
                               _ c0: Int, _ c1: Int, _ tmp: UnsafeMutablePointer<Float>, log: Bool) {
        let w = c1 - c0
        let mx = tmp, sum = tmp + w
        for i in 0..<w { mx[i] = x[c0 + i]; sum[i] = 0 }
        for k in 1..<max(n, 1) {
            let row = x + k * inner + c0
            for i in 0..<w { mx[i] = max(mx[i], row[i]) }
        }
        for k in 0..<n {
            let xr = x + k * inner + c0, yr = y + k * inner + c0
            for i in 0..<w { yr[i] = xr[i] - mx[i] }
            pse_ops_exp(yr, yr, w)
            for i in 0..<w { sum[i] += yr[i] }
        }
        if log {
            for i in 0..<w { sum[i] = mx[i] + logf(sum[i]) }
            for k in 0..<n {
                let xr = x + k * inner + c0, yr = y + k * inner + c0
                for i in 0..<w { yr[i] = xr[i] - sum[i] }
            }
        } else {
            for i in 0..<w { sum[i] = 1 / sum[i] }
            for k in 0..<n {
                let yr = y + k * inner + c0
                for i in 0..<w { yr[i] *= sum[i] }
            }
        }
    }

    // MARK: LayerNormalization

    static func layerNorm(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...3)
        try ctx.requireDType(0, in: [.float32])
        try ctx.requireDType(1, in: [.float32])
        let shape = try ctx.shape(0)
        let rank = shape.count
        let axis = try Shapes.axis(ctx.attrs.int("axis", default: -1), rank: rank, ctx.label)
        let eps = try ctx.attrs.float("epsilon", default: 1e-5)
        let normShape = Array(shape[axis...])
        let rows = OpsKit.product(shape[..<axis]), cols = OpsKit.product(normShape)
        let scaleShape = try ctx.shape(1)
        guard let scaleMap = OpsKit.broadcastMap(from: scaleShape, to: normShape) else {
            throw PSEdgeError.shape("\(ctx.label): Scale of shape \(Shapes.describe(scaleShape)) does not broadcast to the normalized shape \(Shapes.describe(normShape))")
        }
        let hasBias = OpsKit.present(ctx, 2)
        var biasMap: [Int]? = nil
        if hasBias {
            try ctx.requireDType(2, in: [.float32])
            let bs = try ctx.shape(2)
            guard let m = OpsKit.broadcastMap(from: bs, to: normShape) else {
                throw PSEdgeError.shape("\(ctx.label): B of shape \(Shapes.describe(bs)) does not broadcast to the normalized shape \(Shapes.describe(normShape))")
            }
            biasMap = m
        }
        let scaleDirect = OpsKit.product(scaleShape) == cols
        let biasDirect = try hasBias && OpsKit.product(ctx.shape(2)) == cols
        let statShape = Array(shape[..<axis]) + [Int](repeating: 1, count: rank - axis)
        let wantMean = OpsKit.wants(ctx, 1), wantInv = OpsKit.wants(ctx, 2)
        var types = [TensorType(.float32, static: shape)]
        if ctx.node.outputs.count > 1 { types.append(TensorType(.float32, static: statShape)) }
        if ctx.node.outputs.count > 2 { types.append(TensorType(.float32, static: statShape)) }
        let scratch = OpsKit.Scratch(floats: 2 * cols)
        return OpsKit.Fn(types) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            var g = ins[1]!.pointer(Float.self)
            var b: UnsafeMutablePointer<Float>? = hasBias ? ins[2]!.pointer(Float.self) : nil
            if !scaleDirect {
                let e = scratch.floats
                for i in 0..<cols { e[i] = g[scaleMap[i]] }
                g = e
            }
            if let bb = b, !biasDirect, let bm = biasMap {
                let e = scratch.floats + cols
                for i in 0..<cols { e[i] = bb[bm[i]] }
                b = e
            }
            let meanOut: UnsafeMutablePointer<Float>? = wantMean ? outs[1].pointer(Float.self) : nil
            let invOut: UnsafeMutablePointer<Float>? = wantInv ? outs[2].pointer(Float.self) : nil
            pool.parallelChunks(rows, minChunk: max(1, 4096 / max(cols, 1))) { range in
                for r in range {
                    let xr = x + r * cols, yr = y + r * cols
                    let (mean, variance) = OpsKit.meanVar(xr, cols)
                    let inv = 1 / (variance + eps).squareRoot()
                    if let b {
                        for i in 0..<cols { yr[i] = (xr[i] - mean) * inv * g[i] + b[i] }
                    } else {
                        for i in 0..<cols { yr[i] = (xr[i] - mean) * inv * g[i] }
                    }
                    meanOut?[r] = mean
                    invOut?[r] = inv
                }
            }
        }
    }

    // MARK: InstanceNormalization

    static func instanceNorm(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...3)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        guard shape.count >= 2 else { throw PSEdgeError.shape("\(ctx.label): input must have rank >= 2, has \(Shapes.describe(shape))") }
        let c = shape[1]
        for i in 1...2 {
            let s = try ctx.shape(i)
            guard OpsKit.product(s) == c else {
                throw PSEdgeError.shape("\(ctx.label): input \(i) has shape \(Shapes.describe(s)), expected [\(c)]")
            }
        }
        let eps = try ctx.attrs.float("epsilon", default: 1e-5)
        let planes = shape[0] * c, size = OpsKit.product(shape[2...])
        return OpsKit.Fn([TensorType(.float32, static: shape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            let g = ins[1]!.pointer(Float.self), b = ins[2]!.pointer(Float.self)
            pool.parallelChunks(planes, minChunk: max(1, 16384 / max(size, 1))) { range in
                for p in range {
                    let ch = p % c
                    let (mean, variance) = OpsKit.meanVar(x + p * size, size)
                    let a = g[ch] / (variance + eps).squareRoot()
                    let sh = b[ch] - mean * a
                    let xp = x + p * size, yp = y + p * size
                    for i in 0..<size { yp[i] = xp[i] * a + sh }
                }
            }
        }
    }

    // MARK: GroupNormalization

    static func groupNorm(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...3)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        guard shape.count >= 2 else { throw PSEdgeError.shape("\(ctx.label): input must have rank >= 2, has \(Shapes.describe(shape))") }
        guard let groups = try ctx.attrs.int("num_groups") else {
            throw PSEdgeError.malformed("\(ctx.label): attribute 'num_groups' is required")
        }
        let c = shape[1]
        guard groups > 0, c % groups == 0 else {
            throw OpsKit.invalid(ctx, "num_groups \(groups) does not divide the \(c) channels")
        }
        let eps = try ctx.attrs.float("epsilon", default: 1e-5)
        // Opset 18 defined scale/bias per group; opset 21 per channel. A per-channel tensor is also
        // accepted under opset 18 (what exporters that follow the corrected spec produce).
        var perChannel = true
        for i in 1...2 {
            let n = OpsKit.product(try ctx.shape(i))
            if ctx.opset < 21 && n == groups && n != c {
                perChannel = false
            } else if n != c {
                let want = ctx.opset < 21 ? "[\(groups)] (num_groups) or [\(c)]" : "[\(c)] (channels)"
                throw PSEdgeError.shape("\(ctx.label): input \(i) has \(n) elements, expected \(want)")
            }
        }
        let n = shape[0], size = OpsKit.product(shape[2...]), cpg = c / groups
        let block = cpg * size
        return OpsKit.Fn([TensorType(.float32, static: shape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            let g = ins[1]!.pointer(Float.self), b = ins[2]!.pointer(Float.self)
            pool.parallelFor(n * groups) { item in
                let grp = item % groups
                let xb = x + item * block, yb = y + item * block
                let (mean, variance) = OpsKit.meanVar(xb, block)
                let inv = 1 / (variance + eps).squareRoot()
                for k in 0..<cpg {
                    let p = perChannel ? grp * cpg + k : grp
                    let a = g[p] * inv
                    let sh = b[p] - mean * a
                    let xp = xb + k * size, yp = yb + k * size
                    for i in 0..<size { yp[i] = xp[i] * a + sh }
                }
            }
        }
    }

    // MARK: BatchNormalization (inference)

    static func batchNorm(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(5...5)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        guard shape.count >= 2 else { throw PSEdgeError.shape("\(ctx.label): input must have rank >= 2, has \(Shapes.describe(shape))") }
        if try ctx.attrs.int("training_mode", default: 0) != 0 {
            throw OpsKit.unsupported(ctx, "training_mode", "1", supported: "0 (inference)")
        }
        if ctx.opset < 9, try ctx.attrs.int("spatial", default: 1) != 1 {
            throw OpsKit.unsupported(ctx, "spatial", "0", supported: "1")
        }
        if ctx.opset < 7, try ctx.attrs.int("is_test", default: 1) == 0, (1..<ctx.node.outputs.count).contains(where: { OpsKit.wants(ctx, $0) }) {
            throw OpsKit.unsupported(ctx, "is_test", "0", supported: "1 (inference)")
        }
        for j in 1..<max(1, ctx.node.outputs.count) where OpsKit.wants(ctx, j) {
            throw PSEdgeError.unsupported("\(ctx.label): output \(j) ('\(ctx.node.outputs[j])', a training statistic) is not supported; only inference (output 0)")
        }
        let c = shape[1]
        for i in 1...4 {
            try ctx.requireDType(i, in: [.float32])
            let s = try ctx.shape(i)
            guard OpsKit.product(s) == c else {
                throw PSEdgeError.shape("\(ctx.label): input \(i) has shape \(Shapes.describe(s)), expected [\(c)]")
            }
        }
        let eps = try ctx.attrs.float("epsilon", default: 1e-5)
        let planes = shape[0] * c, size = OpsKit.product(shape[2...])
        let scratch = OpsKit.Scratch(floats: 2 * c)
        var types = [TensorType(.float32, static: shape)]
        for _ in 1..<max(1, ctx.node.outputs.count) { types.append(TensorType(.float32, static: [c])) }
        return OpsKit.Fn(types) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            let g = ins[1]!.pointer(Float.self), b = ins[2]!.pointer(Float.self)
            let m = ins[3]!.pointer(Float.self), v = ins[4]!.pointer(Float.self)
            let a = scratch.floats, sh = scratch.floats + c
            for i in 0..<c {
                a[i] = g[i] / (v[i] + eps).squareRoot()
                sh[i] = b[i] - m[i] * a[i]
            }
            pool.parallelChunks(planes, minChunk: max(1, 16384 / max(size, 1))) { range in
                for p in range {
                    let ch = p % c
                    let ap = a[ch], sp = sh[ch]
                    let xp = x + p * size, yp = y + p * size
                    for i in 0..<size { yp[i] = xp[i] * ap + sp }
                }
            }
        }
    }

    // MARK: LRN

    static func lrn(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        guard shape.count >= 2 else { throw PSEdgeError.shape("\(ctx.label): input must have rank >= 2, has \(Shapes.describe(shape))") }
        guard let size = try ctx.attrs.int("size"), size > 0 else {
            throw PSEdgeError.malformed("\(ctx.label): attribute 'size' is required and must be positive")
        }
        let alpha = try ctx.attrs.float("alpha", default: 1e-4)
        let beta = try ctx.attrs.float("beta", default: 0.75)
        let bias = try ctx.attrs.float("bias", default: 1)
        let n = shape[0], c = shape[1], inner = OpsKit.product(shape[2...])
        let lo = (size - 1) / 2, hi = (size - 1) - lo   // window [ch - lo, ch + hi]
        let k = alpha / Float(size)
        return OpsKit.Fn([TensorType(.float32, static: shape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            pool.parallelFor(n * c) { item in
                let bi = item / c, ch = item % c
                let base = x + bi * c * inner
                let c0 = max(0, ch - lo), c1 = min(c - 1, ch + hi)
                let yp = y + item * inner, xp = x + item * inner
                for i in 0..<inner { yp[i] = 0 }
                for cc in c0...c1 {
                    let xc = base + cc * inner
                    for i in 0..<inner { yp[i] += xc[i] * xc[i] }
                }
                if beta == 0.75 {
                    for i in 0..<inner {
                        let t = bias + k * yp[i]
                        let r = 1 / t.squareRoot()
                        yp[i] = xp[i] * r * r.squareRoot()
                    }
                } else {
                    for i in 0..<inner { yp[i] = xp[i] / powf(bias + k * yp[i], beta) }
                }
            }
        }
    }

    // MARK: Hardmax, LpNormalization, MeanVarianceNormalization

    /// [outer, n, inner] view of a softmax-family op's input (flattened at `axis` before opset 13).
    static func softmaxLayout(_ ctx: KernelContext, _ shape: [Int]) throws -> (outer: Int, n: Int, inner: Int) {
        let dims = shape.isEmpty ? [1] : shape
        if ctx.opset < 13 {
            let axis = try ctx.attrs.int("axis", default: 1)
            let a = axis < 0 ? axis + dims.count : axis
            guard a >= 0, a <= dims.count else { throw OpsKit.invalid(ctx, "axis \(axis) is out of range for rank \(shape.count)") }
            return (OpsKit.product(dims[..<a]), OpsKit.product(dims[a...]), 1)
        }
        let a = try Shapes.axis(ctx.attrs.int("axis", default: -1), rank: dims.count, ctx.label)
        return (OpsKit.product(dims[..<a]), dims[a], OpsKit.product(dims[(a + 1)...]))
    }

    static func hardmax(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        let (outer, n, inner) = try softmaxLayout(ctx, shape)
        return OpsKit.Fn([TensorType(.float32, static: shape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            if outer * n * inner == 0 { return }
            pool.parallelChunks(outer * inner, minChunk: max(1, 4096 / n)) { range in
                for item in range {
                    let o = item / inner, i = item % inner
                    let xp = x + o * n * inner + i, yp = y + o * n * inner + i
                    var best = xp[0], bi = 0
                    for k in 0..<n {
                        yp[k * inner] = 0
                        if xp[k * inner] > best { best = xp[k * inner]; bi = k }
                    }
                    yp[bi * inner] = 1
                }
            }
        }
    }

    static func lpNorm(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        let dims = shape.isEmpty ? [1] : shape
        let a = try Shapes.axis(ctx.attrs.int("axis", default: -1), rank: dims.count, ctx.label)
        let p = try ctx.attrs.int("p", default: 2)
        guard p == 1 || p == 2 else { throw OpsKit.unsupported(ctx, "p", "\(p)", supported: "1, 2") }
        let outer = OpsKit.product(dims[..<a]), n = dims[a], inner = OpsKit.product(dims[(a + 1)...])
        return OpsKit.Fn([TensorType(.float32, static: shape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            if outer * n * inner == 0 { return }
            pool.parallelChunks(outer * inner, minChunk: max(1, 4096 / n)) { range in
                for item in range {
                    let o = item / inner, i = item % inner
                    let xp = x + o * n * inner + i, yp = y + o * n * inner + i
                    var s: Float = 0
                    if p == 1 {
                        for k in 0..<n { s += abs(xp[k * inner]) }
                    } else {
                        for k in 0..<n { s += xp[k * inner] * xp[k * inner] }
                        s = s.squareRoot()
                    }
                    let inv: Float = s == 0 ? 0 : 1 / s
                    for k in 0..<n { yp[k * inner] = xp[k * inner] * inv }
                }
            }
        }
    }

    /// (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over `axes` (default [0, 2, 3]).
    static func meanVarianceNorm(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let shape = try ctx.shape(0)
        let rank = shape.count
        let axes = Set(try OpsKit.axes(ctx.attrs.ints("axes") ?? [0, 2, 3], rank: rank, ctx))
        let L = ReduceOps.layout(shape: shape, reduce: axes)
        let stats = L.outCount
        // Element stride of each input axis in the (keepdims) statistics tensor.
        var statStride = [Int](repeating: 0, count: rank)
        var acc = 1
        for d in stride(from: rank - 1, through: 0, by: -1) where !axes.contains(d) {
            statStride[d] = acc
            acc *= shape[d]
        }
        let scratch = OpsKit.Scratch(floats: 2 * stats)
        let total = OpsKit.product(shape)
        let width = rank == 0 ? 1 : shape[rank - 1]
        return OpsKit.Fn([TensorType(.float32, static: shape)]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            if total == 0 { return }
            let mean = scratch.floats, sd = scratch.floats + stats
            ReduceOps.run(ReduceOps.FMean.self, x, mean, L, pool)
            ReduceOps.run(ReduceOps.FSumSquare.self, x, sd, L, pool)
            let n = Float(L.redCount)
            for k in 0..<stats { sd[k] = 1 / (max(sd[k] / n - mean[k] * mean[k], 0).squareRoot() + 1e-9) }
            let rows = total / width
            let lastStride = rank == 0 ? 0 : statStride[rank - 1]
            pool.parallelChunks(rows, minChunk: max(1, 8192 / width)) { range in
                var idx = [Int](repeating: 0, count: max(rank - 1, 0))
                var rem = range.lowerBound
                for d in stride(from: rank - 2, through: 0, by: -1) { idx[d] = rem % shape[d]; rem /= shape[d] }
                for r in range {
                    var base = 0
                    for d in 0..<idx.count { base += idx[d] * statStride[d] }
                    let xr = x + r * width, yr = y + r * width
                    for j in 0..<width {
                        let k = base + j * lastStride
                        yr[j] = (xr[j] - mean[k]) * sd[k]
                    }
                    var d = idx.count - 1
                    while d >= 0 {
                        idx[d] += 1
                        if idx[d] < shape[d] { break }
                        idx[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }
}
