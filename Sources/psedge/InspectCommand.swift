import ArgumentParser
import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeONNX
import PSEdgeSafetensors

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe an .onnx, .psm, .safetensors or .npy file: ops, parameters, sizes, inputs and outputs."
    )

    @Argument(help: "The file to describe.")
    var file: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "For .psm: also verify every tensor's checksum.")
    var verify = false

    func run() throws {
        try reportingErrors {
            let summary: FileSummary
            switch try ModelFileKind(path: file) {
            case .onnx: summary = FileSummary(graph: try ONNXImporter.load(path: file), path: file, format: "onnx")
            case .psm:
                let m = try PSMModel.load(path: file, verifyTensorChecksums: verify)
                summary = FileSummary(graph: m.graph, path: file, format: "psm")
            case .safetensors: summary = FileSummary(safetensors: try SafetensorsFile.load(path: file), path: file)
            case .npy: summary = FileSummary(npy: try NPY.read(path: file), path: file)
            }
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(summary), as: UTF8.self))
            } else {
                print(summary.text)
            }
        }
    }
}

/// A format-independent description of a file, printed as text or JSON.
struct FileSummary: Encodable {
    struct Value: Encodable {
        let name: String
        let dtype: String
        let shape: [Int?]
    }
    struct TensorEntry: Encodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let bytes: Int
    }

    let file: String
    let format: String
    let fileBytes: Int
    var opset: Int?
    var nodes: Int?
    var ops: [String: Int]?
    var parameters: Int
    var parameterBytes: Int
    var inputs: [Value] = []
    var outputs: [Value] = []
    var tensors: [TensorEntry]?
    var metadata: [String: String] = [:]

    static func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }

    init(graph: Graph, path: String, format: String) {
        file = path
        self.format = format
        fileBytes = FileSummary.size(path)
        opset = graph.opset
        nodes = graph.nodes.count
        ops = graph.nodes.reduce(into: [:]) { $0[$1.opType, default: 0] += 1 }
        parameters = graph.initializers.values.reduce(0) { $0 + $1.count }
        parameterBytes = graph.initializers.values.reduce(0) { $0 + $1.byteCount }
        inputs = graph.inputs.map { Value(name: $0.name, dtype: $0.type?.dtype.name ?? "?", shape: $0.type?.shape ?? []) }
        outputs = graph.outputs.map { Value(name: $0.name, dtype: $0.type?.dtype.name ?? "?", shape: $0.type?.shape ?? []) }
        metadata = graph.metadata
    }

    init(safetensors st: SafetensorsFile, path: String) {
        file = path
        format = "safetensors"
        fileBytes = FileSummary.size(path)
        tensors = st.tensors.map { TensorEntry(name: $0.name, dtype: $0.tensor.dtype.name, shape: $0.tensor.shape, bytes: $0.tensor.byteCount) }
        parameters = st.tensors.reduce(0) { $0 + $1.tensor.count }
        parameterBytes = st.tensors.reduce(0) { $0 + $1.tensor.byteCount }
        metadata = st.metadata
    }

    init(npy t: Tensor, path: String) {
        file = path
        format = "npy"
        fileBytes = FileSummary.size(path)
        parameters = t.count
        parameterBytes = t.byteCount
        tensors = [TensorEntry(name: (path as NSString).lastPathComponent, dtype: t.dtype.name, shape: t.shape, bytes: t.byteCount)]
    }

    var text: String {
        var lines = ["\(file): \(format), \(formatBytes(fileBytes))"]
        if let opset, let nodes { lines.append("opset \(opset), \(nodes) nodes") }
        lines.append("parameters: \(parameters) (\(formatBytes(parameterBytes)))")
        func dims(_ s: [Int?]) -> String { "[" + s.map { $0.map(String.init) ?? "?" }.joined(separator: ",") + "]" }
        for v in inputs { lines.append("input  \(v.name): \(v.dtype)\(dims(v.shape))") }
        for v in outputs { lines.append("output \(v.name): \(v.dtype)\(dims(v.shape))") }
        if let ops, !ops.isEmpty {
            lines.append("ops:")
            for (op, n) in ops.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
                lines.append("  \(op.padding(toLength: max(22, op.count), withPad: " ", startingAt: 0)) \(n)")
            }
        }
        if let tensors {
            lines.append("tensors:")
            for t in tensors { lines.append("  \(t.name)  \(t.dtype)\(Shapes.describe(t.shape))  \(formatBytes(t.bytes))") }
        }
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { lines.append("meta \(k): \(v)") }
        return lines.joined(separator: "\n")
    }
}
