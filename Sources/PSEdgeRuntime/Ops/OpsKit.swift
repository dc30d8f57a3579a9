import PSEdgeIR
import PSEdgeKernels

/// Shared helpers for the normalization, pooling, resize, reduction and misc operator files.
/// Everything lives in this namespace so it cannot collide with helpers of other op files.
enum OpsKit {
    /// A kernel whose run step is a closure built at plan time (it captures the precomputed tables).
    struct Fn: Kernel {
        let outputTypes: [TensorType]
        let body: ([Tensor?], [Tensor], ThreadPool) -> Void

        init(_ outputTypes: [TensorType], _ body: @escaping ([Tensor?], [Tensor], ThreadPool) -> Void) {
            self.outputTypes = outputTypes
            self.body = body
        }

        func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool) { body(inputs, outputs, pool) }
    }

    /// Memory a kernel owns for intermediate results (allocated once at plan time, reused every run).
    /// A plan runs one inference at a time, so a kernel's scratch is never used by two runs at once.
    final class Scratch: @unchecked Sendable {
        let storage: Storage
        init(bytes: Int) { storage = Storage(byteCount: max(bytes, 64)) }
        init(floats: Int) { storage = Storage(byteCount: max(floats, 16) * 4) }
        var floats: UnsafeMutablePointer<Float> { storage.base.assumingMemoryBound(to: Float.self) }
        var raw: UnsafeMutableRawPointer { storage.base }
    }

    static func product<C: Collection>(_ s: C) -> Int where C.Element == Int { s.reduce(1, *) }

    static func unsupported(_ ctx: KernelContext, _ attr: String, _ value: String, supported: String) -> PSEdgeError {
        .unsupported("\(ctx.label): \(attr) = '\(value)' is not supported (supported: \(supported))")
    }

    static func invalid(_ ctx: KernelContext, _ message: String) -> PSEdgeError {
        .invalid("\(ctx.label): \(message)")
    }

    /// True when the node names output j (so it must be computed).
    static func wants(_ ctx: KernelContext, _ j: Int) -> Bool {
        j < ctx.node.outputs.count && !ctx.node.outputs[j].isEmpty
    }

    /// True when optional input i is present (named and typed).
    static func present(_ ctx: KernelContext, _ i: Int) -> Bool {
        i < ctx.node.inputs.count && !ctx.node.inputs[i].isEmpty && ctx.has(i)
    }

    /// Integer values of a constant input (int64/int32), or nil when the input is omitted.
    static func constInts(_ ctx: KernelContext, _ i: Int, _ what: String) throws -> [Int]? {
        guard present(ctx, i) else { return nil }
        let t = try ctx.constant(i, what)
        guard t.dtype == .int64 || t.dtype == .int32 else {
            throw PSEdgeError.invalid("\(ctx.label): input '\(what)' should be int64 but is \(t.dtype.name)")
        }
        return t.ints
    }

    /// Float values of a constant input, or nil when the input is omitted.
    static func constFloats(_ ctx: KernelContext, _ i: Int, _ what: String) throws -> [Float]? {
        guard present(ctx, i) else { return nil }
        return try ctx.constant(i, what).floats
    }

    /// Normalizes a list of axes (negative allowed), rejecting duplicates.
    static func axes(_ list: [Int], rank: Int, _ ctx: KernelContext) throws -> [Int] {
        var out: [Int] = []
        for a in list {
            let r = a < 0 ? a + rank : a
            guard r >= 0, r < rank else { throw invalid(ctx, "axis \(a) is out of range for rank \(rank)") }
            guard !out.contains(r) else { throw invalid(ctx, "axis \(a) is listed twice") }
            out.append(r)
        }
        return out
    }

    /// For every element of `to` (row-major), the flat index of the element of `from` it reads when
    /// `from` is broadcast (NumPy rules, right-aligned) to `to`. Used for small parameter tensors.
    static func broadcastMap(from: [Int], to: [Int]) -> [Int]? {
        guard from.count <= to.count else { return nil }
        let pad = [Int](repeating: 1, count: to.count - from.count) + from
        for (a, b) in zip(pad, to) where a != b && a != 1 { return nil }
        let fs = Shapes.strides(pad)
        let n = product(to)
        var out = [Int](repeating: 0, count: n)
        var idx = [Int](repeating: 0, count: to.count)
        for i in 0..<n {
            var off = 0
            for d in 0..<to.count where pad[d] != 1 { off += idx[d] * fs[d] }
            out[i] = off
            var d = to.count - 1
            while d >= 0 {
                idx[d] += 1
                if idx[d] < to[d] { break }
                idx[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// Copies `count` elements of `size` bytes from a typed view, for byte-generic kernels.
    @inline(__always)
    static func copyElement(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, size: Int) {
        switch size {
        case 4: dst.storeBytes(of: src.load(as: UInt32.self), as: UInt32.self)
        case 8: dst.storeBytes(of: src.load(as: UInt64.self), as: UInt64.self)
        case 2: dst.storeBytes(of: src.load(as: UInt16.self), as: UInt16.self)
        case 1: dst.storeBytes(of: src.load(as: UInt8.self), as: UInt8.self)
        default: dst.copyMemory(from: src, byteCount: size)
        }
    }

    /// The bytes of `value` encoded as one element of `dtype` (for fill values given as a float attribute).
    static func encode(_ value: Double, as dtype: DType) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: dtype.byteSize)
        bytes.withUnsafeMutableBytes { b in
            let p = b.baseAddress!
            switch dtype {
            case .float32: p.storeBytes(of: Float(value), as: Float.self)
            case .float16: p.storeBytes(of: floatToHalfBits(Float(value)), as: UInt16.self)
            case .bfloat16: p.storeBytes(of: floatToBfloatBits(Float(value)), as: UInt16.self)
            case .int64: p.storeBytes(of: Int64(clamping: saturatingInt(value)), as: Int64.self)
            case .int32: p.storeBytes(of: Int32(clamping: saturatingInt(value)), as: Int32.self)
            case .int8: p.storeBytes(of: Int8(clamping: saturatingInt(value)), as: Int8.self)
            case .uint8: p.storeBytes(of: UInt8(clamping: saturatingInt(value)), as: UInt8.self)
            case .bool: p.storeBytes(of: UInt8(value != 0 ? 1 : 0), as: UInt8.self)
            }
        }
        return bytes
    }

    private static func saturatingInt(_ v: Double) -> Int {
        if v.isNaN { return 0 }
        if v >= 9.2e18 { return Int.max }
        if v <= -9.2e18 { return Int.min }
        return Int(v)
    }

    /// Mean and (biased) variance of n floats (two passes, vectorized partial sums).
    @inline(__always)
    static func meanVar(_ x: UnsafePointer<Float>, _ n: Int) -> (mean: Float, variance: Float) {
        var m: Float = 0, v: Float = 0
        pse_ops_mean_var(x, n, &m, &v)
        return (m, v)
    }

    /// A value copied out of a tensor for use as one element (e.g. Pad's constant_value).
    static func firstElementBytes(_ t: Tensor?, dtype: DType) -> [UInt8] {
        guard let t, t.count > 0 else { return [UInt8](repeating: 0, count: dtype.byteSize) }
        if t.dtype == dtype {
            return Array(UnsafeRawBufferPointer(start: t.raw, count: dtype.byteSize))
        }
        return encode(t.double(at: 0), as: dtype)
    }
}
