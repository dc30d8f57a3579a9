import ArgumentParser
import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgePasses

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an ONNX model to a .psm file (static shapes, folded constants)."
    )

    @Argument(help: "The model to convert (.onnx).")
    var model: String

    @Option(name: .shortAndLong, help: "Where to write the .psm file.")
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

    func run() throws {
        try reportingErrors {
            guard try ModelFileKind(path: model) == .onnx else {
                throw PSEdgeError.invalid("convert expects an .onnx model, got '\(model)'")
            }
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
            var graph = try convertONNX(path: model, settings: settings, report: &passReport)
            graph.metadata["options"] = CommandLine.arguments.dropFirst(2).joined(separator: " ")
            try PSMWriter.write(graph, to: output)
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            if report { for line in passReport.lines { print(line) } }
            let params = graph.initializers.values.reduce(0) { $0 + $1.count }
            print("converted \(model) → \(output): \(graph.nodes.count) nodes, \(params) parameters, \(formatBytes(size))")
        }
    }
}

func formatBytes(_ n: Int) -> String {
    if n >= 1 << 20 { return String(format: "%.2f MiB", Double(n) / 1048576) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / 1024) }
    return "\(n) B"
}
