import Foundation
import PSEdgeIR
import PSEdgeKernels

extension OpRegistry {
    static let quantizedOps: [String: KernelFactory] = [
        "psedge.QConv": QConvKernel.make,
        "psedge.QMatMul": QMatMulKernel.make,
    ]
}

/// Layouts a quantized weight may be stored in (the `weight_layout` attribute of QMatMul).
public enum QuantizedWeightLayout {
    /// The int8 GEMM's packed B: 16 columns × 4 k per 64-byte block (psedge_kernels_int8.h).
    public static let packed16x4 = "packed16x4"
}

/// How a quantized linear op treats its activation input.
public enum QuantMode: String, CaseIterable, Sendable {
    /// Per-tensor u8 scale and zero point fixed at convert time (calibration).
    case `static`
    /// u8 scale and zero point computed at run time per row (matmul) or per image and group (conv).
    case dynamic
    /// Activations stay float; int8 weights are expanded to float for an fp32 GEMM.
    case weightOnly = "weight_only"
}

/// Asymmetric u8 quantization parameters covering [lo, hi] (always including 0, so 0.0 is exact).
public struct U8Range: Sendable {
    public let scale: Float
    public let zeroPoint: Int

    public init(scale: Float, zeroPoint: Int) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    public init(lo: Float, hi: Float) {
        var s: Float = 1, z: Int32 = 0
        pse_u8_range(lo, hi, &s, &z)
        self.init(scale: s, zeroPoint: Int(z))
    }
}

/// The shared part of a quantized node: mode, static input range, epilogue.
struct QuantSettings {
    let mode: QuantMode
    let input: U8Range
    let epilogue: Epilogue

    static func from(_ ctx: KernelContext) throws -> QuantSettings {
        let m = try ctx.attrs.string("mode", default: "static")
        guard let mode = QuantMode(rawValue: m) else { throw PSEdgeError.unsupported("\(ctx.label): quantization mode '\(m)'") }
        let scale = try ctx.attrs.float("x_scale", default: 1)
        guard scale > 0, scale.isFinite else { throw PSEdgeError.malformed("\(ctx.label): x_scale must be positive") }
        let zp = try ctx.attrs.int("x_zero_point", default: 0)
        guard (0...255).contains(zp) else { throw PSEdgeError.malformed("\(ctx.label): x_zero_point \(zp) is outside 0...255") }
        return QuantSettings(mode: mode, input: U8Range(scale: scale, zeroPoint: zp), epilogue: try Epilogue.from(ctx))
    }
}

/// Quantizes n floats with the range of their own min/max (dynamic mode); returns the range used.
@inline(__always)
func quantizeDynamic(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<UInt8>, _ n: Int) -> U8Range {
    var scale: Float = 1, zero: Int32 = 0
    pse_quantize_rows_dynamic(x, 1, Int32(n), q, &scale, &zero)
    return U8Range(scale: scale, zeroPoint: Int(zero))
}

// MARK: - QConv

