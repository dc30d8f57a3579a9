import Foundation
import PSEdgeIR
import PSEdgeKernels

extension OpRegistry {
    static let linearOps: [String: KernelFactory] = [
        "Conv": ConvKernel.make,
        "ConvTranspose": ConvTransposeKernel.make,
        "Gemm": GemmKernel.make,
        "MatMul": MatMulKernel.make,
    ]
}

/// Spatial geometry shared by Conv and ConvTranspose; 1-D convolutions run as 2-D with height 1.
struct ConvGeometry {
    var kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1
    var padT = 0, padL = 0, padB = 0, padR = 0

    /// 1×1, stride 1, no padding: the input plane is already the GEMM operand (no im2col).
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && padT == 0 && padL == 0 && padB == 0 && padR == 0 }

    /// Reads kernel_shape/strides/dilations/pads for a 1-D or 2-D op; other ranks are unsupported.
    init(_ ctx: KernelContext, spatialRank: Int, kernel: [Int]) throws {
        guard spatialRank == 1 || spatialRank == 2 else {
            throw PSEdgeError.unsupported("\(ctx.label): \(spatialRank)-D convolution is not supported (1-D and 2-D are)")
        }
        let a = ctx.attrs
        let k = try a.ints("kernel_shape") ?? kernel
        let s = try a.ints("strides") ?? [Int](repeating: 1, count: spatialRank)
        let d = try a.ints("dilations") ?? [Int](repeating: 1, count: spatialRank)
        let p = try a.ints("pads") ?? [Int](repeating: 0, count: 2 * spatialRank)
        guard k.count == spatialRank, s.count == spatialRank, d.count == spatialRank, p.count == 2 * spatialRank,
              k.allSatisfy({ $0 > 0 }), s.allSatisfy({ $0 > 0 }), d.allSatisfy({ $0 > 0 }), p.allSatisfy({ $0 >= 0 }) else {
            throw PSEdgeError.invalid("\(ctx.label): kernel_shape/strides/dilations/pads do not fit a \(spatialRank)-D convolution")
        }
        if spatialRank == 1 {
            (kw, sw, dw, padL, padR) = (k[0], s[0], d[0], p[0], p[1])
        } else {
            (kh, kw, sh, sw, dh, dw) = (k[0], k[1], s[0], s[1], d[0], d[1])
            (padT, padL, padB, padR) = (p[0], p[1], p[2], p[3])
        }
    }
}

/// auto_pad SAME_UPPER/SAME_LOWER: total padding so that out = ceil(in / stride).
func samePadding(input: Int, kernel: Int, stride: Int, dilation: Int, upper: Bool) -> (Int, Int) {
    let out = (input + stride - 1) / stride
    let total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - input)
    let small = total / 2
    return upper ? (small, total - small) : (total - small, small)
}

// MARK: - Conv

