import CONNXProto
import CProtobufC
import PSEdgeIR

#if _endian(big)
#error("the ONNX importer assumes a little-endian host (raw_data is little-endian)")
#endif

/// State shared while one model (or tensor file) is imported: where it came from, for messages,
/// the directory external data is resolved against, and the external files mapped so far.
final class ONNXImportContext {
    /// The model path as the caller gave it (or a description for in-memory bytes).
    let source: String
    /// Directory that external-data locations are relative to; nil for in-memory models.
    let baseDirectory: String?
    /// External data files mapped so far, by resolved path; tensors borrow from them.
    var externalFiles: [String: MappedFile] = [:]
    /// Tensors and values whose element type was converted (e.g. "w: DOUBLE→f32").
    var conversions: [String] = []

    init(source: String, baseDirectory: String?) {
        self.source = source
        self.baseDirectory = baseDirectory
    }

    /// An error whose message starts with the file it is about.
    func error(_ kind: PSEdgeError.Kind, _ message: String) -> PSEdgeError {
        PSEdgeError(kind, "'\(source)': \(message)")
    }

    /// "'x.onnx' is not a valid ONNX model (reason)".
    func notValid(_ what: String, _ reason: String) -> PSEdgeError {
        PSEdgeError(.malformed, "'\(source)' is not a valid \(what) (\(reason))")
    }

    // MARK: reading protobuf-c structures defensively

    /// A C string field; NULL (an unset proto2 string) reads as "".
    func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    /// A bytes field as a buffer, checking that a non-empty field has a pointer.
    func bytes(_ b: ProtobufCBinaryData, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        if b.len == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let data = b.data, b.len > 0 else {
            throw error(.malformed, "\(what()): bytes field has length \(b.len) but no data")
        }
        return UnsafeRawBufferPointer(start: data, count: b.len)
    }

    /// A bytes field decoded as UTF-8 text (invalid sequences are replaced).
    func text(_ b: ProtobufCBinaryData, _ what: @autoclosure () -> String) throws -> String {
        let raw = try bytes(b, what())
        return String(decoding: raw, as: UTF8.self)
    }

    /// A repeated scalar field (count + pointer) as a buffer.
    func array<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeBufferPointer<T> {
        if n == 0 { return UnsafeBufferPointer(start: nil, count: 0) }
        guard n > 0, let p else { throw error(.malformed, "\(what()): repeated field has \(n) entries but no data") }
        return UnsafeBufferPointer(start: p, count: n)
    }

    /// A repeated message field (count + array of pointers); every entry must be non-NULL.
    func messages<T>(_ p: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ n: Int,
                     _ what: @autoclosure () -> String) throws -> [UnsafeMutablePointer<T>] {
        if n == 0 { return [] }
        guard n > 0, let p else { throw error(.malformed, "\(what()): repeated field has \(n) entries but no data") }
        var out: [UnsafeMutablePointer<T>] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            guard let m = p[i] else { throw error(.malformed, "\(what()): entry \(i) is missing") }
            out.append(m)
        }
        return out
    }

    /// A repeated string field; NULL entries read as "".
    func strings(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ n: Int,
                 _ what: @autoclosure () -> String) throws -> [String] {
        if n == 0 { return [] }
        guard n > 0, let p else { throw error(.malformed, "\(what()): repeated field has \(n) entries but no data") }
        return (0..<n).map { string(p[$0]) }
    }

    /// Key/value entries (metadata_props, external_data) in order.
    func entries(_ p: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?, _ n: Int,
                 _ what: @autoclosure () -> String) throws -> [(key: String, value: String)] {
        try messages(p, n, what()).map { (key: string($0.pointee.key), value: string($0.pointee.value)) }
    }
}

/// "" and "ai.onnx" both name the default operator domain; PSEdge uses "".
func normalizedONNXDomain(_ d: String) -> String { d == "ai.onnx" ? "" : d }