/// Convolution with int8 per-output-channel weights ([M, Cg*KH*KW], scales [M]) and u8 activations.
/// Inputs: X, Wq, Wscale, bias?, residual?. Attributes: the Conv ones (kernel_shape required) + mode,
/// x_scale, x_zero_point, activation, residual_before_activation.
/// Chained (ActivationChaining): X may already be u8 (static mode, quantized with x_scale/x_zero_point by its
/// producer); with `y_scale`, `y_zero_point` a second output holds Y quantized to u8 for the next QConv, and the
/// fp32 output may be left unnamed (nothing else reads it), in which case it is not written.
struct QConvKernel: Kernel {
    let conv: ConvKernel
    let q: QuantSettings
    let rowSums: [Int32]
    /// Input 0 arrives as u8.
    let quantizedInput: Bool
    /// The range of the u8 second output, if any; whether the fp32 output is written.
    let output: U8Range?
    let floatOutput: Bool
    var outputTypes: [TensorType] {
        let t = conv.outputTypes[0]
        return [floatOutput ? t : TensorType(.float32, static: [0])] + (output != nil ? [TensorType(.uint8, static: t.staticShape!)] : [])
    }
    /// The quantized path reads each residual element right before writing the output element at its position
    /// (pse_dequant_rows), unless a non-ReLU activation runs first and the residual is added after it.
    var overwritesInput: Int? {
        q.mode != .weightOnly && q.epilogue.residualInC && floatOutput ? 4 : nil
    }

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...5)
        try ctx.requireDType(0, in: [.float32, .uint8])
        try ctx.requireDType(1, in: [.int8])
        guard let kernel = try ctx.attrs.ints("kernel_shape") else { throw PSEdgeError.malformed("\(ctx.label): kernel_shape is required") }
        let xs = try ctx.shape(0), ws = try ctx.shape(1)
        let groups = try ctx.attrs.int("group", default: 1)
        guard ws.count == 2, groups > 0, xs.count >= 3, xs[1] % groups == 0,
              ws[1] == xs[1] / groups * kernel.reduce(1, *), try ctx.shape(2) == [ws[0]] else {
            throw PSEdgeError.shape("\(ctx.label): quantized weight \(Shapes.describe(ws)) does not fit input \(Shapes.describe(xs)) and kernel \(kernel)")
        }
        // Plan the geometry exactly as an fp32 Conv with the unflattened weight shape would.
        var convNode = ctx.node
        convNode.inputs = Array(ctx.node.inputs.prefix(2))
        let convCtx = KernelContext(node: convNode, opset: ctx.opset,
                                    inputTypes: [TensorType(.float32, static: xs), TensorType(.float32, static: [ws[0], xs[1] / groups] + kernel)],
                                    constants: [nil, nil])
        guard let conv = try ConvKernel.make(convCtx) as? ConvKernel else { throw PSEdgeError(.internalError, "\(ctx.label): conv planning failed") }
        if ctx.has(4) {
            guard try ctx.shape(4) == conv.outputTypes[0].staticShape! else {
                throw PSEdgeError.shape("\(ctx.label): residual shape \(Shapes.describe(try ctx.shape(4))) differs from the output")
            }
        }
        let settings = try QuantSettings.from(ctx)
        var sums = [Int32](repeating: 0, count: ws[0])
        if let w = ctx.optionalConstant(1) {
            let p = w.pointer(Int8.self)
            for m in 0..<ws[0] { var s: Int32 = 0; for k in 0..<ws[1] { s += Int32(p[m * ws[1] + k]) }; sums[m] = s }
        } else if settings.mode != .weightOnly {
            throw PSEdgeError.unsupported("\(ctx.label): quantized weights must be constants")
        }
        let quantizedInput = try ctx.dtype(0) == .uint8
        if quantizedInput && settings.mode != .static {
            throw PSEdgeError.unsupported("\(ctx.label): a u8 input needs static mode (its x_scale and x_zero_point)")
        }
        var output: U8Range?
        if let ys = try ctx.attrs.float("y_scale") {
            let yz = try ctx.attrs.int("y_zero_point", default: 0)
            guard ys > 0, ys.isFinite, (0...255).contains(yz) else {
                throw PSEdgeError.malformed("\(ctx.label): y_scale must be positive and y_zero_point in 0...255")
            }
            guard settings.mode != .weightOnly, ctx.node.outputs.count == 2 else {
                throw PSEdgeError.malformed("\(ctx.label): y_scale needs a second (u8) output and an int8 mode")
            }
            output = U8Range(scale: ys, zeroPoint: yz)
        } else if ctx.node.outputs.count > 1 {
            throw PSEdgeError.malformed("\(ctx.label): a second output needs y_scale")
        }
        let floatOutput = !(ctx.node.outputs.first?.isEmpty ?? true) || output == nil
        return QConvKernel(conv: conv, q: settings, rowSums: sums, quantizedInput: quantizedInput, output: output, floatOutput: floatOutput)
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let c = conv, g = c.g
        let wq = inputs[1]!.pointer(Int8.self), ws = inputs[2]!.pointer(Float.self)
        let bias = inputs.count > 3 ? inputs[3]?.pointer(Float.self) : nil
        let residual = inputs.count > 4 ? inputs[4]?.pointer(Float.self) : nil
        let cg = c.c / c.groups, mg = c.m / c.groups
        let k = cg * g.kh * g.kw, plane = c.oh * c.ow, hw = c.h * c.w
        let pointwise = g.isPointwise

        if q.mode == .weightOnly {
            let x = inputs[0]!.pointer(Float.self), y = outputs[0].pointer(Float.self)
            let buf = pool.scratch(bytes: [mg * k * 4, pointwise ? 0 : k * plane * 4])
            let wf = buf[0].assumingMemoryBound(to: Float.self), cols = buf[1].assumingMemoryBound(to: Float.self)
            for b in 0..<c.n {
                for gi in 0..<c.groups {
                    for m in 0..<mg {
                        let s = ws[gi * mg + m], src = wq + (gi * mg + m) * k, dst = wf + m * k
                        for j in 0..<k { dst[j] = Float(src[j]) * s }
                    }
                    let xin = x + (b * c.c + gi * cg) * hw
                    if !pointwise {
                        pse_im2col(xin, Int32(cg), Int32(c.h), Int32(c.w), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL),
                                   Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(c.oh), Int32(c.ow), cols)
                    }
                    pse_sgemm_row_uniform_pool(pool.pool, Int32(mg), Int32(plane), Int32(k), wf, Int32(k), pointwise ? xin : cols, Int32(plane),
                                          y + (b * c.m + gi * mg) * plane, Int32(plane))
                }
            }
            // Epilogue over each image's [M, plane] block.
            for b in 0..<c.n {
                q.epilogue.apply(y + b * c.m * plane, rows: c.m, cols: plane, rowBias: bias.map { UnsafePointer($0) }, colBias: nil,
                                 residual: residual.map { UnsafePointer($0 + b * c.m * plane) })
            }
            return
        }
        let packedBytes = pse_packed_b_size(Int32(k), Int32(plane))
        let buf = pool.scratch(bytes: [quantizedInput ? 0 : cg * hw, packedBytes, tileScratchBytes(rows: mg, plane: plane, pool: pool)])
        let packed = buf[1].assumingMemoryBound(to: UInt8.self), tileScratch = buf[2]
        let y = floatOutput ? outputs[0].pointer(Float.self) : nil
        let yq = output != nil ? outputs[1].pointer(UInt8.self) : nil
        for b in 0..<c.n {
            for gi in 0..<c.groups {
                let r: U8Range
                let xq: UnsafeMutablePointer<UInt8>
                if quantizedInput {
                    (r, xq) = (q.input, inputs[0]!.pointer(UInt8.self) + (b * c.c + gi * cg) * hw)
                } else {
                    let xin = inputs[0]!.pointer(Float.self) + (b * c.c + gi * cg) * hw
                    xq = buf[0].assumingMemoryBound(to: UInt8.self)
                    if q.mode == .dynamic {
                        r = quantizeDynamic(xin, xq, cg * hw)
                    } else {
                        r = q.input
                        pool.parallelChunks(cg * hw, minChunk: 1 << 14) { range in
                            pse_quantize_u8(xin + range.lowerBound, xq + range.lowerBound, range.count, r.scale, Int32(r.zeroPoint))
                        }
                    }
                }
                // Activations go straight into the packed layout the int8 GEMM reads (rows of K in parallel).
                let groups = (k + 3) / 4
                if pointwise {
                    pool.parallelChunks(groups, minChunk: 2) { gs in
                        pse_pack_b_groups(xq, Int32(plane), Int32(k), Int32(plane), packed, Int32(gs.lowerBound), Int32(gs.upperBound))
                    }
                } else {
                    pool.parallelChunks(groups, minChunk: 2) { gs in
                        let rows = UnsafeMutablePointer<UInt8>.allocate(capacity: 4 * plane)
                        defer { rows.deallocate() }
                        pse_im2col_u8_packed_groups(xq, Int32(cg), Int32(c.h), Int32(c.w), Int32(g.kh), Int32(g.kw), Int32(g.padT), Int32(g.padL),
                                                    Int32(g.sh), Int32(g.sw), Int32(g.dh), Int32(g.dw), Int32(c.oh), Int32(c.ow),
                                                    UInt8(r.zeroPoint), packed, Int32(gs.lowerBound), Int32(gs.upperBound), rows)
                    }
                }
                let first = b * c.m + gi * mg  // this group's first output row (image b)
                multiplyAndDequantize(wq: wq + gi * mg * k, packed: packed, rows: mg, plane: plane, k: k, input: r,
                                      wscale: ws + gi * mg, firstRow: gi * mg, bias: bias.map { $0 + gi * mg },
                                      residual: residual.map { $0 + first * plane }, out: y.map { $0 + first * plane },
                                      quantizedOut: yq.map { $0 + first * plane }, tileScratch: tileScratch, pool: pool)
            }
        }
    }
}