struct ConvKernel: Kernel {
    let n: Int, c: Int, h: Int, w: Int
    let m: Int, groups: Int
    let g: ConvGeometry
    let oh: Int, ow: Int
    let outputTypes: [TensorType]
    /// What happens after the convolution sum: bias (input 2), residual, activation. Plain Conv: bias only.
    var epilogue = Epilogue()
    /// Input index of a tensor shaped like the output added in the epilogue (psedge.FusedConv), or nil.
    var residualInput: Int? = nil
    /// The weights are stored in 16-row panels (`weight_layout` = rows16, RowPanelWeights): multiplied by
    /// pse_sconv_rows.
    var rowPanels = false
    /// Row-panel weights expanded back to row-major once, at plan time, for CPUs without a vector panel GEMM
    /// (their convolutions go through BLAS).
    var unpackedWeights: Storage? = nil

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...3)
        return try plan(ctx)
    }

    /// psedge.FusedConv: inputs X, W, B?, R?; the Conv attributes plus `activation` and `residual_before_activation`.
    static func makeFused(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...4)
        var k = try plan(ctx)
        k.epilogue = try Epilogue.from(ctx)
        if OpsKit.present(ctx, 3) {
            try ctx.requireDType(3, in: [.float32])
            let rs = try ctx.shape(3), out = k.outputTypes[0].staticShape!
            guard rs == out else {
                throw PSEdgeError.shape("\(ctx.label): residual \(Shapes.describe(rs)) does not have the output's shape \(Shapes.describe(out))")
            }
            k.residualInput = 3
        }
        return k
    }

    /// Geometry and output type of a convolution (shared by Conv, FusedConv and the quantized convolutions).
    static func plan(_ ctx: KernelContext) throws -> ConvKernel {
        try ctx.requireDType(0, in: [.float32])
        let xs = try ctx.shape(0)
        let layout = try ctx.attrs.string("weight_layout", default: "")
        let ws = layout.isEmpty ? try ctx.shape(1) : try rowPanelWeightShape(ctx, layout: layout)
        guard xs.count >= 3, ws.count == xs.count else {
            throw PSEdgeError.shape("\(ctx.label): input \(Shapes.describe(xs)) and weight \(Shapes.describe(ws)) ranks do not fit a convolution")
        }
        let spatial = xs.count - 2
        var geo = try ConvGeometry(ctx, spatialRank: spatial, kernel: Array(ws[2...]))
        let groups = try ctx.attrs.int("group", default: 1)
        let (n, c, m) = (xs[0], xs[1], ws[0])
        let h = spatial == 2 ? xs[2] : 1, w = xs.last!
        guard groups > 0, c % groups == 0, m % groups == 0, ws[1] == c / groups else {
            throw PSEdgeError.shape("\(ctx.label): weight \(Shapes.describe(ws)) does not match \(c) input channels in \(groups) groups")
        }
        if ctx.has(2) {
            guard try ctx.shape(2) == [m] else { throw PSEdgeError.shape("\(ctx.label): bias must have shape [\(m)]") }
        }
        let autoPad = try ctx.attrs.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET": break
        case "VALID": (geo.padT, geo.padL, geo.padB, geo.padR) = (0, 0, 0, 0)
        case "SAME_UPPER", "SAME_LOWER":
            let up = autoPad == "SAME_UPPER"
            (geo.padT, geo.padB) = samePadding(input: h, kernel: geo.kh, stride: geo.sh, dilation: geo.dh, upper: up)
            (geo.padL, geo.padR) = samePadding(input: w, kernel: geo.kw, stride: geo.sw, dilation: geo.dw, upper: up)
        default: throw PSEdgeError.unsupported("\(ctx.label): auto_pad '\(autoPad)'")
        }
        let oh = (h + geo.padT + geo.padB - geo.dh * (geo.kh - 1) - 1) / geo.sh + 1
        let ow = (w + geo.padL + geo.padR - geo.dw * (geo.kw - 1) - 1) / geo.sw + 1
        guard oh > 0, ow > 0 else { throw PSEdgeError.shape("\(ctx.label): kernel larger than the padded input \(Shapes.describe(xs))") }
        let outShape = spatial == 2 ? [n, m, oh, ow] : [n, m, ow]
        if !layout.isEmpty && groups != 1 { throw PSEdgeError.unsupported("\(ctx.label): weight_layout \(layout) with \(groups) groups") }
        var kernel = ConvKernel(n: n, c: c, h: h, w: w, m: m, groups: groups, g: geo, oh: oh, ow: ow,
                                outputTypes: [TensorType(.float32, static: outShape)])
        kernel.rowPanels = !layout.isEmpty
        if kernel.rowPanels && ctx.optionalConstant(1) == nil {
            throw PSEdgeError.unsupported("\(ctx.label): weight_layout \(layout) needs constant weights")
        }
        if kernel.rowPanels && !panelKernel, let wt = ctx.optionalConstant(1) {
            let k = ws.dropFirst().reduce(1, *)
            let unpacked = Storage(byteCount: m * k * 4)
            let src = wt.pointer(Float.self), dst = unpacked.base.assumingMemoryBound(to: Float.self)
            for r in 0..<m { for kk in 0..<k { dst[r * k + kk] = src[(r / 16) * k * 16 + kk * 16 + r % 16] } }
            kernel.unpackedWeights = unpacked
        }
        return kernel
    }

    /// The logical [M, C, kh, kw] shape of weights stored in 16-row panels ([⌈M/16⌉, C·kh·kw, 16]).
    private static func rowPanelWeightShape(_ ctx: KernelContext, layout: String) throws -> [Int] {
        guard layout == "rows16" else { throw PSEdgeError.unsupported("\(ctx.label): weight_layout '\(layout)' (known: rows16)") }
        guard let ws = try ctx.attrs.ints("weight_shape"), ws.count >= 3, ws.allSatisfy({ $0 > 0 }) else {
            throw PSEdgeError.invalid("\(ctx.label): weight_layout rows16 needs weight_shape [M, C, kernel…]")
        }
        try ctx.requireDType(1, in: [.float32])
        let packed = try ctx.shape(1), expected = [(ws[0] + 15) / 16, ws.dropFirst().reduce(1, *), 16]
        guard packed == expected else {
            throw PSEdgeError.shape("\(ctx.label): weights \(Shapes.describe(packed)) are not \(Shapes.describe(ws)) in 16-row panels \(Shapes.describe(expected))")
        }
        return ws
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!.pointer(Float.self)
        var wt = inputs[1]!.pointer(Float.self)
        let bias = inputs.count > 2 ? inputs[2]?.pointer(Float.self) : nil
        let residual: UnsafeMutablePointer<Float>? = residualInput.flatMap { $0 < inputs.count ? inputs[$0]?.pointer(Float.self) : nil }
        let y = outputs[0].pointer(Float.self)
        let cg = c / groups, mg = m / groups
        let k = cg * g.kh * g.kw
        let plane = oh * ow
        if rowPanels {
            // The rows form runs on any sconv path (scalar too); BLAS takes the weights unpacked at plan time.
            guard let unpacked = unpackedWeights else { return panels(x, wt, bias, residual, y, pool) }
            wt = unpacked.base.assumingMemoryBound(to: Float.self)
        }
        if cg == 1 && mg == 1 {
            depthwise(x, wt, bias, residual, y, pool)
            return
        }
        if Self.panelKernel {
            panels(x, wt, bias, residual, y, pool)
            return
        }
        let pointwise = g.isPointwise
        let cols = pointwise ? nil : pool.scratch(floats: k * plane)
        for b in 0..<n {
            for gi in 0..<groups {
                let xin = x + (b * c + gi * cg) * h * w
                let yout = y + (b * m + gi * mg) * plane
                var src = UnsafePointer(xin)
                if let cols {
                    pse_im2col(xin, Int32(cg), Int32(h), Int32(w), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL),
                               Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(oh), Int32(ow), cols)
                    src = UnsafePointer(cols)
                }
                pse_sgemm_row_uniform_pool(pool.pool, Int32(mg), Int32(plane), Int32(k), wt + gi * mg * k, Int32(k), src, Int32(plane), yout, Int32(plane))
            }
        }
        if !epilogue.isIdentity(bias: bias != nil, residual: residual != nil) {
            let m = self.m, epilogue = self.epilogue
            pool.parallelFor(n * m) { i in
                epilogue.apply(y + i * plane, rows: 1, cols: plane, rowBias: bias.map { UnsafePointer($0 + i % m) }, colBias: nil,
                               residual: residual.map { UnsafePointer($0 + i * plane) })
            }
        }
    }

    /// The panel GEMM (pse_sconv_gemm) has a vector path on this CPU: then it replaces OpenBLAS for convolutions.
    /// (Tests turn it off to run the BLAS fallback that CPUs without one take.)
    static var panelKernel = String(cString: pse_sconv_kernel_name()) != "scalar"
    static let tileRows = 32, tileCols = 256

    /// Activations packed into 16-column panels (1×1 convolutions read theirs in place), then output tiles side by
    /// side, each finished (bias, residual, ReLU) as it is stored: no im2col matrix, no packing inside a BLAS call, no
    /// separate epilogue pass.
    private func panels(_ x: UnsafeMutablePointer<Float>, _ wt: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>?,
                        _ residual: UnsafeMutablePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
        let cg = c / groups, mg = m / groups, k = cg * g.kh * g.kw, plane = oh * ow
        // A 1×1 stride-1 unpadded convolution reads its input in place (rows of `plane`); others are packed.
        let direct = g.isPointwise
        let columnShares = !rowPanels && usesColumnShares(pool)
        if !direct, columnShares { return ownColumns(x, wt, bias, residual, y, pool) }
        if !direct, rowPanels, ThreadPool.fixedShares, pool.threads > 1, mg >= 32 * pool.threads, groups == 1 {
            return ownRows(x, wt, bias, residual, y, pool)
        }
        if !direct, let bandRows = bandRows(k: k, pool: pool) {
            return banded(x, wt, bias, residual, y, pool, bandRows: bandRows)
        }
        let panels = pool.scratch(floats: direct ? 0 : pse_sconv_packed_floats(Int32(k), Int32(plane)))
        let g = self.g
        for b in 0..<n {
            for gi in 0..<groups {
                let xin = x + (b * c + gi * cg) * h * w
                if !direct {
                    pool.parallelChunks(k, minChunk: 8) { ks in
                        let row = UnsafeMutablePointer<Float>.allocate(capacity: plane)
                        defer { row.deallocate() }
                        pse_sconv_pack(xin, Int32(cg), Int32(h), Int32(w), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL),
                                       Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(oh), Int32(ow), panels,
                                       Int32(ks.lowerBound), Int32(ks.upperBound), row)
                    }
                }
                let (ldb, pstride) = direct ? (plane, 16) : (16, k * 16)
                let source = direct ? UnsafePointer(xin) : UnsafePointer(panels)
                let first0 = b * m + gi * mg  // this group's first output row (image b)
                let wg = wt + gi * mg * k, bg = bias.map { UnsafePointer($0 + gi * mg) }
                if columnShares {
                    // Fixed column shares: a thread reads and writes the same pixels of every tensor of this size each
                    // time (the Winograd convolutions split the same way), so activations mostly stay with one core.
                    pool.perThread { t in
                        let share = pool.share(t, of: plane, unit: Self.shareUnit)
                        for cb in stride(from: share.lowerBound, to: share.upperBound, by: Self.tileCols) {
                            let nc = min(Self.tileCols, share.upperBound - cb)
                            for r0 in stride(from: 0, to: mg, by: Self.tileRows) {
                                product(r0: r0, rows: min(Self.tileRows, mg - r0), c0: cb, cols: nc, k: k, weights: wg, source + cb,
                                        ldb: ldb, pstride: pstride, bias: bg, residual: residual, y, firstRow: first0)
                            }
                        }
                    }
                    continue
                }
                pool.parallelTiles(rows: mg, cols: plane, tileRows: Self.tileRows, tileCols: Self.tileCols) { r0, nr, c0, nc, _ in
                    product(r0: r0, rows: nr, c0: c0, cols: nc, k: k, weights: wg, source + (c0 / 16) * pstride, ldb: ldb,
                            pstride: pstride, bias: bg, residual: residual, y, firstRow: first0)
                }
            }
        }
    }

    /// Output rows r0 ..< r0 + rows (r0 a multiple of 16) and columns c0 ..< c0 + cols of one group (whose first
    /// output row is `firstRow`), from the group's weights and bias and activations `b` (column c0 on), finished:
    /// bias, residual and ReLU as they are stored, other activations after. The panel GEMM with row-major weights, or
    /// its rows form when the weights are in 16-row panels.
    private func product(r0: Int, rows: Int, c0: Int, cols: Int, k: Int, weights: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>,
                         ldb: Int, pstride: Int, bias: UnsafePointer<Float>?, residual: UnsafeMutablePointer<Float>?,
                         _ y: UnsafeMutablePointer<Float>, firstRow: Int) {
        let plane = oh * ow
        let out = y + (firstRow + r0) * plane + c0
        let res = residual.map { UnsafePointer($0 + (firstRow + r0) * plane + c0) }
        let rowBias = bias.map { $0 + r0 }, resInC = epilogue.residualInC ? res : nil
        let relu: Int32 = epilogue.activation == .relu ? 1 : 0, first: Int32 = epilogue.residualBeforeActivation ? 1 : 0
        if rowPanels {
            pse_sconv_rows(Int32(rows), Int32(cols), Int32(k), weights + (r0 / 16) * k * 16, k * 16, b, Int32(ldb), pstride, rowBias,
                           resInC, Int32(plane), relu, first, out, Int32(plane))
        } else {
            pse_sconv_gemm(Int32(rows), Int32(cols), Int32(k), weights + r0 * k, Int32(k), b, Int32(ldb), pstride, rowBias, resInC,
                           Int32(plane), relu, first, out, Int32(plane))
        }
        epilogue.finishTile(out, rows: rows, cols: cols, ld: plane, residual: res)
    }

    /// A packed matrix larger than this would leave the cache between packing and use.
    static let bandedPackBytes = 2 << 20
    /// Columns per band (whole output rows, at least one).
    static let bandColumns = 256

    /// Output rows per band when this convolution packs and multiplies band by band (see `banded`), or nil.
    private func bandRows(k: Int, pool: ThreadPool) -> Int? {
        let rows = max(1, Self.bandColumns / ow), bands = (oh + rows - 1) / rows
        guard k * oh * ow * 4 > Self.bandedPackBytes, bands >= 4 * pool.threads else { return nil }
        return rows
    }

    /// Large im2col matrices (ResNet's 7×7 stem: 7 MB) one band of output rows at a time: each run packs a band
    /// into its own cache-sized buffer and multiplies it by all filters at once, so the packed columns are used
    /// while still in L2 instead of going out to memory and back. Same sums as `panels` (each element's order is
    /// fixed), so the results are identical.
    private func banded(_ x: UnsafeMutablePointer<Float>, _ wt: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>?,
                        _ residual: UnsafeMutablePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool, bandRows: Int) {
        let cg = c / groups, mg = m / groups, k = cg * g.kh * g.kw
        let bands = (oh + bandRows - 1) / bandRows, bandCols = bandRows * ow
        let packed = pse_sconv_packed_floats(Int32(k), Int32(bandCols)), per = (packed + bandCols + 15) / 16 * 16
        let runs = min(bands, pool.threads * 4), step = (bands + runs - 1) / runs
        let scratch = pool.scratch(floats: runs * per)
        let g = self.g, (h, w, oh, ow) = (self.h, self.w, self.oh, self.ow)
        for b in 0..<n {
            for gi in 0..<groups {
                let xin = x + (b * c + gi * cg) * h * w
                let first0 = b * m + gi * mg
                let wg = wt + gi * mg * k, bg = bias.map { UnsafePointer($0 + gi * mg) }
                pool.parallelFor((bands + step - 1) / step) { run in
                    let buf = scratch + run * per
                    for band in run * step..<min(bands, (run + 1) * step) {
                        let c0 = band * bandRows * ow, nc = min(oh, (band + 1) * bandRows) * ow - c0
                        pse_sconv_pack_cols(xin, Int32(cg), Int32(h), Int32(w), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL),
                                            Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(ow), Int32(c0), Int32(c0 + nc), buf, buf + packed)
                        product(r0: 0, rows: mg, c0: c0, cols: nc, k: k, weights: wg, buf, ldb: 16, pstride: k * 16, bias: bg,
                                residual: residual, y, firstRow: first0)
                    }
                }
            }
        }
    }

    /// Fixed column shares (`ownColumns` and the 1×1 path of `panels`) on several threads, when each thread gets at
    /// least `minShareUnits` panels: with fewer (ResNet's 14×14 stage, 13 panels for two threads) the uneven split
    /// costs more than the shared one loses.
    private func usesColumnShares(_ pool: ThreadPool) -> Bool {
        ThreadPool.fixedShares && pool.threads > 1 && (oh * ow + Self.shareUnit - 1) / Self.shareUnit >= Self.minShareUnits * pool.threads
    }
    static let minShareUnits = 8
    /// Columns are shared out in whole 16-column activation panels.
    private static let shareUnit = 16
    /// Columns per packed band in `ownColumns` (a band's panels stay in L2 until its products are done).
    static let ownBandColumns = 256

    /// The rows form (outputs of few columns, many filters) on several threads: each thread packs all the columns
    /// into a buffer of its own (a little repeated work: the columns are few) and multiplies them by its own share of
    /// the filters, so packed data never crosses to the other core and each weight is read by one thread.
    private func ownRows(_ x: UnsafeMutablePointer<Float>, _ wt: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>?,
                         _ residual: UnsafeMutablePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
        let k = c * g.kh * g.kw, plane = oh * ow
        let packedBytes = pse_sconv_packed_floats(Int32(k), Int32(plane)) * 4, rowBytes = plane * 4
        let g = self.g, (h, w, oh, ow, c, m) = (self.h, self.w, self.oh, self.ow, self.c, self.m)
        for b in 0..<n {
            let xin = x + b * c * h * w
            pool.perThread { t in
                let share = pool.share(t, of: m, unit: 16)
                guard !share.isEmpty else { return }
                let own = pool.threadScratch(t, bytes: [packedBytes, rowBytes])
                let buf = own[0].assumingMemoryBound(to: Float.self), row = own[1].assumingMemoryBound(to: Float.self)
                pse_sconv_pack(xin, Int32(c), Int32(h), Int32(w), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL), Int32(g.sh),
                               Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(oh), Int32(ow), buf, 0, Int32(k), row)
                for r0 in stride(from: share.lowerBound, to: share.upperBound, by: Self.tileRows) {
                    product(r0: r0, rows: min(Self.tileRows, share.upperBound - r0), c0: 0, cols: plane, k: k, weights: wt, buf,
                            ldb: 16, pstride: k * 16, bias: bias.map { UnsafePointer($0) }, residual: residual, y, firstRow: b * m)
                }
            }
        }
    }

    /// Convolutions that need packing, on several threads: each thread takes a fixed share of the output columns
    /// (whole 16-column panels), packs them band by band into a buffer of its own and multiplies each band by all
    /// filters at once. Packed data never crosses to the other core, and a thread's buffer is only ever written by
    /// that thread (rewriting lines another core holds costs several times the write on this host; BENCHMARKS.md).
    /// Same sums as `panels`, so the same results.
    private func ownColumns(_ x: UnsafeMutablePointer<Float>, _ wt: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>?,
                            _ residual: UnsafeMutablePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
        let cg = c / groups, mg = m / groups, k = cg * g.kh * g.kw, plane = oh * ow
        // Bands of whole output rows when those make whole panels (the stem: 2 rows of 112), so no im2col row is
        // computed for two bands; otherwise 256 columns.
        let rowsBand = Self.ownBandColumns / ow * ow
        let band = rowsBand > 0 && rowsBand % 16 == 0 ? rowsBand : Self.ownBandColumns
        let packedBytes = pse_sconv_packed_floats(Int32(k), Int32(band)) * 4, rowBytes = (band + 2 * ow) * 4
        let g = self.g, (h, w, ow) = (self.h, self.w, self.ow)
        for b in 0..<n {
            for gi in 0..<groups {
                let xin = x + (b * c + gi * cg) * h * w
                let first0 = b * m + gi * mg
                let wg = wt + gi * mg * k, bg = bias.map { UnsafePointer($0 + gi * mg) }
                pool.perThread { t in
                    let share = pool.share(t, of: plane, unit: Self.shareUnit)
                    guard !share.isEmpty else { return }
                    let own = pool.threadScratch(t, bytes: [packedBytes, rowBytes])
                    let buf = own[0].assumingMemoryBound(to: Float.self), row = own[1].assumingMemoryBound(to: Float.self)
                    for cb in stride(from: share.lowerBound, to: share.upperBound, by: band) {
                        let nc = min(band, share.upperBound - cb)
                        pse_sconv_pack_cols(xin, Int32(cg), Int32(h), Int32(w), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL),
                                            Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(ow), Int32(cb), Int32(cb + nc), buf, row)
                        for r0 in stride(from: 0, to: mg, by: Self.tileRows) {
                            product(r0: r0, rows: min(Self.tileRows, mg - r0), c0: cb, cols: nc, k: k, weights: wg, buf, ldb: 16,
                                    pstride: k * 16, bias: bg, residual: residual, y, firstRow: first0)
                        }
                    }
                }
            }
        }
    }

    /// One filter per channel: a direct loop (the SIMD kernel of pse_dwconv2d_f32) beats im2col + a 1-row GEMM.
    private func depthwise(_ x: UnsafeMutablePointer<Float>, _ wt: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>?,
                           _ residual: UnsafeMutablePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
        let g = self.g, epilogue = self.epilogue
        let (h, w, oh, ow, c) = (self.h, self.w, self.oh, self.ow, self.c)
        let after = !epilogue.isIdentity(bias: false, residual: residual != nil)
        pool.parallelFor(n * c) { i in
            let ch = i % c
            let dst = y + i * oh * ow
            pse_dwconv2d_f32(x + i * h * w, Int32(h), Int32(w), wt + ch * g.kh * g.kw, Int32(g.kh), Int32(g.kw),
                             Int32(g.padT), Int32(g.padL), Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw),
                             bias?[ch] ?? 0, dst, Int32(oh), Int32(ow))
            if after {
                epilogue.apply(dst, rows: 1, cols: oh * ow, rowBias: nil, colBias: nil,
                               residual: residual.map { UnsafePointer($0 + i * oh * ow) })
            }
        }
    }
}

