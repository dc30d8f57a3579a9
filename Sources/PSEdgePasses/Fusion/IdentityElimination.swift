import PSEdgeIR

/// Removes nodes whose output equals their input: Identity, Dropout without a used mask, Cast/CastLike to the
/// same type, Reshape/Expand/Squeeze/Unsqueeze/Flatten to the same shape, Transpose by the identity permutation,
/// single-input Concat, and Mul/Div by a constant 1 or Add/Sub of a constant 0 that does not broadcast the other
/// operand to a larger shape.
///
/// Readers of the output read the input instead. When the output is a graph output its name is kept: the
/// input's producer is made to write it (when the input is not itself a graph input, constant or graph output,
/// the node stays).
public struct IdentityElimination: GraphPass {
    public let name = "identity"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        let idx = GraphIndex(graph)
        let graphInputs = Set(graph.inputs.map(\.name))
        var alias: [String: String] = [:]          // removed value -> the value it equals
        var outputName: [String: String] = [:]     // value -> graph output its producer writes instead
        var removed = Set<Int>()
        var tally = Tally()
        func resolve(_ v: String) -> String {
            var r = v
            while let a = alias[r] { r = a }
            return r
        }
        for (i, n) in graph.nodes.enumerated() {
            guard let (x, kind) = Self.passThrough(n, idx) else { continue }
            let y = n.outputs[0], root = resolve(x)
            if idx.graphOutputs.contains(y) {
                guard let p = idx.producer[root], !removed.contains(p), !idx.graphOutputs.contains(root),
                      !graphInputs.contains(root), graph.initializers[root] == nil, outputName[root] == nil else { continue }
                outputName[root] = y
            } else {
                alias[y] = root
            }
            removed.insert(i)
            tally.add(kind)
        }
        guard !removed.isEmpty else {
            report.add(name, "no no-op nodes")
            return graph
        }
        var g = graph
        g.nodes = []
        for (i, n) in graph.nodes.enumerated() where !removed.contains(i) {
            var m = n
            m.inputs = n.inputs.map { v in
                if v.isEmpty { return v }
                let r = resolve(v)
                return outputName[r] ?? r
            }
            m.outputs = n.outputs.map { outputName[$0] ?? $0 }
            g.nodes.append(m)
        }
        g = try g.pruned(to: g.outputs.map(\.name))
        g.inputs = graph.inputs
        g.outputs = graph.outputs
        report.add(name, "removed \(tally.total) no-op nodes (\(tally.description))")
        return g
    }

    /// The input a node passes through unchanged, and a label for the report; nil when it computes something.
    static func passThrough(_ n: Node, _ idx: GraphIndex) -> (String, String)? {
        guard n.domain.isEmpty || n.domain == "ai.onnx", let y = n.outputs.first, !y.isEmpty, let x = n.inputs.first, !x.isEmpty else { return nil }
        let yt = idx.graph.type(of: y)
        func sameType(_ v: String) -> Bool {
            guard let a = idx.graph.type(of: v), let b = yt, a.staticShape != nil else { return false }
            return a == b
        }
        switch n.opType {
        case "Identity":
            return (x, "Identity")
        case "Dropout":
            // Inference Dropout is the identity; the mask output must be absent or unread.
            if n.outputs.count > 1, !n.outputs[1].isEmpty,
               idx.graphOutputs.contains(n.outputs[1]) || !(idx.consumers[n.outputs[1]] ?? []).isEmpty { return nil }
            if n.inputs.count > 2, !n.inputs[2].isEmpty, !idx.isConstant(n.inputs[2], allEqualTo: 0) { return nil }
            return (x, "Dropout")
        case "Cast", "CastLike":
            return sameType(x) ? (x, "Cast") : nil
        case "Reshape", "Expand", "Squeeze", "Unsqueeze", "Flatten":
            return sameType(x) ? (x, n.opType) : nil
        case "Transpose":
            guard let rank = idx.shape(x)?.count, sameType(x) else { return nil }
            let perm = (try? n.attrs.ints("perm")) ?? nil
            let identity = perm.map { $0 == Array(0..<rank) } ?? (rank <= 1)
            return identity ? (x, "Transpose") : nil
        case "Concat":
            return n.inputs.count == 1 && sameType(x) ? (x, "Concat") : nil
        case "Mul", "Add", "Div", "Sub":
            guard n.inputs.count == 2 else { return nil }
            let neutral: Double = n.opType == "Mul" || n.opType == "Div" ? 1 : 0
            let commutative = n.opType == "Mul" || n.opType == "Add"
            let candidates = commutative ? [(n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])] : [(n.inputs[0], n.inputs[1])]
            for (v, c) in candidates where idx.isConstant(c, allEqualTo: neutral) && sameType(v) {
                return (v, n.opType == "Mul" || n.opType == "Div" ? "\(n.opType) by 1" : "\(n.opType) 0")
            }
            return nil
        default:
            return nil
        }
    }
}
