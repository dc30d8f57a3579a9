import Foundation
import PSEdgeIR
import PSEdgeKernels

extension OpRegistry {
    static let winogradOps: [String: KernelFactory] = ["psedge.WinogradConv": WinogradConvKernel.make]
}

/// psedge.WinogradConv: a 3×3 stride-1 convolution by Winograd F(4×4, 3×3) (winograd.c, emitted by the
/// converter's WinogradConvolution pass). Inputs X [N, C, H, W], U [36, M, C] (transformed weights), B? [M],
/// R? (shaped like Y); attributes `pads` [top, left, bottom, right], `activation`, `residual_before_activation`.
///
/// Per image: inputs → V [36][C][tiles]; 36 GEMMs M[ξ] = U[ξ] · V[ξ]; outputs ← M, finished with bias, residual and
/// activation as FusedConv finishes them.
struct WinogradConvKernel: Kernel {
    let n: Int, c: Int, h: Int, w: Int, m: Int
    let padT: Int, padL: Int
    let oh: Int, ow: Int
    let epilogue: Epilogue
    let residualInput: Int?
    let outputTypes: [TensorType]

    var tilesH: Int { (oh + 3) / 4 }
    var tilesW: Int { (ow + 3) / 4 }

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...4)
        try ctx.requireDType(0, in: [.float32])
        try ctx.requireDType(1, in: [.float32])
        let xs = try ctx.shape(0), us = try ctx.shape(1)
        guard xs.count == 4, us.count == 3, us[0] == 36, us[2] == xs[1] else {
            throw PSEdgeError.shape("\(ctx.label): input \(Shapes.describe(xs)) and Winograd weights \(Shapes.describe(us)) do not fit X[N,C,H,W], U[36,M,C]")
        }
        let pads = try ctx.attrs.ints("pads") ?? [0, 0, 0, 0]
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 <= 2 }) else {
            throw PSEdgeError.invalid("\(ctx.label): pads must be 4 values in 0…2, got \(pads)")
        }
        let (n, c, h, w, m) = (xs[0], xs[1], xs[2], xs[3], us[1])
        let oh = h + pads[0] + pads[2] - 2, ow = w + pads[1] + pads[3] - 2
        guard oh > 0, ow > 0 else { throw PSEdgeError.shape("\(ctx.label): a 3×3 kernel is larger than the padded input \(Shapes.describe(xs))") }
        if OpsKit.present(ctx, 2) {
            try ctx.requireDType(2, in: [.float32])
            guard try ctx.shape(2) == [m] else { throw PSEdgeError.shape("\(ctx.label): bias must have shape [\(m)]") }
        }
        let out = [n, m, oh, ow]
        var residual: Int? = nil
        if OpsKit.present(ctx, 3) {
            try ctx.requireDType(3, in: [.float32])
            guard try ctx.shape(3) == out else {
                throw PSEdgeError.shape("\(ctx.label): residual \(Shapes.describe(try ctx.shape(3))) does not have the output's shape \(Shapes.describe(out))")
            }
            residual = 3
        }
        return WinogradConvKernel(n: n, c: c, h: h, w: w, m: m, padT: pads[0], padL: pads[1], oh: oh, ow: ow,
                                  epilogue: try Epilogue.from(ctx), residualInput: residual,
                                  outputTypes: [TensorType(.float32, static: out)])
    }

    static let tileRows = ConvKernel.tileRows, tileCols = ConvKernel.tileCols
    static var panelKernel: Bool { ConvKernel.panelKernel }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!.pointer(Float.self), u = UnsafePointer(inputs[1]!.pointer(Float.self))
        let bias = inputs.count > 2 ? inputs[2].map { UnsafePointer($0.pointer(Float.self)) } : nil
        let residual = residualInput.flatMap { $0 < inputs.count ? inputs[$0].map { UnsafePointer($0.pointer(Float.self)) } : nil }
        let y = outputs[0].pointer(Float.self)
        let plane = oh * ow
        for b in 0..<n {
            let xb = x + b * c * h * w, yb = y + b * m * plane, rb = residual.map { $0 + b * m * plane }
            if Self.panelKernel, let rows = tileRowsPerThread(pool) {
                runByTiles(xb, u, bias, rb, yb, pool, tileRows: rows)
            } else {
                runPhases(xb, u, bias, rb, yb, pool)
            }
        }
    }

    /// Rows of tiles per thread when each thread can take a band of whole tile rows with at least a full 16-column
    /// panel of tiles (ResNet's 56×56 and 28×28 stages; its 14×14 stage has 4 tiles a row and 16 in all), or nil.
    private func tileRowsPerThread(_ pool: ThreadPool) -> Int? {
        guard pool.threads > 1 else { return nil }
        let rows = (tilesH + pool.threads - 1) / pool.threads, last = tilesH - rows * (pool.threads - 1)
        return last > 0 && last * tilesW >= 16 && ThreadPool.fixedShares ? rows : nil
    }

    /// One image split by bands of tile rows, each thread taking one band through all three steps (its inputs
    /// transformed, its columns of the 36 products, its outputs) in buffers of its own: nothing one core writes is read
    /// by the other inside the convolution, and the buffers stay with their core from one call to the next. (Phase by
    /// phase, the transformed inputs and products are written by one core and read by the other, and rewriting lines
    /// the other core holds costs several times the write itself on this host; see BENCHMARKS.md.) Same sums as
    /// `runPhases`, so the same results.
    private func runByTiles(_ x: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ res: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool, tileRows: Int) {
        let (c, m, h, w, oh, ow) = (self.c, self.m, self.h, self.w, self.oh, self.ow)
        let (tilesH, tilesW, padT, padL) = (self.tilesH, self.tilesW, self.padT, self.padL)
        let plane = oh * ow
        let epilogue = self.epilogue, (relu, first) = reluFlags
        pool.perThread { t in
            let ty0 = t * tileRows, ty1 = min(tilesH, ty0 + tileRows)
            guard ty0 < ty1 else { return }
            let tiles = (ty1 - ty0) * tilesW
            let own = pool.threadScratch(t, bytes: [36 * c * tiles * 4, 36 * m * tiles * 4])
            let v = own[0].assumingMemoryBound(to: Float.self), mm = own[1].assumingMemoryBound(to: Float.self)
            pse_winograd_f43_input(x, 0, Int32(c), Int32(c), Int32(h), Int32(w), Int32(padT), Int32(padL), Int32(ty0), Int32(ty1),
                                   Int32(tilesW), v)
            for xi in 0..<36 {
                for c0 in stride(from: 0, to: tiles, by: Self.tileCols) {
                    let nc = min(Self.tileCols, tiles - c0)
                    pse_sconv_gemm(Int32(m), Int32(nc), Int32(c), u + xi * m * c, Int32(c), v + xi * c * tiles + c0, Int32(tiles), 16,
                                   nil, nil, 0, 0, 0, mm + xi * m * tiles + c0, Int32(tiles))
                }
            }
            pse_winograd_f43_output(mm, 0, Int32(m), Int32(m), Int32(ty0), Int32(ty1), Int32(tilesW), Int32(oh), Int32(ow),
                                    bias, epilogue.residualInC ? res : nil, relu, first, y)
            let oy0 = ty0 * 4, oy1 = min(oh, ty1 * 4)
            epilogue.finishTile(y + oy0 * ow, rows: m, cols: (oy1 - oy0) * ow, ld: plane, residual: res.map { $0 + oy0 * ow })
        }
    }

    private var reluFlags: (Int32, Int32) { (epilogue.activation == .relu ? 1 : 0, epilogue.residualBeforeActivation ? 1 : 0) }

    /// One image phase by phase: all inputs transformed (split by channel), the 36 products (split by point, row
    /// block and column block), all outputs transformed (split by channel).
    private func runPhases(_ x: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                           _ res: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ pool: ThreadPool) {
        let (c, m, h, w, oh, ow) = (self.c, self.m, self.h, self.w, self.oh, self.ow)
        let (tilesH, tilesW, padT, padL) = (self.tilesH, self.tilesW, self.padT, self.padL)
        let tiles = tilesH * tilesW, plane = oh * ow
        let scratch = pool.scratch(bytes: [36 * c * tiles * 4, 36 * m * tiles * 4])
        let v = scratch[0].assumingMemoryBound(to: Float.self), mm = scratch[1].assumingMemoryBound(to: Float.self)
        let epilogue = self.epilogue, (relu, first) = reluFlags
        pool.parallelChunks(c) { cs in
            pse_winograd_f43_input(x, Int32(cs.lowerBound), Int32(cs.upperBound), Int32(c), Int32(h), Int32(w), Int32(padT),
                                   Int32(padL), 0, Int32(tilesH), Int32(tilesW), v)
        }
        if Self.panelKernel {
            // One flat list of (ξ, row block, column block) products so both threads stay busy on small layers.
            let rowTiles = (m + Self.tileRows - 1) / Self.tileRows, colTiles = (tiles + Self.tileCols - 1) / Self.tileCols
            let perPoint = rowTiles * colTiles
            pool.parallelFor(36 * perPoint) { i in
                let xi = i / perPoint, r0 = (i % perPoint) % rowTiles * Self.tileRows, c0 = (i % perPoint) / rowTiles * Self.tileCols
                let nr = min(Self.tileRows, m - r0), nc = min(Self.tileCols, tiles - c0)
                pse_sconv_gemm(Int32(nr), Int32(nc), Int32(c), u + (xi * m + r0) * c, Int32(c), v + xi * c * tiles + c0, Int32(tiles), 16,
                               nil, nil, 0, 0, 0, mm + (xi * m + r0) * tiles + c0, Int32(tiles))
            }
        } else {
            pool.parallelFor(36) { xi in
                pse_sgemm(0, 0, Int32(m), Int32(tiles), Int32(c), 1, u + xi * m * c, Int32(c), v + xi * c * tiles, Int32(tiles), 0,
                          mm + xi * m * tiles, Int32(tiles))
            }
        }
        pool.parallelChunks(m) { ms in
            let r0 = ms.lowerBound
            pse_winograd_f43_output(mm, Int32(r0), Int32(ms.upperBound), Int32(m), 0, Int32(tilesH), Int32(tilesW), Int32(oh), Int32(ow),
                                    bias, epilogue.residualInC ? res : nil, relu, first, y)
            epilogue.finishTile(y + r0 * plane, rows: ms.count, cols: plane, ld: plane, residual: res.map { $0 + r0 * plane })
        }
    }
}
