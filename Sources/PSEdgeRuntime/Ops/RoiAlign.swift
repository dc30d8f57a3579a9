import PSEdgeIR

/// RoiAlign (opset 10 and 16+): bilinear samples on a regular grid in each output bin, averaged or maxed.
enum RoiAlignOp {
    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...3)
        try ctx.requireDType(0, in: [.float32])
        try ctx.requireDType(1, in: [.float32])
        try ctx.requireDType(2, in: [.int64, .int32])
        let xs = try ctx.shape(0), rs = try ctx.shape(1), bs = try ctx.shape(2)
        guard xs.count == 4 else { throw PSEdgeError.shape("\(ctx.label): X must be 4-D [N,C,H,W], is \(Shapes.describe(xs))") }
        guard rs.count == 2, rs[1] == 4 else { throw PSEdgeError.shape("\(ctx.label): rois must be [num_rois, 4], is \(Shapes.describe(rs))") }
        guard bs == [rs[0]] else {
            throw PSEdgeError.shape("\(ctx.label): batch_indices must be [\(rs[0])], is \(Shapes.describe(bs))")
        }
        let a = ctx.attrs
        let mode = try a.string("mode", default: "avg")
        guard mode == "avg" || mode == "max" else { throw OpsKit.unsupported(ctx, "mode", mode, supported: "avg, max") }
        let oh = try a.int("output_height", default: 1), ow = try a.int("output_width", default: 1)
        guard oh > 0, ow > 0 else { throw OpsKit.invalid(ctx, "output_height/output_width must be positive") }
        let sampling = try a.int("sampling_ratio", default: 0)
        guard sampling >= 0 else { throw OpsKit.invalid(ctx, "sampling_ratio must be >= 0") }
        let spatialScale = Double(try a.float("spatial_scale", default: 1))
        let ctm = try a.string("coordinate_transformation_mode", default: ctx.opset >= 16 ? "half_pixel" : "output_half_pixel")
        guard ctm == "half_pixel" || ctm == "output_half_pixel" else {
            throw OpsKit.unsupported(ctx, "coordinate_transformation_mode", ctm, supported: "half_pixel, output_half_pixel")
        }
        let halfPixel = ctm == "half_pixel"
        let isMax = mode == "max"
        let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3])
        let numRois = rs[0]
        let idx64 = try ctx.dtype(2) == .int64
        let params = RoIAlign.Parameters(outputHeight: oh, outputWidth: ow, samplingRatio: sampling, spatialScale: spatialScale,
                                         halfPixel: halfPixel, max: isMax)
        return OpsKit.Fn([TensorType(.float32, static: [numRois, c, oh, ow])]) { ins, outs, pool in
            let bidx: [Int] = (0..<numRois).map { r in
                idx64 ? Int(ins[2]!.pointer(Int64.self)[r]) : Int(ins[2]!.pointer(Int32.self)[r])
            }
            RoIAlign.compute(x: ins[0]!.pointer(Float.self), shape: (n, c, h, w), rois: ins[1]!.pointer(Float.self),
                             batchIndices: bidx, parameters: params, output: outs[0].pointer(Float.self), pool: pool)
        }
    }
}

/// RoIAlign as a function, for the ONNX op above and for pipelines that pool a variable number of boxes.
public enum RoIAlign {
    public struct Parameters: Sendable {
        public var outputHeight: Int, outputWidth: Int
        /// Samples per bin side; 0 = adaptive (ceil(roi size / bins)).
        public var samplingRatio: Int
        public var spatialScale: Double
        /// ONNX `half_pixel` (torchvision aligned=True); otherwise `output_half_pixel`, RoIs at least 1x1.
        public var halfPixel: Bool
        public var max: Bool
        public init(outputHeight: Int, outputWidth: Int, samplingRatio: Int, spatialScale: Double, halfPixel: Bool, max: Bool = false) {
            (self.outputHeight, self.outputWidth, self.samplingRatio) = (outputHeight, outputWidth, samplingRatio)
            (self.spatialScale, self.halfPixel, self.max) = (spatialScale, halfPixel, max)
        }
    }

    /// Pools `rois` (R×4, x1 y1 x2 y2 in input pixels) from `x` [N, C, H, W] into a new [R, C, oh, ow] tensor.
    public static func pool(_ x: Tensor, rois: [Float], batchIndices: [Int], parameters: Parameters, pool: ThreadPool? = nil) -> Tensor {
        precondition(x.rank == 4 && x.dtype == .float32 && rois.count == 4 * batchIndices.count)
        let out = Tensor(zeros: .float32, shape: [batchIndices.count, x.shape[1], parameters.outputHeight, parameters.outputWidth])
        rois.withUnsafeBufferPointer { r in
            compute(x: x.pointer(Float.self), shape: (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), rois: r.baseAddress!,
                    batchIndices: batchIndices, parameters: parameters, output: out.pointer(Float.self), pool: pool ?? ThreadPool.serial)
        }
        return out
    }

