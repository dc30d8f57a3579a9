import PSEdgeIR

/// NumPy .npy files (format versions 1.0, 2.0 and 3.0), C order only.
///
/// Layout: "\x93NUMPY", major, minor, header length (u16 LE for 1.x, u32 LE for 2.x/3.x), then a
/// Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with spaces
/// and a final newline so the data starts at a multiple of 64, then the raw array bytes.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Dtype strings this reader understands. '<f8' is read as float32 (rounded to nearest).
    static let readable: [String: DType] = [
        "f4": .float32, "f2": .float16, "i8": .int64, "i4": .int32, "i1": .int8, "u1": .uint8, "b1": .bool,
    ]
    static let supportedList = "<f4, <f2, <f8 (read as f32), <i8, <i4, |i1, |u1, |b1"

    static func descr(for dtype: DType) -> String? {
        switch dtype {
        case .float32: return "<f4"
        case .float16: return "<f2"
        case .int64: return "<i8"
        case .int32: return "<i4"
        case .int8: return "|i1"
        case .uint8: return "|u1"
        case .bool: return "|b1"
        case .bfloat16: return nil
        }
    }

    // MARK: reading

    /// Reads a whole .npy file into a tensor with its own (aligned) storage.
    public static func read(path: String) throws -> Tensor {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        let size = file.size
        func bad(_ why: String) -> PSEdgeError { .malformed("'\(path)' \(why)") }

        let n = min(size, magic.count)
        guard size > 0, bytes.prefix(n).elementsEqual(magic.prefix(n)) else { throw bad("is not an NPY file (bad magic)") }
        guard size >= 10 else { throw bad("is truncated (\(size) bytes)") }
        let major = bytes[6], minor = bytes[7]
        guard (1...3).contains(major), minor == 0 else {
            throw PSEdgeError.unsupported("'\(path)' uses NPY format version \(major).\(minor); supported are 1.0, 2.0 and 3.0")
        }
        let lengthSize = major == 1 ? 2 : 4
        guard size >= 8 + lengthSize else { throw bad("is truncated (\(size) bytes)") }
        let headerLength = major == 1
            ? Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
            : Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        let headerStart = 8 + lengthSize
        let dataStart = headerStart + headerLength
        guard dataStart <= size else { throw bad("is truncated: the header needs \(dataStart) bytes, the file has \(size)") }
        let headerBytes = bytes[headerStart..<dataStart]
        // 1.x/2.x headers are Latin-1, 3.x headers UTF-8; the keys and values we accept are ASCII.
        let headerText: String
        if major == 3 {
            guard let s = String(validating: headerBytes, as: UTF8.self) else { throw bad("has a header that is not valid UTF-8") }
            headerText = s
        } else {
            headerText = String(String.UnicodeScalarView(headerBytes.map { Unicode.Scalar($0) }))
        }

        let header: [String: PyValue]
        do { header = try PyLiteral.parseDict(headerText) } catch let e as PSEdgeError { throw bad("has a malformed header: \(e.message)") }
        let keys = Set(header.keys)
        guard keys == ["descr", "fortran_order", "shape"] else {
            throw bad("has a header with keys \(keys.sorted()); expected descr, fortran_order and shape")
        }
        guard case .string(let descr)? = header["descr"] else {
            throw PSEdgeError.unsupported("'\(path)' has a structured dtype, which is not supported (supported: \(supportedList))")
        }
        guard case .bool(let fortran)? = header["fortran_order"] else { throw bad("has a non-boolean fortran_order") }
        guard case .tuple(let shape)? = header["shape"] else { throw bad("has a shape that is not a tuple of non-negative integers") }

        // dtype
        let u = Array(descr.utf8)
        guard u.count >= 2 else { throw PSEdgeError.unsupported("'\(path)' has unsupported dtype '\(descr)' (supported: \(supportedList))") }
        let order = u[0]
        let code = [UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "|"), UInt8(ascii: "=")].contains(order)
            ? String(decoding: u[1...], as: UTF8.self) : descr
        let isDouble = code == "f8"
        guard let dtype = isDouble ? .float32 : readable[code] else {
            throw PSEdgeError.unsupported("'\(path)' has unsupported dtype '\(descr)' (supported: \(supportedList))")
        }
        let itemSize = isDouble ? 8 : dtype.byteSize
        if order == UInt8(ascii: ">") && itemSize > 1 {
            throw PSEdgeError.unsupported("'\(path)' has big-endian dtype '\(descr)'; only little-endian arrays are supported")
        }

        // size
        var count = 1
        for d in shape {
            let (m, o) = count.multipliedReportingOverflow(by: d)
            if o { throw bad("has shape \(Shapes.describe(shape)), whose size overflows") }
            count = m
        }
        let (nbytes, o) = count.multipliedReportingOverflow(by: itemSize)
        if o { throw bad("has shape \(Shapes.describe(shape)), whose size overflows") }
        let available = size - dataStart
        if available < nbytes { throw bad("is truncated: \(descr)\(Shapes.describe(shape)) needs \(nbytes) data bytes, the file has \(available)") }
        if available > nbytes { throw bad("has \(available - nbytes) unexpected bytes after the \(nbytes) data bytes") }

        let data = UnsafeRawBufferPointer(rebasing: bytes[dataStart..<size])
        if isDouble {
            let t = Tensor(zeros: .float32, shape: shape)
            let dst = t.pointer(Float.self)
            for i in 0..<count {
                dst[i] = Float(Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
            }
            return fortran ? toRowMajor(t) : t
        }
        let t = Tensor(bytes: data, dtype: dtype, shape: shape)
        return fortran ? toRowMajor(t) : t
    }

    /// A Fortran-order array (what np.save writes for a transposed view) reordered to row-major.
    static func toRowMajor(_ t: Tensor) -> Tensor {
        let shape = t.shape
        guard shape.count > 1, t.count > 1 else { return t }
        let out = Tensor(zeros: t.dtype, shape: shape)
        let es = t.dtype.byteSize
        // Column-major strides: the first axis varies fastest.
        var colStrides = [Int](repeating: 1, count: shape.count)
        for a in 1..<shape.count { colStrides[a] = colStrides[a - 1] * shape[a - 1] }
        var index = [Int](repeating: 0, count: shape.count)
        for i in 0..<t.count {
            var src = 0
            for a in 0..<shape.count { src += index[a] * colStrides[a] }
            (out.raw + i * es).copyMemory(from: t.raw + src * es, byteCount: es)
            var a = shape.count - 1
            while a >= 0 { index[a] += 1; if index[a] < shape[a] { break }; index[a] = 0; a -= 1 }
        }
        return out
    }

    // MARK: writing

    /// Writes `t` as an NPY 1.0 file (2.0 if the header would not fit), atomically.
    public static func write(_ t: Tensor, to path: String) throws {
        guard let descr = descr(for: t.dtype) else {
            throw PSEdgeError.unsupported("cannot write '\(path)': NPY has no \(t.dtype.name) dtype (convert to f32 first)")
        }
        guard let length = PSMValidation.byteLength(dtype: t.dtype, shape: t.shape),
              t.offset >= 0, t.offset <= t.storage.byteCount, length <= t.storage.byteCount - t.offset
        else { throw PSEdgeError.invalid("cannot write '\(path)': tensor \(t) does not fit its storage") }

        let shapeText: String
        switch t.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(t.shape[0]),)"
        default: shapeText = "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var dict = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        var major: UInt8 = 1
        var prefix = 10
        if (dict.count + 1 + prefix + 63) / 64 * 64 - prefix > Int(UInt16.max) { major = 2; prefix = 12 }
        let total = (prefix + dict.count + 1 + 63) / 64 * 64
        dict.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: total - prefix - dict.count - 1))
        dict.append(UInt8(ascii: "\n"))

        var out = magic + [major, 0]
        if major == 1 {
            withUnsafeBytes(of: UInt16(dict.count).littleEndian) { out.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: UInt32(dict.count).littleEndian) { out.append(contentsOf: $0) }
        }
        out.append(contentsOf: dict)
        try AtomicFile.write(to: path) { sink in
            try sink.write(out)
            if length > 0 { try sink.write(UnsafeRawBufferPointer(start: t.raw, count: length)) }
        }
    }
}

