import PSEdgeIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension OpRegistry {
    static let reductionOps: [String: KernelFactory] = [
        "ReduceSum": { try ReduceOps.reduce($0, .sum) },
        "ReduceMean": { try ReduceOps.reduce($0, .mean) },
        "ReduceMax": { try ReduceOps.reduce($0, .max) },
        "ReduceMin": { try ReduceOps.reduce($0, .min) },
        "ReduceProd": { try ReduceOps.reduce($0, .prod) },
        "ReduceL1": { try ReduceOps.reduce($0, .l1) },
        "ReduceL2": { try ReduceOps.reduce($0, .l2) },
        "ReduceSumSquare": { try ReduceOps.reduce($0, .sumSquare) },
        "ReduceLogSum": { try ReduceOps.reduce($0, .logSum) },
        "ReduceLogSumExp": { try ReduceOps.reduce($0, .logSumExp) },
        "ArgMax": { try ReduceOps.argReduce($0, max: true) },
        "ArgMin": { try ReduceOps.argReduce($0, max: false) },
    ]
}

/// One reduction: an identity, how an element joins the accumulator, and a final step given the count.
protocol ReduceAccumulator {
    associatedtype E
    static var identity: E { get }
    static func combine(_ acc: E, _ x: E) -> E
    static func finish(_ acc: E, _ count: Int) -> E
    /// Joins two partial accumulators (for sum-like kinds a + b, whatever combine adds per element).
    static func merge(_ a: E, _ b: E) -> E
}

extension ReduceAccumulator {
    @inline(__always) static func finish(_ acc: E, _ count: Int) -> E { acc }
}

enum ReduceOps {
    enum Kind: String {
        case sum, mean, max, min, prod, l1, l2, sumSquare, logSum, logSumExp

        /// Kinds defined for integer and bool inputs here (the rest are float-only).
        var integerOK: Bool { [.sum, .mean, .max, .min, .prod].contains(self) }
    }

