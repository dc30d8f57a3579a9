/// Element types. Raw values are ONNX TensorProto.DataType codes so importers map them directly.
public enum DType: Int32, CaseIterable, Codable, Sendable {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    case int32 = 6
    case int64 = 7
    case bool = 9
    case float16 = 10
    case bfloat16 = 16

    public var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .float16, .bfloat16: return 2
        case .float32, .int32: return 4
        case .int64: return 8
        }
    }

    public var name: String {
        switch self {
        case .float32: return "f32"
        case .uint8: return "u8"
        case .int8: return "i8"
        case .int32: return "i32"
        case .int64: return "i64"
        case .bool: return "bool"
        case .float16: return "f16"
        case .bfloat16: return "bf16"
        }
    }

    public init?(name: String) {
        guard let t = DType.allCases.first(where: { $0.name == name }) else { return nil }
        self = t
    }

    public var isFloat: Bool { self == .float32 || self == .float16 || self == .bfloat16 }
    public var isInteger: Bool { self == .int8 || self == .uint8 || self == .int32 || self == .int64 }
}
