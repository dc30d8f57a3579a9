import Foundation
import PSEdgeIR
import PSEdgeKernels

/// PSEdge's own operators, emitted by the converter's fusion passes (Sources/PSEdgePasses/Fusion).
extension OpRegistry {
    static let fusedOps: [String: KernelFactory] = [
        "psedge.FusedConv": ConvKernel.makeFused,
        "psedge.FusedMatMul": FusedMatMulKernel.make,
        "psedge.GroupNorm": FusedGroupNormKernel.make,
        "psedge.SiLU": SiLUKernel.make,
        "psedge.Attention": AttentionKernel.make,
        "psedge.GEGLU": GEGLUKernel.make,
    ]
}

// MARK: - FusedMatMul

/// Y = epilogue(A · B): inputs A [..., K], B [K, N], bias? [N], R? (shaped like Y); attributes `activation`,
/// `residual_before_activation`. Y has A's leading dims and N columns (A of rank 1 gives [N]).
struct FusedMatMulKernel: Kernel {
    let m: Int, n: Int, k: Int
    let epilogue: Epilogue
    let hasBias: Bool, hasResidual: Bool
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...4)
        try ctx.requireDType(0, in: [.float32])
        try ctx.requireDType(1, in: [.float32])
        let a = try ctx.shape(0), b = try ctx.shape(1)
        guard !a.isEmpty, b.count == 2, a.last! == b[0] else {
            throw PSEdgeError.shape("\(ctx.label): A \(Shapes.describe(a)) and B \(Shapes.describe(b)) do not fit A[...,K]·B[K,N]")
        }
        let n = b[1], out = Array(a.dropLast()) + [n]
        let hasBias = OpsKit.present(ctx, 2)
        if hasBias {
            try ctx.requireDType(2, in: [.float32])
            let bs = try ctx.shape(2)
            guard OpsKit.product(bs) == n, bs.dropLast().allSatisfy({ $0 == 1 }) else {
                throw PSEdgeError.shape("\(ctx.label): bias \(Shapes.describe(bs)) is not one value per column (\(n))")
            }
        }
        let hasResidual = OpsKit.present(ctx, 3)
        if hasResidual {
            try ctx.requireDType(3, in: [.float32])
            guard try ctx.shape(3) == out else {
                throw PSEdgeError.shape("\(ctx.label): residual \(Shapes.describe(try ctx.shape(3))) does not have the output's shape \(Shapes.describe(out))")
            }
        }
        return FusedMatMulKernel(m: OpsKit.product(a.dropLast()), n: n, k: b[0], epilogue: try Epilogue.from(ctx),
                                 hasBias: hasBias, hasResidual: hasResidual, outputTypes: [TensorType(.float32, static: out)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let y = outputs[0].pointer(Float.self)
        pse_sgemm_pool(pool.pool, 0, 0, Int32(m), Int32(n), Int32(k), 1, inputs[0]!.pointer(Float.self), Int32(k),
                  inputs[1]!.pointer(Float.self), Int32(n), 0, y, Int32(n))
        let bias: UnsafePointer<Float>? = hasBias ? UnsafePointer(inputs[2]!.pointer(Float.self)) : nil
        let res: UnsafePointer<Float>? = hasResidual ? UnsafePointer(inputs[3]!.pointer(Float.self)) : nil
        if epilogue.isIdentity(bias: hasBias, residual: hasResidual) { return }
        let n = self.n, epilogue = self.epilogue
        pool.parallelChunks(m, minChunk: max(1, 16384 / max(n, 1))) { rows in
            let r0 = rows.lowerBound
            epilogue.apply(y + r0 * n, rows: rows.count, cols: n, rowBias: nil, colBias: bias, residual: res.map { $0 + r0 * n })
        }
    }
}

// MARK: - GroupNorm

