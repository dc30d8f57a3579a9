import Foundation
import PSEdgeIR
import PSEdgeRuntime

/// int8 quantization with mixed precision decided by measurement.
///
/// 1. Find layers with constant float weights (Conv, MatMul, Gemm and their fused forms); quantize their
///    weights symmetrically per output channel.
/// 2. Calibrate: run the fp32 graph on the calibration samples, collect each layer input's range and histogram,
///    and pick static u8 ranges (min-max, percentile or MSE).
/// 3. Measure each layer alone: its output SQNR with static and with dynamic (per-row) activation ranges,
///    fed with fp32 inputs. A layer whose static range is poor goes dynamic.
/// 4. Quantize everything, measure the model output against fp32; while below the target cosine, put the
///    most sensitive layers back in float (ranked by model-level SQNR with only that layer int8, measured for
///    the worst layers, then by layer SQNR).
public enum Quantizer {
    public static func run(_ graph: Graph, options: QuantizationOptions, report passReport: inout PassReport) throws -> (Graph, QuantizationReport) {
        var report = QuantizationReport()
        report.scheme = options.scheme.rawValue
        report.calibrationSamples = options.calibration.count
        report.method = options.scheme == .weightOnly ? "-" : (options.calibration.isEmpty ? "dynamic (no calibration data)" : options.method.name)

        let candidates = graph.nodes.compactMap { QuantCandidate.make($0, in: graph) }
        var layers = candidates.map { QuantizationReport.Layer(name: $0.name, op: $0.node.opType, decision: "int8", reason: "") }
        var modes = [QuantMode](repeating: options.scheme == .weightOnly ? .weightOnly : .dynamic, count: candidates.count)
        var ranges = [U8Range](repeating: U8Range(lo: 0, hi: 0), count: candidates.count)
        var keep = candidates.map { options.keepFloat.contains($0.name) || options.keepFloat.contains($0.node.outputs[0]) }
        for i in candidates.indices where keep[i] { layers[i].decision = "float"; layers[i].reason = "--keep-float" }

        if options.scheme == .int8 && !options.calibration.isEmpty {
            for sample in options.calibration { try validate(sample, graph) }
            let reference = try Plan(graph: graph, threads: options.threads)
            let index = Dictionary(candidates.enumerated().map { ($0.element.node.outputs[0], $0.offset) }, uniquingKeysWith: { a, _ in a })

            // 2. Ranges, then histograms, of every layer's activation input.
            let watched = Set(candidates.map(\.activationInput))
            var stats: [String: ActivationStats] = [:]
            var fp32Outputs: [[String: Tensor]] = []
            for pass in 0..<2 {
                for sample in options.calibration {
                    func observe(_ name: String, _ t: Tensor) {
                        guard watched.contains(name), t.dtype == .float32 else { return }
                        if pass == 0 { stats[name, default: ActivationStats()].observeRange(t) } else { stats[name]?.observeHistogram(t) }
                    }
                    for (name, t) in sample { observe(name, t) }
                    let out = try reference.run(sample) { node, outs in
                        for (j, o) in node.outputs.enumerated() where j < outs.count { observe(o, outs[j]) }
                    }
                    if pass == 0 { fp32Outputs.append(out) }
                }
            }
            for (i, c) in candidates.enumerated() {
                let r = stats[c.activationInput]?.range(options.method) ?? (lo: 0, hi: 0)
                ranges[i] = U8Range(lo: r.lo, hi: r.hi)
                modes[i] = .static
            }

            // 3. Layer SQNR, static vs dynamic, on fp32 inputs.
            var probes = try candidates.enumerated().map { i, c in try LayerProbe(c, graph: graph, staticRange: ranges[i], threads: options.threads) }
            let measured = options.calibration.prefix(max(1, options.measurementSamples))
            for sample in measured {
                _ = try reference.run(sample) { node, outs in
                    guard let i = index[node.outputs[0]] else { return }
                    probes[i].measure(reference: reference, node: node, output: outs[0])
                }
            }
            for i in candidates.indices {
                layers[i].sqnrStatic = probes[i].sqnrStatic
                layers[i].sqnrDynamic = probes[i].sqnrDynamic
                if options.allowDynamic, probes[i].sqnrDynamic - probes[i].sqnrStatic > options.dynamicGainDB {
                    modes[i] = .dynamic
                }
                if !keep[i] { layers[i].decision = modes[i] == .dynamic ? "int8 dynamic" : "int8 static" }
                if modes[i] == .dynamic && !keep[i] {
                    layers[i].reason = String(format: "static range loses %.1f dB", probes[i].sqnrDynamic - probes[i].sqnrStatic)
                }
            }

            shortReductionsWeightOnly(candidates, keep, options, &modes, &layers)

            // 4. Whole-model fidelity, and mixed precision toward the target.
            func evaluate(_ float: [Bool]) throws -> Fidelity.Accumulator {
                let g = try build(graph, candidates, modes, ranges, float).graph
                let plan = try Plan(graph: g, threads: options.threads)
                var acc = Fidelity.Accumulator()
                for (s, sample) in options.calibration.enumerated() {
                    let out = try plan.run(sample)
                    for o in graph.outputs where out[o.name]?.dtype == .float32 { acc.add(reference: fp32Outputs[s][o.name]!, out[o.name]!) }
                }
                return acc
            }
            var fidelity = try evaluate(keep)
            if let target = options.targetCosine, fidelity.cosine < target {
                // Model-level sensitivity of the worst layers by layer SQNR (first sample only).
                let worst = candidates.indices.filter { !keep[$0] }
                    .sorted { min(probes[$0].sqnrStatic, probes[$0].sqnrDynamic) < min(probes[$1].sqnrStatic, probes[$1].sqnrDynamic) }
                for i in worst.prefix(options.modelSensitivityLayers) {
                    var only = [Bool](repeating: true, count: candidates.count)
                    only[i] = false
                    let g = try build(graph, candidates, modes, ranges, only).graph
                    let out = try Plan(graph: g, threads: options.threads).run(options.calibration[0])
                    var num = 0.0, den = 0.0
                    for o in graph.outputs where out[o.name]?.dtype == .float32 {
                        let r = fp32Outputs[0][o.name]!.pointer(Float.self), x = out[o.name]!.pointer(Float.self)
                        for k in 0..<out[o.name]!.count { let d = Double(r[k] - x[k]); num += Double(r[k]) * Double(r[k]); den += d * d }
                    }
                    layers[i].modelSQNR = den == 0 ? .infinity : 10 * log10(num / den)
                }
                let order = worst.sorted { a, b in
                    switch (layers[a].modelSQNR, layers[b].modelSQNR) {
                    case let (x?, y?): return x < y
                    case (.some, nil): return true
                    case (nil, .some): return false
                    default: return min(probes[a].sqnrStatic, probes[a].sqnrDynamic) < min(probes[b].sqnrStatic, probes[b].sqnrDynamic)
                    }
                }
                var step = 1, next = 0
                while fidelity.cosine < target && next < order.count {
                    for i in order[next..<min(order.count, next + step)] {
                        keep[i] = true
                        layers[i].decision = "float"
                        layers[i].reason = String(format: "sensitive: kept float to reach cosine %.4f", target)
                    }
                    next = min(order.count, next + step)
                    if next >= 4 { step = min(step * 2, 16) }
                    fidelity = try evaluate(keep)
                }
            }
            report.cosine = fidelity.cosine
            report.relativeError = fidelity.relativeError
        } else if options.scheme == .int8 {
            for i in candidates.indices where !keep[i] { layers[i].decision = "int8 dynamic"; layers[i].reason = "no calibration data" }
            shortReductionsWeightOnly(candidates, keep, options, &modes, &layers)
        } else {
            for i in candidates.indices where !keep[i] { layers[i].decision = "int8 weight-only" }
        }

        report.layers = layers
        let built = try build(graph, candidates, modes, ranges, keep)
        let out = built.graph
        report.floatWeightBytes = built.floatBytes
        report.quantizedWeightBytes = built.quantizedBytes
        report.weightScales = built.scales
        passReport.add("quantize", "\(candidates.indices.filter { !keep[$0] }.count) of \(candidates.count) layers int8 (\(options.scheme.rawValue)); weights \(report.floatWeightBytes) B → \(report.quantizedWeightBytes) B")
        return (out, report)
    }

