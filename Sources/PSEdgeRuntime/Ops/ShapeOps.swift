import Foundation
import PSEdgeIR

extension OpRegistry {
    static let shapeOps: [String: KernelFactory] = [
        "Reshape": ViewKernel.makeReshape,
        "Flatten": ViewKernel.makeFlatten,
        "Squeeze": ViewKernel.makeSqueeze,
        "Unsqueeze": ViewKernel.makeUnsqueeze,
        "Transpose": TransposeKernel.make,
        "Concat": ConcatKernel.make,
        "Split": SplitKernel.make,
        "Slice": SliceKernel.make,
        "Gather": GatherKernel.make,
        "Expand": ExpandKernel.make,
        "Shape": ConstantKernel.makeShape,
        "Size": ConstantKernel.makeSize,
        "Constant": ConstantKernel.makeConstant,
        "ConstantOfShape": ConstantKernel.makeConstantOfShape,
        "Range": ConstantKernel.makeRange,
    ]
}

/// Axes given as an attribute (old opsets) or as a constant input (newer opsets).
func axesArgument(_ ctx: KernelContext, inputIndex: Int, attributeUntilOpset: Int) throws -> [Int]? {
    if ctx.opset < attributeUntilOpset { return try ctx.attrs.ints("axes") }
    guard ctx.has(inputIndex) else { return nil }
    return try ctx.constant(inputIndex, "axes").ints
}

// MARK: - Views: same bytes, new shape (the planner aliases them)

struct ViewKernel: Kernel {
    let outputTypes: [TensorType]
    var aliasesInput: Int? { 0 }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!, y = outputs[0]
        if x.raw != y.raw { y.raw.copyMemory(from: x.raw, byteCount: x.byteCount) }
    }

    static func view(_ ctx: KernelContext, _ shape: [Int]) throws -> Kernel {
        let input = try ctx.shape(0)
        guard shape.reduce(1, *) == input.reduce(1, *), shape.allSatisfy({ $0 >= 0 }) else {
            throw PSEdgeError.shape("\(ctx.label): cannot view \(Shapes.describe(input)) as \(Shapes.describe(shape))")
        }
        return ViewKernel(outputTypes: [TensorType(try ctx.dtype(0), static: shape)])
    }

    static func makeReshape(_ ctx: KernelContext) throws -> Kernel {
        let input = try ctx.shape(0)
        let spec: [Int] = ctx.opset < 5 ? (try ctx.attrs.ints("shape") ?? []) : try ctx.constant(1, "shape").ints
        let allowZero = try ctx.attrs.int("allowzero", default: 0) != 0
        var out = spec.enumerated().map { i, d in d == 0 && !allowZero ? (i < input.count ? input[i] : 0) : d }
        if let inferred = out.firstIndex(of: -1) {
            guard out.filter({ $0 == -1 }).count == 1 else { throw PSEdgeError.shape("\(ctx.label): more than one -1 in shape \(spec)") }
            let known = out.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            let total = input.reduce(1, *)
            guard known != 0, total % known == 0 else {
                throw PSEdgeError.shape("\(ctx.label): cannot reshape \(Shapes.describe(input)) to \(spec)")
            }
            out[inferred] = total / known
        }
        return try view(ctx, out)
    }

    static func makeFlatten(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0)
        var axis = try ctx.attrs.int("axis", default: 1)
        if axis < 0 { axis += s.count }
        guard axis >= 0, axis <= s.count else { throw PSEdgeError.invalid("\(ctx.label): axis out of range") }
        return try view(ctx, [s[..<axis].reduce(1, *), s[axis...].reduce(1, *)])
    }

    static func makeSqueeze(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0)
        let axes = try axesArgument(ctx, inputIndex: 1, attributeUntilOpset: 13)?.map { try Shapes.axis($0, rank: s.count, ctx.label) }
        var out: [Int] = []
        for (i, d) in s.enumerated() {
            if let axes {
                if axes.contains(i) {
                    guard d == 1 else { throw PSEdgeError.shape("\(ctx.label): cannot squeeze axis \(i) of size \(d)") }
                    continue
                }
            } else if d == 1 { continue }
            out.append(d)
        }
        return try view(ctx, out)
    }

    static func makeUnsqueeze(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0)
        guard let raw = try axesArgument(ctx, inputIndex: 1, attributeUntilOpset: 13) else {
            throw PSEdgeError.malformed("\(ctx.label): axes are required")
        }
        let rank = s.count + raw.count
        let axes = try Set(raw.map { try Shapes.axis($0, rank: rank, ctx.label) })
        guard axes.count == raw.count else { throw PSEdgeError.invalid("\(ctx.label): repeated axes") }
        var it = s.makeIterator()
        return try view(ctx, (0..<rank).map { axes.contains($0) ? 1 : it.next()! })
    }
}

