import PSEdgeIR

/// Recognizes layer normalization in its decomposed form (what exporters emit below opset 17) and emits ONNX
/// LayerNormalization (axis, epsilon; inputs X, scale, bias?):
///
///     m = ReduceMean(x, trailing axes, keepdims) ; d = Sub(x, m)
///     v = ReduceMean(Pow(d, 2) or Mul(d, d), same axes) ; s = Sqrt(Add(v, ε))
///     n = Div(d, s) or Mul(d, Reciprocal(s))
///     y = Add(Mul(n, γ), β)   (Mul and Add optional, either operand order)
public struct LayerNormFusion: GraphPass {
    public let name = "layernorm"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var rw = Rewrite(graph)
        var count = 0
        for (i, n) in graph.nodes.enumerated() where n.isOnnx("ReduceMean") {
            if match(i, n, &rw) { count += 1 }
        }
        report.add(name, count == 0 ? "no LayerNorm decompositions" : "recognized \(count) LayerNorm decompositions")
        return try rw.apply()
    }

    /// Normalized reduce axes of a ReduceMean (attribute before opset 18, constant input from 18), when keepdims is set.
    private func axes(_ n: Node, _ idx: GraphIndex, rank: Int) -> [Int]? {
        guard ((try? n.attrs.int("keepdims", default: 1)) ?? 1) != 0 else { return nil }
        var list: [Int]?
        if n.inputs.count > 1, !n.inputs[1].isEmpty {
            list = idx.constant(n.inputs[1])?.ints
        } else {
            list = (try? n.attrs.ints("axes")) ?? nil
        }
        guard let l = list, !l.isEmpty else { return nil }
        return l.map { $0 < 0 ? $0 + rank : $0 }.sorted()
    }

    private func match(_ i: Int, _ mean1: Node, _ rw: inout Rewrite) -> Bool {
        let idx = rw.index
        guard let x = mean1.inputs.first, let xs = idx.shape(x), idx.dtype(x) == .float32,
              let ax = axes(mean1, idx, rank: xs.count), ax == Array((xs.count - ax.count)..<xs.count),
              let (si, sub) = idx.soleUser(of: mean1.outputs[0]), sub.isOnnx("Sub"), sub.inputs == [x, mean1.outputs[0]] else { return false }
        let d = sub.outputs[0]
        let readers = idx.users(of: d)
        guard readers.count == 2, !idx.graphOutputs.contains(d) else { return false }
        // One reader squares d, the other divides by the deviation.
        var sq: (Int, Node)?, div: (Int, Node)?
        for r in readers {
            let n = idx.graph.nodes[r]
            if n.isOnnx("Pow"), n.inputs.count == 2, n.inputs[0] == d, idx.isConstant(n.inputs[1], allEqualTo: 2) { sq = (r, n) }
            else if n.isOnnx("Mul"), n.inputs == [d, d] { sq = (r, n) }
            else if (n.isOnnx("Div") && n.inputs.count == 2 && n.inputs[0] == d) || n.isOnnx("Mul") { div = (r, n) }
        }
        guard let (qi, q) = sq, let (di, dn) = div,
              let (m2i, mean2) = idx.soleUser(of: q.outputs[0]), mean2.isOnnx("ReduceMean"), axes(mean2, idx, rank: xs.count) == ax,
              let (ai, addEps) = idx.soleUser(of: mean2.outputs[0]), addEps.isOnnx("Add"),
              let epsV = addEps.other(than: mean2.outputs[0]), let eps = idx.floatScalar(epsV),
              let (sqi, sqrt) = idx.soleUser(of: addEps.outputs[0]), sqrt.isOnnx("Sqrt") else { return false }
        var nodes = [i, si, qi, m2i, ai, sqi, di]
        let s = sqrt.outputs[0]
        if dn.isOnnx("Div") {
            guard dn.inputs[1] == s, idx.soleConsumer(of: s) == di else { return false }
        } else {
            guard let (rci, rc) = idx.soleUser(of: s), rc.isOnnx("Reciprocal"), dn.other(than: d) == rc.outputs[0],
                  idx.soleConsumer(of: rc.outputs[0]) == di else { return false }
            nodes.append(rci)
        }
        let axis = xs.count - ax.count
        let normShape = Array(xs[axis...])
        /// A constant that broadcasts against x only over the normalized dims, reshaped to drop the others.
        func affine(_ v: String) -> Tensor? {
            guard let t = idx.constant(v), t.dtype == .float32, t.rank <= xs.count else { return nil }
            let pad = [Int](repeating: 1, count: xs.count - t.rank) + t.shape
            guard pad[..<axis].allSatisfy({ $0 == 1 }), zip(pad[axis...], normShape).allSatisfy({ $0 == $1 || $0 == 1 }) else { return nil }
            return t.reshaped(Array(pad[axis...]))
        }
        var y = dn.outputs[0], last = di
        var gamma: Tensor?, beta: Tensor?
        if let (mi, mul) = idx.soleUser(of: y), mul.isOnnx("Mul"), let gv = mul.other(than: y), let g = affine(gv), idx.shape(mul.outputs[0]) == xs {
            gamma = g; nodes.append(mi); last = mi; y = mul.outputs[0]
        }
        if let (bi, add) = idx.soleUser(of: y), add.isOnnx("Add"), let bv = add.other(than: y), let b = affine(bv), idx.shape(add.outputs[0]) == xs {
            beta = b; nodes.append(bi); last = bi; y = add.outputs[0]
        }
        guard rw.claim(nodes) else { return false }
        let base = y
        let gName = rw.addConstant(base + "_ln_scale", gamma ?? Tensor([Float](repeating: 1, count: normShape.reduce(1, *)), shape: normShape))
        var inputs = [x, gName]
        if let beta { inputs.append(rw.addConstant(base + "_ln_bias", beta)) }
        rw.replace(last, with: [Node(name: mean1.name.isEmpty ? "layernorm" : mean1.name, opType: "LayerNormalization",
                                     inputs: inputs, outputs: [y],
                                     attributes: ["axis": .int(axis), "epsilon": .float(Float(eps))])])
        return true
    }
}
