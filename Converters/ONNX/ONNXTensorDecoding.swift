import CONNXProto
import CProtobufC
import PSEdgeIR

/// ONNX TensorProto.DataType codes.
enum ONNXDataType: Int32 {
    case undefined = 0, float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7
    case string = 8, bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13
    case complex64 = 14, complex128 = 15, bfloat16 = 16
    case float8e4m3fn = 17, float8e4m3fnuz = 18, float8e5m2 = 19, float8e5m2fnuz = 20
    case uint4 = 21, int4 = 22, float4e2m1 = 23, float8e8m0 = 24

    var name: String {
        switch self {
        case .undefined: return "UNDEFINED"
        case .float: return "FLOAT"
        case .uint8: return "UINT8"
        case .int8: return "INT8"
        case .uint16: return "UINT16"
        case .int16: return "INT16"
        case .int32: return "INT32"
        case .int64: return "INT64"
        case .string: return "STRING"
        case .bool: return "BOOL"
        case .float16: return "FLOAT16"
        case .double: return "DOUBLE"
        case .uint32: return "UINT32"
        case .uint64: return "UINT64"
        case .complex64: return "COMPLEX64"
        case .complex128: return "COMPLEX128"
        case .bfloat16: return "BFLOAT16"
        case .float8e4m3fn: return "FLOAT8E4M3FN"
        case .float8e4m3fnuz: return "FLOAT8E4M3FNUZ"
        case .float8e5m2: return "FLOAT8E5M2"
        case .float8e5m2fnuz: return "FLOAT8E5M2FNUZ"
        case .uint4: return "UINT4"
        case .int4: return "INT4"
        case .float4e2m1: return "FLOAT4E2M1"
        case .float8e8m0: return "FLOAT8E8M0"
        }
    }

    static func describe(code: Int32) -> String {
        ONNXDataType(rawValue: code)?.name ?? "unknown data type \(code)"
    }

    /// The PSEdge element type values of this type are stored as. Types PSEdge lacks are widened
    /// (int16/uint16 → i32, uint32/uint64 → i64) or narrowed (double → f32); nil when unsupported.
    var psedgeType: DType? {
        switch self {
        case .float, .double: return .float32
        case .uint8: return .uint8
        case .int8: return .int8
        case .int16, .uint16, .int32: return .int32
        case .int64, .uint32, .uint64: return .int64
        case .bool: return .bool
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        default: return nil
        }
    }

    /// True when values change representation on import (see `psedgeType`).
    var isConverted: Bool {
        switch self {
        case .double, .int16, .uint16, .uint32, .uint64: return true
        default: return false
        }
    }

    /// Bytes per element in raw_data / external data (for the types PSEdge reads).
    var wireSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .float, .int32, .uint32: return 4
        case .int64, .uint64, .double: return 8
        default: return nil
        }
    }
}

/// What a TensorProto's header says: element type, shape and sizes, validated.
struct ONNXTensorLayout {
    let source: ONNXDataType
    let dtype: DType
    let shape: [Int]
    let count: Int
    /// Bytes the data occupies in raw_data / an external file.
    let wireBytes: Int
}

extension ONNXImportContext {
    /// Decodes a TensorProto into a PSEdge tensor. `what` names it in errors
    /// ("initializer 'w'", "Constant node 'c': attribute 'value'").
    func tensor(_ tp: UnsafeMutablePointer<Onnx__TensorProto>, what: String) throws -> Tensor {
        let t = tp.pointee
        let layout = try self.layout(of: t, what: what)
        if layout.source.isConverted {
            conversions.append("\(what): \(layout.source.name)→\(layout.dtype.name)")
        }

        let external = t.has_data_location != 0
            && t.data_location.rawValue == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL.rawValue
        if external {
            return try externalTensor(t, layout: layout, what: what)
        }
        if t.has_raw_data != 0 {
            let raw = try bytes(t.raw_data, "\(what): raw_data")
            guard raw.count == layout.wireBytes else {
                throw error(.malformed, "\(what): raw_data has \(raw.count) bytes but \(layout.source.name) shape "
                    + "\(Shapes.describe(layout.shape)) needs \(layout.wireBytes) bytes")
            }
            return try decode(raw, layout: layout, what: what)
        }
        return try typedTensor(t, layout: layout, what: what)
    }

