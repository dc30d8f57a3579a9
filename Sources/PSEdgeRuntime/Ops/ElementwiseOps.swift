import Foundation
import PSEdgeIR
import PSEdgeKernels

extension OpRegistry {
    static let elementwiseOps: [String: KernelFactory] = {
        var ops: [String: KernelFactory] = [:]
        for name in BinaryKernel.Op.allCases.map(\.rawValue) { ops[name] = BinaryKernel.make }
        for name in UnaryKernel.Op.allCases.map(\.rawValue) { ops[name] = UnaryKernel.make }
        for name in ["Sum", "Max", "Min", "Mean"] { ops[name] = VariadicKernel.make }
        ops["Where"] = WhereKernel.make
        ops["Clip"] = ClipKernel.make
        ops["Cast"] = CastKernel.make
        ops["CastLike"] = CastKernel.make
        return ops
    }()
}

// MARK: - Binary (broadcasting)

struct BinaryKernel: Kernel {
    enum Op: String, CaseIterable {
        case Add, Sub, Mul, Div, Pow, Mod, Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor, PRelu
        var isComparison: Bool { [.Equal, .Less, .Greater, .LessOrEqual, .GreaterOrEqual].contains(self) }
        var isLogical: Bool { [.And, .Or, .Xor].contains(self) }
    }
    let op: Op
    let plan: BroadcastPlan
    let aType: DType, bType: DType
    let fmod: Bool
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(2...2)
        let op = Op(rawValue: ctx.node.opType)!
        let a = try ctx.dtype(0), b = try ctx.dtype(1)
        if op != .Pow && a != b {
            throw PSEdgeError.malformed("\(ctx.label): input types differ (\(a.name) and \(b.name))")
        }
        if op.isLogical { try ctx.requireDType(0, in: [.bool]) }
        else if op == .Pow { try ctx.requireDType(0, in: [.float32, .int32, .int64]); try ctx.requireDType(1, in: [.float32, .int32, .int64]) }
        else { try ctx.requireDType(0, in: [.float32, .int64, .int32, .int8, .uint8] + (op == .Equal ? [.bool] : [])) }
        var shapeB = try ctx.shape(1)
        let shapeA = try ctx.shape(0)
        // PRelu's slope broadcasts "unidirectionally"; ONNX allows a [C] slope against [N,C,...] in old opsets.
        if op == .PRelu, shapeB.count == 1, shapeA.count > 2, shapeB[0] == shapeA[1], shapeB[0] != shapeA.last! {
            shapeB = [shapeB[0]] + [Int](repeating: 1, count: shapeA.count - 2)
        }
        let plan = try BroadcastPlan([shapeA, shapeB], label: ctx.label)
        let outType: DType = (op.isComparison || op.isLogical) ? .bool : a
        return BinaryKernel(op: op, plan: plan, aType: a, bType: b, fmod: try ctx.attrs.int("fmod", default: 0) != 0,
                            outputTypes: [TensorType(outType, static: plan.outShape)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let a = inputs[0]!, b = inputs[1]!, out = outputs[0]
        if op == .Pow && (aType != bType || aType != .float32) {
            // Mixed-type power: evaluate in double, store in the base's type.
            plan.forEachSpan(pool: pool) { o, offs, n in
                for i in 0..<n {
                    let v = Foundation.pow(a.double(at: offs[0] + i * plan.innerStrides[0]), b.double(at: offs[1] + i * plan.innerStrides[1]))
                    switch aType {
                    case .int64: out.pointer(Int64.self)[o + i] = Int64(v)
                    case .int32: out.pointer(Int32.self)[o + i] = Int32(v)
                    default: out.pointer(Float.self)[o + i] = Float(v)
                    }
                }
            }
            return
        }
        switch aType {
        case .float32: runTyped(a, b, out, pool, Float.self)
        case .int64: runTyped(a, b, out, pool, Int64.self)
        case .int32: runTyped(a, b, out, pool, Int32.self)
        case .int8: runTyped(a, b, out, pool, Int8.self)
        case .uint8, .bool: runTyped(a, b, out, pool, UInt8.self)
        default: break
        }
    }

    private func runTyped<T: Numeric & Comparable>(_ a: Tensor, _ b: Tensor, _ out: Tensor, _ pool: ThreadPool, _: T.Type) {
        let pa = a.pointer(T.self), pb = b.pointer(T.self)
        if op.isComparison || op.isLogical {
            let po = out.pointer(UInt8.self)
            switch op {
            case .Equal: loop(pa, pb, po, pool) { $0 == $1 ? 1 : 0 }
            case .Less: loop(pa, pb, po, pool) { $0 < $1 ? 1 : 0 }
            case .Greater: loop(pa, pb, po, pool) { $0 > $1 ? 1 : 0 }
            case .LessOrEqual: loop(pa, pb, po, pool) { $0 <= $1 ? 1 : 0 }
            case .GreaterOrEqual: loop(pa, pb, po, pool) { $0 >= $1 ? 1 : 0 }
            case .And: loop(pa, pb, po, pool) { ($0 != 0 && $1 != 0) ? 1 : 0 }
            case .Or: loop(pa, pb, po, pool) { ($0 != 0 || $1 != 0) ? 1 : 0 }
            case .Xor: loop(pa, pb, po, pool) { (($0 != 0) != ($1 != 0)) ? 1 : 0 }
            default: break
            }
            return
        }
        let po = out.pointer(T.self)
        if let pf = pa as? UnsafeMutablePointer<Float> {
            let qb = pb as! UnsafeMutablePointer<Float>, qo = po as! UnsafeMutablePointer<Float>
            switch op {
            case .Add: loop(pf, qb, qo, pool) { $0 + $1 }
            case .Sub: loop(pf, qb, qo, pool) { $0 - $1 }
            case .Mul: loop(pf, qb, qo, pool) { $0 * $1 }
            case .Div: loop(pf, qb, qo, pool) { $0 / $1 }
            case .Pow: loop(pf, qb, qo, pool) { Foundation.pow($0, $1) }
            case .Mod: loop(pf, qb, qo, pool) { x, y in
                    let r = fmodf(x, y)
                    return fmod || r == 0 || (r < 0) == (y < 0) ? r : r + y }
            case .PRelu: loop(pf, qb, qo, pool) { $0 < 0 ? $0 * $1 : $0 }
            default: break
            }
            return
        }
        guard let ia = pa as? UnsafeMutablePointer<Int64> else {
            loopNarrow(pa, pb, po, pool)
            return
        }
        let ib = pb as! UnsafeMutablePointer<Int64>, io = po as! UnsafeMutablePointer<Int64>
        switch op {
        case .Add: loop(ia, ib, io, pool) { $0 &+ $1 }
        case .Sub: loop(ia, ib, io, pool) { $0 &- $1 }
        case .Mul: loop(ia, ib, io, pool) { $0 &* $1 }
        case .Div: loop(ia, ib, io, pool) { $1 == 0 ? 0 : $0 / $1 }
        case .Mod: loop(ia, ib, io, pool) { x, y in
                if y == 0 { return 0 }
                let r = x % y
                return fmod || r == 0 || (r < 0) == (y < 0) ? r : r + y }
        case .PRelu: loop(ia, ib, io, pool) { $0 < 0 ? $0 &* $1 : $0 }
        default: break
        }
    }

    /// Narrow integer types go through Int64 arithmetic and wrap back (as the ONNX reference does).
    private func loopNarrow<T: Numeric & Comparable>(_ pa: UnsafeMutablePointer<T>, _ pb: UnsafeMutablePointer<T>, _ po: UnsafeMutablePointer<T>, _ pool: ThreadPool) {
        func wide(_ p: UnsafeMutablePointer<T>, _ i: Int) -> Int64 {
            if let q = p as? UnsafeMutablePointer<Int32> { return Int64(q[i]) }
            if let q = p as? UnsafeMutablePointer<Int8> { return Int64(q[i]) }
            return Int64((p as! UnsafeMutablePointer<UInt8>)[i])
        }
        func store(_ v: Int64, _ i: Int) {
            if let q = po as? UnsafeMutablePointer<Int32> { q[i] = Int32(truncatingIfNeeded: v) }
            else if let q = po as? UnsafeMutablePointer<Int8> { q[i] = Int8(truncatingIfNeeded: v) }
            else { (po as! UnsafeMutablePointer<UInt8>)[i] = UInt8(truncatingIfNeeded: v) }
        }
        let sa = plan.innerStrides[0], sb = plan.innerStrides[1]
        plan.forEachSpan(pool: pool) { o, offs, n in
            for i in 0..<n {
                let x = wide(pa, offs[0] + i * sa), y = wide(pb, offs[1] + i * sb)
                var r: Int64
                switch op {
                case .Add: r = x &+ y
                case .Sub: r = x &- y
                case .Mul: r = x &* y
                case .Div: r = y == 0 ? 0 : x / y
                case .Mod: r = y == 0 ? 0 : x % y; if !fmod && r != 0 && (r < 0) != (y < 0) { r += y }
                case .PRelu: r = x < 0 ? x &* y : x
                default: r = 0
                }
                store(r, o + i)
            }
        }
    }

    @inline(__always)
    private func loop<T, U>(_ pa: UnsafeMutablePointer<T>, _ pb: UnsafeMutablePointer<T>, _ po: UnsafeMutablePointer<U>,
                            _ pool: ThreadPool, _ f: (T, T) -> U) {
        let sa = plan.innerStrides[0], sb = plan.innerStrides[1]
        plan.forEachSpan(pool: pool) { o, offs, n in
            let x = pa + offs[0], y = pb + offs[1], z = po + o
            if sa == 1 && sb == 1 { for i in 0..<n { z[i] = f(x[i], y[i]) } }
            else if sb == 0 { let c = y[0]; for i in 0..<n { z[i] = f(x[i], c) } }
            else if sa == 0 { let c = x[0]; for i in 0..<n { z[i] = f(c, y[i]) } }
            else { for i in 0..<n { z[i] = f(x[i * sa], y[i * sb]) } }
        }
    }
}

// MARK: - Unary

struct UnaryKernel: Kernel {
    enum Op: String, CaseIterable {
        case Relu, Sigmoid, Tanh, Exp, Log, Sqrt, Neg, Reciprocal, Abs, Erf, Sin, Cos, Gelu, LeakyRelu, Elu, Selu,
             HardSigmoid, HardSwish, Softplus, Softsign, Mish, Floor, Ceil, Round, Sign, Not, Identity
    }
    let op: Op
    let dtype: DType
    let alpha: Float, beta: Float, gamma: Float
    let tanhGelu: Bool
    let outputTypes: [TensorType]

