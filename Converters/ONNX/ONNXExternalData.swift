#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CONNXProto
import PSEdgeIR

/// Where a tensor's bytes live when data_location is EXTERNAL.
struct ONNXExternalDataRef {
    /// Path relative to the model's directory, as written in the model.
    var location: String
    var offset: Int
    /// nil when the model does not say; then the tensor's own size is used.
    var length: Int?
}

extension ONNXImportContext {
    /// Parses external_data entries ("location", "offset", "length"; "checksum" and others are ignored).
    func externalDataRef(_ t: Onnx__TensorProto, what: String) throws -> ONNXExternalDataRef {
        var location: String?
        var offset = 0
        var length: Int?
        for (key, value) in try entries(t.external_data, t.n_external_data, "\(what): external_data") {
            switch key {
            case "location":
                location = value
            case "offset", "length":
                guard let v = Int(value), v >= 0 else {
                    throw error(.malformed, "\(what): external data \(key) '\(value)' is not a non-negative integer")
                }
                if key == "offset" { offset = v } else { length = v }
            default:
                continue
            }
        }
        guard let location, !location.isEmpty else {
            throw error(.malformed, "\(what) is marked as external data but has no 'location' entry")
        }
        return ONNXExternalDataRef(location: location, offset: offset, length: length)
    }

    /// Checks that a location stays inside the model's directory: relative, without '..' components.
    /// (Symbolic links are followed as the file system does: model caches such as Hugging Face's
    /// link every file to a blob elsewhere, so resolving them cannot be held against the model.)
    func checkLocation(_ location: String, what: String) throws {
        if location.hasPrefix("/") {
            throw error(.malformed, "\(what): external data location '\(location)' is an absolute path; "
                + "it must be relative to the model's directory")
        }
        if location.split(separator: "/", omittingEmptySubsequences: true).contains("..") {
            throw error(.malformed, "\(what): external data location '\(location)' leaves the model's directory ('..')")
        }
        if location.utf8.contains(0) {
            throw error(.malformed, "\(what): external data location contains a NUL character")
        }
    }

    /// The external file, mapped once per import and shared by every tensor stored in it.
    func externalFile(_ location: String, what: String) throws -> MappedFile {
        guard let base = baseDirectory else {
            throw error(.invalidArgument, "\(what) keeps its data in external file '\(location)', but the model "
                + "was loaded from memory without a base directory")
        }
        let path = base.hasSuffix("/") ? base + location : base + "/" + location
        if let f = externalFiles[path] { return f }
        var st = stat()
        if stat(path, &st) != 0 {
            throw error(.io, "\(what): external data file '\(location)' not found (looked for '\(path)': "
                + "\(String(cString: strerror(errno))))")
        }
        let f: MappedFile
        do {
            f = try MappedFile(path: path)
        } catch let e as PSEdgeError {
            throw error(e.kind, "\(what): external data file '\(location)': \(e.message)")
        }
        externalFiles[path] = f
        return f
    }

    /// A tensor whose bytes live in an external file. They are borrowed from the mapping without a copy
    /// when the type needs no conversion and the offset is aligned for the element type; otherwise copied.
    func externalTensor(_ t: Onnx__TensorProto, layout: ONNXTensorLayout, what: String) throws -> Tensor {
        let ref = try externalDataRef(t, what: what)
        try checkLocation(ref.location, what: what)
        if let length = ref.length, length != layout.wireBytes {
            throw error(.malformed, "\(what): external data length is \(length) bytes but \(layout.source.name) shape "
                + "\(Shapes.describe(layout.shape)) needs \(layout.wireBytes) bytes")
        }
        let file = try externalFile(ref.location, what: what)
        let count = layout.wireBytes
        guard ref.offset <= file.size, count <= file.size - ref.offset else {
            throw error(.malformed, "\(what): external data range [\(ref.offset), \(ref.offset)+\(count)) lies outside "
                + "'\(ref.location)' (\(file.size) bytes)")
        }
        if count == 0 { return Tensor(zeros: layout.dtype, shape: layout.shape) }
        let start = file.base!.advanced(by: ref.offset)
        let aligned = Int(bitPattern: start) % layout.dtype.byteSize == 0
        if !layout.source.isConverted && aligned {
            let storage = try file.storage(offset: ref.offset, count: count, what: what)
            return Tensor(dtype: layout.dtype, shape: layout.shape, storage: storage)
        }
        return try decode(UnsafeRawBufferPointer(start: start, count: count), layout: layout, what: what)
    }
}