/// Group normalization with a per-channel affine and an optional activation:
/// inputs X [N, C, ...], scale [C], bias [C]; attributes `groups`, `epsilon` (default 1e-5), `activation`.
struct FusedGroupNormKernel: Kernel {
    let outputTypes: [TensorType]
    let n: Int, c: Int, groups: Int, size: Int
    let epsilon: Float
    let activation: Activation

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...3)
        for i in 0...2 { try ctx.requireDType(i, in: [.float32]) }
        let shape = try ctx.shape(0)
        guard shape.count >= 2 else { throw PSEdgeError.shape("\(ctx.label): input must have rank >= 2, has \(Shapes.describe(shape))") }
        guard let groups = try ctx.attrs.int("groups") else { throw PSEdgeError.malformed("\(ctx.label): attribute 'groups' is required") }
        let c = shape[1]
        guard groups > 0, c % groups == 0 else { throw OpsKit.invalid(ctx, "groups \(groups) does not divide the \(c) channels") }
        for i in 1...2 where OpsKit.product(try ctx.shape(i)) != c {
            throw PSEdgeError.shape("\(ctx.label): input \(i) has shape \(Shapes.describe(try ctx.shape(i))), expected [\(c)]")
        }
        return FusedGroupNormKernel(outputTypes: [TensorType(.float32, static: shape)], n: shape[0], c: c, groups: groups,
                                    size: OpsKit.product(shape[2...]), epsilon: try ctx.attrs.float("epsilon", default: 1e-5),
                                    activation: try Activation.from(ctx))
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!.pointer(Float.self), y = outputs[0].pointer(Float.self)
        let g = inputs[1]!.pointer(Float.self), b = inputs[2]!.pointer(Float.self)
        let (groups, size, eps, activation) = (self.groups, self.size, self.epsilon, self.activation)
        let cpg = c / groups, block = cpg * size
        pool.parallelFor(n * groups) { item in
            let grp = item % groups
            let xb = x + item * block, yb = y + item * block
            let (mean, variance) = OpsKit.meanVar(xb, block)
            let inv = 1 / (variance + eps).squareRoot()
            for k in 0..<cpg {
                let ch = grp * cpg + k
                let a = g[ch] * inv, sh = b[ch] - mean * a
                let xp = xb + k * size, yp = yb + k * size
                for i in 0..<size { yp[i] = xp[i] * a + sh }
                activation.apply(yp, size)
            }
        }
    }
}

// MARK: - SiLU

/// y = x · sigmoid(x) (the Sigmoid·Mul pair exporters emit), one input, same shape.
struct SiLUKernel: Kernel {
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        return SiLUKernel(outputTypes: [TensorType(.float32, static: try ctx.shape(0))])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!.pointer(Float.self), y = outputs[0].pointer(Float.self)
        pool.parallelChunks(outputs[0].count, minChunk: 1 << 14) { r in
            let cx = x + r.lowerBound, cy = y + r.lowerBound
            pse_ops_silu(cx, cy, r.count)
        }
    }
}

// MARK: - GEGLU

/// value · gelu(gate) over the two halves of the last axis of X [..., 2F] → [..., F]; `gate_first` = 1 when the
/// gate is the first half (diffusers: the second). Same per-element operations as Slice, Gelu, Mul.
struct GEGLUKernel: Kernel {
    let outputTypes: [TensorType]
    let rows: Int, f: Int
    let gateFirst: Bool

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32])
        let x = try ctx.shape(0)
        guard let last = x.last, last % 2 == 0 else {
            throw PSEdgeError.shape("\(ctx.label): input \(Shapes.describe(x)) has no even last axis to split in halves")
        }
        let gateFirst = try ctx.attrs.int("gate_first", default: 0) != 0
        return GEGLUKernel(outputTypes: [TensorType(.float32, static: Array(x.dropLast()) + [last / 2])],
                           rows: x.dropLast().reduce(1, *), f: last / 2, gateFirst: gateFirst)
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!.pointer(Float.self), y = outputs[0].pointer(Float.self)
        let (f, gateOffset, valueOffset) = (self.f, gateFirst ? 0 : self.f, gateFirst ? self.f : 0)
        pool.parallelChunks(rows, minChunk: max(1, 8192 / max(f, 1))) { range in
            for r in range {
                let xr = x + r * 2 * f, yr = y + r * f
                pse_ops_gelu(xr + gateOffset, yr, f)
                let v = xr + valueOffset
                for j in 0..<f { yr[j] = v[j] * yr[j] }
            }
        }
    }
}

// MARK: - Attention

