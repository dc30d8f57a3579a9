/// A small, strict JSON (RFC 8259) value type with a parser and a serializer, shared by the
/// model-file readers and writers (.psm headers, safetensors headers).
///
/// Numbers keep their literal text so integers of any size and floats are converted exactly
/// when (and as) the caller asks. The parser rejects duplicate object keys, invalid UTF-8,
/// unpaired surrogate escapes, trailing data and nesting deeper than `maxDepth`; it never traps on
/// hostile input.
public enum JSON: Sendable {
    case null
    case bool(Bool)
    /// The number's literal text, already checked against the JSON number grammar.
    case number(String)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    public static func int<I: BinaryInteger>(_ v: I) -> JSON { .number(String(v)) }

    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// JSON object members in insertion order, with key lookup.
public struct JSONObject: Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: JSON] = [:]

    public init() {}

    public init(_ members: [(String, JSON)]) {
        for (k, v) in members { self[k] = v }
    }

    public var count: Int { keys.count }

    public subscript(key: String) -> JSON? {
        get { values[key] }
        set {
            if let v = newValue {
                if values.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var members: [(key: String, value: JSON)] {
        keys.compactMap { k in values[k].map { (k, $0) } }
    }
}

// MARK: - Serializing

extension JSON {
    /// Compact UTF-8 serialization (no insignificant whitespace), members in insertion order.
    public var serialized: [UInt8] {
        var out: [UInt8] = []
        write(into: &out)
        return out
    }

    public func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .number(let s): out.append(contentsOf: Array(s.utf8))
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, m) in o.members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(m.key, into: &out)
                out.append(UInt8(ascii: ":"))
                m.value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0a: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0d: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20, 0x7f:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                        hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Parsing

extension JSON {
    /// Parses exactly one JSON value (surrounded by optional whitespace) from UTF-8 bytes.
    /// Errors are `.malformed` and say "JSON syntax error at byte N: ...".
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws -> JSON {
        var p = JSONParser(bytes: bytes, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        guard p.pos == bytes.count else { throw p.fail("unexpected data after the JSON value") }
        return v
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws -> JSON {
        try bytes.withUnsafeBytes { try parse($0, maxDepth: maxDepth) }
    }
}

private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var pos = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func fail(_ why: String) -> PSEdgeError {
        .malformed("JSON syntax error at byte \(pos): \(why)")
    }

    var atEnd: Bool { pos >= bytes.count }
    var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0a, 0x0d: pos += 1
            default: return
            }
        }
    }

    mutating func expect(_ c: UInt8) throws {
        guard peek == c else {
            throw fail(atEnd ? "unexpected end, expected '\(Character(Unicode.Scalar(c)))'"
                             : "expected '\(Character(Unicode.Scalar(c)))'")
        }
        pos += 1
    }

    mutating func parseValue(depth: Int) throws -> JSON {
        guard let c = peek else { throw fail("unexpected end of input, expected a value") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected character \(describe(c))")
        }
    }

    func describe(_ c: UInt8) -> String {
        (0x21...0x7e).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x" + String(c, radix: 16)
    }

    mutating func literal(_ word: String) throws {
        for b in word.utf8 {
            guard peek == b else { throw fail("invalid literal, expected '\(word)'") }
            pos += 1
        }
    }

    mutating func parseObject(depth: Int) throws -> JSON {
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
        pos += 1  // {
        var obj = JSONObject()
        skipWhitespace()
        if peek == UInt8(ascii: "}") { pos += 1; return .object(obj) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw fail(atEnd ? "unexpected end inside an object" : "expected a string key") }
            let keyPos = pos
            let key = try parseString()
            if obj[key] != nil {
                pos = keyPos
                throw fail("duplicate key \"\(key)\"")
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            obj[key] = try parseValue(depth: depth)
            skipWhitespace()
            guard let c = peek else { throw fail("unexpected end inside an object") }
            pos += 1
            if c == UInt8(ascii: "}") { return .object(obj) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or '}' in an object") }
        }
    }

    mutating func parseArray(depth: Int) throws -> JSON {
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
        pos += 1  // [
        var items: [JSON] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let c = peek else { throw fail("unexpected end inside an array") }
            pos += 1
            if c == UInt8(ascii: "]") { return .array(items) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or ']' in an array") }
        }
    }

    mutating func parseNumber() throws -> String {
        let start = pos
        func digits(_ p: inout Int, _ bytes: UnsafeRawBufferPointer) -> Int {
            let s = p
            while p < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[p]) { p += 1 }
            return p - s
        }
        if peek == UInt8(ascii: "-") { pos += 1 }
        if peek == UInt8(ascii: "0") {
            pos += 1
        } else if digits(&pos, bytes) == 0 {
            throw fail("invalid number")
        }
        if peek == UInt8(ascii: ".") {
            pos += 1
            guard digits(&pos, bytes) > 0 else { throw fail("invalid number: digits expected after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            guard digits(&pos, bytes) > 0 else { throw fail("invalid number: digits expected in the exponent") }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("unexpected end inside a \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit in a \\u escape")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    mutating func parseString() throws -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<pos])
                guard let s = String(validating: raw, as: UTF8.self) else { pos = start; throw fail("string is not valid UTF-8") }
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("unescaped control character in a string") }
            pos += 1
        }
        var buf = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<pos]))
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                guard let s = String(validating: buf, as: UTF8.self) else { pos = start; throw fail("string is not valid UTF-8") }
                return s
            }
            if c < 0x20 { throw fail("unescaped control character in a string") }
            if c != UInt8(ascii: "\\") { buf.append(c); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { throw fail("unterminated string") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buf.append(e)
            case UInt8(ascii: "b"): buf.append(0x08)
            case UInt8(ascii: "f"): buf.append(0x0c)
            case UInt8(ascii: "n"): buf.append(0x0a)
            case UInt8(ascii: "r"): buf.append(0x0d)
            case UInt8(ascii: "t"): buf.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard pos + 2 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in a \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate in a \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw fail("unpaired surrogate in a \\u escape")
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
                buf.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                pos -= 1
                throw fail("invalid escape \(describe(e))")
            }
        }
    }
}