    /// Identity is a view; the planner aliases it.
    var aliasesInput: Int? { op == .Identity ? 0 : nil }

    static func make(_ ctx: KernelContext) throws -> Kernel {
        let op = Op(rawValue: ctx.node.opType)!
        try ctx.requireInputs(1...1)
        let t = try ctx.dtype(0)
        switch op {
        case .Identity: break
        case .Not: try ctx.requireDType(0, in: [.bool])
        case .Neg, .Abs, .Sign, .Relu: try ctx.requireDType(0, in: [.float32, .int64, .int32, .int8])
        default: try ctx.requireDType(0, in: [.float32])
        }
        let a = ctx.attrs
        let defaults: (Float, Float, Float) = {
            switch op {
            case .LeakyRelu: return (0.01, 0, 0)
            case .Elu: return (1, 0, 0)
            case .Selu: return (1.67326319217681884765625, 0, 1.05070102214813232421875)
            case .HardSigmoid: return (0.2, 0.5, 0)
            default: return (0, 0, 0)
            }
        }()
        let shape = try ctx.shape(0)
        let outs = [TensorType(t, static: shape)]
        let approx = try a.string("approximate", default: "none")
        guard approx == "none" || approx == "tanh" else {
            throw PSEdgeError.unsupported("\(ctx.label): approximate='\(approx)' is not supported")
        }
        return UnaryKernel(op: op, dtype: t, alpha: try a.float("alpha", default: defaults.0),
                           beta: try a.float("beta", default: defaults.1), gamma: try a.float("gamma", default: defaults.2),
                           tanhGelu: approx == "tanh", outputTypes: outs)
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!, y = outputs[0]
        let n = x.count
        if op == .Identity {
            if x.raw != y.raw { y.raw.copyMemory(from: x.raw, byteCount: x.byteCount) }
            return
        }
        if dtype != .float32 { runInteger(x, y); return }
        let px = x.pointer(Float.self), py = y.pointer(Float.self)
        let (alpha, beta, gamma) = (self.alpha, self.beta, self.gamma)
        pool.parallelChunks(n, minChunk: 1 << 14) { r in
            let cx = px + r.lowerBound, cy = py + r.lowerBound, m = r.count
            switch op {
            case .Relu: for i in 0..<m { cy[i] = max(cx[i], 0) }
            case .Sigmoid: pse_ops_sigmoid(cx, cy, m)
            case .Tanh: pse_vtanh(cx, cy, m)
            case .Exp: pse_vexp(cx, cy, m)
            case .Erf: pse_verf(cx, cy, m)
            case .Log: for i in 0..<m { cy[i] = logf(cx[i]) }
            case .Sqrt: for i in 0..<m { cy[i] = cx[i].squareRoot() }
            case .Neg: for i in 0..<m { cy[i] = -cx[i] }
            case .Reciprocal: for i in 0..<m { cy[i] = 1 / cx[i] }
            case .Abs: for i in 0..<m { cy[i] = abs(cx[i]) }
            case .Sin: for i in 0..<m { cy[i] = sinf(cx[i]) }
            case .Cos: for i in 0..<m { cy[i] = cosf(cx[i]) }
            case .Floor: for i in 0..<m { cy[i] = cx[i].rounded(.down) }
            case .Ceil: for i in 0..<m { cy[i] = cx[i].rounded(.up) }
            case .Round: for i in 0..<m { cy[i] = cx[i].rounded(.toNearestOrEven) }
            case .Sign: for i in 0..<m { cy[i] = cx[i] > 0 ? 1 : (cx[i] < 0 ? -1 : 0) }
            case .Gelu:
                if tanhGelu {
                    for i in 0..<m { let v = cx[i]; cy[i] = 0.5 * v * (1 + tanhf(0.7978845608028654 * (v + 0.044715 * v * v * v))) }
                } else {
                    pse_ops_gelu(cx, cy, m)
                }
            case .LeakyRelu: for i in 0..<m { cy[i] = cx[i] < 0 ? alpha * cx[i] : cx[i] }
            case .Elu: for i in 0..<m { cy[i] = cx[i] < 0 ? alpha * (expf(cx[i]) - 1) : cx[i] }
            case .Selu: for i in 0..<m { cy[i] = gamma * (cx[i] <= 0 ? alpha * (expf(cx[i]) - 1) : cx[i]) }
            case .HardSigmoid: for i in 0..<m { cy[i] = max(0, min(1, alpha * cx[i] + beta)) }
            case .HardSwish: for i in 0..<m { cy[i] = cx[i] * max(0, min(1, cx[i] / 6 + 0.5)) }
            case .Softplus: for i in 0..<m { let v = cx[i]; cy[i] = v > 20 ? v : log1pf(expf(v)) }
            case .Softsign: for i in 0..<m { cy[i] = cx[i] / (1 + abs(cx[i])) }
            case .Mish: for i in 0..<m { let v = cx[i]; cy[i] = v * tanhf(v > 20 ? v : log1pf(expf(v))) }
            case .Not, .Identity: break
            }
        }
    }