/// Scaled dot-product attention over heads packed in the channel dimension:
/// inputs Q [B, Lq, H·D], K [B, Lk, H·D], V [B, Lk, H·Dv]; attributes `heads` (H), `scale` (default 1/√D);
/// output [B, Lq, H·Dv] with out[b, i, h·Dv + e] = Σ_j softmax_j(scale · q_i·k_j) v_j[e] per head.
///
/// Two ways, both without materializing the score matrix:
/// - rows (heads of at most `rowsMaxHeadDim` dims, as in the UNet's 4- and 8-dim heads): keys and values are
///   transposed once per (batch, head) and `pse_attention_rows_f32` (per-ISA C) scores 16 keys per vector, then
///   turns one row of scores into weights and the output in registers. At such dims sgemm tiles are all call and
///   packing overhead and the time goes to exp, which this path does in a vector polynomial.
/// - tiles (larger heads): each (batch, head, query tile) walks the keys a tile at a time with an online softmax
///   (running row max and sum; the accumulator is rescaled when the max grows), both products on sgemm.
/// Optional attributes (for tests): `kernel` = "rows" | "tiles" forces a way; `q_tile`, `k_tile` set the tile
/// sizes (defaults 64 and 512: a 128 KiB score tile per worker).
struct AttentionKernel: Kernel {
    /// Beyond this the scores are d fused multiply-adds per 16 keys against one exp: blocked sgemm wins.
    static let rowsMaxHeadDim = 16
    /// Query rows per work item of the rows way.
    static let rowsPerItem = 16