// MARK: - Transpose

/// Copies an N-d array into another axis order; rows are memcpy'd when the last axis stays last.
func permute(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, shape: [Int], perm: [Int], elementSize: Int, pool: ThreadPool) {
    let rank = shape.count
    let inStrides = Shapes.strides(shape)
    let outShape = perm.map { shape[$0] }
    let srcStrides = perm.map { inStrides[$0] * elementSize }
    let total = shape.reduce(1, *)
    if total == 0 { return }
    if rank == 0 { dst.copyMemory(from: src, byteCount: elementSize); return }
    let inner = outShape[rank - 1]
    let innerStride = srcStrides[rank - 1]
    let rows = total / inner
    let rowBytes = inner * elementSize
    pool.parallelChunks(rows, minChunk: max(1, 4096 / max(inner, 1))) { range in
        for r in range {
            var rem = r, off = 0
            var a = rank - 2
            while a >= 0 { off += (rem % outShape[a]) * srcStrides[a]; rem /= outShape[a]; a -= 1 }
            let d = dst + r * rowBytes
            let s = src + off
            if innerStride == elementSize { d.copyMemory(from: s, byteCount: rowBytes); continue }
            switch elementSize {
            case 4:
                let dp = d.assumingMemoryBound(to: UInt32.self)
                for i in 0..<inner { dp[i] = s.load(fromByteOffset: i * innerStride, as: UInt32.self) }
            case 8:
                let dp = d.assumingMemoryBound(to: UInt64.self)
                for i in 0..<inner { dp[i] = s.load(fromByteOffset: i * innerStride, as: UInt64.self) }
            default:
                for i in 0..<inner { (d + i * elementSize).copyMemory(from: s + i * innerStride, byteCount: elementSize) }
            }
        }
    }
}

struct TransposeKernel: Kernel {
    let perm: [Int]
    let inShape: [Int]
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0)
        let perm = try ctx.attrs.ints("perm") ?? Array((0..<s.count).reversed())
        guard perm.count == s.count, Set(perm) == Set(0..<s.count) else {
            throw PSEdgeError.invalid("\(ctx.label): perm \(perm) is not a permutation of rank \(s.count)")
        }
        return TransposeKernel(perm: perm, inShape: s, outputTypes: [TensorType(try ctx.dtype(0), static: perm.map { s[$0] })])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!
        permute(x.raw, outputs[0].raw, shape: inShape, perm: perm, elementSize: x.dtype.byteSize, pool: pool)
    }
}

// MARK: - Concat / Split

