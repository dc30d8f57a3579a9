import PSEdgeIR

/// A .safetensors file: u64 LE header length N, N bytes of JSON header, then the data buffer.
/// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
/// to the data buffer) plus an optional "__metadata__" map of strings.
///
/// Tensors borrow the file mapping (zero copy) when their data is aligned to their element size,
/// which files written by the reference library always are; misaligned data is copied.
public struct SafetensorsFile: Sendable {
    /// Tensors in file (data offset) order.
    public let tensors: [(name: String, tensor: Tensor)]
    public let metadata: [String: String]
    public let path: String

    /// Largest header accepted (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000

    static let dtypes: [String: DType] = [
        "F32": .float32, "F16": .float16, "BF16": .bfloat16, "I8": .int8, "U8": .uint8,
        "I32": .int32, "I64": .int64, "BOOL": .bool,
    ]

    public subscript(name: String) -> Tensor? { tensors.first(where: { $0.name == name })?.tensor }

    public static func load(path: String) throws -> SafetensorsFile {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        let size = file.size
        func bad(_ why: String) -> PSEdgeError { .malformed("'\(path)' \(why)") }

        guard size >= 8 else { throw bad("is not a safetensors file (\(size) bytes, too short for the header length)") }
        let rawLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard rawLength <= UInt64(maxHeaderLength) else {
            throw bad("is not a safetensors file (header length \(rawLength) exceeds the \(maxHeaderLength)-byte limit)")
        }
        let headerLength = Int(rawLength)
        guard headerLength <= size - 8 else {
            throw bad("is truncated or not a safetensors file (header length \(headerLength), but only \(size - 8) bytes follow)")
        }
        let dataStart = 8 + headerLength
        let dataLength = size - dataStart

        let json: JSON
        do {
            json = try JSON.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]))
        } catch let e as PSEdgeError {
            throw bad("is not a safetensors file (header is not valid JSON: \(e.message))")
        }
        let root = JSONField(json, context: "'\(path)' header")

        var metadata: [String: String] = [:]
        struct Entry { let name: String; let dtype: DType; let shape: [Int]; let begin: Int; let end: Int }
        var entries: [Entry] = []
        for (name, f) in try root.members() {
            if name == "__metadata__" {
                for (k, v) in try f.members() { metadata[k] = try v.string() }
                continue
            }
            let dtField = try f.member("dtype")
            let dtName = try dtField.string()
            guard let dtype = dtypes[dtName] else {
                throw PSEdgeError.unsupported("'\(path)': tensor '\(name)' has dtype \(dtName), which PSEdge does not support (supported: F32, F16, BF16, I8, U8, I32, I64, BOOL)")
            }
            let shape = try f.member("shape").array().map { d -> Int in
                let v = try d.int()
                guard v >= 0 else { throw d.error("is \(v); dimensions must be non-negative") }
                return v
            }
            let offsetsField = try f.member("data_offsets")
            let offsets = try offsetsField.ints()
            guard offsets.count == 2 else { throw offsetsField.error("should be [begin, end], found \(offsets.count) numbers") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw bad("tensor '\(name)' has data offsets [\(begin), \(end)], outside the \(dataLength)-byte data buffer")
            }
            var count = 1
            for d in shape {
                let (m, o) = count.multipliedReportingOverflow(by: d)
                if o { throw bad("tensor '\(name)' has shape \(Shapes.describe(shape)), whose size overflows") }
                count = m
            }
            let (want, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !o, end - begin == want else {
                throw bad("tensor '\(name)' is \(dtName)\(Shapes.describe(shape)), which needs \(o ? "too many" : String(want)) bytes, but its data offsets span \(end - begin)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(entries, entries.dropFirst()) where b.begin < a.end {
            throw bad("tensors '\(a.name)' and '\(b.name)' overlap in the data buffer")
        }

        var tensors: [(name: String, tensor: Tensor)] = []
        tensors.reserveCapacity(entries.count)
        for e in entries {
            let length = e.end - e.begin
            let offset = dataStart + e.begin
            let t: Tensor
            if length > 0, let base = file.base, Int(bitPattern: base + offset) % e.dtype.byteSize != 0 {
                t = Tensor(bytes: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]), dtype: e.dtype, shape: e.shape)
            } else {
                t = Tensor(dtype: e.dtype, shape: e.shape, storage: try file.storage(offset: offset, count: length, what: "tensor '\(e.name)'"))
            }
            tensors.append((e.name, t))
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata, path: path)
    }
}
