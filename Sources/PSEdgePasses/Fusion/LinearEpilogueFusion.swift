import PSEdgeIR

/// Fuses what follows a Conv, MatMul (constant 2-D weight) or Gemm (constant weight, transA = 0) into one op:
/// a constant bias Add (per output channel / per feature), an activation (Relu, Sigmoid, Gelu, psedge.SiLU or
/// the raw x·Sigmoid(x)), and a residual Add (or two-input Sum) of a tensor with the output's shape, the residual before or after
/// the activation. Each fused value must have no other reader.
///
/// - `psedge.FusedConv`: inputs X, W, B?, R?; the Conv attributes + activation, residual_before_activation.
/// - `psedge.FusedMatMul`: inputs A [..., K], B [K, N], bias? [N], R?; activation, residual_before_activation.
///   A Gemm becomes one with B' = α·op(B) (transposed at convert time when transB) and bias' = β·C.
public struct LinearEpilogueFusion: GraphPass {
    public let name = "linear-epilogue"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var rw = Rewrite(graph)
        var conv = (0, Tally()), mm = (0, Tally())
        for (i, n) in graph.nodes.enumerated() {
            if n.isOnnx("Conv") {
                if let parts = fuse(i, n, &rw, conv: true) { conv.0 += 1; parts.forEach { conv.1.add($0) } }
            } else if n.isOnnx("MatMul") || n.isOnnx("Gemm") {
                if let parts = fuse(i, n, &rw, conv: false) { mm.0 += 1; parts.forEach { mm.1.add($0) } }
            }
        }
        func line(_ op: String, _ t: (Int, Tally)) -> String? { t.0 == 0 ? nil : "\(op) \(t.0) (\(t.1.description))" }
        let parts = [line("FusedConv", conv), line("FusedMatMul", mm)].compactMap { $0 }
        report.add(name, parts.isEmpty ? "nothing to fuse" : "fused " + parts.joined(separator: ", "))
        return try rw.apply()
    }

    /// A two-operand Add, or a Sum of two inputs (older exporters' residual connections).
    private func isAdd(_ n: Node) -> Bool { (n.isOnnx("Add") || n.isOnnx("Sum")) && n.inputs.count == 2 }

    /// The activation applied to y by its only reader(s), the nodes doing it and the activated value.
    private func activation(after y: String, _ idx: GraphIndex) -> (String, [Int], String)? {
        if let m = idx.siluAfter(y) { return ("silu", [m.sigmoid, m.mul], m.output) }
        guard let (ui, u) = idx.soleUser(of: y), u.inputs.count == 1, let out = u.outputs.first else { return nil }
        if u.isOnnx("Relu") { return ("relu", [ui], out) }
        if u.isOnnx("Sigmoid") { return ("sigmoid", [ui], out) }
        if u.isPSEdge("SiLU") { return ("silu", [ui], out) }
        if u.isOnnx("Gelu"), (try? u.attrs.string("approximate", default: "none")) == "none" { return ("gelu", [ui], out) }
        return nil
    }

    /// Fuses the epilogue after node `li`; returns what was fused (for the report) or nil.
    private func fuse(_ li: Int, _ lin: Node, _ rw: inout Rewrite, conv: Bool) -> [String]? {
        let idx = rw.index, c = rw.graph.initializers
        guard lin.outputs.count == 1, let y0 = lin.outputs.first, let outShape = idx.shape(y0), idx.dtype(y0) == .float32,
              lin.inputs.count >= 2 else { return nil }
        let featureAxis = conv ? 1 : outShape.count - 1
        guard outShape.count > featureAxis, featureAxis >= 0 else { return nil }
        let features = outShape[featureAxis]
        let gemm = lin.isOnnx("Gemm")

        // The op's own weight and bias, as the fused op will take them.
        var weight = lin.inputs[1]
        var weightTransform: (transpose: Bool, scale: Float)?
        var bias: [Double]?
        var biasName: String?
        if conv {
            if lin.inputs.count > 2, !lin.inputs[2].isEmpty { biasName = lin.inputs[2] }
        } else {
            guard let b = c[lin.inputs[1]], b.dtype == .float32, b.rank == 2, let a = idx.shape(lin.inputs[0]), !a.isEmpty else { return nil }
            if gemm {
                let attrs = lin.attrs
                guard (try? attrs.int("transA", default: 0)) == 0, a.count == 2 else { return nil }
                let transB = ((try? attrs.int("transB", default: 0)) ?? 0) != 0
                let alpha = (try? attrs.float("alpha", default: 1)) ?? 1, beta = Double((try? attrs.float("beta", default: 1)) ?? 1)
                if transB || alpha != 1 { weightTransform = (transB, alpha) }
                if lin.inputs.count > 2, !lin.inputs[2].isEmpty {
                    guard let ct = c[lin.inputs[2]], let v = ConstantMath.perAxis(ct, target: outShape, axis: 1) else { return nil }
                    bias = v.map { $0 * beta }
                }
            }
        }
        var nodes = [li]
        var parts: [String] = gemm ? ["from Gemm"] : []
        var y = y0, last = li

        // A constant per-feature bias Add.
        if let (ai, add) = idx.soleUser(of: y), isAdd(add), let bv = add.other(than: y), let bt = c[bv], bt.dtype == .float32,
           let v = ConstantMath.perAxis(bt, target: outShape, axis: featureAxis), idx.shape(add.outputs[0]) == outShape {
            var merged: [Double]?
            if let existing = bias {
                merged = zip(existing, v).map { $0 + $1 }
            } else if let bn = biasName {
                if let t = c[bn], t.count == features { merged = zip(ConstantMath.doubles(t), v).map { $0 + $1 } }
            } else {
                merged = v
            }
            if let merged {
                bias = merged
                nodes.append(ai); last = ai; y = add.outputs[0]
                parts.append("bias")
            }
        }
        // Activation and residual, in the order they come.
        var act = "none", residual: String?, residualFirst = false
        for _ in 0..<2 {
            if act == "none", let (a, ns, out) = activation(after: y, idx) {
                act = a; nodes += ns; last = ns.last!; y = out
                parts.append(a)
                continue
            }
            if residual == nil, let (ri, add) = idx.soleUser(of: y), isAdd(add), let r = add.other(than: y), r != y,
               c[r] == nil, idx.shape(r) == outShape, idx.dtype(r) == .float32, idx.shape(add.outputs[0]) == outShape {
                residual = r; residualFirst = act == "none"
                nodes.append(ri); last = ri; y = add.outputs[0]
                parts.append("residual")
                continue
            }
            break
        }
        guard nodes.count > 1, rw.claim(nodes) else { return nil }

        var f = Node(name: lin.name, opType: conv ? "FusedConv" : "FusedMatMul", domain: "psedge", inputs: [], outputs: [y],
                     attributes: conv ? lin.attributes : [:])
        f.attributes["activation"] = .string(act)
        f.attributes["residual_before_activation"] = .int(residual != nil && residualFirst && act != "none" ? 1 : 0)
        if let (transpose, scale) = weightTransform, let b = c[lin.inputs[1]] {
            // Gemm: B' = α·op(B) as the [K, N] weight FusedMatMul takes (computed only now that the fusion happens).
            weight = rw.addConstant(lin.inputs[1] + "_kn", transpose ? ConstantMath.transpose2D(b, scale: scale) : ConstantMath.scaled(b, scale))
        }
        var b = ""
        if let bias { b = rw.addConstant((biasName ?? lin.inputs[1]) + "_fused_bias", ConstantMath.tensor(bias, shape: [features])) }
        else if let bn = biasName { b = bn }
        f.inputs = [lin.inputs[0], weight, b] + (residual.map { [$0] } ?? [])
        while f.inputs.last == "" { f.inputs.removeLast() }
        rw.replace(last, with: [f])
        return parts
    }
}