struct ConcatKernel: Kernel {
    let outer: Int
    let innerBytes: [Int]
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        guard !ctx.node.inputs.isEmpty else { throw PSEdgeError.malformed("\(ctx.label): no inputs") }
        let shapes = try (0..<ctx.node.inputs.count).map { try ctx.shape($0) }
        let t = try ctx.dtype(0)
        guard let rawAxis = try ctx.attrs.int("axis") else { throw PSEdgeError.malformed("\(ctx.label): attribute 'axis' is required") }
        let axis = try Shapes.axis(rawAxis, rank: shapes[0].count, ctx.label)
        var out = shapes[0]
        for (i, s) in shapes.enumerated().dropFirst() {
            guard s.count == out.count, (0..<s.count).allSatisfy({ $0 == axis || s[$0] == out[$0] }), try ctx.dtype(i) == t else {
                throw PSEdgeError.shape("\(ctx.label): input \(i) \(Shapes.describe(s)) does not match \(Shapes.describe(shapes[0])) outside axis \(axis)")
            }
            out[axis] += s[axis]
        }
        let outer = out[..<axis].reduce(1, *)
        return ConcatKernel(outer: outer, innerBytes: shapes.map { $0[axis...].reduce(1, *) * t.byteSize },
                            outputTypes: [TensorType(t, static: out)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let total = innerBytes.reduce(0, +)
        var start = 0
        for (k, x) in inputs.enumerated() {
            let n = innerBytes[k]
            let src = x!.raw, dst = outputs[0].raw + start
            for o in 0..<outer { (dst + o * total).copyMemory(from: src + o * n, byteCount: n) }
            start += n
        }
    }
}

struct SplitKernel: Kernel {
    let outer: Int
    let inner: Int
    let sizes: [Int]
    let elementSize: Int
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0), t = try ctx.dtype(0)
        let axis = try Shapes.axis(try ctx.attrs.int("axis", default: 0), rank: s.count, ctx.label)
        let n = ctx.node.outputs.count
        var sizes: [Int]
        if ctx.opset < 13, let split = try ctx.attrs.ints("split") { sizes = split }
        else if ctx.opset >= 13, ctx.has(1) { sizes = try ctx.constant(1, "split").ints }
        else {
            let parts = try ctx.attrs.int("num_outputs") ?? n
            let chunk = (s[axis] + parts - 1) / parts
            sizes = (0..<parts).map { min(chunk, max(0, s[axis] - $0 * chunk)) }
        }
        guard sizes.count == n, sizes.reduce(0, +) == s[axis], sizes.allSatisfy({ $0 >= 0 }) else {
            throw PSEdgeError.shape("\(ctx.label): split sizes \(sizes) do not divide axis \(axis) of \(Shapes.describe(s)) into \(n) outputs")
        }
        return SplitKernel(outer: s[..<axis].reduce(1, *), inner: s[(axis + 1)...].reduce(1, *), sizes: sizes, elementSize: t.byteSize,
                           outputTypes: sizes.map { var o = s; o[axis] = $0; return TensorType(t, static: o) })
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let src = inputs[0]!.raw
        let row = sizes.reduce(0, +) * inner * elementSize
        var start = 0
        for (k, size) in sizes.enumerated() {
            let n = size * inner * elementSize
            for o in 0..<outer { (outputs[k].raw + o * n).copyMemory(from: src + o * row + start, byteCount: n) }
            start += n
        }
    }
}

// MARK: - Slice

struct SliceKernel: Kernel {
    let inShape: [Int]
    let starts: [Int]
    let steps: [Int]
    let elementSize: Int
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0), t = try ctx.dtype(0)
        let starts, ends: [Int]
        var axes: [Int]?
        var steps: [Int]?
        if ctx.opset < 10 {
            starts = try ctx.attrs.ints("starts") ?? []
            ends = try ctx.attrs.ints("ends") ?? []
            axes = try ctx.attrs.ints("axes")
        } else {
            starts = try ctx.constant(1, "starts").ints
            ends = try ctx.constant(2, "ends").ints
            axes = ctx.has(3) ? try ctx.constant(3, "axes").ints : nil
            steps = ctx.has(4) ? try ctx.constant(4, "steps").ints : nil
        }
        let ax = try (axes ?? Array(0..<starts.count)).map { try Shapes.axis($0, rank: s.count, ctx.label) }
        let st = steps ?? [Int](repeating: 1, count: starts.count)
        guard starts.count == ends.count, ax.count == starts.count, st.count == starts.count else {
            throw PSEdgeError.malformed("\(ctx.label): starts/ends/axes/steps have different lengths")
        }
        var begin = [Int](repeating: 0, count: s.count)
        var step = [Int](repeating: 1, count: s.count)
        var out = s
        for (i, a) in ax.enumerated() {
            let d = s[a], k = st[i]
            guard k != 0 else { throw PSEdgeError.invalid("\(ctx.label): slice step 0") }
            func clampIndex(_ v: Int, _ lo: Int, _ hi: Int) -> Int {
                let w = v < 0 ? v + d : v
                return min(max(w, lo), hi)
            }
            let b = k > 0 ? clampIndex(starts[i], 0, d) : clampIndex(starts[i], -1, d - 1)
            let e = k > 0 ? clampIndex(ends[i], 0, d) : clampIndex(ends[i], -1, d - 1)
            let n = k > 0 ? max(0, (e - b + k - 1) / k) : max(0, (b - e + (-k) - 1) / (-k))
            begin[a] = b
            step[a] = k
            out[a] = n
        }
        return SliceKernel(inShape: s, starts: begin, steps: step, elementSize: t.byteSize, outputTypes: [TensorType(t, static: out)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let out = outputs[0]
        let outShape = out.shape
        let total = out.count
        if total == 0 { return }
        let rank = inShape.count
        let inStrides = Shapes.strides(inShape)
        var base = 0
        for a in 0..<rank { base += starts[a] * inStrides[a] }
        let stepStrides = (0..<rank).map { steps[$0] * inStrides[$0] }
        let inner = outShape.last ?? 1
        let rows = total / max(inner, 1)
        let src = inputs[0]!.raw, dst = out.raw
        let es = elementSize
        let innerStep = rank > 0 ? stepStrides[rank - 1] : 1
        for r in 0..<rows {
            var rem = r, off = base
            var a = rank - 2
            while a >= 0 { off += (rem % outShape[a]) * stepStrides[a]; rem /= outShape[a]; a -= 1 }
            let d = dst + r * inner * es
            if innerStep == 1 { d.copyMemory(from: src + off * es, byteCount: inner * es) }
            else { for i in 0..<inner { (d + i * es).copyMemory(from: src + (off + i * innerStep) * es, byteCount: es) } }
        }
    }
}

