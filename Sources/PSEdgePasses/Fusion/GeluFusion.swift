import PSEdgeIR

/// Recognizes GELU in its Erf form, x · 0.5 · (1 + Erf(x / √2)), and emits an ONNX `Gelu` node
/// (approximate "none"; the runtime accepts it at any opset). The scaling of x is Div by √2 or Mul by 1/√2;
/// the product is accepted in the associations exporters produce, either operand order:
/// (x · (1 + erf)) · 0.5 (torch), (x · 0.5) · (1 + erf) (hand-written BERT style), ((1 + erf) · 0.5) · x.
public struct GeluFusion: GraphPass {
    public let name = "gelu"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var rw = Rewrite(graph)
        var count = 0
        for (i, n) in graph.nodes.enumerated() where n.isOnnx("Erf") {
            if match(i, n, &rw) { count += 1 }
        }
        report.add(name, count == 0 ? "no GELU (Erf form) patterns" : "recognized \(count) GELU (Erf form) → Gelu")
        return try rw.apply()
    }

    private func match(_ ei: Int, _ erf: Node, _ rw: inout Rewrite) -> Bool {
        let idx = rw.index
        func near(_ v: String, _ target: Double) -> Bool { idx.isConstant(v, allEqualTo: target, tolerance: 1e-4) && idx.constant(v)!.count == 1 }
        guard let u = erf.inputs.first, let (ui, scaleNode) = idx.producing(u), idx.soleConsumer(of: u) == ei else { return false }
        let x: String
        if scaleNode.isOnnx("Div"), scaleNode.inputs.count == 2, near(scaleNode.inputs[1], 2.0.squareRoot()) {
            x = scaleNode.inputs[0]
        } else if scaleNode.isOnnx("Mul"), let o = scaleNode.inputs.first(where: { near($0, 0.5.squareRoot()) }), let xv = scaleNode.other(than: o) {
            x = xv
        } else {
            return false
        }
        guard idx.shape(x) != nil, idx.dtype(x) == .float32,
              let (ai, add) = idx.soleUser(of: erf.outputs[0]), add.isOnnx("Add"),
              let one = add.other(than: erf.outputs[0]), near(one, 1),
              let (m1i, m1) = idx.soleUser(of: add.outputs[0]), m1.isOnnx("Mul"), let o1 = m1.other(than: add.outputs[0]) else { return false }
        var nodes = [ui, ei, ai, m1i]
        var last = m1i, out = m1.outputs[0]
        if o1 == x || near(o1, 0.5) {
            // (x · (1 + erf)) · 0.5  or  ((1 + erf) · 0.5) · x
            let want = o1 == x ? nil : x
            guard let (m2i, m2) = idx.soleUser(of: m1.outputs[0]), m2.isOnnx("Mul"), let o2 = m2.other(than: m1.outputs[0]),
                  want == nil ? near(o2, 0.5) : o2 == want! else { return false }
            nodes.append(m2i); last = m2i; out = m2.outputs[0]
        } else {
            // (x · 0.5) · (1 + erf)
            guard let (hi, h) = idx.producing(o1), h.isOnnx("Mul"), let hv = h.inputs.first(where: { near($0, 0.5) }),
                  h.other(than: hv) == x, idx.soleConsumer(of: o1) == m1i else { return false }
            nodes.append(hi)
        }
        guard idx.shape(out) == idx.shape(x), rw.claim(nodes) else { return false }
        rw.replace(last, with: [Node(name: erf.name.isEmpty ? "gelu" : erf.name, opType: "Gelu", inputs: [x], outputs: [out])])
        return true
    }
}