    private func runInteger(_ x: Tensor, _ y: Tensor) {
        let n = x.count
        switch dtype {
        case .bool:
            let px = x.pointer(UInt8.self), py = y.pointer(UInt8.self)
            for i in 0..<n { py[i] = px[i] == 0 ? 1 : 0 }
        case .int64: intLoop(x.pointer(Int64.self), y.pointer(Int64.self), n)
        case .int32: intLoop(x.pointer(Int32.self), y.pointer(Int32.self), n)
        case .int8: intLoop(x.pointer(Int8.self), y.pointer(Int8.self), n)
        default: break
        }
    }

    private func intLoop<T: FixedWidthInteger & SignedInteger>(_ px: UnsafeMutablePointer<T>, _ py: UnsafeMutablePointer<T>, _ n: Int) {
        for i in 0..<n {
            let v = px[i]
            switch op {
            case .Neg: py[i] = 0 &- v
            case .Abs: py[i] = v < 0 ? 0 &- v : v
            case .Sign: py[i] = v > 0 ? 1 : (v < 0 ? -1 : 0)
            case .Relu: py[i] = max(v, 0)
            default: py[i] = v
            }
        }
    }
}

// MARK: - Variadic (Sum, Max, Min, Mean)

struct VariadicKernel: Kernel {
    let opType: String
    let dtype: DType
    let plans: [BroadcastPlan]
    let copyPlan: BroadcastPlan
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        guard ctx.node.inputs.count >= 1 else { throw PSEdgeError.malformed("\(ctx.label): needs at least one input") }
        let t = try ctx.dtype(0)
        try ctx.requireDType(0, in: ctx.node.opType == "Max" || ctx.node.opType == "Min"
            ? [.float32, .float16, .int64, .int32, .int8, .uint8] : [.float32, .float16])
        let shapes = try (0..<ctx.node.inputs.count).map { try ctx.shape($0) }
        for i in shapes.indices where try ctx.dtype(i) != t {
            throw PSEdgeError.malformed("\(ctx.label): input types differ")
        }
        let all = try BroadcastPlan(shapes, label: ctx.label)
        let out = all.outShape
        let copy = try BroadcastPlan([out, shapes[0]], label: ctx.label)
        let plans = try shapes.dropFirst().map { try BroadcastPlan([out, $0], label: ctx.label) }
        return VariadicKernel(opType: ctx.node.opType, dtype: t, plans: plans, copyPlan: copy,
                              outputTypes: [TensorType(t, static: out)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        switch dtype {
        case .int64: runTyped(inputs, outputs[0], Int64.self)
        case .int32: runTyped(inputs, outputs[0], Int32.self)
        case .float32: runTyped(inputs, outputs[0], Float.self)
        default: runConverting(inputs, outputs[0])
        }
    }

    /// Narrow types (f16, i8, u8) compute in Double and convert back.
    private func runConverting(_ inputs: [Tensor?], _ out: Tensor) {
        var acc = [Double](repeating: 0, count: out.count)
        let s0 = copyPlan.innerStrides[1], x0 = inputs[0]!
        copyPlan.forEachSpan(pool: .serial) { o, offs, n in for i in 0..<n { acc[o + i] = x0.double(at: offs[1] + i * s0) } }
        for (k, plan) in plans.enumerated() {
            let xk = inputs[k + 1]!, sk = plan.innerStrides[1]
            plan.forEachSpan(pool: .serial) { o, offs, n in
                for i in 0..<n {
                    let v = xk.double(at: offs[1] + i * sk)
                    switch opType {
                    case "Max": acc[o + i] = max(acc[o + i], v)
                    case "Min": acc[o + i] = min(acc[o + i], v)
                    default: acc[o + i] += v
                    }
                }
            }
        }
        let scale = opType == "Mean" ? 1 / Double(inputs.count) : 1
        for i in 0..<out.count { out.setDouble(acc[i] * scale, at: i) }
    }

    private func runTyped<T: Numeric & Comparable>(_ inputs: [Tensor?], _ out: Tensor, _: T.Type) {
        let po = out.pointer(T.self)
        let p0 = inputs[0]!.pointer(T.self)
        let s0 = copyPlan.innerStrides[1]
        copyPlan.forEachSpan(pool: .serial) { o, offs, n in for i in 0..<n { po[o + i] = p0[offs[1] + i * s0] } }
        for (k, plan) in plans.enumerated() {
            let pk = inputs[k + 1]!.pointer(T.self)
            let sk = plan.innerStrides[1]
            plan.forEachSpan(pool: .serial) { o, offs, n in
                for i in 0..<n {
                    let v = pk[offs[1] + i * sk]
                    switch opType {
                    case "Max": po[o + i] = max(po[o + i], v)
                    case "Min": po[o + i] = min(po[o + i], v)
                    default: po[o + i] += v
                    }
                }
            }
        }
        if opType == "Mean", let pf = po as? UnsafeMutablePointer<Float> {
            let scale = 1 / Float(inputs.count)
            for i in 0..<out.count { pf[i] *= scale }
        }
    }
}

// MARK: - Where

struct WhereKernel: Kernel {
    let plan: BroadcastPlan
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(3...3)
        try ctx.requireDType(0, in: [.bool])
        guard try ctx.dtype(1) == ctx.dtype(2) else { throw PSEdgeError.malformed("\(ctx.label): X and Y types differ") }
        let plan = try BroadcastPlan([ctx.shape(0), ctx.shape(1), ctx.shape(2)], label: ctx.label)
        return WhereKernel(plan: plan, outputTypes: [TensorType(try ctx.dtype(1), static: plan.outShape)])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let c = inputs[0]!.pointer(UInt8.self), x = inputs[1]!, y = inputs[2]!, out = outputs[0]
        let size = out.dtype.byteSize
        let s = plan.innerStrides
        plan.forEachSpan(pool: pool) { o, offs, n in
            for i in 0..<n {
                let src = c[offs[0] + i * s[0]] != 0 ? x.raw + (offs[1] + i * s[1]) * size : y.raw + (offs[2] + i * s[2]) * size
                (out.raw + (o + i) * size).copyMemory(from: src, byteCount: size)
            }
        }
    }
}

// MARK: - Clip

struct ClipKernel: Kernel {
    let dtype: DType
    let attrMin: Float?, attrMax: Float?
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        try ctx.requireInputs(1...3)
        try ctx.requireDType(0, in: [.float32, .int64, .int32, .int8, .uint8])
        let t = try ctx.dtype(0)
        return ClipKernel(dtype: t, attrMin: ctx.opset < 11 ? try ctx.attrs.float("min") : nil,
                          attrMax: ctx.opset < 11 ? try ctx.attrs.float("max") : nil,
                          outputTypes: [TensorType(t, static: try ctx.shape(0))])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!, y = outputs[0]
        let lo = inputs.count > 1 ? inputs[1].map { $0.double(at: 0) } : attrMin.map(Double.init)
        let hi = inputs.count > 2 ? inputs[2].map { $0.double(at: 0) } : attrMax.map(Double.init)
        switch dtype {
        case .float32:
            let px = x.pointer(Float.self), py = y.pointer(Float.self)
            let l = Float(lo ?? -Double.infinity), h = Float(hi ?? Double.infinity)
            for i in 0..<x.count { py[i] = min(max(px[i], l), h) }
        case .int64: clipInt(x.pointer(Int64.self), y.pointer(Int64.self), x.count, lo, hi)
        case .int32: clipInt(x.pointer(Int32.self), y.pointer(Int32.self), x.count, lo, hi)
        case .int8: clipInt(x.pointer(Int8.self), y.pointer(Int8.self), x.count, lo, hi)
        default: clipInt(x.pointer(UInt8.self), y.pointer(UInt8.self), x.count, lo, hi)
        }
    }

