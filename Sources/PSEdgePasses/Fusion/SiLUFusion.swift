import PSEdgeIR

/// Recognizes SiLU, Mul(y, Sigmoid(y)) in either operand order with the Sigmoid read only by that Mul, and
/// emits `psedge.SiLU(y)` (one input, same shape). Run after GroupNormFusion (which fuses the SiLUs following
/// group norms itself); LinearEpilogueFusion then folds SiLUs that follow a Conv/MatMul/Gemm into it.
public struct SiLUFusion: GraphPass {
    public let name = "silu"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var rw = Rewrite(graph)
        let idx = rw.index
        var count = 0
        for (si, sig) in graph.nodes.enumerated() where sig.isOnnx("Sigmoid") {
            guard let y = sig.inputs.first, idx.dtype(y) == .float32, let s = sig.outputs.first,
                  let (mi, mul) = idx.soleUser(of: s), mul.isOnnx("Mul"), mul.other(than: s) == y,
                  idx.shape(mul.outputs[0]) == idx.shape(y), rw.claim([si, mi]) else { continue }
            rw.replace(mi, with: [Node(name: sig.name.isEmpty ? "silu" : sig.name, opType: "SiLU", domain: "psedge",
                                       inputs: [y], outputs: [mul.outputs[0]])])
            count += 1
        }
        report.add(name, count == 0 ? "no SiLU patterns" : "recognized \(count) SiLU → psedge.SiLU")
        return try rw.apply()
    }
}
