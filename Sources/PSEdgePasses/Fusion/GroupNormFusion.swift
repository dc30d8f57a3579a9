import PSEdgeIR

/// Recognizes group normalization and emits `psedge.GroupNorm` (inputs X [N,C,...], scale [C], bias [C];
/// attributes groups, epsilon, activation):
///
/// - the decomposition exporters produce below opset 18 (torch: Reshape(x, [N, G, -1]) → InstanceNormalization
///   with per-group scale/bias (ones/zeros in practice) → Reshape back to x's shape → Mul by γ[C,1,1] → Add β[C,1,1];
///   Mul and Add optional, in either operand order). The per-group InstanceNormalization affine is folded into
///   the per-channel one: γ'[c] = γ[c]·s[g(c)], β'[c] = γ[c]·t[g(c)] + β[c];
/// - ONNX GroupNormalization with constant scale and bias (per group before opset 21, expanded to per channel).
///
/// Then a following SiLU (Sigmoid(y) and Mul(y, ·) the only readers of y) is fused in: activation = "silu".
public struct GroupNormFusion: GraphPass {
    public let name = "groupnorm"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var rw = Rewrite(graph)
        var tally = Tally()
        for (i, n) in graph.nodes.enumerated() {
            if n.isOnnx("InstanceNormalization") {
                if matchDecomposition(i, n, &rw) { tally.add("decomposed") }
            } else if n.isOnnx("GroupNormalization") {
                if matchOnnxGroupNorm(i, n, &rw, opset: graph.opset) { tally.add("GroupNormalization") }
            }
        }
        let g = try rw.apply()
        var rw2 = Rewrite(g)
        var silu = 0
        for (i, n) in g.nodes.enumerated() where n.isPSEdge("GroupNorm") && (try? n.attrs.string("activation", default: "none")) == "none" {
            guard let y = n.outputs.first, let m = rw2.index.siluAfter(y), rw2.claim([i, m.sigmoid, m.mul]) else { continue }
            var f = n
            f.attributes["activation"] = .string("silu")
            f.outputs = [m.output]
            rw2.replace(m.mul, with: [f])
            silu += 1
        }
        let total = g.nodes.filter { $0.isPSEdge("GroupNorm") }.count
        report.add(name, tally.total == 0 && silu == 0 ? "no GroupNorm patterns"
                   : "recognized \(tally.total) GroupNorm (\(tally.description)); fused SiLU into \(silu) of \(total)")
        return try rw2.apply()
    }

    private func matchDecomposition(_ ii: Int, _ inorm: Node, _ rw: inout Rewrite) -> Bool {
        let idx = rw.index, c = rw.graph.initializers
        guard inorm.inputs.count == 3, let sT = c[inorm.inputs[1]], let tT = c[inorm.inputs[2]],
              let (ri, r) = idx.producing(inorm.inputs[0]), r.isOnnx("Reshape"), idx.soleConsumer(of: r.outputs[0]) == ii,
              let x = r.inputs.first, let xs = idx.shape(x), xs.count >= 2, idx.dtype(x) == .float32,
              let rs = idx.shape(r.outputs[0]), rs.count == 3, rs[0] == xs[0] else { return false }
        let groups = rs[1], channels = xs[1]
        guard groups > 0, channels % groups == 0, rs[2] == xs[1...].reduce(1, *) / groups,
              sT.count == groups, tT.count == groups,
              let io = inorm.outputs.first, let (bi, back) = idx.soleUser(of: io), back.isOnnx("Reshape"),
              back.inputs[0] == io, idx.shape(back.outputs[0]) == xs else { return false }
        var nodes = [ri, ii, bi]
        var last = bi, y = back.outputs[0]
        var gamma = [Double](repeating: 1, count: channels), beta = [Double](repeating: 0, count: channels)
        if let (mi, mul) = idx.soleUser(of: y), mul.isOnnx("Mul"), let gv = mul.other(than: y), let gt = c[gv],
           let gs = ConstantMath.perAxis(gt, target: xs, axis: 1), idx.shape(mul.outputs[0]) == xs {
            gamma = gs
            nodes.append(mi); last = mi; y = mul.outputs[0]
        }
        if let (ai, add) = idx.soleUser(of: y), add.isOnnx("Add"), let bv = add.other(than: y), let bt = c[bv],
           let bs = ConstantMath.perAxis(bt, target: xs, axis: 1), idx.shape(add.outputs[0]) == xs {
            beta = bs
            nodes.append(ai); last = ai; y = add.outputs[0]
        }
        let s = ConstantMath.doubles(sT), t = ConstantMath.doubles(tT), cpg = channels / groups
        let scale = (0..<channels).map { gamma[$0] * s[$0 / cpg] }
        let bias = (0..<channels).map { gamma[$0] * t[$0 / cpg] + beta[$0] }
        guard rw.claim(nodes) else { return false }
        let eps = (try? inorm.attrs.float("epsilon", default: 1e-5)) ?? 1e-5
        emit(at: last, x: x, scale: scale, bias: bias, groups: groups, epsilon: eps, output: y,
             name: inorm.name.isEmpty ? "groupnorm" : inorm.name, &rw)
        return true
    }

    private func matchOnnxGroupNorm(_ i: Int, _ n: Node, _ rw: inout Rewrite, opset: Int) -> Bool {
        let idx = rw.index, c = rw.graph.initializers
        guard n.inputs.count == 3, let sT = c[n.inputs[1]], let tT = c[n.inputs[2]], let xs = idx.shape(n.inputs[0]),
              xs.count >= 2, idx.dtype(n.inputs[0]) == .float32,
              let groups = try? n.attrs.int("num_groups"), groups > 0, xs[1] % groups == 0 else { return false }
        let channels = xs[1], cpg = channels / groups
        func perChannel(_ t: Tensor) -> [Double]? {
            let v = ConstantMath.doubles(t)
            if v.count == channels && (opset >= 21 || v.count != groups) { return v }
            if v.count == groups { return (0..<channels).map { v[$0 / cpg] } }
            return nil
        }
        guard let scale = perChannel(sT), let bias = perChannel(tT), rw.claim([i]) else { return false }
        let eps = (try? n.attrs.float("epsilon", default: 1e-5)) ?? 1e-5
        emit(at: i, x: n.inputs[0], scale: scale, bias: bias, groups: groups, epsilon: eps, output: n.outputs[0],
             name: n.name.isEmpty ? "groupnorm" : n.name, &rw)
        return true
    }

    private func emit(at: Int, x: String, scale: [Double], bias: [Double], groups: Int, epsilon: Float, output: String,
                      name: String, _ rw: inout Rewrite) {
        let base = output.isEmpty ? name : output
        let sName = rw.addConstant(base + "_gn_scale", ConstantMath.tensor(scale, shape: [scale.count]))
        let bName = rw.addConstant(base + "_gn_bias", ConstantMath.tensor(bias, shape: [bias.count]))
        rw.replace(at, with: [Node(name: name, opType: "GroupNorm", domain: "psedge", inputs: [x, sName, bName], outputs: [output],
                                   attributes: ["groups": .int(groups), "epsilon": .float(epsilon), "activation": .string("none")])])
    }
}
