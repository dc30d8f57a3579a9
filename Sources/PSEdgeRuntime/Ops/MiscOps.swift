import PSEdgeIR

extension OpRegistry {
    static let miscOps: [String: KernelFactory] = [
        "Pad": MiscOps.pad,
        "Tile": MiscOps.tile,
        "Dropout": MiscOps.dropout,
        "Einsum": EinsumOp.make,
    ]
}

enum MiscOps {
    // MARK: Pad

    static func pad(_ ctx: KernelContext) throws -> Kernel {
        let dtype = try ctx.dtype(0)
        let shape = try ctx.shape(0)
        let rank = shape.count
        let mode = try ctx.attrs.string("mode", default: "constant")
        guard ["constant", "reflect", "edge", "wrap"].contains(mode) else {
            throw OpsKit.unsupported(ctx, "mode", mode, supported: "constant, reflect, edge, wrap")
        }
        var pads: [Int]
        var axes = Array(0..<rank)
        var fillFromInput = false
        var fill = [UInt8](repeating: 0, count: dtype.byteSize)
        if ctx.opset < 11 {
            try ctx.requireInputs(1...1)
            guard let p = try ctx.attrs.ints(ctx.opset < 2 ? "paddings" : "pads") ?? ctx.attrs.ints("pads") else {
                throw PSEdgeError.malformed("\(ctx.label): attribute 'pads' is required")
            }
            pads = p
            fill = OpsKit.encode(Double(try ctx.attrs.float("value", default: 0)), as: dtype)
        } else {
            try ctx.requireInputs(2...4)
            guard let p = try OpsKit.constInts(ctx, 1, "pads") else {
                throw PSEdgeError.malformed("\(ctx.label): input 'pads' is required")
            }
            pads = p
            if OpsKit.present(ctx, 2) {
                guard try ctx.dtype(2) == dtype else {
                    throw OpsKit.invalid(ctx, "constant_value has type \(try ctx.dtype(2).name) but the data is \(dtype.name)")
                }
                if let c = ctx.optionalConstant(2) {
                    fill = OpsKit.firstElementBytes(c, dtype: dtype)
                } else {
                    fillFromInput = true
                }
            }
            if let a = try OpsKit.constInts(ctx, 3, "axes") {
                axes = try OpsKit.axes(a, rank: rank, ctx)
            }
        }
        guard pads.count == 2 * axes.count else {
            throw OpsKit.invalid(ctx, "pads has \(pads.count) values; expected \(2 * axes.count) (begin and end for \(axes.count) axes)")
        }
        var begin = [Int](repeating: 0, count: rank), end = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() {
            begin[a] = pads[i]
            end[a] = pads[i + axes.count]
        }
        var maps: [[Int]] = []
        var outShape: [Int] = []
        for d in 0..<rank {
            let n = shape[d], pb = begin[d], pe = end[d]
            let out = n + pb + pe
            guard out >= 0 else {
                throw OpsKit.invalid(ctx, "pads \(pb), \(pe) remove more than the \(n) elements of axis \(d)")
            }
            // Negative pads crop: the kept input range is [lo, hi); positive pads extend it by `mode`.
            let lo = max(0, -pb), hi = n - max(0, -pe)
            let len = hi - lo
            if len <= 0 && out > 0 && mode != "constant" {
                throw OpsKit.invalid(ctx, "cannot \(mode)-pad axis \(d), which has no elements left")
            }
            var m = [Int](repeating: -1, count: out)
            for o in 0..<out {
                let i = o - pb
                if i >= lo && i < hi { m[o] = i; continue }
                switch mode {
                case "edge": m[o] = min(max(i, lo), hi - 1)
                case "wrap": m[o] = lo + ((i - lo) % len + len) % len
                case "reflect":
                    if len == 1 { m[o] = lo; break }
                    let period = 2 * (len - 1)
                    var t = (i - lo) % period
                    if t < 0 { t += period }
                    m[o] = lo + (t < len ? t : period - t)
                default: m[o] = -1
                }
            }
            maps.append(m)
            outShape.append(out)
        }
        let gather = IndexGather(inShape: shape, sourceIndex: maps, elemSize: dtype.byteSize)
        let constFill = fill
        return OpsKit.Fn([TensorType(dtype, static: outShape)]) { ins, outs, pool in
            let f = fillFromInput ? OpsKit.firstElementBytes(ins[2], dtype: dtype) : constFill
            gather.run(ins[0]!.raw, outs[0].raw, fill: f, pool: pool)
        }
    }

    // MARK: Tile

    static func tile(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...2)
        let dtype = try ctx.dtype(0)
        let shape = try ctx.shape(0)
        guard let reps = try OpsKit.constInts(ctx, 1, "repeats") else {
            throw PSEdgeError.malformed("\(ctx.label): input 'repeats' is required")
        }
        guard reps.count == shape.count else {
            throw OpsKit.invalid(ctx, "repeats has \(reps.count) values but the input has rank \(shape.count)")
        }
        guard reps.allSatisfy({ $0 >= 0 }) else { throw OpsKit.invalid(ctx, "repeats \(reps) must be non-negative") }
        let outShape = zip(shape, reps).map { $0 * $1 }
        let maps = zip(shape, reps).map { n, r in (0..<(n * r)).map { $0 % n } }
        let gather = IndexGather(inShape: shape, sourceIndex: maps, elemSize: dtype.byteSize)
        return OpsKit.Fn([TensorType(dtype, static: outShape)]) { ins, outs, pool in
            gather.run(ins[0]!.raw, outs[0].raw, fill: [], pool: pool)
        }
    }

    // MARK: Dropout (inference: identity)

    struct DropoutKernel: Kernel {
        let outputTypes: [TensorType]
        let mask: Bool
        var aliasesInput: Int? { mask ? nil : 0 }

        func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
            let x = inputs[0]!, y = outputs[0]
            if x.raw != y.raw, y.byteCount > 0 { y.raw.copyMemory(from: x.raw, byteCount: y.byteCount) }
            if mask, outputs.count > 1 {
                let m = outputs[1]
                if m.dtype == .bool {
                    memsetOnes(m)
                } else {
                    let one = OpsKit.encode(1, as: m.dtype)
                    for i in 0..<m.count { (m.raw + i * one.count).copyMemory(from: one, byteCount: one.count) }
                }
            }
        }

        private func memsetOnes(_ t: Tensor) {
            let p = t.pointer(UInt8.self)
            for i in 0..<t.count { p[i] = 1 }
        }
    }

    static func dropout(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...3)
        let dtype = try ctx.dtype(0)
        let shape = try ctx.shape(0)
        if OpsKit.present(ctx, 2) {
            guard let t = ctx.optionalConstant(2) else {
                throw PSEdgeError.unsupported("\(ctx.label): input 'training_mode' must be a constant false (inference only), but is computed at run time")
            }
            if t.count > 0 && t.double(at: 0) != 0 {
                throw OpsKit.unsupported(ctx, "training_mode", "true", supported: "false (inference only)")
            }
        }
        let wantMask = OpsKit.wants(ctx, 1)
        var types = [TensorType(dtype, static: shape)]
        if ctx.node.outputs.count > 1 { types.append(TensorType(ctx.opset >= 10 ? .bool : dtype, static: shape)) }
        return DropoutKernel(outputTypes: types, mask: wantMask)
    }
}