    /// Validates data type and dims without touching the data.
    func layout(of t: Onnx__TensorProto, what: String) throws -> ONNXTensorLayout {
        if t.segment != nil {
            throw error(.unsupported, "\(what) is stored in segments, which PSEdge does not support")
        }
        let code = t.has_data_type != 0 ? t.data_type : 0
        guard let source = ONNXDataType(rawValue: code), source != .undefined else {
            throw error(.malformed, "\(what) has \(code == 0 ? "no data type" : "unknown data type code \(code)")")
        }
        if source == .string {
            throw error(.unsupported, "\(what) is a STRING tensor; string tensors are not supported")
        }
        guard let dtype = source.psedgeType, let wireSize = source.wireSize else {
            throw error(.unsupported, "\(what) has element type \(source.name), which PSEdge does not support")
        }
        let dims = try array(t.dims, t.n_dims, "\(what): dims")
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        var count = 1
        for d in dims {
            guard d >= 0 else {
                throw error(.malformed, "\(what) has a negative dimension \(d) in its shape \(Array(dims))")
            }
            let (c, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow else { throw error(.malformed, "\(what): shape \(Array(dims)) has too many elements") }
            count = c
            shape.append(Int(d))
        }
        let (wireBytes, overflow) = count.multipliedReportingOverflow(by: wireSize)
        guard !overflow else { throw error(.malformed, "\(what): shape \(Array(dims)) has too many elements") }
        return ONNXTensorLayout(source: source, dtype: dtype, shape: shape, count: count, wireBytes: wireBytes)
    }

    /// Little-endian element bytes (raw_data or a range of an external file) into an owned tensor,
    /// converting the element type where PSEdge stores it differently.
    func decode(_ src: UnsafeRawBufferPointer, layout: ONNXTensorLayout, what: String) throws -> Tensor {
        precondition(src.count == layout.wireBytes)
        let out = Tensor(zeros: layout.dtype, shape: layout.shape)
        let n = layout.count
        if n == 0 { return out }
        switch layout.source {
        case .double:
            let p = out.pointer(Float.self)
            for i in 0..<n { p[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .int16:
            let p = out.pointer(Int32.self)
            for i in 0..<n { p[i] = Int32(src.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)) }
        case .uint16:
            let p = out.pointer(Int32.self)
            for i in 0..<n { p[i] = Int32(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        case .uint32:
            let p = out.pointer(Int64.self)
            for i in 0..<n { p[i] = Int64(src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
        case .uint64:
            let p = out.pointer(Int64.self)
            for i in 0..<n {
                let v = src.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                guard let s = Int64(exactly: v) else { throw uint64TooLarge(v, what: what) }
                p[i] = s
            }
        default:
            out.raw.copyMemory(from: src.baseAddress!, byteCount: layout.wireBytes)
        }
        return out
    }

    private func uint64TooLarge(_ v: UInt64, what: String) -> PSEdgeError {
        error(.unsupported, "\(what): UINT64 value \(v) does not fit in int64, PSEdge's widest integer type")
    }

    /// Data in the typed repeated fields (float_data, int32_data, int64_data, double_data, uint64_data).
    private func typedTensor(_ t: Onnx__TensorProto, layout: ONNXTensorLayout, what: String) throws -> Tensor {
        let n = layout.count
        // The dims are untrusted: compare them with the values actually present before allocating
        // (a few bytes of protobuf can claim a tensor of terabytes).
        let (present, field): (Int, String)
        switch layout.source {
        case .float: (present, field) = (t.n_float_data, "float_data")
        case .double: (present, field) = (t.n_double_data, "double_data")
        case .int64: (present, field) = (t.n_int64_data, "int64_data")
        case .uint32, .uint64: (present, field) = (t.n_uint64_data, "uint64_data")
        default: (present, field) = (t.n_int32_data, "int32_data")
        }
        if present == 0 && n > 0 {
            throw error(.malformed, "\(what) has no data: \(layout.source.name) shape \(Shapes.describe(layout.shape)) "
                + "needs \(n) values in raw_data or \(field)")
        } else if present != n {
            throw error(.malformed, "\(what): \(field) has \(present) values but \(layout.source.name) shape "
                + "\(Shapes.describe(layout.shape)) needs \(n)")
        }
        let out = Tensor(zeros: layout.dtype, shape: layout.shape)

        // The counts were checked above, before allocating.
        func values<T>(_ p: UnsafeMutablePointer<T>?, _ k: Int, _ field: String) throws -> UnsafeBufferPointer<T> {
            try array(p, k, "\(what): \(field)")
        }

        switch layout.source {
        case .float:
            let v = try values(t.float_data, t.n_float_data, "float_data")
            if n > 0 { out.raw.copyMemory(from: v.baseAddress!, byteCount: n * 4) }
        case .double:
            let v = try values(t.double_data, t.n_double_data, "double_data")
            let p = out.pointer(Float.self)
            for i in 0..<n { p[i] = Float(v[i]) }
        case .int64:
            let v = try values(t.int64_data, t.n_int64_data, "int64_data")
            if n > 0 { out.raw.copyMemory(from: v.baseAddress!, byteCount: n * 8) }
        case .uint32, .uint64:
            let v = try values(t.uint64_data, t.n_uint64_data, "uint64_data")
            let p = out.pointer(Int64.self)
            for i in 0..<n {
                if layout.source == .uint32 && v[i] > UInt64(UInt32.max) {
                    throw error(.malformed, "\(what): UINT32 tensor holds out-of-range value \(v[i]) in uint64_data")
                }
                guard let s = Int64(exactly: v[i]) else { throw uint64TooLarge(v[i], what: what) }
                p[i] = s
            }
        case .int32, .int16, .uint16:
            // Narrow types are stored as their values; PSEdge keeps them as int32.
            let v = try values(t.int32_data, t.n_int32_data, "int32_data")
            if n > 0 { out.raw.copyMemory(from: v.baseAddress!, byteCount: n * 4) }
        case .int8:
            let v = try values(t.int32_data, t.n_int32_data, "int32_data")
            let p = out.pointer(Int8.self)
            for i in 0..<n { p[i] = Int8(truncatingIfNeeded: v[i]) }
        case .uint8:
            let v = try values(t.int32_data, t.n_int32_data, "int32_data")
            let p = out.pointer(UInt8.self)
            for i in 0..<n { p[i] = UInt8(truncatingIfNeeded: v[i]) }
        case .bool:
            let v = try values(t.int32_data, t.n_int32_data, "int32_data")
            let p = out.pointer(UInt8.self)
            for i in 0..<n { p[i] = v[i] != 0 ? 1 : 0 }
        case .float16, .bfloat16:
            // 16-bit floats are stored as their bit patterns, one per int32.
            let v = try values(t.int32_data, t.n_int32_data, "int32_data")
            let p = out.pointer(UInt16.self)
            for i in 0..<n { p[i] = UInt16(truncatingIfNeeded: v[i]) }
        default:
            throw error(.unsupported, "\(what) has element type \(layout.source.name), which PSEdge does not support")
        }
        return out
    }
}