    let outputTypes: [TensorType]
    let batch: Int, lq: Int, lk: Int, heads: Int, d: Int, dv: Int
    let scale: Float
    let qTile: Int, kTile: Int
    let byRows: Bool

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...3)
        for i in 0...2 { try ctx.requireDType(i, in: [.float32]) }
        let q = try ctx.shape(0), k = try ctx.shape(1), v = try ctx.shape(2)
        guard let heads = try ctx.attrs.int("heads"), heads > 0 else {
            throw PSEdgeError.malformed("\(ctx.label): attribute 'heads' is required and must be positive")
        }
        guard q.count == 3, k.count == 3, v.count == 3, q[0] == k[0], k[0] == v[0], k[1] == v[1], q[2] == k[2],
              q[2] % heads == 0, v[2] % heads == 0 else {
            throw PSEdgeError.shape("\(ctx.label): Q \(Shapes.describe(q)), K \(Shapes.describe(k)), V \(Shapes.describe(v)) do not fit [B,Lq,H·D], [B,Lk,H·D], [B,Lk,H·Dv] with H = \(heads)")
        }
        let d = q[2] / heads, dv = v[2] / heads
        let scale = try ctx.attrs.float("scale") ?? 1 / Float(d).squareRoot()
        let qTile = try ctx.attrs.int("q_tile", default: 64), kTile = try ctx.attrs.int("k_tile", default: 512)
        guard qTile > 0, kTile > 0 else { throw OpsKit.invalid(ctx, "q_tile and k_tile must be positive") }
        let byRows: Bool
        switch try ctx.attrs.string("kernel") {
        case nil: byRows = d >= 1 && dv >= 1 && d <= rowsMaxHeadDim && dv <= rowsMaxHeadDim
        case "rows": byRows = d >= 1 && dv >= 1
        case "tiles": byRows = false
        case let other?: throw OpsKit.invalid(ctx, "kernel must be \"rows\" or \"tiles\", not \"\(other)\"")
        }
        return AttentionKernel(outputTypes: [TensorType(.float32, static: [q[0], q[1], v[2]])], batch: q[0], lq: q[1], lk: k[1],
                               heads: heads, d: d, dv: dv, scale: scale, qTile: qTile, kTile: kTile, byRows: byRows)
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let q = inputs[0]!.pointer(Float.self), k = inputs[1]!.pointer(Float.self), v = inputs[2]!.pointer(Float.self)
        let o = outputs[0].pointer(Float.self)
        if lq == 0 || outputs[0].count == 0 { return }
        if lk == 0 { memset(o, 0, outputs[0].byteCount); return }
        if byRows { return runByRows(q, k, v, o, pool: pool) }
        let tq = min(qTile, lq), tk = min(kTile, lk)
        let qTiles = (lq + tq - 1) / tq
        let items = batch * heads * qTiles
        // The tiles are small GEMMs run side by side on the pool's threads (BLAS is single-threaded in a plan).
        pool.parallelChunks(items) { range in
            // Per chunk: the score tile and the running max and sum of each query row.
            let s = UnsafeMutablePointer<Float>.allocate(capacity: tq * tk + 2 * tq)
            defer { s.deallocate() }
            for item in range { self.tile(item, qTiles: qTiles, tq: tq, tk: tk, q, k, v, o, scratch: s) }
        }
    }

    /// The rows way: Kᵀ and Vᵀ of every (batch, head), zero-padded to a multiple of 16 keys, then blocks of query
    /// rows side by side on the pool, each worker with its own row of scores.
    private func runByRows(_ q: UnsafeMutablePointer<Float>, _ k: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                           _ o: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let ldk = (lk + 15) / 16 * 16
        let hd = heads * d, hdv = heads * dv
        let rowBlocks = (lq + Self.rowsPerItem - 1) / Self.rowsPerItem
        let scoreRows = Int(PSE_ATTN_SCRATCH_ROWS) * ldk
        if ThreadPool.fixedShares, pool.threads > 1, batch * heads >= 4 * pool.threads {
            // Fixed shares of (image, head) pairs, each thread transposing its own heads' keys and values into a buffer
            // of its own: nothing it writes is read by the other thread (docs/KERNELS.md, "Work split").
            // (The share is computed here rather than by pool.share: inside this closure that call measured ~7 %
            // slower attention, apparently by what the compiler then keeps in registers.)
            let pairs = batch * heads, threads = pool.threads
            pool.perThread { t in
                let lo = pairs * t / threads, hi = pairs * (t + 1) / threads
                guard lo < hi else { return }
                let own = pool.threadScratch(t, bytes: [(hi - lo) * d * ldk * 4, (hi - lo) * dv * ldk * 4, scoreRows * 4])
                let kt = own[0].assumingMemoryBound(to: Float.self), vt = own[1].assumingMemoryBound(to: Float.self)
                let scores = own[2].assumingMemoryBound(to: Float.self)
                for bh in lo..<hi {
                    let b = bh / heads, h = bh % heads, i = bh - lo
                    Self.transpose(k + b * lk * hd + h * d, rowStride: hd, keys: lk, dims: d, into: kt + i * d * ldk, ldk: ldk)
                    Self.transpose(v + b * lk * hdv + h * dv, rowStride: hdv, keys: lk, dims: dv, into: vt + i * dv * ldk, ldk: ldk)
                    for r0 in stride(from: 0, to: lq, by: Self.rowsPerItem) {
                        let rows = min(Self.rowsPerItem, lq - r0)
                        pse_attention_rows_f32(q + (b * lq + r0) * hd + h * d, hd, Int32(rows), Int32(d), Int32(dv),
                                               kt + i * d * ldk, vt + i * dv * ldk, Int32(lk), Int32(ldk), scale,
                                               o + (b * lq + r0) * hdv + h * dv, hdv, scores)
                    }
                }
            }
            return
        }
        let items = batch * heads * rowBlocks
        let chunks = min(items, pool.threads * 4)
        let regions = pool.scratch(bytes: [batch * heads * d * ldk * 4, batch * heads * dv * ldk * 4, chunks * scoreRows * 4])
        let kt = regions[0].assumingMemoryBound(to: Float.self), vt = regions[1].assumingMemoryBound(to: Float.self)
        let scores = regions[2].assumingMemoryBound(to: Float.self)
        pool.parallelFor(batch * heads) { bh in
            let b = bh / heads, h = bh % heads
            Self.transpose(k + b * lk * hd + h * d, rowStride: hd, keys: lk, dims: d, into: kt + bh * d * ldk, ldk: ldk)
            Self.transpose(v + b * lk * hdv + h * dv, rowStride: hdv, keys: lk, dims: dv, into: vt + bh * dv * ldk, ldk: ldk)
        }
        let step = (items + chunks - 1) / chunks
        pool.parallelFor((items + step - 1) / step) { c in
            for item in c * step..<min(items, (c + 1) * step) {
                let bh = item / rowBlocks, b = bh / heads, h = bh % heads
                let r0 = (item % rowBlocks) * Self.rowsPerItem, rows = min(Self.rowsPerItem, lq - r0)
                pse_attention_rows_f32(q + (b * lq + r0) * hd + h * d, hd, Int32(rows), Int32(d), Int32(dv),
                                       kt + bh * d * ldk, vt + bh * dv * ldk, Int32(lk), Int32(ldk), scale,
                                       o + (b * lq + r0) * hdv + h * dv, hdv, scores + c * scoreRows)
            }
        }
    }

    /// dst[e][j] = src[j·rowStride + e] for j < keys, 0 up to ldk.
    private static func transpose(_ src: UnsafeMutablePointer<Float>, rowStride: Int, keys: Int, dims: Int,
                                  into dst: UnsafeMutablePointer<Float>, ldk: Int) {
        for j in 0..<keys {
            let row = src + j * rowStride
            for e in 0..<dims { dst[e * ldk + j] = row[e] }
        }
        for e in 0..<dims { (dst + e * ldk + keys).initialize(repeating: 0, count: ldk - keys) }
    }

    private func tile(_ item: Int, qTiles: Int, tq: Int, tk: Int, _ q: UnsafeMutablePointer<Float>, _ k: UnsafeMutablePointer<Float>,
                      _ v: UnsafeMutablePointer<Float>, _ o: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let b = item / (heads * qTiles), h = (item / qTiles) % heads, t = item % qTiles
        let hd = heads * d, hdv = heads * dv
        let q0 = t * tq, rows = min(tq, lq - q0)
        let qp = q + (b * lq + q0) * hd + h * d
        let op = o + (b * lq + q0) * hdv + h * dv
        let kb = k + b * lk * hd + h * d, vb = v + b * lk * hdv + h * dv
        let s = scratch, rowMax = scratch + tq * tk, rowSum = rowMax + tq
        var k0 = 0
        while k0 < lk {
            let cols = min(tk, lk - k0)
            // S = scale · Q_tile · K_tileᵀ  [rows, cols]
            pse_sgemm(0, 1, Int32(rows), Int32(cols), Int32(d), scale, qp, Int32(hd), kb + k0 * hd, Int32(hd), 0, s, Int32(cols))
            let first = k0 == 0
            for i in 0..<rows {
                let si = s + i * cols
                let prev = first ? -Float.infinity : rowMax[i]
                let m = max(prev, FastMath.max(si, cols))
                let sum = FastMath.expShiftSum(si, cols, shift: m)
                if first {
                    rowSum[i] = sum
                } else {
                    // The running max grew: earlier terms shrink by exp(prev - m).
                    let f = m == prev ? 1 : expf(prev - m)
                    rowSum[i] = rowSum[i] * f + sum
                    if f != 1 { let oi = op + i * hdv; for e in 0..<dv { oi[e] *= f } }
                }
                rowMax[i] = m
            }
            // O_tile (+)= P · V_tile  [rows, dv], written straight into the output (row stride H·Dv).
            pse_sgemm(0, 0, Int32(rows), Int32(dv), Int32(cols), 1, s, Int32(cols), vb + k0 * hdv, Int32(hdv), first ? 0 : 1, op, Int32(hdv))
            k0 += cols
        }
        for i in 0..<rows {
            let inv = 1 / rowSum[i], oi = op + i * hdv
            for e in 0..<dv { oi[e] *= inv }
        }
    }
}

