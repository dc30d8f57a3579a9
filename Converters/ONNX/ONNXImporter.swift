import CONNXProto
import CProtobufC
import PSEdgeIR

/// Reads ONNX models (.onnx) and serialized tensors (.pb) into the PSEdge graph IR.
///
/// - Initializers with inline data (raw_data or the typed fields) are copied into owned storage;
///   initializers with external data are memory-mapped and borrowed without a copy.
/// - Graph inputs that have an initializer of the same name (as IR version < 4 requires) are constants
///   and are not listed in `Graph.inputs`.
/// - Element types PSEdge lacks are converted: DOUBLE → f32, INT16/UINT16 → i32, UINT32/UINT64 → i64
///   (listed in `metadata["onnx.dtype_conversions"]`). STRING, complex, 8-/4-bit float and 4-bit integer
///   tensors are rejected, as are subgraph, sparse, tensor-list and type attributes.
/// - Constant nodes stay nodes; folding them is a later pass's job.
/// - Every problem is a `PSEdgeError` whose message starts with the model's path.
public enum ONNXImporter {
    /// ai.onnx operator set versions accepted by default: 7 (numpy-style broadcasting) up to 28, the newest the
    /// onnx 1.23 conformance cases use. Kernels branch on the opset where an operator's semantics changed.
    public static let supportedOpsets: ClosedRange<Int> = 7...28

    /// Messages may nest at most this deep (model → graph → node → attribute → graph → …, or
    /// TypeProto → sequence → TypeProto → …); deeper files are rejected before protobuf-c's
    /// recursive parser could run out of stack.
    public static let maxNestingDepth = 64

    /// Loads the model at `path`. External data files are resolved relative to its directory.
    public static func load(path: String, opsets: ClosedRange<Int> = supportedOpsets) throws -> Graph {
        let file = try MappedFile(path: path)
        guard file.size > 0 else { throw PSEdgeError.io("'\(path)' is empty (0 bytes), not an ONNX model") }
        let context = ONNXImportContext(source: path, baseDirectory: directory(of: path))
        return try parseModel(file.bytes, context: context, opsets: opsets)
    }

    /// Loads a model from memory. External data is resolved relative to `baseDirectory`; without one,
    /// a model with external data is an error. `sourceName` stands for the model in error messages.
    public static func load(bytes: [UInt8], baseDirectory: String? = nil, sourceName: String = "<in-memory model>",
                            opsets: ClosedRange<Int> = supportedOpsets) throws -> Graph {
        guard !bytes.isEmpty else { throw PSEdgeError.io("'\(sourceName)' is empty (0 bytes), not an ONNX model") }
        let context = ONNXImportContext(source: sourceName, baseDirectory: baseDirectory)
        return try bytes.withUnsafeBytes { try parseModel($0, context: context, opsets: opsets) }
    }

    /// Reads a serialized TensorProto, such as the input_0.pb / output_0.pb files of ONNX test data sets.
    public static func loadTensor(path: String) throws -> (name: String, tensor: Tensor) {
        let file = try MappedFile(path: path)
        guard file.size > 0 else { throw PSEdgeError.io("'\(path)' is empty (0 bytes), not a serialized ONNX tensor") }
        let context = ONNXImportContext(source: path, baseDirectory: directory(of: path))
        guard let base = file.base,
              let tp = onnx__tensor_proto__unpack(nil, file.size, base.assumingMemoryBound(to: UInt8.self)) else {
            throw context.notValid("serialized ONNX tensor", "protobuf parse failed; truncated or corrupt?")
        }
        defer { onnx__tensor_proto__free_unpacked(tp, nil) }
        let name = context.string(tp.pointee.name)
        let tensor = try context.tensor(tp, what: name.isEmpty ? "tensor" : "tensor '\(name)'")
        return (name, tensor)
    }

    // MARK: -

    private static func parseModel(_ bytes: UnsafeRawBufferPointer, context: ONNXImportContext,
                                   opsets: ClosedRange<Int>) throws -> Graph {
        switch ProtoNestingCheck.checkModel(bytes, maxDepth: maxNestingDepth) {
        case .ok:
            break
        case .malformed(let offset):
            throw context.notValid("ONNX model", "protobuf parse failed at byte \(offset) of \(bytes.count); truncated or corrupt?")
        case .tooDeep(let limit):
            throw context.notValid("ONNX model", "messages nest more than \(limit) levels deep")
        }
        guard let base = bytes.baseAddress,
              let model = onnx__model_proto__unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self)) else {
            throw context.notValid("ONNX model", "protobuf parse failed; truncated or corrupt?")
        }
        defer { onnx__model_proto__free_unpacked(model, nil) }
        return try context.graph(from: model, opsetRange: opsets)
    }

    /// The directory part of a path ("." for a bare file name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }
}