    // Float accumulators.
    enum FSum: ReduceAccumulator {
        static var identity: Float { 0 }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { a + x }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { a + b }
    }
    enum FMean: ReduceAccumulator {
        static var identity: Float { 0 }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { a + x }
        @inline(__always) static func finish(_ a: Float, _ n: Int) -> Float { a / Float(n) }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { a + b }
    }
    enum FMax: ReduceAccumulator {
        static var identity: Float { -.infinity }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { x > a || x.isNaN ? x : a }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum FMin: ReduceAccumulator {
        static var identity: Float { .infinity }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { x < a || x.isNaN ? x : a }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum FProd: ReduceAccumulator {
        static var identity: Float { 1 }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { a * x }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum FL1: ReduceAccumulator {
        static var identity: Float { 0 }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { a + abs(x) }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { a + b }
    }
    enum FL2: ReduceAccumulator {
        static var identity: Float { 0 }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { a + x * x }
        @inline(__always) static func finish(_ a: Float, _ n: Int) -> Float { a.squareRoot() }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { a + b }
    }
    enum FSumSquare: ReduceAccumulator {
        static var identity: Float { 0 }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { a + x * x }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { a + b }
    }
    enum FLogSum: ReduceAccumulator {
        static var identity: Float { 0 }
        @inline(__always) static func combine(_ a: Float, _ x: Float) -> Float { a + x }
        @inline(__always) static func finish(_ a: Float, _ n: Int) -> Float { logf(a) }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { a + b }
    }

    // Integer accumulators (wrapping arithmetic, like the reference's fixed-width numpy ints).
    enum ISum<I: FixedWidthInteger>: ReduceAccumulator {
        static var identity: I { 0 }
        @inline(__always) static func combine(_ a: I, _ x: I) -> I { a &+ x }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum IMean<I: FixedWidthInteger>: ReduceAccumulator {
        static var identity: I { 0 }
        @inline(__always) static func combine(_ a: I, _ x: I) -> I { a &+ x }
        @inline(__always) static func finish(_ a: I, _ n: Int) -> I { n == 0 ? 0 : a / I(truncatingIfNeeded: n) }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum IMax<I: FixedWidthInteger>: ReduceAccumulator {
        static var identity: I { .min }
        @inline(__always) static func combine(_ a: I, _ x: I) -> I { Swift.max(a, x) }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum IMin<I: FixedWidthInteger>: ReduceAccumulator {
        static var identity: I { .max }
        @inline(__always) static func combine(_ a: I, _ x: I) -> I { Swift.min(a, x) }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum IProd<I: FixedWidthInteger>: ReduceAccumulator {
        static var identity: I { 1 }
        @inline(__always) static func combine(_ a: I, _ x: I) -> I { a &* x }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    // Bool: max = any, min = all (empty: false / true).
    enum BMax: ReduceAccumulator {
        static var identity: UInt8 { 0 }
        @inline(__always) static func combine(_ a: UInt8, _ x: UInt8) -> UInt8 { (a != 0 || x != 0) ? 1 : 0 }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }
    enum BMin: ReduceAccumulator {
        static var identity: UInt8 { 1 }
        @inline(__always) static func combine(_ a: UInt8, _ x: UInt8) -> UInt8 { (a != 0 && x != 0) ? 1 : 0 }
        @inline(__always) static func merge(_ a: E, _ b: E) -> E { combine(a, b) }
    }

    /// The loop structure of a reduction after dropping unit dims and merging neighbours.
    struct Layout {
        /// Kept dims (size, input stride), outermost first, and reduced dims likewise.
        var kept: [(size: Int, stride: Int)] = []
        var reduced: [(size: Int, stride: Int)] = []
        var outCount = 1
        var redCount = 1
        /// [K1, R, K2] with K2 the contiguous tail: reduce rows into an output row.
        var columnPattern: (k1: Int, r: Int, k2: Int)? = nil
    }

    static func layout(shape: [Int], reduce: Set<Int>) -> Layout {
        var dims: [(size: Int, red: Bool)] = []
        for (i, s) in shape.enumerated() where s != 1 {
            let r = reduce.contains(i)
            if let last = dims.last, last.red == r {
                dims[dims.count - 1].size *= s
            } else {
                dims.append((s, r))
            }
        }
        var L = Layout()
        var stride = 1
        var withStride: [(size: Int, stride: Int, red: Bool)] = []
        for d in dims.reversed() {
            withStride.append((d.size, stride, d.red))
            stride *= d.size
        }
        withStride.reverse()
        for d in withStride {
            if d.red { L.reduced.append((d.size, d.stride)) } else { L.kept.append((d.size, d.stride)) }
        }
        L.outCount = L.kept.reduce(1) { $0 * $1.size }
        L.redCount = L.reduced.reduce(1) { $0 * $1.size }
        if dims.count >= 2, !dims[dims.count - 1].red, dims[dims.count - 2].red,
           dims.count == 2 || (dims.count == 3 && !dims[0].red) {
            L.columnPattern = (dims.count == 3 ? dims[0].size : 1, dims[dims.count - 2].size, dims[dims.count - 1].size)
        }
        return L
    }

    static func run<A: ReduceAccumulator>(_: A.Type, _ x: UnsafeMutablePointer<A.E>, _ y: UnsafeMutablePointer<A.E>,
                                          _ L: Layout, _ pool: ThreadPool) {
        let n = L.redCount
        if L.outCount == 0 { return }
        if let (k1, r, k2) = L.columnPattern {
            let block = 1024
            let blocks = (k2 + block - 1) / block
            pool.parallelChunks(k1 * blocks, minChunk: max(1, 8192 / max(r * min(k2, block), 1))) { items in
                for item in items {
                    let a = item / blocks, c0 = (item % blocks) * block, c1 = min(k2, c0 + block)
                    let yr = y + a * k2
                    for i in c0..<c1 { yr[i] = A.identity }
                    for j in 0..<r {
                        let xr = x + (a * r + j) * k2
                        for i in c0..<c1 { yr[i] = A.combine(yr[i], xr[i]) }
                    }
                    for i in c0..<c1 { yr[i] = A.finish(yr[i], r) }
                }
            }
            return
        }
        let kept = L.kept, red = L.reduced
        let inner = red.last ?? (size: 1, stride: 1)
        let outerRed = Array(red.dropLast())
        let outerRedCount = outerRed.reduce(1) { $0 * $1.size }
        pool.parallelChunks(L.outCount, minChunk: max(1, 8192 / max(n, 1))) { range in
            // Input offset of the first output of the chunk.
            var idx = [Int](repeating: 0, count: kept.count)
            var rem = range.lowerBound
            for d in stride(from: kept.count - 1, through: 0, by: -1) {
                idx[d] = rem % kept[d].size
                rem /= kept[d].size
            }
            var ridx = [Int](repeating: 0, count: outerRed.count)
            for o in range {
                var base = 0
                for d in 0..<kept.count { base += idx[d] * kept[d].stride }
                var acc = A.identity
                if n > 0 {
                    for d in 0..<ridx.count { ridx[d] = 0 }
                    for _ in 0..<outerRedCount {
                        var off = base
                        for d in 0..<ridx.count { off += ridx[d] * outerRed[d].stride }
                        let p = x + off
                        if inner.stride == 1 {
                            // Four independent partial results break the dependency chain.
                            let m = inner.size & ~3
                            if m > 0 {
                                var a0 = A.identity, a1 = A.identity, a2 = A.identity, a3 = A.identity
                                var i = 0
                                while i < m {
                                    a0 = A.combine(a0, p[i]); a1 = A.combine(a1, p[i + 1])
                                    a2 = A.combine(a2, p[i + 2]); a3 = A.combine(a3, p[i + 3])
                                    i += 4
                                }
                                acc = A.merge(acc, A.merge(A.merge(a0, a1), A.merge(a2, a3)))
                            }
                            for i in m..<inner.size { acc = A.combine(acc, p[i]) }
                        } else {
                            for i in 0..<inner.size { acc = A.combine(acc, p[i * inner.stride]) }
                        }
                        var d = ridx.count - 1
                        while d >= 0 {
                            ridx[d] += 1
                            if ridx[d] < outerRed[d].size { break }
                            ridx[d] = 0
                            d -= 1
                        }
                    }
                }
                y[o] = A.finish(acc, n)
                var d = kept.count - 1
                while d >= 0 {
                    idx[d] += 1
                    if idx[d] < kept[d].size { break }
                    idx[d] = 0
                    d -= 1
                }
            }
        }
    }

    static func reduce(_ ctx: KernelContext, _ kind: Kind) throws -> Kernel {
        try ctx.requireInputs(1...2)
        let dtype = try ctx.dtype(0)
        var allowed: [DType] = [.float32]
        if kind.integerOK { allowed += [.int64, .int32] }
        if kind == .max || kind == .min { allowed += [.uint8, .int8, .bool] }
        try ctx.requireDType(0, in: allowed)
        let shape = try ctx.shape(0)
        let rank = shape.count
        let axesFromInput = kind == .sum ? ctx.opset >= 13 : ctx.opset >= 18
        var axesList: [Int]
        if OpsKit.present(ctx, 1) {
            if !axesFromInput {
                throw PSEdgeError.malformed("\(ctx.label): takes axes as an attribute before opset \(kind == .sum ? 13 : 18), not as an input")
            }
            axesList = try OpsKit.constInts(ctx, 1, "axes") ?? []
        } else {
            axesList = try ctx.attrs.ints("axes") ?? []
        }
        let keepdims = try ctx.attrs.int("keepdims", default: 1) != 0
        let noop = try ctx.attrs.int("noop_with_empty_axes", default: 0) != 0
        var reduceSet: Set<Int>
        if axesList.isEmpty {
            reduceSet = noop ? [] : Set(0..<rank)
        } else {
            reduceSet = Set(try OpsKit.axes(axesList, rank: rank, ctx))
        }
        var outShape: [Int] = []
        for (i, s) in shape.enumerated() {
            if reduceSet.contains(i) {
                if keepdims { outShape.append(1) }
            } else {
                outShape.append(s)
            }
        }
        if reduceSet.isEmpty {
            // noop_with_empty_axes: the output is the input, unchanged.
            return OpsKit.Fn([TensorType(dtype, static: shape)]) { ins, outs, _ in
                let n = outs[0].byteCount
                if n > 0 { outs[0].raw.copyMemory(from: ins[0]!.raw, byteCount: n) }
            }
        }
        let L = layout(shape: shape, reduce: reduceSet)
        if kind == .logSumExp { return logSumExp(shape, reduceSet, L, TensorType(dtype, static: outShape)) }
        return OpsKit.Fn([TensorType(dtype, static: outShape)]) { ins, outs, pool in
            let x = ins[0]!, y = outs[0]
            switch dtype {
            case .float32:
                let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
                switch kind {
                case .sum: run(FSum.self, xp, yp, L, pool)
                case .mean: run(FMean.self, xp, yp, L, pool)
                case .max: run(FMax.self, xp, yp, L, pool)
                case .min: run(FMin.self, xp, yp, L, pool)
                case .prod: run(FProd.self, xp, yp, L, pool)
                case .l1: run(FL1.self, xp, yp, L, pool)
                case .l2: run(FL2.self, xp, yp, L, pool)
                case .sumSquare: run(FSumSquare.self, xp, yp, L, pool)
                case .logSum: run(FLogSum.self, xp, yp, L, pool)
                case .logSumExp: break
                }
            case .int64: runInt(Int64.self, kind, x, y, L, pool)
            case .int32: runInt(Int32.self, kind, x, y, L, pool)
            case .int8: runInt(Int8.self, kind, x, y, L, pool)
            case .uint8: runInt(UInt8.self, kind, x, y, L, pool)
            case .bool:
                let xp = x.pointer(UInt8.self), yp = y.pointer(UInt8.self)
                if kind == .max { run(BMax.self, xp, yp, L, pool) } else { run(BMin.self, xp, yp, L, pool) }
            default: break
            }
        }
    }

    /// max + log(sum(exp(x - max))): the max by the generic engine, then one in-order pass over the input
    /// that adds each element's exp into its output slot.
    static func logSumExp(_ shape: [Int], _ reduce: Set<Int>, _ L: Layout, _ outType: TensorType) -> Kernel {
        let rank = shape.count
        var outStride = [Int](repeating: 0, count: rank)
        var acc = 1
        for d in stride(from: rank - 1, through: 0, by: -1) where !reduce.contains(d) {
            outStride[d] = acc
            acc *= shape[d]
        }
        let total = OpsKit.product(shape)
        let sums = OpsKit.Scratch(floats: L.outCount)
        return OpsKit.Fn([outType]) { ins, outs, pool in
            let x = ins[0]!.pointer(Float.self), y = outs[0].pointer(Float.self)
            run(FMax.self, x, y, L, pool)
            let s = sums.floats
            for k in 0..<L.outCount { s[k] = 0 }
            var idx = [Int](repeating: 0, count: rank)
            for i in 0..<total {
                var k = 0
                for d in 0..<rank { k += idx[d] * outStride[d] }
                if y[k] > -.infinity { s[k] += expf(x[i] - y[k]) }
                var d = rank - 1
                while d >= 0 {
                    idx[d] += 1
                    if idx[d] < shape[d] { break }
                    idx[d] = 0
                    d -= 1
                }
            }
            for k in 0..<L.outCount where y[k] > -.infinity { y[k] += logf(s[k]) }
        }
    }

    static func runInt<I: FixedWidthInteger>(_: I.Type, _ kind: Kind, _ x: Tensor, _ y: Tensor, _ L: Layout, _ pool: ThreadPool) {
        let xp = x.pointer(I.self), yp = y.pointer(I.self)
        switch kind {
        case .sum: run(ISum<I>.self, xp, yp, L, pool)
        case .mean: run(IMean<I>.self, xp, yp, L, pool)
        case .max: run(IMax<I>.self, xp, yp, L, pool)
        case .min: run(IMin<I>.self, xp, yp, L, pool)
        case .prod: run(IProd<I>.self, xp, yp, L, pool)
        default: break
        }
    }

    // MARK: ArgMax / ArgMin

    static func argReduce(_ ctx: KernelContext, max isMax: Bool) throws -> Kernel {
        try ctx.requireInputs(1...1)
        try ctx.requireDType(0, in: [.float32, .int64, .int32, .uint8, .int8])
        let dtype = try ctx.dtype(0)
        let shape = try ctx.shape(0)
        let dims = shape.isEmpty ? [1] : shape
        let axis = try Shapes.axis(ctx.attrs.int("axis", default: 0), rank: dims.count, ctx.label)
        let keepdims = try ctx.attrs.int("keepdims", default: 1) != 0
        let last = try ctx.attrs.int("select_last_index", default: 0) != 0
        var outShape = shape
        if !shape.isEmpty {
            if keepdims { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        }
        let outer = OpsKit.product(dims[..<axis]), n = dims[axis], inner = OpsKit.product(dims[(axis + 1)...])
        if n == 0 && outer * inner > 0 {
            throw PSEdgeError.shape("\(ctx.label): cannot take the arg\(isMax ? "max" : "min") over an empty axis")
        }
        return OpsKit.Fn([TensorType(.int64, static: outShape)]) { ins, outs, pool in
            let y = outs[0].pointer(Int64.self)
            switch dtype {
            case .int64: argRun(ins[0]!.pointer(Int64.self), y, outer, n, inner, isMax, last, pool)
            case .int32: argRun(ins[0]!.pointer(Int32.self), y, outer, n, inner, isMax, last, pool)
            case .uint8: argRun(ins[0]!.pointer(UInt8.self), y, outer, n, inner, isMax, last, pool)
            case .int8: argRun(ins[0]!.pointer(Int8.self), y, outer, n, inner, isMax, last, pool)
            default: argRun(ins[0]!.pointer(Float.self), y, outer, n, inner, isMax, last, pool)
            }
        }
    }

    static func argRun<E: Comparable>(_ x: UnsafeMutablePointer<E>, _ y: UnsafeMutablePointer<Int64>, _ outer: Int, _ n: Int,
                                      _ inner: Int, _ isMax: Bool, _ last: Bool, _ pool: ThreadPool) {
        if outer * inner == 0 || n == 0 { return }
        @inline(__always) func better(_ v: E, _ b: E) -> Bool {
            if isMax { return last ? v >= b : v > b }
            return last ? v <= b : v < b
        }
        pool.parallelChunks(outer * inner, minChunk: max(1, 4096 / n)) { range in
            for item in range {
                let o = item / inner, i = item % inner
                let p = x + o * n * inner + i
                var best = p[0]
                var bi = 0
                for k in 1..<max(n, 1) {
                    let v = p[k * inner]
                    if better(v, best) { best = v; bi = k }
                }
                y[item] = Int64(bi)
            }
        }
    }
}
