import PSEdgeIR
import PSEdgeSafetensors

/// Named weights (a PyTorch state dict) for the builders, with shape checks whose errors name the tensor.
///
/// float32 tensors are handed out as they are stored (borrowing the safetensors mapping, no copy); float16 and
/// bfloat16 ones are widened to float32 copies, since the runtime computes in float32.
public final class StateDict: @unchecked Sendable {
    private let tensors: [String: Tensor]
    /// Where the weights come from, for messages (a file path).
    public let source: String
    private var used: Set<String> = []

    public init(_ tensors: [String: Tensor], source: String = "state dict") {
        self.tensors = tensors
        self.source = source
    }

    /// The tensors of a safetensors file; `prefix` (e.g. "unet.") is stripped from names that have it and
    /// names without it are left out.
    public convenience init(_ file: SafetensorsFile, prefix: String = "") {
        var d: [String: Tensor] = [:]
        for (name, t) in file.tensors where name.hasPrefix(prefix) { d[String(name.dropFirst(prefix.count))] = t }
        self.init(d, source: "'\(file.path)'")
    }

    public convenience init(path: String, prefix: String = "") throws {
        self.init(try SafetensorsFile.load(path: path), prefix: prefix)
    }

    public var names: [String] { tensors.keys.sorted() }

    /// The tensors whose names start with `prefix`, renamed without it (a submodule's state dict).
    public func subset(prefix: String) -> StateDict {
        var d: [String: Tensor] = [:]
        for (name, t) in tensors where name.hasPrefix(prefix) { d[String(name.dropFirst(prefix.count))] = t }
        return StateDict(d, source: source)
    }

    /// The tensor `name` as stored (any shape), marked used; nil if absent.
    public func raw(_ name: String) -> Tensor? {
        guard let t = tensors[name] else { return nil }
        used.insert(name)
        return t
    }
    public func contains(_ name: String) -> Bool { tensors[name] != nil }
    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }

    /// Names never asked for, sorted (after a full build: weights the configuration does not use).
    public var unusedNames: [String] { tensors.keys.filter { !used.contains($0) }.sorted() }

    /// The float32 tensor `name`, which must have shape `shape`.
    public func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
        guard let t = tensors[name] else {
            throw PSEdgeError.invalid("\(source) has no tensor '\(name)' (expected \(Shapes.describe(shape)))")
        }
        guard t.shape == shape else {
            throw PSEdgeError.shape("\(source): tensor '\(name)' has shape \(Shapes.describe(t.shape)), expected \(Shapes.describe(shape))")
        }
        guard t.dtype.isFloat else {
            throw PSEdgeError.unsupported("\(source): tensor '\(name)' has dtype \(t.dtype.name), expected a float type (f32, f16, bf16)")
        }
        used.insert(name)
        return t.toFloat32()
    }

    /// `name` if present (checked like `tensor`), nil if absent.
    public func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
        tensors[name] == nil ? nil : try tensor(name, shape)
    }

    /// Marks names as deliberately ignored (e.g. BatchNorm's num_batches_tracked).
    public func ignore(_ name: String) { if tensors[name] != nil { used.insert(name) } }
}

/// Typed access to a JSON configuration with errors that name the key and say what is supported.
struct ConfigReader {
    let root: JSONField
    let what: String
    var known: Set<String> = []

    init(_ root: JSONField, what: String) {
        self.root = root
        self.what = what
    }

    init(path: String, what: String) throws {
        let file = try MappedFile(path: path)
        let json: JSON
        do {
            json = try JSON.parse(file.bytes)
        } catch let e as PSEdgeError {
            throw PSEdgeError.malformed("'\(path)' is not valid JSON: \(e.message)")
        }
        self.init(JSONField(json, context: "'\(path)'"), what: what)
        _ = try root.object()
    }

    func unsupported(_ key: String, _ value: String, supported: String) -> PSEdgeError {
        PSEdgeError.unsupported("\(what) config: \(key) = \(value) is not supported (supported: \(supported))")
    }

    func field(_ key: String) throws -> JSONField? { try root.optionalMember(key) }

    mutating func int(_ key: String, default d: Int? = nil) throws -> Int {
        known.insert(key)
        guard let f = try field(key) else {
            if let d { return d }
            throw PSEdgeError.invalid("\(what) config: missing '\(key)'")
        }
        return try f.int()
    }

    mutating func optionalInt(_ key: String) throws -> Int? {
        known.insert(key)
        return try field(key).map { try $0.int() }
    }

    mutating func double(_ key: String, default d: Double) throws -> Double {
        known.insert(key)
        guard let f = try field(key) else { return d }
        guard case .number(let s) = f.value, let v = Double(s) else { throw f.error("should be a number, found \(f.value.kindName)") }
        return v
    }

    mutating func bool(_ key: String, default d: Bool) throws -> Bool {
        known.insert(key)
        return try field(key).map { try $0.bool() } ?? d
    }

    mutating func string(_ key: String, default d: String?) throws -> String? {
        known.insert(key)
        return try field(key).map { try $0.string() } ?? d
    }

    mutating func strings(_ key: String) throws -> [String] {
        known.insert(key)
        guard let f = try field(key) else { throw PSEdgeError.invalid("\(what) config: missing '\(key)'") }
        return try f.strings()
    }

    /// An int, or a list of `count` ints (one per block); nil when absent or null.
    mutating func intOrList(_ key: String, count: Int) throws -> [Int]? {
        known.insert(key)
        guard let f = try field(key) else { return nil }
        if case .array = f.value {
            let v = try f.ints()
            guard v.count == count else { throw f.error("has \(v.count) values, expected one per block (\(count))") }
            return v
        }
        return [Int](repeating: try f.int(), count: count)
    }

    /// Requires `key` to be absent or one of `allowed`, given as JSON text (`null`, `false`, `"positional"`, `1`;
    /// numbers compare by value).
    mutating func require(_ key: String, in allowed: [String]) throws {
        known.insert(key)
        guard let v = try root.object()[key] else { return }
        func norm(_ j: JSON) -> String {
            if case .number(let s) = j, let d = Double(s) { return "\(d)" }
            return String(decoding: j.serialized, as: UTF8.self)
        }
        let allowedNorm = allowed.map { text in (try? JSON.parse(Array(text.utf8))).map(norm) ?? text }
        guard allowedNorm.contains(norm(v)) else {
            throw unsupported(key, String(decoding: v.serialized, as: UTF8.self), supported: allowed.joined(separator: ", "))
        }
    }

    /// Every key not read and not in `ignored` must be null or absent: an unknown setting could change the model.
    func checkUnknown(ignored: Set<String>) throws {
        for (k, v) in try root.object().members where !k.hasPrefix("_") && !known.contains(k) && !ignored.contains(k) {
            if case .null = v { continue }
            throw PSEdgeError.unsupported("\(what) config: unknown setting '\(k)' = \(String(decoding: v.serialized, as: UTF8.self)) (this builder does not know what it changes)")
        }
    }
}
