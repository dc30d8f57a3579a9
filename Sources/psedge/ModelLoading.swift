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
        let graph = try convertONNX(path: path, settings: settings, report: &report)
        guard settings.optimize else { return graph }
        return RowPanelWeights.run(WinogradConvolution.run(graph, report: &report), report: &report)
    default: throw PSEdgeError.invalid("'\(path)' is not a model (.psm or .onnx)")
    }
}

/// Reads a directory of samples: one subfolder per sample, each holding `<input name>.npy` for every graph
/// input (names with characters outside [A-Za-z0-9._-] use `_` there, as `run` writes outputs).
func loadSampleDirectory(_ dir: String, for graph: Graph) throws -> [[String: Tensor]] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
        throw PSEdgeError.io("calibration directory '\(dir)' does not exist")
    }
    let subs = try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
    var samples: [[String: Tensor]] = []
    for sub in subs {
        let path = (dir as NSString).appendingPathComponent(sub)
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
        var sample: [String: Tensor] = [:]
        for input in graph.inputs {
            let file = (path as NSString).appendingPathComponent(npyFileName(for: input.name))
            guard FileManager.default.fileExists(atPath: file) else {
                throw PSEdgeError.io("calibration sample '\(path)' has no \(npyFileName(for: input.name)) for input '\(input.name)'")
            }
            let t = try NPY.read(path: file)
            if let want = input.type?.staticShape, want != t.shape || input.type?.dtype != t.dtype {
                throw PSEdgeError.invalid("'\(file)': \(t.dtype.name)\(Shapes.describe(t.shape)) does not fit input '\(input.name)' (\(input.type!))")
            }
            sample[input.name] = t
        }
        samples.append(sample)
    }
    guard !samples.isEmpty else { throw PSEdgeError.invalid("calibration directory '\(dir)' has no sample subfolders") }
    return samples
}