// MARK: - Gather

struct GatherKernel: Kernel {
    let outer: Int, axisSize: Int, innerBytes: Int
    let label: String
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0), idx = try ctx.shape(1), t = try ctx.dtype(0)
        try ctx.requireDType(1, in: [.int64, .int32])
        let axis = try Shapes.axis(try ctx.attrs.int("axis", default: 0), rank: s.count, ctx.label)
        if let c = ctx.optionalConstant(1) {
            for v in c.ints where v < -s[axis] || v >= s[axis] {
                throw PSEdgeError.invalid("\(ctx.label): index \(v) is out of range for axis \(axis) of size \(s[axis])")
            }
        }
        let out = Array(s[..<axis]) + idx + Array(s[(axis + 1)...])
        return GatherKernel(outer: s[..<axis].reduce(1, *), axisSize: s[axis], innerBytes: s[(axis + 1)...].reduce(1, *) * t.byteSize,
                            label: ctx.label, outputTypes: [TensorType(t, static: out)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!, idx = inputs[1]!
        let n = idx.count
        var dst = outputs[0].raw
        for o in 0..<outer {
            for j in 0..<n {
                var k = Int(idx.int64(at: j))
                if k < 0 { k += axisSize }
                if k < 0 || k >= axisSize { memset(dst, 0, innerBytes) }  // run-time index out of range: zero, never read out of bounds
                else { dst.copyMemory(from: x.raw + (o * axisSize + k) * innerBytes, byteCount: innerBytes) }
                dst += innerBytes
            }
        }
    }
}

// MARK: - Expand

struct ExpandKernel: Kernel {
    let plan: BroadcastPlan
    let elementSize: Int
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0)
        let target = try ctx.constant(1, "shape").ints
        let plan = try BroadcastPlan([s, target], label: ctx.label)
        return ExpandKernel(plan: try BroadcastPlan([plan.outShape, s], label: ctx.label), elementSize: try ctx.dtype(0).byteSize,
                            outputTypes: [TensorType(try ctx.dtype(0), static: plan.outShape)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let src = inputs[0]!.raw, dst = outputs[0].raw, es = elementSize
        let stride = plan.innerStrides[1]
        plan.forEachSpan(pool: pool) { o, offs, n in
            if stride == 1 { (dst + o * es).copyMemory(from: src + offs[1] * es, byteCount: n * es) }
            else { for i in 0..<n { (dst + (o + i) * es).copyMemory(from: src + offs[1] * es, byteCount: es) } }
        }
    }
}

// MARK: - Values known at plan time (Shape, Size, Constant, ConstantOfShape, Range)

