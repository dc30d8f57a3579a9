import ArgumentParser
import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgePasses
import PSEdgeRuntime

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an ONNX model, or safetensors weights through a model builder, to a .psm file (static shapes, folded constants)."
    )

    @Argument(help: "The model to convert (.onnx), its weights (.safetensors) with --builder, or a person-search package (a directory with pipeline.json).")
    var model: String

    @Option(help: "Build the graph from the .safetensors weights: unet (diffusers UNet2DConditionModel), resnet (torchvision ResNet), shufflenet (torchvision ShuffleNetV2), or a person-search head: cdl_head (PSDiff), aggregation, rpn_head, box_head, reid_head (DiffPS). --outputs then names module outputs (taps).")
    var builder: String?

    @Option(help: "The builder's config: diffusers config.json for unet; {\"depth\": 50, \"num_classes\": 1000} for resnet (inferred from the weights if omitted).")
    var config: String?

    @Option(name: .shortAndLong, help: "Where to write the .psm file (for a package: the output package directory).")
    var output: String

    @Option(help: "Keep only these outputs (comma-separated value names; intermediate values allowed) and what they need.")
    var outputs: String?

    @Option(name: .customLong("shape"), help: "Static shape for an input with symbolic dims, e.g. --shape input=1x3x224x224. Repeatable.")
    var shapes: [String] = []

    @Option(name: .customLong("fix"), help: "Turn an input into a constant: --fix NAME=FILE.npy (e.g. a fixed prompt embedding or timestep). Repeatable.")
    var fixes: [String] = []

    @Flag(help: "Do not fold constant subgraphs.")
    var noFold = false

    @Flag(help: "Do not run the fusion passes (no-op removal, BatchNorm folding, GroupNorm/LayerNorm/GELU/SiLU recognition, attention and linear epilogue fusion).")
    var noOptimize = false

    @Flag(help: "Print what each pass did.")
    var report = false

    @Option(help: "Quantize: int8 (int8 weights, u8 activations) or int8-weights (weight-only).")
    var quantize: String?

    @Option(help: "Calibration data: a directory with one subfolder per sample, each holding <input name>.npy (for a package: a folder of sample images).")
    var calibration: String?

    @Option(help: "How static activation ranges are chosen: minmax, percentile[:P] (default P 99.99) or mse.")
    var calibrationMethod: String = "mse"

    @Option(help: "Keep the most sensitive layers in float until the output cosine vs fp32 on the calibration data reaches this.")
    var targetCosine: Double?

    @Option(help: "Never quantize these nodes (comma-separated node or output names).")
    var keepFloat: String?

    @Option(help: "Matrix products whose reduction has at most this many terms keep fp32 activations (int8 weights only): at short K, quantizing activations costs more than it saves. 0 quantizes them all.")
    var weightOnlyMaxK: Int = QuantizationOptions().weightOnlyMaxK

    @Flag(help: "Never use dynamic (run-time) activation ranges.")
    var noDynamic = false

    @Flag(help: "Keep int8 matmul weights row-major instead of storing them in the int8 GEMM's packed layout.")
    var noPrepack = false

    @Flag(help: "Keep every int8 convolution's output in fp32 instead of handing it to the next one as u8.")
    var noChain = false

    @Flag(help: "Keep fp32 3×3 stride-1 convolutions as they are instead of rewriting them as Winograd F(4×4,3×3) convolutions (fewer multiplies, transformed weights stored).")
    var noWinograd = false

    @Flag(help: "For a package: build its parts from the safetensors weights and configs (its builder entries) instead of its ONNX files.")
    var fromWeights = false

    @Option(help: "Threads for calibration runs.")
    var threads: Int = 1

    func run() throws {
        try reportingErrors {
            if Self.isPackage(model) { return try convertPackage() }
            if fromWeights { throw PSEdgeError.invalid("--from-weights applies to model packages (a directory with pipeline.json)") }
            guard try builder != nil || ModelFileKind(path: model) == .onnx else {
                throw PSEdgeError.invalid("convert expects an .onnx model (or .safetensors weights with --builder), got '\(model)'")
            }
            if config != nil && builder == nil { throw PSEdgeError.invalid("--config goes with --builder unet|resnet|shufflenet") }
            var settings = ConversionSettings()
            settings.foldConstants = !noFold
            settings.optimize = !noOptimize
            settings.outputs = outputs.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? []
            for s in shapes {
                let (name, dims) = try splitAssignment(s, option: "--shape")
                guard let d = parseDims(dims) else { throw PSEdgeError.invalid("--shape \(s): '\(dims)' is not a shape like 1x3x224x224") }
                settings.inputShapes[name] = d
            }
            for f in fixes {
                let (name, file) = try splitAssignment(f, option: "--fix")
                settings.fixedInputs[name] = try NPY.read(path: file)
            }
            var passReport = PassReport()
            var graph = try builder.map { try convertWithBuilder($0, weightsPath: model, configPath: config, settings: settings, report: &passReport) }
                ?? convertONNX(path: model, settings: settings, report: &passReport)
            var quantization: [String: QuantParams] = [:]
            if let q = quantize {
                let samples = try calibration.map { try loadSampleDirectory($0, for: graph) } ?? []
                let (qGraph, qReport) = try quantizeGraph(graph, scheme: q, samples: samples, report: &passReport)
                graph = qGraph
                for (name, s) in qReport.weightScales {
                    quantization[name] = QuantParams(scheme: .perChannel, axis: s.axis, scales: s.scales,
                                                     zeroPoints: [Int](repeating: 0, count: s.scales.count))
                }
                if report { for line in qReport.lines { print(line) } }
            } else {
                graph = layoutPasses(graph, report: &passReport)
            }
            graph.metadata["options"] = CommandLine.arguments.dropFirst(2).joined(separator: " ")
            try PSMWriter.write(graph, quantization: quantization, to: output)
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            if report { for line in passReport.lines { print(line) } }
            let params = graph.initializers.values.reduce(0) { $0 + $1.count }
            print("converted \(model) → \(output): \(graph.nodes.count) nodes, \(params) parameters, \(formatBytes(size))")
        }
    }
}