/// Vectorized helpers for the attention softmax (8 lanes; Swift SIMD lowers them to the target's vector unit).
/// Written with loads/stores and mask selects only: `pointwiseMax` & co. are not inlined and cost a call per vector.
enum FastMath {
    typealias V = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func store(_ p: UnsafeMutablePointer<Float>, _ v: V) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// Largest of x[0..<n] (n ≥ 1).
    @inline(__always)
    static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if n >= 8 {
            var acc = load(x)
            i = 8
            while i + 8 <= n { let v = load(x + i); acc = acc.replacing(with: v, where: v .> acc); i += 8 }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// x[i] = exp(x[i] − shift) in place (shift ≥ every x[i]); returns the sum.
    @inline(__always)
    static func expShiftSum(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        var i = 0
        var acc = V(repeating: 0)
        let sv = V(repeating: shift)
        while i + 8 <= n {
            let e = expNonPositive(load(x + i) - sv)
            store(x + i, e)
            acc += e
            i += 8
        }
        var tail: Float = 0
        while i < n { let e = expf(x[i] - shift); x[i] = e; tail += e; i += 1 }
        return acc.sum() + tail
    }

    /// exp(x) for x ≤ 0: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for precision), exp(r) by its degree-6
    /// Taylor polynomial (relative error ≤ 2.2e-7), 2ⁿ added into the exponent bits. Inputs below −87.3 give
    /// exp(−87.3) ≈ 1e-38 instead of a smaller number or 0, which no softmax sum can notice.
    @inline(__always)
    static func expNonPositive(_ x: V) -> V {
        let lo = V(repeating: -87.33654)
        let xc = x.replacing(with: lo, where: x .< lo)
        let magic = V(repeating: 12582912)  // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
        let t = xc * 1.44269504088896341 + magic
        let n = t - magic
        var r = xc - n * 0.693145751953125
        r = r - n * 1.428606765330187045e-06
        var p = V(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        return unsafeBitCast(unsafeBitCast(p, to: SIMD8<Int32>.self) &+ (ni &<< 23), to: V.self)
    }
}