// MARK: - Typed access with error messages that name the field

/// A JSON value together with its path from the document root ("nodes[3].attributes.alpha"),
/// so every decoding error names the field that is wrong.
public struct JSONField: Sendable {
    public let value: JSON
    public let path: String
    /// What the document is, for messages: e.g. "'model.psm' header".
    public let context: String

    public init(_ value: JSON, path: String = "", context: String) {
        self.value = value
        self.path = path
        self.context = context
    }

    public func error(_ what: String) -> PSEdgeError {
        .malformed(path.isEmpty ? "\(context) \(what)" : "\(context): field '\(path)' \(what)")
    }

    private func wrongKind(_ want: String) -> PSEdgeError { error("should be \(want), found \(value.kindName)") }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public var isNull: Bool { if case .null = value { return true } else { return false } }

    public func object() throws -> JSONObject {
        guard case .object(let o) = value else { throw wrongKind("an object") }
        return o
    }

    /// A required member.
    public func member(_ key: String) throws -> JSONField {
        let o = try object()
        guard let v = o[key] else {
            throw PSEdgeError.malformed("\(context): missing field '\(childPath(key))'")
        }
        return JSONField(v, path: childPath(key), context: context)
    }

    /// An optional member; absent and null both give nil.
    public func optionalMember(_ key: String) throws -> JSONField? {
        let o = try object()
        guard let v = o[key] else { return nil }
        if case .null = v { return nil }
        return JSONField(v, path: childPath(key), context: context)
    }

    public func members() throws -> [(key: String, value: JSONField)] {
        try object().members.map { ($0.key, JSONField($0.value, path: childPath($0.key), context: context)) }
    }

    public func array() throws -> [JSONField] {
        guard case .array(let a) = value else { throw wrongKind("an array") }
        return a.enumerated().map { JSONField($0.element, path: "\(path)[\($0.offset)]", context: context) }
    }

    public func string() throws -> String {
        guard case .string(let s) = value else { throw wrongKind("a string") }
        return s
    }

    public func bool() throws -> Bool {
        guard case .bool(let b) = value else { throw wrongKind("a boolean") }
        return b
    }

    /// An integer written without fraction or exponent that fits in `Int`.
    public func int() throws -> Int {
        guard case .number(let s) = value else { throw wrongKind("an integer") }
        guard let v = Int(s) else { throw error("should be an integer that fits in 64 bits, found \(s)") }
        return v
    }

    public func int(in range: ClosedRange<Int>) throws -> Int {
        let v = try int()
        guard range.contains(v) else { throw error("is \(v), outside the allowed range \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    public func strings() throws -> [String] { try array().map { try $0.string() } }
    public func ints() throws -> [Int] { try array().map { try $0.int() } }
}
