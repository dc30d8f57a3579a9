import PSEdgeIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// JSON as the evaluation files use it: numbers become `Double` at parse time and arrays made only of numbers
/// are stored flat (`numbers`), so a detections file with millions of embedding values stays compact.
///
/// Besides RFC 8259 the parser accepts the literals `NaN`, `Infinity` and `-Infinity` that Python's `json`
/// module writes for non-finite floats, so that the decoder can reject them with the entry they are in
/// ("images['a.jpg'].scores[2] is NaN") instead of a bare syntax error.
indirect enum EvalJSON {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case numbers([Double])
    case array([EvalJSON])
    case object(EvalJSONObject)

    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .numbers, .array: return "an array"
        case .object: return "an object"
        }
    }

    static func parse(_ bytes: [UInt8], source: String) throws -> EvalJSON {
        try bytes.withUnsafeBufferPointer { buf in
            var p = EvalJSONParser(bytes: buf, source: source)
            p.skipWhitespace()
            let v = try p.parseValue(depth: 0)
            p.skipWhitespace()
            guard p.pos == buf.count else { throw p.fail("unexpected data after the JSON value") }
            return v
        }
    }
}

/// Object members in document order with key lookup.
struct EvalJSONObject {
    private(set) var keys: [String] = []
    private var values: [String: EvalJSON] = [:]

    subscript(key: String) -> EvalJSON? { values[key] }

    /// Adds a member; false when the key is already present.
    mutating func insert(_ key: String, _ value: EvalJSON) -> Bool {
        if values[key] != nil { return false }
        values[key] = value
        keys.append(key)
        return true
    }

    var members: [(key: String, value: EvalJSON)] { keys.map { ($0, values[$0]!) } }
}