    static func compute(x: UnsafeMutablePointer<Float>, shape: (Int, Int, Int, Int), rois: UnsafePointer<Float>, batchIndices: [Int],
                        parameters p: Parameters, output y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let (n, c, h, w) = shape
        let (oh, ow, sampling, spatialScale, halfPixel, isMax) = (p.outputHeight, p.outputWidth, p.samplingRatio, p.spatialScale, p.halfPixel, p.max)
        let numRois = batchIndices.count
        // Many RoIs: split the RoIs over the pool (one dispatch); few: split each RoI's channels.
        if numRois >= 2 * pool.threads {
            pool.parallelChunks(numRois) { range in
                var pos = [Int](), wts = [Float]()
                for r in range { poolRoI(r, &pos, &wts, channelPool: ThreadPool.serial) }
            }
        } else {
            var pos = [Int](), wts = [Float]()
            for r in 0..<numRois { poolRoI(r, &pos, &wts, channelPool: pool) }
        }

        // One RoI: its sample table (4 positions and 4 weights per sample), then every channel.
        func poolRoI(_ r: Int, _ pos: inout [Int], _ wts: inout [Float], channelPool: ThreadPool) {
            let bi = batchIndices[r]
            let out = y + r * c * oh * ow
            guard bi >= 0, bi < n else {
                out.update(repeating: 0, count: c * oh * ow)
                return
            }
            let offset = halfPixel ? 0.5 : 0
            let sw = Double(rois[4 * r]) * spatialScale - offset
            let sh = Double(rois[4 * r + 1]) * spatialScale - offset
            let ew = Double(rois[4 * r + 2]) * spatialScale - offset
            let eh = Double(rois[4 * r + 3]) * spatialScale - offset
            var rw = ew - sw, rh = eh - sh
            if !halfPixel { rw = max(rw, 1); rh = max(rh, 1) }
            let binH = rh / Double(oh), binW = rw / Double(ow)
            let gh = sampling > 0 ? sampling : Int((rh / Double(oh)).rounded(.up))
            let gw = sampling > 0 ? sampling : Int((rw / Double(ow)).rounded(.up))
            let count = max(gh * gw, 1)
            let samples = max(gh, 0) * max(gw, 0)
            pos.removeAll(keepingCapacity: true)
            wts.removeAll(keepingCapacity: true)
            for ph in 0..<oh {
                for pw in 0..<ow {
                    for iy in 0..<max(gh, 0) {
                        let yy = sh + Double(ph) * binH + (Double(iy) + 0.5) * binH / Double(gh)
                        for ix in 0..<max(gw, 0) {
                            let xx = sw + Double(pw) * binW + (Double(ix) + 0.5) * binW / Double(gw)
                            if yy < -1 || yy > Double(h) || xx < -1 || xx > Double(w) {
                                for _ in 0..<4 { pos.append(0); wts.append(0) }
                                continue
                            }
                            var yv = max(yy, 0), xv = max(xx, 0)
                            var yl = Int(yv), xl = Int(xv)
                            let yh: Int, xh: Int
                            if yl >= h - 1 { yl = h - 1; yh = h - 1; yv = Double(yl) } else { yh = yl + 1 }
                            if xl >= w - 1 { xl = w - 1; xh = w - 1; xv = Double(xl) } else { xh = xl + 1 }
                            let ly = yv - Double(yl), lx = xv - Double(xl), hy = 1 - ly, hx = 1 - lx
                            pos.append(yl * w + xl); pos.append(yl * w + xh)
                            pos.append(yh * w + xl); pos.append(yh * w + xh)
                            wts.append(Float(hy * hx)); wts.append(Float(hy * lx))
                            wts.append(Float(ly * hx)); wts.append(Float(ly * lx))
                        }
                    }
                }
            }
            let invCount = 1 / Float(count)
            pos.withUnsafeBufferPointer { pb in
                wts.withUnsafeBufferPointer { wb in
                    let p = pb.baseAddress, wt = wb.baseAddress
                    channelPool.parallelChunks(c, minChunk: max(1, 2048 / max(1, oh * ow * samples))) { chans in
                        for ch in chans {
                            let plane = x + (bi * c + ch) * h * w
                            let o = out + ch * oh * ow
                            var s = 0
                            for bin in 0..<(oh * ow) {
                                var acc: Float = 0
                                var first = true
                                for _ in 0..<samples {
                                    let q = 4 * s
                                    let v1 = wt![q] * plane[p![q]], v2 = wt![q + 1] * plane[p![q + 1]]
                                    let v3 = wt![q + 2] * plane[p![q + 2]], v4 = wt![q + 3] * plane[p![q + 3]]
                                    if isMax {
                                        let v = max(max(v1, v2), max(v3, v4))
                                        acc = first ? v : max(acc, v)
                                        first = false
                                    } else {
                                        acc += v1 + v2 + v3 + v4
                                    }
                                    s += 1
                                }
                                o[bin] = isMax ? acc : acc * invCount
                            }
                        }
                    }
                }
            }
        }
    }
}
