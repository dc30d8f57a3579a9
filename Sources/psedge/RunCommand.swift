import ArgumentParser
import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeRuntime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on NumPy inputs; writes one <output>.npy per graph output."
    )

    @Argument(help: "The model (.psm, or .onnx converted on the fly).")
    var model: String

    @Option(name: .customLong("input"), help: "An input as NAME=FILE.npy. Repeatable.")
    var inputs: [String] = []

    @Option(help: "Directory for the output .npy files (created if missing).")
    var outputDir: String

    @Option(help: "Threads to use.")
    var threads: Int = 1

    func run() throws {
        try reportingErrors {
            guard threads >= 1 && threads <= 256 else { throw PSEdgeError.invalid("--threads must be between 1 and 256, got \(threads)") }
            var feeds: [String: Tensor] = [:]
            for s in inputs {
                let (name, file) = try splitAssignment(s, option: "--input")
                guard feeds[name] == nil else { throw PSEdgeError.invalid("input '\(name)' given twice") }
                feeds[name] = try NPY.read(path: file)
            }
            let graph = try loadRunnableGraph(path: model, settings: ConversionSettings())
            let plan = try Plan(graph: graph, threads: threads)
            let start = DispatchTime.now()
            let results = try plan.run(feeds)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            for o in graph.outputs {
                let t = results[o.name]!
                let file = (outputDir as NSString).appendingPathComponent(npyFileName(for: o.name))
                try NPY.write(t, to: file)
                print("\(o.name): \(t.dtype.name)\(Shapes.describe(t.shape)) → \(file)")
            }
            print(String(format: "ran %d ops in %.1f ms on %d thread(s); activation arena %@ (%@ without reuse)",
                         plan.stepCount, ms, threads, formatBytes(plan.arenaBytes), formatBytes(plan.unplannedBytes)))
        }
    }
}

/// Output names can hold '/' or ':' (e.g. "gpu_0/softmax"); file names keep only safe characters.
func npyFileName(for name: String) -> String {
    let safe = name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" }
    return String(safe) + ".npy"
}