// MARK: - ConvTranspose

struct ConvTransposeKernel: Kernel {
    let n: Int, c: Int, h: Int, w: Int
    let m: Int, groups: Int
    let g: ConvGeometry
    let oh: Int, ow: Int
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...3)
        try ctx.requireDType(0, in: [.float32])
        let xs = try ctx.shape(0), ws = try ctx.shape(1)
        guard xs.count >= 3, ws.count == xs.count else {
            throw PSEdgeError.shape("\(ctx.label): input \(Shapes.describe(xs)) and weight \(Shapes.describe(ws)) do not fit")
        }
        let spatial = xs.count - 2
        var geo = try ConvGeometry(ctx, spatialRank: spatial, kernel: Array(ws[2...]))
        let groups = try ctx.attrs.int("group", default: 1)
        let (n, c) = (xs[0], xs[1])
        guard groups > 0, ws[0] == c, c % groups == 0 else {
            throw PSEdgeError.shape("\(ctx.label): weight \(Shapes.describe(ws)) does not match \(c) input channels")
        }
        let m = ws[1] * groups
        let h = spatial == 2 ? xs[2] : 1, w = xs.last!
        let outPad2 = try ctx.attrs.ints("output_padding") ?? [Int](repeating: 0, count: spatial)
        let outPad = spatial == 2 ? outPad2 : [0] + outPad2
        let ins = [h, w], ks = [geo.kh, geo.kw], ss = [geo.sh, geo.sw], ds = [geo.dh, geo.dw]
        func full(_ i: Int) -> Int { ss[i] * (ins[i] - 1) + outPad[i] + (ks[i] - 1) * ds[i] + 1 }
        let autoPad = try ctx.attrs.string("auto_pad", default: "NOTSET")
        var outHW = [full(0) - geo.padT - geo.padB, full(1) - geo.padL - geo.padR]
        if let shape = try ctx.attrs.ints("output_shape") {
            let target = spatial == 2 ? Array(shape.suffix(2)) : [1] + Array(shape.suffix(1))
            var pads: [(Int, Int)] = []
            for i in 0..<2 {
                let total = max(0, full(i) - target[i])
                pads.append(autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2))
            }
            (geo.padT, geo.padB) = pads[0]
            (geo.padL, geo.padR) = pads[1]
            outHW = target
        } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            for i in 0..<2 where spatial == 2 || i == 1 {
                let target = ins[i] * ss[i]
                let total = max(0, full(i) - target)
                let (a, b) = autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
                if i == 0 { (geo.padT, geo.padB) = (a, b) } else { (geo.padL, geo.padR) = (a, b) }
                outHW[i] = target
            }
        } else if autoPad == "VALID" {
            (geo.padT, geo.padL, geo.padB, geo.padR) = (0, 0, 0, 0)
            outHW = [full(0), full(1)]
        }
        guard outHW.allSatisfy({ $0 > 0 }) else { throw PSEdgeError.shape("\(ctx.label): empty output") }
        let outShape = spatial == 2 ? [n, m, outHW[0], outHW[1]] : [n, m, outHW[1]]
        return ConvTransposeKernel(n: n, c: c, h: h, w: w, m: m, groups: groups, g: geo, oh: outHW[0], ow: outHW[1],
                                   outputTypes: [TensorType(.float32, static: outShape)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!.pointer(Float.self), wt = inputs[1]!.pointer(Float.self)
        let bias = inputs.count > 2 ? inputs[2]?.pointer(Float.self) : nil
        let y = outputs[0].pointer(Float.self)
        let cg = c / groups, mg = m / groups
        let k = mg * g.kh * g.kw
        let hw = h * w, plane = oh * ow
        let cols = pool.scratch(floats: k * hw)
        memset(y, 0, n * m * plane * 4)
        for b in 0..<n {
            for gi in 0..<groups {
                // cols[mg*kh*kw, h*w] = W_g^T · X_g, then scatter-add into the output image.
                pse_sgemm_pool(pool.pool, 1, 0, Int32(k), Int32(hw), Int32(cg), 1, wt + gi * cg * k, Int32(k), x + (b * c + gi * cg) * hw, Int32(hw), 0, cols, Int32(hw))
                pse_col2im(cols, Int32(mg), Int32(oh), Int32(ow), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL),
                           Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(h), Int32(w), y + (b * m + gi * mg) * plane)
            }
        }
        if let bias {
            for i in 0..<(n * m) { let v = bias[i % m], p = y + i * plane; for j in 0..<plane { p[j] += v } }
        }
    }
}