private struct EvalJSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let source: String
    var pos = 0
    let maxDepth = 64

    init(bytes: UnsafeBufferPointer<UInt8>, source: String) {
        self.bytes = bytes
        self.source = source
    }

    func fail(_ why: String) -> PSEdgeError {
        // Line and column help with hand-written files.
        var line = 1, col = 1
        for i in 0..<min(pos, bytes.count) {
            if bytes[i] == 0x0a { line += 1; col = 1 } else { col += 1 }
        }
        return .malformed("\(source): JSON syntax error at line \(line), column \(col) (byte \(pos)): \(why)")
    }

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
        guard peek == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        pos += 1
    }

    func describe(_ c: UInt8) -> String {
        (0x21...0x7e).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x" + String(c, radix: 16)
    }

    mutating func literal(_ word: StaticString) throws {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for b in w {
            guard peek == b else { throw fail("invalid literal, expected '\(word)'") }
            pos += 1
        }
    }

    mutating func parseValue(depth: Int) throws -> EvalJSON {
        guard let c = peek else { throw fail("unexpected end of input, expected a value") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "N"), UInt8(ascii: "I"):
            return .number(try parseNumber())
        default: throw fail("unexpected character \(describe(c))")
        }
    }

    mutating func parseObject(depth: Int) throws -> EvalJSON {
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
        pos += 1
        var obj = EvalJSONObject()
        skipWhitespace()
        if peek == UInt8(ascii: "}") { pos += 1; return .object(obj) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw fail(peek == nil ? "unexpected end inside an object" : "expected a string key") }
            let keyPos = pos
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let v = try parseValue(depth: depth)
            if !obj.insert(key, v) {
                pos = keyPos
                throw fail("duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard let c = peek else { throw fail("unexpected end inside an object") }
            pos += 1
            if c == UInt8(ascii: "}") { return .object(obj) }
            guard c == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or '}' in an object") }
        }
    }

    func startsNumber(_ c: UInt8) -> Bool {
        c == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "N") || c == UInt8(ascii: "I")
    }

    mutating func parseArray(depth: Int) throws -> EvalJSON {
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
        pos += 1
        skipWhitespace()
        if peek == UInt8(ascii: "]") { pos += 1; return .numbers([]) }
        // Numeric fast path: stays flat while every element is a number.
        var nums: [Double] = []
        while let c = peek, startsNumber(c) {
            nums.append(try parseNumber())
            skipWhitespace()
            guard let d = peek else { throw fail("unexpected end inside an array") }
            pos += 1
            if d == UInt8(ascii: "]") { return .numbers(nums) }
            guard d == UInt8(ascii: ",") else { pos -= 1; throw fail("expected ',' or ']' in an array") }
            skipWhitespace()
        }
        var items: [EvalJSON] = nums.map { .number($0) }
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

    private static let exactPowers: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                                1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

    /// A JSON number (or NaN / Infinity / -Infinity) as the correctly rounded Double.
    mutating func parseNumber() throws -> Double {
        let start = pos
        var negative = false
        if peek == UInt8(ascii: "-") { negative = true; pos += 1 }
        if peek == UInt8(ascii: "I") { try literal("Infinity"); return negative ? -.infinity : .infinity }
        if peek == UInt8(ascii: "N") {
            guard !negative else { throw fail("invalid number") }
            try literal("NaN"); return .nan
        }
        // Mantissa digits (up to 19 kept exactly) and the decimal exponent.
        var mantissa: UInt64 = 0
        var digits = 0          // significant digits seen (after leading zeros)
        var dropped = false     // a nonzero digit did not fit in the mantissa
        var exp10 = 0
        func isDigit(_ c: UInt8?) -> Bool { c.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }
        if peek == UInt8(ascii: "0") {
            pos += 1
        } else if isDigit(peek) {
            while isDigit(peek) {
                let d = UInt64(bytes[pos] - UInt8(ascii: "0"))
                if digits < 19 { mantissa = mantissa * 10 + d; digits += 1 } else { exp10 += 1; if d != 0 { dropped = true } }
                pos += 1
            }
        } else {
            throw fail("invalid number")
        }
        if peek == UInt8(ascii: ".") {
            pos += 1
            guard isDigit(peek) else { throw fail("invalid number: digits expected after '.'") }
            while isDigit(peek) {
                let d = UInt64(bytes[pos] - UInt8(ascii: "0"))
                if mantissa == 0 && d == 0 {
                    exp10 -= 1
                } else if digits < 19 {
                    mantissa = mantissa * 10 + d; digits += 1; exp10 -= 1
                } else if d != 0 {
                    dropped = true
                }
                pos += 1
            }
        }
        var explicitExp = 0
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            var eneg = false
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { eneg = peek == UInt8(ascii: "-"); pos += 1 }
            guard isDigit(peek) else { throw fail("invalid number: digits expected in the exponent") }
            while isDigit(peek) {
                if explicitExp < 100_000 { explicitExp = explicitExp * 10 + Int(bytes[pos] - UInt8(ascii: "0")) }
                pos += 1
            }
            if eneg { explicitExp = -explicitExp }
        }
        let e = exp10 + explicitExp
        // Exact fast path (Clinger): the mantissa and the power of ten are both exact doubles.
        if !dropped && mantissa < (1 << 53) && e >= -22 && e <= 22 {
            var v = Double(mantissa)
            v = e >= 0 ? v * Self.exactPowers[e] : v / Self.exactPowers[-e]
            return negative ? -v : v
        }
        if mantissa == 0 && !dropped { return negative ? -0.0 : 0.0 }
        // Slow path: the C library's correctly rounded conversion of the literal text.
        let n = pos - start
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { text in
            for i in 0..<n { text[i] = CChar(bitPattern: bytes[start + i]) }
            text[n] = 0
            return strtod(text.baseAddress!, nil)
        }
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
        pos += 1
        let start = pos
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<pos])
                guard let s = String(validating: raw, as: UTF8.self) else { pos = start; throw fail("string is not valid UTF-8") }
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("unescaped control character in a string") }
            pos += 1
        }
        var buf = Array(bytes[start..<pos])
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

