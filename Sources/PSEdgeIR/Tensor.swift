/// A dense, row-major tensor: dtype + static shape + bytes in a `Storage`.
public struct Tensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let storage: Storage
    public let offset: Int

    public init(dtype: DType, shape: [Int], storage: Storage, offset: Int = 0) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// Zero-filled tensor with its own storage.
    public init(zeros dtype: DType, shape: [Int]) {
        self.init(dtype: dtype, shape: shape, storage: Storage(byteCount: shape.reduce(1, *) * dtype.byteSize))
    }

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.byteSize }
    public var rank: Int { shape.count }
    public var raw: UnsafeMutableRawPointer { storage.base.advanced(by: offset) }
    public var rawBuffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: raw, count: byteCount) }

    public func pointer<T>(_: T.Type) -> UnsafeMutablePointer<T> { raw.assumingMemoryBound(to: T.self) }

    /// Same bytes, another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count)
        return Tensor(dtype: dtype, shape: newShape, storage: storage, offset: offset)
    }

    // MARK: building from Swift arrays

    public init(_ values: [Float], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *))
        self.init(zeros: .float32, shape: shape)
        values.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public init(int64 values: [Int64], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *))
        self.init(zeros: .int64, shape: shape)
        values.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public init(bytes: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) {
        self.init(zeros: dtype, shape: shape)
        precondition(bytes.count == byteCount)
        if byteCount > 0 { raw.copyMemory(from: bytes.baseAddress!, byteCount: byteCount) }
    }

    // MARK: reading values (conversions for convenience, not for hot loops)

    /// Element i converted to Double.
    public func double(at i: Int) -> Double {
        switch dtype {
        case .float32: return Double(pointer(Float.self)[i])
        case .float16: return Double(halfBitsToFloat(pointer(UInt16.self)[i]))
        case .bfloat16: return Double(bfloatBitsToFloat(pointer(UInt16.self)[i]))
        case .int64: return Double(pointer(Int64.self)[i])
        case .int32: return Double(pointer(Int32.self)[i])
        case .int8: return Double(pointer(Int8.self)[i])
        case .uint8: return Double(pointer(UInt8.self)[i])
        case .bool: return pointer(UInt8.self)[i] != 0 ? 1 : 0
        }
    }

    /// Element i converted to Int64 (floats truncate toward zero).
    public func int64(at i: Int) -> Int64 {
        switch dtype {
        case .int64: return pointer(Int64.self)[i]
        case .int32: return Int64(pointer(Int32.self)[i])
        case .int8: return Int64(pointer(Int8.self)[i])
        case .uint8, .bool: return Int64(pointer(UInt8.self)[i])
        default:
            let d = double(at: i)
            return d.isFinite ? Int64(max(min(d, 9.2e18), -9.2e18)) : 0
        }
    }

    /// Stores v into element i, converting to this tensor's dtype (integers truncate toward zero, saturating).
    public func setDouble(_ v: Double, at i: Int) {
        func int<T: FixedWidthInteger>(_: T.Type) -> T {
            v.isNaN ? 0 : T(clamping: Int64(max(min(v.rounded(.towardZero), 9.2e18), -9.2e18)))
        }
        switch dtype {
        case .float32: pointer(Float.self)[i] = Float(v)
        case .float16: pointer(UInt16.self)[i] = floatToHalfBits(Float(v))
        case .bfloat16: pointer(UInt16.self)[i] = floatToBfloatBits(Float(v))
        case .int64: pointer(Int64.self)[i] = int(Int64.self)
        case .int32: pointer(Int32.self)[i] = int(Int32.self)
        case .int8: pointer(Int8.self)[i] = int(Int8.self)
        case .uint8: pointer(UInt8.self)[i] = int(UInt8.self)
        case .bool: pointer(UInt8.self)[i] = v != 0 ? 1 : 0
        }
    }

    public var floats: [Float] {
        if dtype == .float32 { return Array(UnsafeBufferPointer(start: pointer(Float.self), count: count)) }
        return (0..<count).map { Float(double(at: $0)) }
    }

    public var int64s: [Int64] { (0..<count).map { int64(at: $0) } }
    public var ints: [Int] { (0..<count).map { Int(int64(at: $0)) } }

    /// A float32 copy of this tensor (or itself when already float32).
    public func toFloat32() -> Tensor {
        if dtype == .float32 { return self }
        return Tensor(floats, shape: shape)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor<\(dtype.name)>\(shape)" }
}

/// Shape helpers shared by importers, passes and the runtime.
public enum Shapes {
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// NumPy-style broadcast of two shapes, or nil when they are incompatible.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let x = i < n - a.count ? 1 : a[i - (n - a.count)]
            let y = i < n - b.count ? 1 : b[i - (n - b.count)]
            if x == y || y == 1 { out[i] = x } else if x == 1 { out[i] = y } else { return nil }
        }
        return out
    }

    public static func describe(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ",") + "]" }

    /// Normalizes a possibly negative axis against a rank, or throws naming the context.
    public static func axis(_ a: Int, rank: Int, _ what: String) throws -> Int {
        let r = a < 0 ? a + rank : a
        guard r >= 0, r < rank else { throw PSEdgeError.invalid("\(what): axis \(a) is out of range for rank \(rank)") }
        return r
    }
}
