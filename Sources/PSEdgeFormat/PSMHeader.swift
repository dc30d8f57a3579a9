import PSEdgeIR

// The .psm header model: the JSON document between the preamble and the data section.
// See docs/FORMAT.md for the normative description; keys here must match it.

/// Quantization parameters of one stored tensor (reserved in format version 1; the runtime does not
/// use them yet). Kept beside the graph because `Tensor` itself has no quantization fields.
public struct QuantParams: Equatable, Sendable {
    public enum Scheme: String, Sendable, CaseIterable {
        case perTensor = "per-tensor"
        case perChannel = "per-channel"
    }

    public var scheme: Scheme
    /// The channel axis (per-channel only; nil for per-tensor).
    public var axis: Int?
    public var scales: [Float]
    public var zeroPoints: [Int]

    public init(scheme: Scheme, axis: Int? = nil, scales: [Float], zeroPoints: [Int]) {
        self.scheme = scheme
        self.axis = axis
        self.scales = scales
        self.zeroPoints = zeroPoints
    }

    public static func == (a: QuantParams, b: QuantParams) -> Bool {
        a.scheme == b.scheme && a.axis == b.axis && a.zeroPoints == b.zeroPoints
            && a.scales.map(\.bitPattern) == b.scales.map(\.bitPattern)
    }

    /// Checks the parameters against the tensor they describe; returns a reason on failure.
    func problem(dtype: DType, shape: [Int]) -> String? {
        switch scheme {
        case .perTensor:
            if axis != nil { return "per-tensor quantization must not have an axis" }
            if scales.count != 1 || zeroPoints.count != 1 {
                return "per-tensor quantization needs exactly 1 scale and 1 zero point (has \(scales.count) and \(zeroPoints.count))"
            }
        case .perChannel:
            guard let a = axis else { return "per-channel quantization needs an axis" }
            guard a >= 0, a < shape.count else { return "quantization axis \(a) is out of range for rank \(shape.count)" }
            if scales.count != shape[a] || zeroPoints.count != shape[a] {
                return "per-channel quantization along axis \(a) needs \(shape[a]) scales and zero points (has \(scales.count) and \(zeroPoints.count))"
            }
        }
        if let bad = scales.first(where: { !$0.isFinite || $0 <= 0 }) { return "quantization scale \(bad) is not a finite positive number" }
        let range: ClosedRange<Int>? = dtype == .int8 ? -128...127 : dtype == .uint8 ? 0...255 : nil
        if let r = range, let bad = zeroPoints.first(where: { !r.contains($0) }) {
            return "zero point \(bad) is outside the \(dtype.name) range"
        }
        return nil
    }
}

/// One entry of the tensor table: where a stored tensor's bytes are and what they are.
public struct PSMTensorEntry: Equatable, Sendable {
    public enum Role: String, Sendable {
        /// A graph initializer (weight or folded constant), listed in `Graph.initializers` under `name`.
        case initializer
        /// The value of a tensor-valued node attribute; `name` is only the table key.
        case attribute
    }

    public var name: String
    public var role: Role
    public var dtype: DType
    public var shape: [Int]
    /// Byte offset relative to the start of the data section (a multiple of 64).
    public var offset: Int
    public var length: Int
    public var crc32: UInt32
    public var quantization: QuantParams?
}

/// A node as stored: attributes are either plain values or references into the tensor table.
struct PSMNodeRecord {
    enum Attr {
        case value(Attribute)  // never .tensor
        case tensorRef(String)
    }
    var name: String
    var opType: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [(String, Attr)]
}

struct PSMHeader {
    var name: String
    var opsets: [String: Int]
    var metadata: [String: String]
    var inputs: [ValueInfo]
    var outputs: [ValueInfo]
    var valueTypes: [String: TensorType]
    var nodes: [PSMNodeRecord]
    var tensors: [PSMTensorEntry]
}

// MARK: - Scalar encodings

enum PSMFloat {
    /// Floats are stored as their IEEE-754 binary32 bit pattern: "0x" + exactly 8 lowercase hex digits.
    static func encode(_ f: Float) -> JSON {
        let s = String(f.bitPattern, radix: 16)
        return .string("0x" + String(repeating: "0", count: 8 - s.count) + s)
    }

    static func decode(_ field: JSONField) throws -> Float {
        guard case .string(let s) = field.value else {
            throw field.error("should be a float bit pattern string like \"0x3f800000\", found \(field.value.kindName)")
        }
        let u = Array(s.utf8)
        guard u.count == 10, u[0] == UInt8(ascii: "0"), u[1] == UInt8(ascii: "x") || u[1] == UInt8(ascii: "X"),
              let bits = UInt32(String(decoding: u[2...], as: UTF8.self), radix: 16),
              u[2...].allSatisfy({ isHexDigit($0) })
        else {
            throw field.error("should be a float bit pattern like \"0x3f800000\", found \"\(s)\"")
        }
        return Float(bitPattern: bits)
    }

