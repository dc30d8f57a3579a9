import PSEdgeIR

/// Recognizes GEGLU (diffusers' feed-forward gate): a tensor t [..., 2F] split in halves along its last axis by two
/// Slices, one half through Gelu (exact form), the other multiplied by it: value · gelu(gate). Emits
/// `psedge.GEGLU(t)` [..., F] with `gate_first` = 1 when the gate is the first half. The halves are never copied
/// and the product is one pass; each element is computed exactly as Slice, Gelu and Mul computed it. Run after
/// GeluFusion (which turns the Erf form into Gelu).
public struct GEGLUFusion: GraphPass {
    public let name = "geglu"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var rw = Rewrite(graph)
        let idx = rw.index
        var count = 0
        for (gi, gelu) in graph.nodes.enumerated() where gelu.isOnnx("Gelu") {
            guard (try? gelu.attrs.string("approximate", default: "none")) == "none",
                  let gateSlice = gelu.inputs.first, let (si, sGate) = idx.producing(gateSlice), idx.soleConsumer(of: gateSlice) == gi,
                  let (mi, mul) = idx.soleUser(of: gelu.outputs[0]), mul.isOnnx("Mul"),
                  let valueSlice = mul.other(than: gelu.outputs[0]), let (vi, sValue) = idx.producing(valueSlice),
                  idx.soleConsumer(of: valueSlice) == mi, sGate.isOnnx("Slice"), sValue.isOnnx("Slice"),
                  let t = sGate.inputs.first, sValue.inputs.first == t, idx.dtype(t) == .float32,
                  let shape = idx.shape(t), let last = shape.last, last > 0, last % 2 == 0,
                  let g = half(sGate, rank: shape.count, length: last, idx), let v = half(sValue, rank: shape.count, length: last, idx),
                  g != v, idx.shape(mul.outputs[0]) == Array(shape.dropLast()) + [last / 2],
                  rw.claim([si, vi, gi, mi]) else { continue }
            rw.replace(mi, with: [Node(name: mul.name.isEmpty ? "geglu" : mul.name, opType: "GEGLU", domain: "psedge",
                                       inputs: [t], outputs: [mul.outputs[0]], attributes: ["gate_first": .int(g == 0 ? 1 : 0)])])
            count += 1
        }
        report.add(name, count == 0 ? "no GEGLU patterns" : "recognized \(count) GEGLU → psedge.GEGLU")
        return try rw.apply()
    }

    /// Which half (0 = first, 1 = second) a Slice takes of the last axis of a rank-`rank` tensor whose last axis
    /// has `length` elements; nil if it is not exactly one half with step 1.
    private func half(_ s: Node, rank: Int, length: Int, _ idx: GraphIndex) -> Int? {
        guard s.inputs.count >= 3, let starts = ints(s.inputs[1], idx), let ends = ints(s.inputs[2], idx),
              starts.count == 1, ends.count == 1 else { return nil }
        if s.inputs.count > 3, !s.inputs[3].isEmpty {
            guard let axes = ints(s.inputs[3], idx), axes.count == 1, axes[0] == -1 || axes[0] == rank - 1 else { return nil }
        } else if rank != 1 {
            return nil
        }
        if s.inputs.count > 4, !s.inputs[4].isEmpty {
            guard let steps = ints(s.inputs[4], idx), steps == [1] else { return nil }
        }
        func clamp(_ v: Int) -> Int { v < 0 ? max(v + length, 0) : min(v, length) }
        let (b, e) = (clamp(starts[0]), clamp(ends[0]))
        if b == 0 && e == length / 2 { return 0 }
        if b == length / 2 && e == length { return 1 }
        return nil
    }

    private func ints(_ v: String, _ idx: GraphIndex) -> [Int]? {
        guard let t = idx.constant(v), t.dtype.isInteger else { return nil }
        return t.ints
    }
}
