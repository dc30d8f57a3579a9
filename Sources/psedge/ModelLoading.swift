import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeONNX
import PSEdgePasses

/// The kinds of file psedge reads, decided by extension and, for .psm, by magic.
enum ModelFileKind {
    case onnx, psm, safetensors, npy

    init(path: String) throws {
        switch (path as NSString).pathExtension.lowercased() {
        case "onnx": self = .onnx
        case "psm": self = .psm
        case "safetensors": self = .safetensors
        case "npy": self = .npy
        default:
            throw PSEdgeError.invalid("'\(path)': unknown file type (expected .onnx, .psm, .safetensors or .npy)")
        }
    }
}

/// Import options shared by `convert` and `run` (when given an .onnx directly).
struct ConversionSettings {
    var inputShapes: [String: [Int]] = [:]
    var fixedInputs: [String: Tensor] = [:]
    var outputs: [String] = []
    var foldConstants = true
    /// Run the fusion passes (Optimizer) after static shapes and folding.
    var optimize = true
}

/// ONNX file → static, folded graph, ready to save or run.
func convertONNX(path: String, settings: ConversionSettings, report: inout PassReport) throws -> Graph {
    var graph = try ONNXImporter.load(path: path)
    report.add("import", "\(graph.nodes.count) nodes, \(graph.initializers.count) initializers, opset \(graph.opset)")
    if !settings.outputs.isEmpty {
        let before = graph.nodes.count
        graph = try graph.pruned(to: settings.outputs)
        report.add("truncate", "kept outputs \(settings.outputs.joined(separator: ",")): \(before) → \(graph.nodes.count) nodes")
    }
    var options = StaticShapes.Options()
    options.inputShapes = settings.inputShapes
    options.fixedInputs = settings.fixedInputs
    options.foldConstants = settings.foldConstants
    graph = try StaticShapes.run(graph, options: options, report: &report)
    if settings.optimize { graph = try Optimizer.run(graph, report: &report) }
    graph.metadata["source"] = (path as NSString).lastPathComponent
    graph.metadata["converter"] = "psedge \(PSEdgeVersion.string)"
    return graph
}

/// Loads a runnable graph from a .psm, or converts an .onnx in memory.
func loadRunnableGraph(path: String, settings: ConversionSettings) throws -> Graph {
    switch try ModelFileKind(path: path) {
    case .psm: return try PSMModel.load(path: path).graph
    case .onnx:
        var report = PassReport()
        return try convertONNX(path: path, settings: settings, report: &report)
    default: throw PSEdgeError.invalid("'\(path)' is not a model (.psm or .onnx)")
    }
}
