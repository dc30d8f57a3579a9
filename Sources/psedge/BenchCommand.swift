import ArgumentParser
import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgeRuntime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model: warm-up, then median / p95 latency and peak RSS (graph-level, no pre/post-processing)."
    )

    @Argument(help: "The model (.psm, or .onnx converted on the fly).")
    var model: String

    @Option(name: .customLong("input"), help: "An input as NAME=FILE.npy. Repeatable. Inputs not given are generated (seeded normal values) with the declared shape.")
    var inputs: [String] = []

    @Option(help: "Timed runs.")
    var runs: Int = 10

    @Option(help: "Untimed warm-up runs.")
    var warmup: Int = 2

    @Option(help: "Threads to use.")
    var threads: Int = 1

    @Flag(help: "Also report time per operator type.")
    var profile = false

    @Option(name: .customLong("top-nodes"), help: "With --profile, also list the N slowest nodes (name, op, output shape).")
    var topNodes: Int = 0

    @Flag(help: "Print JSON: {\"median_ms\", \"p95_ms\", \"peak_rss_mb\", …}.")
    var json = false

    func run() throws {
        try reportingErrors {
            guard runs >= 1, runs <= 100_000 else { throw PSEdgeError.invalid("--runs must be between 1 and 100000") }
            guard warmup >= 0, threads >= 1, threads <= 256 else { throw PSEdgeError.invalid("--warmup must be ≥ 0 and --threads between 1 and 256") }
            let loadStart = DispatchTime.now()
            let graph = try loadRunnableGraph(path: model, settings: ConversionSettings())
            let plan = try Plan(graph: graph, threads: threads)
            var feeds: [String: Tensor] = [:]
            for s in inputs {
                let (name, file) = try splitAssignment(s, option: "--input")
                feeds[name] = try NPY.read(path: file)
            }
            var rng = SeededRandom(seed: 0x5EED)
            for i in graph.inputs where feeds[i.name] == nil {
                guard let t = i.type, let shape = t.staticShape else { throw PSEdgeError.invalid("input '\(i.name)' has no static shape") }
                feeds[i.name] = generatedInput(t.dtype, shape, &rng)
            }
            _ = try plan.run(feeds)
            let coldMs = milliseconds(since: loadStart)
            for _ in 0..<warmup { _ = try plan.run(feeds) }
            var times: [Double] = []
            var perOp: [String: Double] = [:]
            var perNode: [String: (op: String, shape: String, ms: Double)] = [:]
            for _ in 0..<runs {
                let t0 = DispatchTime.now()
                if profile {
                    var last = DispatchTime.now()
                    _ = try plan.run(feeds) { node, outs in
                        let now = DispatchTime.now()
                        let op = node.domain.isEmpty ? node.opType : "\(node.domain).\(node.opType)"
                        let ms = Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1e6
                        perOp[op, default: 0] += ms
                        if topNodes > 0 {
                            let key = node.name.isEmpty ? (node.outputs.first ?? op) : node.name
                            let shape = outs.first.map { Shapes.describe($0.shape) } ?? ""
                            perNode[key, default: (op, shape, 0)].ms += ms
                        }
                        last = now
                    }
                } else {
                    _ = try plan.run(feeds)
                }
                times.append(milliseconds(since: t0))
            }
            times.sort()
            let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            let p95 = times[min(times.count - 1, Int((Double(times.count) * 0.95).rounded(.up)) - 1)]
            let rss = peakRSSMegabytes()
            if json {
                var out: [String: Any] = ["median_ms": median, "p95_ms": p95, "peak_rss_mb": rss, "cold_ms": coldMs,
                                          "runs": runs, "threads": threads, "kernel_family": CPUInfo.kernelFamily,
                                          "arena_mb": Double(plan.arenaBytes) / 1048576]
                if profile { out["per_op_ms"] = perOp.mapValues { $0 / Double(runs) } }
                let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(String(format: "%@: median %.2f ms, p95 %.2f ms over %d runs (%d threads, %@); cold load + first run %.1f ms; peak RSS %.1f MB",
                             model, median, p95, runs, threads, CPUInfo.kernelFamily, coldMs, rss))
                if profile {
                    let total = perOp.values.reduce(0, +)
                    for (op, ms) in perOp.sorted(by: { $0.value > $1.value }) {
                        let name = op.padding(toLength: max(24, op.count), withPad: " ", startingAt: 0)
                        print("  \(name) " + String(format: "%8.3f ms/run  %5.1f %%", ms / Double(runs), 100 * ms / max(total, 1e-9)))
                    }
                    if topNodes > 0 {
                        print("  slowest nodes:")
                        for (name, v) in perNode.sorted(by: { $0.value.ms > $1.value.ms }).prefix(topNodes) {
                            print(String(format: "  %8.3f ms/run  ", v.ms / Double(runs)) + "\(name)  \(v.op) → \(v.shape)")
                        }
                    }
                }
            }
        }
    }

    private func milliseconds(since t: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e6 }

    private func generatedInput(_ dtype: DType, _ shape: [Int], _ rng: inout SeededRandom) -> Tensor {
        let t = Tensor(zeros: dtype, shape: shape)
        for i in 0..<t.count {
            // Box–Muller normal values for floats; small non-negative integers for index-like inputs.
            let u1 = max(rng.uniform(), 1e-12), u2 = rng.uniform()
            let v = (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
            t.setDouble(dtype.isFloat ? v : Double(Int(abs(v) * 4)), at: i)
        }
        return t
    }
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return 0
}