    private static func isHexDigit(_ c: UInt8) -> Bool {
        (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c)
    }
}

/// Sorts by UTF-8 bytes so headers are byte-for-byte deterministic.
func byteOrdered<V>(_ d: [String: V]) -> [(key: String, value: V)] {
    d.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { ($0.key, $0.value) }
}

// MARK: - Encoding

extension PSMHeader {
    static func encodeShape(_ shape: [Int?]) -> JSON { .array(shape.map { $0.map(JSON.int) ?? .null }) }

    static func encodeValueInfo(_ v: ValueInfo) -> JSON {
        var o = JSONObject()
        o["name"] = .string(v.name)
        if let t = v.type {
            o["dtype"] = .string(t.dtype.name)
            o["shape"] = encodeShape(t.shape)
        }
        if !v.dimNames.isEmpty {
            var d = JSONObject()
            for (axis, name) in v.dimNames.sorted(by: { $0.key < $1.key }) { d[String(axis)] = .string(name) }
            o["dim_names"] = .object(d)
        }
        return .object(o)
    }

    static func encodeAttr(_ a: PSMNodeRecord.Attr) -> JSON {
        var o = JSONObject()
        switch a {
        case .tensorRef(let name):
            o["kind"] = .string("tensor")
            o["tensor"] = .string(name)
        case .value(let v):
            o["kind"] = .string(v.kindName)
            switch v {
            case .int(let i): o["value"] = .int(i)
            case .float(let f): o["value"] = PSMFloat.encode(f)
            case .string(let s): o["value"] = .string(s)
            case .ints(let a): o["value"] = .array(a.map(JSON.int))
            case .floats(let a): o["value"] = .array(a.map(PSMFloat.encode))
            case .strings(let a): o["value"] = .array(a.map(JSON.string))
            case .tensor: preconditionFailure("tensor attributes are stored as table references")
            }
        }
        return .object(o)
    }

    static func encodeQuant(_ q: QuantParams) -> JSON {
        var o = JSONObject()
        o["scheme"] = .string(q.scheme.rawValue)
        if let a = q.axis { o["axis"] = .int(a) }
        o["scales"] = .array(q.scales.map(PSMFloat.encode))
        o["zero_points"] = .array(q.zeroPoints.map(JSON.int))
        return .object(o)
    }

    var json: JSON {
        var root = JSONObject()
        root["name"] = .string(name)
        var ops = JSONObject()
        for (d, v) in byteOrdered(opsets) { ops[d] = .int(v) }
        root["opsets"] = .object(ops)
        var meta = JSONObject()
        for (k, v) in byteOrdered(metadata) { meta[k] = .string(v) }
        root["metadata"] = .object(meta)
        root["inputs"] = .array(inputs.map(PSMHeader.encodeValueInfo))
        root["outputs"] = .array(outputs.map(PSMHeader.encodeValueInfo))
        var vt = JSONObject()
        for (k, t) in byteOrdered(valueTypes) {
            vt[k] = .object(JSONObject([("dtype", .string(t.dtype.name)), ("shape", PSMHeader.encodeShape(t.shape))]))
        }
        root["value_types"] = .object(vt)
        root["nodes"] = .array(nodes.map { n in
            var o = JSONObject()
            o["name"] = .string(n.name)
            o["op_type"] = .string(n.opType)
            o["domain"] = .string(n.domain)
            o["inputs"] = .array(n.inputs.map(JSON.string))
            o["outputs"] = .array(n.outputs.map(JSON.string))
            var attrs = JSONObject()
            for (k, a) in n.attributes { attrs[k] = PSMHeader.encodeAttr(a) }
            o["attributes"] = .object(attrs)
            return .object(o)
        })
        root["tensors"] = .array(tensors.map { t in
            var o = JSONObject()
            o["name"] = .string(t.name)
            o["role"] = .string(t.role.rawValue)
            o["dtype"] = .string(t.dtype.name)
            o["shape"] = .array(t.shape.map(JSON.int))
            o["offset"] = .int(t.offset)
            o["length"] = .int(t.length)
            o["crc32"] = .int(t.crc32)
            if let q = t.quantization { o["quantization"] = PSMHeader.encodeQuant(q) }
            return .object(o)
        })
        return .object(root)
    }
}

// MARK: - Decoding

extension PSMHeader {
    static func decodeDType(_ f: JSONField) throws -> DType {
        let s = try f.string()
        guard let d = DType(name: s) else {
            throw f.error("names an unknown dtype \"\(s)\" (known: \(DType.allCases.map(\.name).joined(separator: ", ")))")
        }
        return d
    }

    /// Value shapes: a dimension is a non-negative integer, or null / -1 when unknown.
    static func decodeValueShape(_ f: JSONField) throws -> [Int?] {
        try f.array().map { d -> Int? in
            if d.isNull { return nil }
            let v = try d.int()
            if v == -1 { return nil }
            guard v >= 0 else { throw d.error("is \(v); a dimension must be non-negative, or null/-1 when unknown") }
            return v
        }
    }