    private func clipInt<T: FixedWidthInteger>(_ px: UnsafeMutablePointer<T>, _ py: UnsafeMutablePointer<T>, _ n: Int, _ lo: Double?, _ hi: Double?) {
        let l = lo.map { T(clamping: Int64($0)) } ?? T.min, h = hi.map { T(clamping: Int64($0)) } ?? T.max
        for i in 0..<n { py[i] = min(max(px[i], l), h) }
    }
}

// MARK: - Cast

struct CastKernel: Kernel {
    let from: DType, to: DType
    let outputTypes: [TensorType]

    static func make(_ ctx: KernelContext) throws -> Kernel {
        let to: DType
        if ctx.node.opType == "CastLike" {
            try ctx.requireInputs(2...2)
            to = try ctx.dtype(1)
        } else {
            try ctx.requireInputs(1...1)
            let code = try ctx.attrs.int("to") ?? -1
            guard let t = DType(rawValue: Int32(code)) else {
                throw PSEdgeError.unsupported("\(ctx.label): cast to ONNX type \(code) is not supported")
            }
            to = t
        }
        return CastKernel(from: try ctx.dtype(0), to: to, outputTypes: [TensorType(to, static: try ctx.shape(0))])
    }

    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) {
        let x = inputs[0]!, y = outputs[0]
        CastKernel.convert(x, into: y)
    }

    /// Elementwise conversion between any two supported dtypes (float→int truncates toward zero).
    static func convert(_ x: Tensor, into y: Tensor) {
        let n = x.count
        if x.dtype == y.dtype { if x.raw != y.raw { y.raw.copyMemory(from: x.raw, byteCount: x.byteCount) }; return }
        if x.dtype == .float32 && y.dtype == .float16 {
            let px = x.pointer(Float.self), py = y.pointer(UInt16.self)
            for i in 0..<n { py[i] = floatToHalfBits(px[i]) }
            return
        }
        if y.dtype == .float32 {
            let py = y.pointer(Float.self)
            switch x.dtype {
            case .float16: let px = x.pointer(UInt16.self); for i in 0..<n { py[i] = halfBitsToFloat(px[i]) }
            case .int64: let px = x.pointer(Int64.self); for i in 0..<n { py[i] = Float(px[i]) }
            default: for i in 0..<n { py[i] = Float(x.double(at: i)) }
            }
            return
        }
        for i in 0..<n {
            let v = x.double(at: i)
            switch y.dtype {
            case .float16: y.pointer(UInt16.self)[i] = floatToHalfBits(Float(v))
            case .bfloat16: y.pointer(UInt16.self)[i] = floatToBfloatBits(Float(v))
            case .bool: y.pointer(UInt8.self)[i] = v != 0 ? 1 : 0
            case .int64: y.pointer(Int64.self)[i] = x.dtype.isFloat ? clampedInt(v, Int64.self) : x.int64(at: i)
            case .int32: y.pointer(Int32.self)[i] = x.dtype.isFloat ? clampedInt(v, Int32.self) : Int32(truncatingIfNeeded: x.int64(at: i))
            case .int8: y.pointer(Int8.self)[i] = x.dtype.isFloat ? clampedInt(v, Int8.self) : Int8(truncatingIfNeeded: x.int64(at: i))
            case .uint8: y.pointer(UInt8.self)[i] = x.dtype.isFloat ? clampedInt(v, UInt8.self) : UInt8(truncatingIfNeeded: x.int64(at: i))
            case .float32: break
            }
        }
    }

    private static func clampedInt<T: FixedWidthInteger>(_ v: Double, _: T.Type) -> T {
        guard v.isFinite else { return v.isNaN ? 0 : (v > 0 ? T.max : T.min) }
        return T(clamping: Int64(max(min(v.rounded(.towardZero), 9.2e18), -9.2e18)))
    }
}