// MARK: - Gemm

struct GemmKernel: Kernel {
    let m: Int, n: Int, k: Int
    let transA: Bool, transB: Bool
    let alpha: Float, beta: Float
    let cPlan: BroadcastPlan?
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...3)
        try ctx.requireDType(0, in: [.float32])
        let a = try ctx.shape(0), b = try ctx.shape(1)
        guard a.count == 2, b.count == 2 else { throw PSEdgeError.shape("\(ctx.label): A and B must be 2-D, got \(Shapes.describe(a)) and \(Shapes.describe(b))") }
        let tA = try ctx.attrs.int("transA", default: 0) != 0, tB = try ctx.attrs.int("transB", default: 0) != 0
        let (m, ka) = tA ? (a[1], a[0]) : (a[0], a[1])
        let (kb, n) = tB ? (b[1], b[0]) : (b[0], b[1])
        guard ka == kb else { throw PSEdgeError.shape("\(ctx.label): inner dimensions differ (\(ka) vs \(kb))") }
        var cPlan: BroadcastPlan?
        if ctx.has(2) {
            cPlan = try BroadcastPlan([[m, n], try ctx.shape(2)], label: ctx.label)
            guard cPlan!.outShape == [m, n] else { throw PSEdgeError.shape("\(ctx.label): C does not broadcast to [\(m),\(n)]") }
        }
        return GemmKernel(m: m, n: n, k: ka, transA: tA, transB: tB, alpha: try ctx.attrs.float("alpha", default: 1),
                          beta: try ctx.attrs.float("beta", default: 1), cPlan: cPlan, outputTypes: [TensorType(.float32, static: [m, n])])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let y = outputs[0].pointer(Float.self)
        var betaEff: Float = 0
        if let cPlan, let c = inputs[2]?.pointer(Float.self) {
            let s = cPlan.innerStrides[1], beta = self.beta
            cPlan.forEachSpan(pool: .serial) { o, offs, len in for i in 0..<len { y[o + i] = beta * c[offs[1] + i * s] } }
            betaEff = 1
        }
        pse_sgemm_pool(pool.pool, transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, inputs[0]!.pointer(Float.self),
                  Int32(transA ? m : k), inputs[1]!.pointer(Float.self), Int32(transB ? k : n), betaEff, y, Int32(n))
    }
}