    /// Stored tensor shapes: every dimension a non-negative integer.
    static func decodeStaticShape(_ f: JSONField) throws -> [Int] {
        try f.array().map { d in
            let v = try d.int()
            guard v >= 0 else { throw d.error("is \(v); a tensor dimension must be non-negative") }
            return v
        }
    }

    static func decodeType(_ f: JSONField) throws -> TensorType? {
        let dt = try f.optionalMember("dtype")
        let sh = try f.optionalMember("shape")
        switch (dt, sh) {
        case (nil, nil): return nil
        case (let d?, let s?): return TensorType(try decodeDType(d), try decodeValueShape(s))
        case (nil, _?): throw f.error("has a shape but no dtype")
        case (_?, nil): throw f.error("has a dtype but no shape")
        }
    }

    static func decodeValueInfo(_ f: JSONField) throws -> ValueInfo {
        let name = try f.member("name").string()
        let type = try decodeType(f)
        var dimNames: [Int: String] = [:]
        if let dn = try f.optionalMember("dim_names") {
            for (k, v) in try dn.members() {
                guard let axis = Int(k), axis >= 0, String(axis) == k else {
                    throw dn.error("has key \"\(k)\", which is not an axis number")
                }
                if let t = type, axis >= t.shape.count { throw v.error("names axis \(axis) of a rank-\(t.shape.count) value") }
                dimNames[axis] = try v.string()
            }
        }
        return ValueInfo(name: name, type: type, dimNames: dimNames)
    }

    static func decodeAttr(_ f: JSONField) throws -> PSMNodeRecord.Attr {
        let kind = try f.member("kind").string()
        if kind == "tensor" { return .tensorRef(try f.member("tensor").string()) }
        let v = try f.member("value")
        switch kind {
        case "int": return .value(.int(try v.int()))
        case "float": return .value(.float(try PSMFloat.decode(v)))
        case "string": return .value(.string(try v.string()))
        case "ints": return .value(.ints(try v.ints()))
        case "floats": return .value(.floats(try v.array().map(PSMFloat.decode)))
        case "strings": return .value(.strings(try v.strings()))
        default:
            throw try f.member("kind").error("is \"\(kind)\", not an attribute kind (int, float, string, ints, floats, strings, tensor)")
        }
    }

    static func decodeQuant(_ f: JSONField) throws -> QuantParams {
        let schemeField = try f.member("scheme")
        let s = try schemeField.string()
        guard let scheme = QuantParams.Scheme(rawValue: s) else {
            throw schemeField.error("is \"\(s)\" (known schemes: per-tensor, per-channel)")
        }
        return QuantParams(scheme: scheme, axis: try f.optionalMember("axis")?.int(),
                           scales: try f.member("scales").array().map(PSMFloat.decode),
                           zeroPoints: try f.member("zero_points").ints())
    }

    static func decodeTensor(_ f: JSONField) throws -> PSMTensorEntry {
        let roleField = try f.member("role")
        let r = try roleField.string()
        guard let role = PSMTensorEntry.Role(rawValue: r) else {
            throw roleField.error("is \"\(r)\" (known roles: initializer, attribute)")
        }
        return PSMTensorEntry(
            name: try f.member("name").string(), role: role,
            dtype: try decodeDType(f.member("dtype")), shape: try decodeStaticShape(f.member("shape")),
            offset: try f.member("offset").int(in: 0...Int.max), length: try f.member("length").int(in: 0...Int.max),
            crc32: UInt32(try f.member("crc32").int(in: 0...Int(UInt32.max))),
            quantization: try f.optionalMember("quantization").map(decodeQuant))
    }

    init(json root: JSONField) throws {
        name = try root.member("name").string()
        opsets = [:]
        for (k, v) in try root.member("opsets").members() { opsets[k] = try v.int() }
        metadata = [:]
        for (k, v) in try root.member("metadata").members() { metadata[k] = try v.string() }
        inputs = try root.member("inputs").array().map(PSMHeader.decodeValueInfo)
        outputs = try root.member("outputs").array().map(PSMHeader.decodeValueInfo)
        valueTypes = [:]
        for (k, v) in try root.member("value_types").members() {
            guard let t = try PSMHeader.decodeType(v) else { throw v.error("needs a dtype and a shape") }
            valueTypes[k] = t
        }
        nodes = try root.member("nodes").array().map { n in
            PSMNodeRecord(
                name: try n.member("name").string(), opType: try n.member("op_type").string(),
                domain: try n.member("domain").string(), inputs: try n.member("inputs").strings(),
                outputs: try n.member("outputs").strings(),
                attributes: try n.member("attributes").members().map { ($0.key, try PSMHeader.decodeAttr($0.value)) })
        }
        tensors = try root.member("tensors").array().map(PSMHeader.decodeTensor)
    }
}