    /// Matrix products with a short reduction (K ≤ options.weightOnlyMaxK) keep fp32 activations.
    private static func shortReductionsWeightOnly(_ candidates: [QuantCandidate], _ keep: [Bool], _ options: QuantizationOptions,
                                                  _ modes: inout [QuantMode], _ layers: inout [QuantizationReport.Layer]) {
        for (i, c) in candidates.enumerated() where !keep[i] && c.kind == .matmul && (c.weight.values.shape.first ?? 0) <= options.weightOnlyMaxK {
            modes[i] = .weightOnly
            layers[i].decision = "int8 weight-only"
            layers[i].reason = "K = \(c.weight.values.shape.first ?? 0): fp32 activations are faster at this length"
        }
    }

    private static func validate(_ sample: [String: Tensor], _ graph: Graph) throws {
        for i in graph.inputs where sample[i.name] == nil {
            throw PSEdgeError.invalid("calibration sample lacks input '\(i.name)'")
        }
    }

    /// The graph with every candidate not kept float replaced by its quantized node, and what that did to the weights.
    static func build(_ graph: Graph, _ candidates: [QuantCandidate], _ modes: [QuantMode], _ ranges: [U8Range],
                      _ float: [Bool]) throws -> (graph: Graph, floatBytes: Int, quantizedBytes: Int, scales: [String: (axis: Int, scales: [Float])]) {
        var g = graph
        var replaced: [String: Node] = [:]
        var floatBytes = 0, quantBytes = 0
        var scales: [String: (axis: Int, scales: [Float])] = [:]
        for (i, c) in candidates.enumerated() where !float[i] {
            let names = c.weightNames(in: g)
            g.initializers[names.values] = c.weight.values
            g.initializers[names.scales] = c.weight.scales
            for (k, v) in c.extraConstants { g.initializers[k] = v }
            replaced[c.node.outputs[0]] = c.quantizedNode(mode: modes[i], range: ranges[i], wq: names.values, ws: names.scales)
            floatBytes += c.floatWeightBytes
            quantBytes += c.weight.values.byteCount + c.weight.scales.byteCount
            scales[names.values] = (c.channelAxis, c.weight.scales.floats)
        }
        g.nodes = g.nodes.map { n in n.outputs.first.flatMap { replaced[$0] } ?? n }
        var r = PassReport()
        g = try DeadCodeElimination.run(g, report: &r)
        return (g, floatBytes, quantBytes, scales)
    }
}