extension QConvKernel {
    /// Output tile: rows (output channels) × columns (output pixels). A tile's int32 products fit in 32 KiB, so
    /// they are dequantized while in L1; 2-D tiles also keep both cores busy on layers with few channels or pixels.
    static let tileRows = 32, tileCols = 256

    /// Bytes of scratch per tile: its int32 products, and a float tile when only the u8 output is written.
    var tileBytes: Int { Self.tileRows * Self.tileCols * (floatOutput ? 4 : 8) }

    /// The scratch the tiles need: one tile's worth per run of parallelTiles.
    func tileScratchBytes(rows: Int, plane: Int, pool: ThreadPool) -> Int {
        pool.tileChunks(rows: rows, cols: plane, tileRows: Self.tileRows, tileCols: Self.tileCols) * tileBytes
    }

    /// out[rows, plane] = dequantize(Wq[rows, k] · packed[k, plane]) with the epilogue, tile by tile on the pool;
    /// `quantizedOut` also gets it as u8 in the output range. `firstRow` locates this group's rows in the
    /// per-channel sums; bias, residual and wscale start at the group.
    func multiplyAndDequantize(wq: UnsafePointer<Int8>, packed: UnsafePointer<UInt8>, rows: Int, plane: Int, k: Int,
                               input r: U8Range, wscale: UnsafePointer<Float>, firstRow: Int, bias: UnsafeMutablePointer<Float>?,
                               residual: UnsafeMutablePointer<Float>?, out: UnsafeMutablePointer<Float>?,
                               quantizedOut: UnsafeMutablePointer<UInt8>?, tileScratch: UnsafeMutableRawPointer, pool: ThreadPool) {
        let tr = Self.tileRows, tc = Self.tileCols, tileBytes = self.tileBytes
        let packedBlock = ((k + 3) / 4) * 64  // bytes per 16 packed columns
        let epilogue = q.epilogue, zp = Int32(r.zeroPoint), output = self.output
        rowSums.withUnsafeBufferPointer { sums in
            let wsum = sums.baseAddress! + firstRow
            pool.parallelTiles(rows: rows, cols: plane, tileRows: tr, tileCols: tc) { r0, nr, c0, nc, run in
                let acc = (tileScratch + run * tileBytes).assumingMemoryBound(to: Int32.self)
                pse_gemm_s8u8_packed(Int32(nr), Int32(nc), Int32(k), wq + r0 * k, Int32(k), packed + (c0 / 16) * packedBlock,
                                     acc, Int32(tc))
                // Floats into the output, or into the float tile when only the u8 output is wanted.
                let (o, ldo) = out.map { ($0 + r0 * plane + c0, plane) }
                    ?? ((tileScratch + run * tileBytes + tr * tc * 4).assumingMemoryBound(to: Float.self), tc)
                let res = residual.map { UnsafePointer($0 + r0 * plane + c0) }
                pse_dequant_rows(acc, Int32(tc), Int32(nr), Int32(nc), r.scale, zp, wscale + r0, wsum + r0,
                                 bias.map { UnsafePointer($0 + r0) }, epilogue.residualInC ? res : nil, Int32(plane),
                                 epilogue.activation == .relu ? 1 : 0, epilogue.residualBeforeActivation ? 1 : 0, o, Int32(ldo))
                epilogue.finishTile(o, rows: nr, cols: nc, ld: ldo, residual: res, residualLD: plane)
                if let quantizedOut, let output {
                    for i in 0..<nr {
                        pse_quantize_u8(o + i * ldo, quantizedOut + (r0 + i) * plane + c0, nc, output.scale, Int32(output.zeroPoint))
                    }
                }
            }
        }
    }
}

