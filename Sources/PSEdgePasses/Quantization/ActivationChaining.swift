import PSEdgeIR
import PSEdgeRuntime

/// Hands quantized activations from one QConv to the next as u8: when every QConv that reads a QConv's output as
/// its input (static mode, one shared x_scale / x_zero_point) could take it quantized, the producer quantizes it
/// as it stores its output tiles (a second, u8 output with y_scale / y_zero_point) and those consumers read the
/// bytes — no fp32 round trip, no separate quantize pass. If nothing else reads the fp32 output (ResNet's
/// 1×1 → 3×3 → 1×1 inside a bottleneck), the producer stops writing it. Results are unchanged: the same values
/// are quantized by the same function, only earlier.
public enum ActivationChaining {
    public static func run(_ graph: Graph, report: inout PassReport) -> Graph {
        var g = graph
        var readers: [String: [(node: Int, input: Int)]] = [:]
        for (i, n) in g.nodes.enumerated() { for (j, v) in n.inputs.enumerated() where !v.isEmpty { readers[v, default: []].append((i, j)) } }
        let graphOutputs = Set(g.outputs.map(\.name))
        var taken = Set(g.nodes.flatMap { $0.inputs + $0.outputs }).union(g.initializers.keys).union(g.inputs.map(\.name))
        var chained = 0, dropped = 0
        for p in g.nodes.indices {
            guard isQConv(g.nodes[p]), mode(g.nodes[p]) != QuantMode.weightOnly.rawValue, g.nodes[p].outputs.count == 1,
                  g.nodes[p].attributes["y_scale"] == nil else { continue }
            let y = g.nodes[p].outputs[0]
            let uses = readers[y] ?? []
            let takers = uses.filter { $0.input == 0 && isQConv(g.nodes[$0.node]) && mode(g.nodes[$0.node]) == QuantMode.static.rawValue }
            guard !takers.isEmpty else { continue }
            let ranges = Set(takers.map { range(g.nodes[$0.node]) })
            guard ranges.count == 1, let (scale, zero) = ranges.first.map({ ($0.scale, $0.zero) }) else { continue }
            var name = y + ".u8", k = 1
            while taken.contains(name) { name = "\(y).u8.\(k)"; k += 1 }
            taken.insert(name)
            g.nodes[p].attributes["y_scale"] = .float(scale)
            g.nodes[p].attributes["y_zero_point"] = .int(zero)
            g.nodes[p].outputs.append(name)
            for t in takers { g.nodes[t.node].inputs[0] = name }
            chained += takers.count
            if takers.count == uses.count && !graphOutputs.contains(y) {
                g.nodes[p].outputs[0] = ""
                g.valueTypes[y] = nil
                dropped += 1
            }
        }
        report.add("chain", chained == 0 ? "no QConv hands u8 activations to another"
                   : "\(chained) QConv inputs arrive as u8 from their producer; \(dropped) fp32 outputs no longer written")
        return g
    }

    private static func isQConv(_ n: Node) -> Bool { n.domain == OpRegistry.psedgeDomain && n.opType == "QConv" }

    private static func mode(_ n: Node) -> String {
        if case .string(let m)? = n.attributes["mode"] { return m }
        return QuantMode.static.rawValue
    }

    private struct Range: Hashable { let scale: Float; let zero: Int }

    private static func range(_ n: Node) -> Range {
        var scale: Float = 1, zero = 0
        if case .float(let s)? = n.attributes["x_scale"] { scale = s }
        if case .int(let z)? = n.attributes["x_zero_point"] { zero = z }
        return Range(scale: scale, zero: zero)
    }
}