/// Runs one layer's quantized kernels (static and dynamic ranges) beside the fp32 graph and accumulates SQNR.
struct LayerProbe {
    let candidate: QuantCandidate
    let staticKernel: Kernel
    let dynamicKernel: Kernel
    let constants: [String: Tensor]
    let pool: ThreadPool
    let output: Tensor
    var signal = 0.0, noiseStatic = 0.0, noiseDynamic = 0.0

    init(_ c: QuantCandidate, graph: Graph, staticRange: U8Range, threads: Int) throws {
        candidate = c
        let names = (values: "__wq", scales: "__ws")
        var consts = c.extraConstants
        consts[names.values] = c.weight.values
        consts[names.scales] = c.weight.scales
        for i in c.node.inputs where graph.initializers[i] != nil { consts[i] = graph.initializers[i] }
        constants = consts
        func kernel(_ mode: QuantMode) throws -> Kernel {
            let node = c.quantizedNode(mode: mode, range: staticRange, wq: names.values, ws: names.scales)
            let types = node.inputs.map { name -> TensorType? in
                name.isEmpty ? nil : (consts[name].map { TensorType($0.dtype, static: $0.shape) } ?? graph.type(of: name))
            }
            return try OpRegistry.makeKernel(KernelContext(node: node, opset: graph.opset, inputTypes: types, constants: node.inputs.map { consts[$0] }))
        }
        staticKernel = try kernel(.static)
        dynamicKernel = try kernel(.dynamic)
        let t = staticKernel.outputTypes[0]
        output = Tensor(zeros: t.dtype, shape: t.staticShape ?? [0])
        pool = ThreadPool(threads: threads)
    }

    mutating func measure(reference plan: Plan, node: Node, output fp32: Tensor) {
        let q = candidate.quantizedNode(mode: .static, range: U8Range(lo: 0, hi: 0), wq: "__wq", ws: "__ws")
        let inputs = q.inputs.map { name -> Tensor? in name.isEmpty ? nil : (constants[name] ?? plan.value(named: name)) }
        let n = min(fp32.count, output.count)
        let r = fp32.pointer(Float.self), y = output.pointer(Float.self)
        for i in 0..<n { signal += Double(r[i]) * Double(r[i]) }
        staticKernel.run(inputs: inputs, outputs: [output], pool: pool)
        for i in 0..<n { let d = Double(r[i] - y[i]); noiseStatic += d * d }
        dynamicKernel.run(inputs: inputs, outputs: [output], pool: pool)
        for i in 0..<n { let d = Double(r[i] - y[i]); noiseDynamic += d * d }
    }

    private static func db(_ s: Double, _ n: Double) -> Double { n == 0 ? .infinity : (s == 0 ? -.infinity : 10 * log10(s / n)) }
    var sqnrStatic: Double { Self.db(signal, noiseStatic) }
    var sqnrDynamic: Double { Self.db(signal, noiseDynamic) }
}