// MARK: - MatMul (NumPy semantics: batched, broadcast, 1-D promotion)

struct MatMulKernel: Kernel {
    let m: Int, n: Int, k: Int
    let batch: [Int]
    let aBatchStrides: [Int], bBatchStrides: [Int]
    /// B is one matrix shared by all batches and A's batches are contiguous: one big GEMM.
    let foldBatch: Bool
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...2)
        try ctx.requireDType(0, in: [.float32])
        try ctx.requireDType(1, in: [.float32])
        var a = try ctx.shape(0), b = try ctx.shape(1)
        guard !a.isEmpty, !b.isEmpty else { throw PSEdgeError.shape("\(ctx.label): MatMul of a scalar") }
        let aVec = a.count == 1, bVec = b.count == 1
        if aVec { a = [1, a[0]] }
        if bVec { b = [b[0], 1] }
        let (m, k) = (a[a.count - 2], a[a.count - 1])
        let (kb, n) = (b[b.count - 2], b[b.count - 1])
        guard k == kb else {
            throw PSEdgeError.shape("\(ctx.label): cannot multiply \(Shapes.describe(try ctx.shape(0))) by \(Shapes.describe(try ctx.shape(1)))")
        }
        let ab = Array(a.dropLast(2)), bb = Array(b.dropLast(2))
        guard let batch = Shapes.broadcast(ab, bb) else { throw PSEdgeError.shape("\(ctx.label): batch dimensions do not broadcast") }
        func batchStrides(_ s: [Int], matrix: Int) -> [Int] {
            let padded = [Int](repeating: 1, count: batch.count - s.count) + s
            let st = Shapes.strides(padded)
            return (0..<batch.count).map { padded[$0] == 1 && batch[$0] != 1 ? 0 : st[$0] * matrix }
        }
        var out = batch
        if !aVec { out.append(m) }
        if !bVec { out.append(n) }
        let fold = bb.reduce(1, *) == 1 && ab == batch
        return MatMulKernel(m: m, n: n, k: k, batch: batch, aBatchStrides: batchStrides(ab, matrix: m * k),
                            bBatchStrides: batchStrides(bb, matrix: k * n), foldBatch: fold, outputTypes: [TensorType(.float32, static: out)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let a = inputs[0]!.pointer(Float.self), b = inputs[1]!.pointer(Float.self), y = outputs[0].pointer(Float.self)
        let count = batch.reduce(1, *)
        if foldBatch {
            pse_sgemm_pool(pool.pool, 0, 0, Int32(count * m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, y, Int32(n))
            return
        }
        // Batched products: large ones split inside, small ones side by side (BLAS is single-threaded in a plan).
        let (m, n, k, batch, aStrides, bStrides) = (self.m, self.n, self.k, self.batch, aBatchStrides, bBatchStrides)
        func one(_ i: Int, _ p: ThreadPool) {
            var rem = i, ao = 0, bo = 0
            var d = batch.count - 1
            while d >= 0 { let j = rem % batch[d]; rem /= batch[d]; ao += j * aStrides[d]; bo += j * bStrides[d]; d -= 1 }
            pse_sgemm_pool(p.pool, 0, 0, Int32(m), Int32(n), Int32(k), 1, a + ao, Int32(k), b + bo, Int32(n), 0, y + i * m * n, Int32(n))
        }
        if m * n * k >= 1 << 18 {
            for i in 0..<count { one(i, pool) }
        } else {
            pool.parallelChunks(count) { range in for i in range { one(i, .serial) } }
        }
    }
}