// MARK: - Typed access whose errors name the entry

/// A value with its path from the document root, e.g. `images['s1.jpg'].scores[2]`, so every decoding error
/// names the entry that is wrong: "detections.json: images['s1.jpg'].scores[2] is NaN".
struct EvalField {
    let value: EvalJSON
    let path: String
    let source: String

    func error(_ what: String) -> PSEdgeError {
        .malformed(path.isEmpty ? "\(source): \(what)" : "\(source): \(path) \(what)")
    }

    func wrongKind(_ want: String) -> PSEdgeError { error("should be \(want), found \(value.kindName)") }

    /// The same value under another label (e.g. an image entry renamed to include its name).
    func relabeled(_ path: String) -> EvalField { EvalField(value: value, path: path, source: source) }

    var isNull: Bool { if case .null = value { return true } else { return false } }

    func object() throws -> EvalJSONObject {
        guard case .object(let o) = value else { throw wrongKind("an object") }
        return o
    }

    private func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func member(_ key: String) throws -> EvalField {
        let o = try object()
        guard let v = o[key] else {
            throw PSEdgeError.malformed(path.isEmpty ? "\(source): missing field '\(key)'" : "\(source): \(path) is missing field '\(key)'")
        }
        return EvalField(value: v, path: child(key), source: source)
    }

    /// Absent and null both give nil.
    func optionalMember(_ key: String) throws -> EvalField? {
        let o = try object()
        guard let v = o[key] else { return nil }
        if case .null = v { return nil }
        return EvalField(value: v, path: child(key), source: source)
    }

    /// Members of a map-like object, labeled `path['key']`.
    func entries() throws -> [(key: String, value: EvalField)] {
        try object().members.map { ($0.key, EvalField(value: $0.value, path: "\(path)['\($0.key)']", source: source)) }
    }

    var count: Int {
        switch value {
        case .numbers(let a): return a.count
        case .array(let a): return a.count
        default: return 0
        }
    }

    func array() throws -> [EvalField] {
        switch value {
        case .numbers(let a): return a.indices.map { EvalField(value: .number(a[$0]), path: "\(path)[\($0)]", source: source) }
        case .array(let a): return a.indices.map { EvalField(value: a[$0], path: "\(path)[\($0)]", source: source) }
        default: throw wrongKind("an array")
        }
    }

    func string() throws -> String {
        guard case .string(let s) = value else { throw wrongKind("a string") }
        return s
    }

    func number() throws -> Double {
        guard case .number(let d) = value else { throw wrongKind("a number") }
        return d
    }

    /// A finite number.
    func finite() throws -> Double {
        let d = try number()
        guard d.isFinite else { throw error("is \(d.isNaN ? "NaN" : "infinite")") }
        return d
    }

    /// An integer (a number with no fractional part that an `Int` holds exactly).
    func int() throws -> Int {
        let d = try number()
        guard d.isFinite, d.rounded() == d, abs(d) <= 9_007_199_254_740_992 else { throw error("should be an integer, found \(d)") }
        return Int(d)
    }

    /// An array of finite numbers; the error names the first bad element.
    func finiteNumbers() throws -> [Double] {
        switch value {
        case .numbers(let a):
            if let i = a.firstIndex(where: { !$0.isFinite }) {
                throw PSEdgeError.malformed("\(source): \(path)[\(i)] is \(a[i].isNaN ? "NaN" : "infinite")")
            }
            return a
        case .array(let a):
            // Mixed content: name the first element that is not a number.
            for (i, v) in a.enumerated() {
                if case .number = v { continue }
                throw PSEdgeError.malformed("\(source): \(path)[\(i)] should be a number, found \(v.kindName)")
            }
            return []
        default:
            throw wrongKind("an array of numbers")
        }
    }
}