/// A kernel whose output never depends on input values; constant folding replaces it by its value.
struct ConstantKernel: Kernel {
    let value: Tensor
    var outputTypes: [TensorType] { [TensorType(value.dtype, static: value.shape)] }
    var isConstant: Bool { true }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        outputs[0].raw.copyMemory(from: value.raw, byteCount: value.byteCount)
    }

    static func makeShape(_ ctx: KernelContext) throws -> Kernel {
        let s = try ctx.shape(0)
        let r = s.count
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
        let start = clamp(try ctx.attrs.int("start", default: 0))
        let end = clamp(try ctx.attrs.int("end") ?? r)
        let dims = start < end ? Array(s[start..<end]) : []
        return ConstantKernel(value: Tensor(int64: dims.map(Int64.init), shape: [dims.count]))
    }

    static func makeSize(_ ctx: KernelContext) throws -> Kernel {
        ConstantKernel(value: Tensor(int64: [Int64(try ctx.shape(0).reduce(1, *))], shape: []))
    }

    static func makeConstant(_ ctx: KernelContext) throws -> Kernel {
        let a = ctx.attrs
        if let t = try a.tensor("value") { return ConstantKernel(value: t) }
        if let v = try a.float("value_float"), a.has("value_float") { return ConstantKernel(value: Tensor([v], shape: [])) }
        if let v = try a.floats("value_floats") { return ConstantKernel(value: Tensor(v, shape: [v.count])) }
        if let v = try a.int("value_int") { return ConstantKernel(value: Tensor(int64: [Int64(v)], shape: [])) }
        if let v = try a.ints("value_ints") { return ConstantKernel(value: Tensor(int64: v.map(Int64.init), shape: [v.count])) }
        throw PSEdgeError.unsupported("\(ctx.label): Constant needs a 'value', 'value_float(s)' or 'value_int(s)' attribute (sparse/string values are not supported)")
    }

    static func makeConstantOfShape(_ ctx: KernelContext) throws -> Kernel {
        let shape = try ctx.constant(0, "shape").ints
        guard shape.allSatisfy({ $0 >= 0 }) else { throw PSEdgeError.invalid("\(ctx.label): negative dimension in \(shape)") }
        let fill = try ctx.attrs.tensor("value") ?? Tensor([0], shape: [1])
        guard fill.count == 1 else { throw PSEdgeError.invalid("\(ctx.label): 'value' must hold one element") }
        _ = try ResourceLimits.checkConstant(TensorType(fill.dtype, static: shape), what: "\(ctx.label): ConstantOfShape output")
        let out = Tensor(zeros: fill.dtype, shape: shape)
        for i in 0..<out.count { (out.raw + i * fill.dtype.byteSize).copyMemory(from: fill.raw, byteCount: fill.dtype.byteSize) }
        return ConstantKernel(value: out)
    }

    static func makeRange(_ ctx: KernelContext) throws -> Kernel {
        let start = try ctx.constant(0, "start"), limit = try ctx.constant(1, "limit"), delta = try ctx.constant(2, "delta")
        guard start.count == 1, limit.count == 1, delta.count == 1 else {
            throw PSEdgeError.invalid("\(ctx.label): start, limit and delta must be scalars")
        }
        let (s, l, d) = (start.double(at: 0), limit.double(at: 0), delta.double(at: 0))
        guard d != 0 else { throw PSEdgeError.invalid("\(ctx.label): delta is 0") }
        let steps = ((l - s) / d).rounded(.up)
        guard steps.isFinite, steps < Double(TensorType.maxValueBytes) else {
            throw PSEdgeError.invalid("\(ctx.label): Range(\(s), \(l), \(d)) has \(steps) elements")
        }
        let n = max(0, Int(steps))
        _ = try ResourceLimits.checkConstant(TensorType(start.dtype, static: [n]), what: "\(ctx.label): Range output")
        let out = Tensor(zeros: start.dtype, shape: [n])
        for i in 0..<n {
            let v = s + Double(i) * d
            switch start.dtype {
            case .float32: out.pointer(Float.self)[i] = Float(start.pointer(Float.self)[0] + Float(i) * delta.pointer(Float.self)[0])
            case .int64: out.pointer(Int64.self)[i] = Int64(v)
            case .int32: out.pointer(Int32.self)[i] = Int32(v)
            case .bool: throw PSEdgeError.unsupported("\(ctx.label): Range of bool")
            default: out.setDouble(v, at: i)
            }
        }
        return ConstantKernel(value: out)
    }
}