// MARK: - QMatMul

/// A[..., K] × W[K, N] with int8 per-column weights (scales [N]) and u8 activations.
/// Inputs: A, Wq [K, N], Wscale [N], bias [N]?, residual?. Attributes: mode, x_scale, x_zero_point, activation,
/// residual_before_activation; `weight_layout` = "packed16x4" (with `weight_k`, `weight_n`) when the converter
/// stored Wq already in the GEMM's packed layout (1-D, pse_packed_b_size(K, N) bytes) — then the kernel reads it
/// straight from the mapped file.
struct QMatMulKernel: Kernel {
    let rows: Int, k: Int, n: Int
    let q: QuantSettings
    let colSums: [Int32]
    /// The weight in the int8 GEMM's packed layout when packed at plan time (nil when input 1 is already packed),
    /// or, in weight-only mode, the dequantized fp32 weight when the weight and its scales are constants.
    let packed: Storage?
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...5)
        try ctx.requireDType(0, in: [.float32])
        try ctx.requireDType(1, in: [.int8])
        let a = try ctx.shape(0), w = try ctx.shape(1)
        let settings = try QuantSettings.from(ctx)
        // K and N: from the weight's shape, or — when the converter stored it packed (1-D) — from attributes,
        // checked against the packed size.
        let k: Int, n: Int, weight: String
        let prepacked: Bool
        if let layout = try ctx.attrs.string("weight_layout") {
            guard layout == QuantizedWeightLayout.packed16x4 else {
                throw PSEdgeError.unsupported("\(ctx.label): weight_layout '\(layout)' (known: \(QuantizedWeightLayout.packed16x4))")
            }
            (k, n) = (try ctx.attrs.int("weight_k", default: -1), try ctx.attrs.int("weight_n", default: -1))
            guard k > 0, n > 0, k <= Int(Int32.max), n <= Int(Int32.max) else {
                throw PSEdgeError.invalid("\(ctx.label): a packed weight needs positive weight_k and weight_n attributes")
            }
            let bytes = pse_packed_b_size(Int32(k), Int32(n))
            guard w == [bytes] else {
                throw PSEdgeError.shape("\(ctx.label): packed weight has shape \(Shapes.describe(w)); \(k)×\(n) packs to [\(bytes)]")
            }
            guard settings.mode != .weightOnly else {
                throw PSEdgeError.unsupported("\(ctx.label): weight-only quantization keeps the weight unpacked")
            }
            (weight, prepacked) = ("a packed \(k)×\(n) weight", true)
        } else {
            guard w.count == 2 else {
                throw PSEdgeError.shape("\(ctx.label): cannot multiply \(Shapes.describe(a)) by quantized weight \(Shapes.describe(w))")
            }
            (k, n, weight, prepacked) = (w[0], w[1], "quantized weight \(Shapes.describe(w))", false)
        }
        guard a.count >= 1, a.last! == k, try ctx.shape(2) == [n] else {
            throw PSEdgeError.shape("\(ctx.label): cannot multiply \(Shapes.describe(a)) by \(weight)")
        }
        if ctx.has(3), try ctx.shape(3) != [n] { throw PSEdgeError.shape("\(ctx.label): bias must have shape [\(n)]") }
        let out = Array(a.dropLast()) + [n]
        if ctx.has(4), try ctx.shape(4) != out { throw PSEdgeError.shape("\(ctx.label): residual shape differs from the output") }
        var sums = [Int32](repeating: 0, count: n)
        var packed: Storage?
        if let wt = ctx.optionalConstant(1) {
            if prepacked {
                sums.withUnsafeMutableBufferPointer { pse_packed_b_column_sums_s8(wt.raw, Int32(k), Int32(n), $0.baseAddress!) }
            } else {
                let p = wt.pointer(Int8.self)
                for kk in 0..<k { for j in 0..<n { sums[j] += Int32(p[kk * n + j]) } }
                if settings.mode != .weightOnly {
                    let s = Storage(byteCount: pse_packed_b_size(Int32(k), Int32(n)))
                    pse_pack_b(p, Int32(n), Int32(k), Int32(n), s.base)
                    packed = s
                } else if let scales = ctx.optionalConstant(2) {
                    // Weight-only layers are short products (K ≤ 64 by default): dequantize once, not every run.
                    let s = Storage(byteCount: k * n * 4)
                    let wf = s.base.assumingMemoryBound(to: Float.self), ws = scales.pointer(Float.self)
                    for i in 0..<k { for j in 0..<n { wf[i * n + j] = Float(p[i * n + j]) * ws[j] } }
                    packed = s
                }
            }
        } else if settings.mode != .weightOnly {
            throw PSEdgeError.unsupported("\(ctx.label): quantized weights must be constants")
        }
        return QMatMulKernel(rows: a.dropLast().reduce(1, *), k: k, n: n, q: settings, colSums: sums, packed: packed,
                             outputTypes: [TensorType(.float32, static: out)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let a = inputs[0]!.pointer(Float.self), wq = inputs[1]!.pointer(Int8.self), ws = inputs[2]!.pointer(Float.self)
        let bias = inputs.count > 3 ? inputs[3]?.pointer(Float.self) : nil
        let residual = inputs.count > 4 ? inputs[4]?.pointer(Float.self) : nil
        let y = outputs[0].pointer(Float.self)
        let (rows, k, n) = (self.rows, self.k, self.n)
        if q.mode == .weightOnly {
            let wf: UnsafeMutablePointer<Float>
            if let packed {
                wf = packed.base.assumingMemoryBound(to: Float.self)
            } else {
                wf = pool.scratch(floats: k * n)
                for i in 0..<k { for j in 0..<n { wf[i * n + j] = Float(wq[i * n + j]) * ws[j] } }
            }
            pse_sgemm_pool(pool.pool, 0, 0, Int32(rows), Int32(n), Int32(k), 1, a, Int32(k), wf, Int32(n), 0, y, Int32(n))
            q.epilogue.apply(y, rows: rows, cols: n, rowBias: nil, colBias: bias.map { UnsafePointer($0) }, residual: residual.map { UnsafePointer($0) })
        } else {
            let buf = pool.scratch(bytes: [rows * k, rows * n * 4])
            let aq = buf[0].assumingMemoryBound(to: UInt8.self), acc = buf[1].assumingMemoryBound(to: Int32.self)
            let bp = UnsafePointer(packed?.base.assumingMemoryBound(to: Int8.self) ?? inputs[1]!.pointer(Int8.self))
            let sums = colSums, settings = q
            // Each chunk of rows goes through quantize, GEMM, dequantize and epilogue while it is in cache: one
            // parallel region, no serial pass over the whole matrix.
            let epilogue = settings.epilogue
            pool.parallelChunks(rows, minChunk: 4) { chunk in
                let r0 = chunk.lowerBound, count = chunk.count
                withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { scales in
                    withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { zeros in
                        if settings.mode == .dynamic {
                            pse_quantize_rows_dynamic(a + r0 * k, Int32(count), Int32(k), aq + r0 * k, scales.baseAddress!, zeros.baseAddress!)
                        } else {
                            pse_quantize_u8(a + r0 * k, aq + r0 * k, count * k, settings.input.scale, Int32(settings.input.zeroPoint))
                            scales.initialize(repeating: settings.input.scale)
                            zeros.initialize(repeating: Int32(settings.input.zeroPoint))
                        }
                        pse_gemm_u8s8_packed(Int32(count), Int32(n), Int32(k), aq + r0 * k, Int32(k), bp, acc + r0 * n, Int32(n))
                        let res = residual.map { UnsafePointer($0 + r0 * n) }
                        sums.withUnsafeBufferPointer { sums in
                            pse_dequant_cols(acc + r0 * n, Int32(n), Int32(count), Int32(n), scales.baseAddress!, zeros.baseAddress!, ws,
                                             sums.baseAddress!, bias.map { UnsafePointer($0) }, epilogue.residualInC ? res : nil, Int32(n),
                                             epilogue.activation == .relu ? 1 : 0, epilogue.residualBeforeActivation ? 1 : 0,
                                             y + r0 * n, Int32(n))
                        }
                        epilogue.finishTile(y + r0 * n, rows: count, cols: n, ld: n, residual: res)
                    }
                }
            }
        }
    }
}