extension ConvertCommand {
    func quantizeGraph(_ graph: Graph, scheme: String, samples: [[String: Tensor]], report: inout PassReport) throws -> (Graph, QuantizationReport) {
        guard let sch = QuantizationOptions.Scheme(rawValue: scheme) else {
            throw PSEdgeError.invalid("--quantize \(scheme): expected int8 or int8-weights")
        }
        guard let method = CalibrationMethod(name: calibrationMethod) else {
            throw PSEdgeError.invalid("--calibration-method \(calibrationMethod): expected minmax, percentile[:P] or mse")
        }
        if let t = targetCosine, !(t > 0 && t <= 1) { throw PSEdgeError.invalid("--target-cosine must be in (0, 1], got \(t)") }
        var options = QuantizationOptions()
        options.scheme = sch
        options.method = method
        options.targetCosine = targetCosine
        options.allowDynamic = !noDynamic
        guard weightOnlyMaxK >= 0 else { throw PSEdgeError.invalid("--weight-only-max-k must be ≥ 0, got \(weightOnlyMaxK)") }
        options.weightOnlyMaxK = weightOnlyMaxK
        options.threads = max(1, threads)
        options.keepFloat = Set((keepFloat ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
        options.calibration = samples
        if sch == .int8 && options.calibration.isEmpty && targetCosine != nil {
            throw PSEdgeError.invalid("--target-cosine needs --calibration data to measure against")
        }
        var (quantized, qReport) = try Quantizer.run(graph, options: options, report: &report)
        if !noPrepack {
            let (packed, replaced) = try WeightPrepacking.run(quantized, report: &report)
            quantized = packed
            for name in replaced { qReport.weightScales[name] = nil }  // its scales are the node's scale input
        }
        if !noChain { quantized = ActivationChaining.run(quantized, report: &report) }
        return (layoutPasses(quantized, report: &report), qReport)
    }

    /// Storage-layout rewrites for the fp32 operators that remain (after quantization, which needs the plain ops).
    func layoutPasses(_ graph: Graph, report: inout PassReport) -> Graph {
        let g = noWinograd ? graph : WinogradConvolution.run(graph, report: &report)
        return RowPanelWeights.run(g, report: &report)
    }
}

func formatBytes(_ n: Int) -> String {
    if n >= 1 << 20 { return String(format: "%.2f MiB", Double(n) / 1048576) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / 1024) }
    return "\(n) B"
}
