/// A node attribute, mirroring the ONNX attribute kinds PSEdge uses.
public enum Attribute: Sendable {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(Tensor)

    public var kindName: String {
        switch self {
        case .int: return "int"
        case .float: return "float"
        case .string: return "string"
        case .ints: return "ints"
        case .floats: return "floats"
        case .strings: return "strings"
        case .tensor: return "tensor"
        }
    }
}

/// Typed attribute access with errors that name the node and the attribute.
public struct Attributes: Sendable {
    public var values: [String: Attribute]
    public let owner: String

    public init(_ values: [String: Attribute], owner: String) {
        self.values = values
        self.owner = owner
    }

    private func wrongKind(_ name: String, _ want: String, _ got: Attribute) -> PSEdgeError {
        .malformed("\(owner): attribute '\(name)' should be \(want) but is \(got.kindName)")
    }

    public func has(_ name: String) -> Bool { values[name] != nil }

    public func int(_ name: String) throws -> Int? {
        guard let a = values[name] else { return nil }
        switch a {
        case .int(let v): return v
        case .float(let f) where f == f.rounded(): return Int(f)
        default: throw wrongKind(name, "an int", a)
        }
    }

    public func int(_ name: String, default d: Int) throws -> Int { try int(name) ?? d }

    public func float(_ name: String) throws -> Float? {
        guard let a = values[name] else { return nil }
        switch a {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: throw wrongKind(name, "a float", a)
        }
    }

    public func float(_ name: String, default d: Float) throws -> Float { try float(name) ?? d }

    public func string(_ name: String) throws -> String? {
        guard let a = values[name] else { return nil }
        if case .string(let s) = a { return s }
        throw wrongKind(name, "a string", a)
    }

    public func string(_ name: String, default d: String) throws -> String { try string(name) ?? d }

    public func ints(_ name: String) throws -> [Int]? {
        guard let a = values[name] else { return nil }
        switch a {
        case .ints(let v): return v
        case .int(let v): return [v]
        default: throw wrongKind(name, "a list of ints", a)
        }
    }

    public func floats(_ name: String) throws -> [Float]? {
        guard let a = values[name] else { return nil }
        switch a {
        case .floats(let v): return v
        case .float(let v): return [v]
        default: throw wrongKind(name, "a list of floats", a)
        }
    }

    public func strings(_ name: String) throws -> [String]? {
        guard let a = values[name] else { return nil }
        if case .strings(let s) = a { return s }
        throw wrongKind(name, "a list of strings", a)
    }

    public func tensor(_ name: String) throws -> Tensor? {
        guard let a = values[name] else { return nil }
        if case .tensor(let t) = a { return t }
        throw wrongKind(name, "a tensor", a)
    }
}
