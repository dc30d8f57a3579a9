import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeModels
import PSEdgeONNX
import PSEdgePasses

public enum Precision: String, Sendable, CaseIterable {
    case fp32, int8
}

/// Where an unconverted part's graph comes from: its ONNX export, or its builder (safetensors + config).
public enum GraphSource: String, Sendable {
    case onnx, builder
}

/// ONNX file → static, folded, optimised graph (what `psedge convert` does before writing a .psm).
public func convertONNXGraph(path: String, inputShapes: [String: [Int]] = [:], fixedInputs: [String: Tensor] = [:],
                             outputs: [String] = [], foldConstants: Bool = true, optimize: Bool = true,
                             report: inout PassReport) throws -> Graph {
    var graph = try ONNXImporter.load(path: path)
    report.add("import", "\(graph.nodes.count) nodes, \(graph.initializers.count) initializers, opset \(graph.opset)")
    if !outputs.isEmpty {
        let before = graph.nodes.count
        graph = try graph.pruned(to: outputs)
        report.add("truncate", "kept outputs \(outputs.joined(separator: ",")): \(before) → \(graph.nodes.count) nodes")
    }
    var options = StaticShapes.Options()
    options.inputShapes = inputShapes
    options.fixedInputs = fixedInputs
    options.foldConstants = foldConstants
    graph = try StaticShapes.run(graph, options: options, report: &report)
    if optimize { graph = try Optimizer.run(graph, report: &report) }
    graph.metadata["source"] = (path as NSString).lastPathComponent
    return graph
}

extension PipelineSpec.PartFiles {
    /// The part's graph at a precision: its .psm if converted, else (fp32 only) its ONNX export converted in memory.
    public func graph(in directory: String, part: String, precision: Precision, source: GraphSource = .onnx,
                      weights: String? = nil) throws -> Graph {
        func path(_ f: String) -> String { resolve(f, in: directory) }
        switch precision {
        case .int8:
            guard let q = psmInt8 else {
                throw PipelineError.invalidModel("'\(directory)' has no int8 \(part); convert it with `psedge convert \(directory) -o OUT --quantize int8`")
            }
            return try PSMModel.load(path: path(q)).graph
        case .fp32:
            if let p = psm { return try PSMModel.load(path: path(p)).graph }
            if source == .builder || onnx == nil, let b = builder {
                guard let w = weights else { throw PipelineError.invalidModel("'\(directory)': the \(part) builder needs the package's weights") }
                var report = PassReport()
                return try b.build(directory: directory, weights: path(w), report: &report)
            }
            if source == .builder { throw PipelineError.invalidModel("'\(directory)': the \(part) has no builder entry") }
            guard let o = onnx else { throw PipelineError.invalidModel("'\(directory)': the \(part) names no graph file (onnx or psm)") }
            var report = PassReport()
            return try convertONNXGraph(path: path(o), report: &report)
        }
    }
}

/// A file named in pipeline.json: relative to the package directory unless absolute.
func resolve(_ file: String, in directory: String) -> String {
    file.hasPrefix("/") ? file : (directory as NSString).appendingPathComponent(file)
}

extension PipelineSpec.BuilderSpec {
    /// The part's graph from safetensors + config, through the same passes as an imported ONNX graph.
    func build(directory: String, weights: String, inputShapes: [String: [Int]] = [:], report: inout PassReport) throws -> Graph {
        let state = try StateDict(path: weights)
        var g: Graph
        switch kind {
        case "diffusion-unet":
            guard let u = unetConfig else { throw PipelineError.invalidModel("'\(directory)': builder diffusion-unet needs unet_config") }
            let c = try DiffusionFeatureBackbone.Config.load(configPath: resolve(config, in: directory), unetConfigPath: resolve(u, in: directory))
            g = try DiffusionFeatureBackbone.build(config: c, weights: state)
        case "psdiff-head":
            g = try PersonSearchHeads.build(part: "cdl_head", configPath: resolve(config, in: directory), weightsPath: weights,
                                            inputShapes: inputShapes)
        default:
            throw PipelineError.invalidModel("'\(directory)': unknown builder kind '\(kind)' (supported: diffusion-unet, psdiff-head)")
        }
        report.add("build", "\(kind): \(g.nodes.count) nodes")
        g = try StaticShapes.run(g, options: StaticShapes.Options(), report: &report)
        return try Optimizer.run(g, report: &report)
    }
}