// MARK: - The Python literal subset used by NPY headers

enum PyValue: Equatable {
    case string(String)
    case bool(Bool)
    case tuple([Int])
    case other
}

enum PyLiteral {
    /// Parses `{'key': value, ...}` where values are strings, True/False, tuples of non-negative
    /// integers, or anything else bracketed (reported as `.other`), followed only by whitespace.
    static func parseDict(_ text: String) throws -> [String: PyValue] {
        let s = Array(text.utf8)
        var i = 0
        func fail(_ why: String) -> PSEdgeError { .malformed("\(why) at character \(i)") }
        func ws() { while i < s.count, s[i] == 0x20 || s[i] == 0x0a || s[i] == 0x09 || s[i] == 0x0d { i += 1 } }
        func expect(_ c: Character) throws {
            ws()
            guard i < s.count, s[i] == c.asciiValue else { throw fail("expected '\(c)'") }
            i += 1
        }
        func string() throws -> String {
            guard i < s.count, s[i] == UInt8(ascii: "'") || s[i] == UInt8(ascii: "\"") else { throw fail("expected a string") }
            let q = s[i]
            i += 1
            let start = i
            while i < s.count, s[i] != q {
                if s[i] == UInt8(ascii: "\\") { throw fail("escapes in strings are not supported") }
                i += 1
            }
            guard i < s.count else { throw fail("unterminated string") }
            i += 1
            return String(decoding: s[start..<(i - 1)], as: UTF8.self)
        }
        func integer() throws -> Int {
            let start = i
            while i < s.count, (0x30...0x39).contains(s[i]) { i += 1 }
            guard i > start, let v = Int(String(decoding: s[start..<i], as: UTF8.self)) else {
                throw fail("expected a non-negative integer")
            }
            if i < s.count, s[i] == UInt8(ascii: "L") { i += 1 }  // Python 2 longs
            return v
        }
        func skipBracketed() throws {
            var depth = 0
            repeat {
                guard i < s.count else { throw fail("unbalanced brackets") }
                switch s[i] {
                case UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
                case UInt8(ascii: ")"), UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
                case UInt8(ascii: "'"), UInt8(ascii: "\""): _ = try string(); continue
                default: break
                }
                i += 1
            } while depth > 0
        }
        func value() throws -> PyValue {
            ws()
            guard i < s.count else { throw fail("expected a value") }
            switch s[i] {
            case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "T"), UInt8(ascii: "F"):
                for (word, v) in [("True", true), ("False", false)] where s[i...].starts(with: word.utf8) {
                    i += word.utf8.count
                    return .bool(v)
                }
                throw fail("expected True or False")
            case UInt8(ascii: "("):
                let save = i
                i += 1
                var items: [Int] = []
                ws()
                if i < s.count, s[i] == UInt8(ascii: ")") { i += 1; return .tuple(items) }
                while true {
                    ws()
                    guard i < s.count, (0x30...0x39).contains(s[i]) else { i = save; try skipBracketed(); return .other }
                    items.append(try integer())
                    ws()
                    guard i < s.count else { throw fail("unterminated tuple") }
                    if s[i] == UInt8(ascii: ")") { i += 1; break }
                    guard s[i] == UInt8(ascii: ",") else { throw fail("expected ',' or ')' in a tuple") }
                    i += 1
                    ws()
                    if i < s.count, s[i] == UInt8(ascii: ")") { i += 1; break }
                }
                // "(n)" (no comma) is an int in Python; numpy never writes it, and it is read as (n,).
                return .tuple(items)
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                try skipBracketed()
                return .other
            default:
                throw fail("unexpected character '\(Character(Unicode.Scalar(s[i])))'")
            }
        }

        var out: [String: PyValue] = [:]
        try expect("{")
        while true {
            ws()
            guard i < s.count else { throw fail("unterminated dict") }
            if s[i] == UInt8(ascii: "}") { i += 1; break }
            let key = try string()
            if out[key] != nil { throw fail("duplicate key '\(key)'") }
            try expect(":")
            out[key] = try value()
            ws()
            guard i < s.count else { throw fail("unterminated dict") }
            if s[i] == UInt8(ascii: ",") { i += 1; continue }
            guard s[i] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            i += 1
            break
        }
        ws()
        guard i == s.count else { throw fail("unexpected text after the dict") }
        return out
    }
}
