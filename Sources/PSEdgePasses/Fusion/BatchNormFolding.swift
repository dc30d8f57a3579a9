import PSEdgeIR

/// Folds an inference BatchNormalization into the Conv, ConvTranspose or Gemm producing its input, when that
/// op's weights (and bias) are constants, the BatchNorm's parameters are constants, and nothing else reads the
/// op's output. With s = scale / √(var + ε): W' = W·s per output channel, b' = (b − mean)·s + B.
/// A Mul by a per-output-channel constant (Caffe's "Scale" layer after a BatchNorm) folds the same way (s = the
/// constant, no shift); rounds repeat so BatchNorm → Mul chains fold completely.
/// The folded op gets new constants (the old ones may be shared) and writes the folded node's output.
public struct BatchNormFolding: GraphPass {
    public let name = "batchnorm-folding"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var g = graph
        var bns = Tally(), muls = Tally()
        for _ in 0..<4 {
            var rw = Rewrite(g)
            let before = bns.total + muls.total
            for (bi, n) in g.nodes.enumerated() {
                if n.isOnnx("BatchNormalization") { foldBatchNorm(bi, n, &rw, &bns) } else if n.isOnnx("Mul") { foldMul(bi, n, &rw, &muls) }
            }
            if bns.total + muls.total == before { break }
            g = try rw.apply()
        }
        var parts: [String] = []
        if bns.total > 0 { parts.append("\(bns.total) BatchNormalization (into \(bns.description))") }
        if muls.total > 0 { parts.append("\(muls.total) per-channel Mul (into \(muls.description))") }
        report.add(name, parts.isEmpty ? "no BatchNormalization to fold" : "folded " + parts.joined(separator: ", "))
        return g
    }

    /// The Conv/ConvTranspose/Gemm producing v, when v has no other reader.
    private func producer(of v: String, reader: Int, _ idx: GraphIndex) -> (Int, Node)? {
        guard let (pi, p) = idx.producing(v), idx.soleConsumer(of: v) == reader, p.outputs.count == 1,
              p.isOnnx("Conv") || p.isOnnx("ConvTranspose") || p.isOnnx("Gemm") else { return nil }
        return (pi, p)
    }

    private func fold(_ p: Node, s: [Double], shift: [Double], _ rw: inout Rewrite) -> Node? {
        p.isOnnx("Gemm") ? foldGemm(p, s: s, shift: shift, &rw) : foldConv(p, s: s, shift: shift, &rw)
    }

    private func foldBatchNorm(_ bi: Int, _ bn: Node, _ rw: inout Rewrite, _ tally: inout Tally) {
        let idx = rw.index
        guard bn.inputs.count == 5, bn.inputs[1...].allSatisfy({ idx.isConstant($0) }),
              (try? bn.attrs.int("training_mode", default: 0)) == 0,
              bn.outputs.dropFirst().allSatisfy({ $0.isEmpty || (!idx.graphOutputs.contains($0) && idx.users(of: $0).isEmpty) }),
              let (pi, p) = producer(of: bn.inputs[0], reader: bi, idx) else { return }
        let eps = Double((try? bn.attrs.float("epsilon", default: 1e-5)) ?? 1e-5)
        let c = rw.graph.initializers
        let gamma = ConstantMath.doubles(c[bn.inputs[1]]!), beta = ConstantMath.doubles(c[bn.inputs[2]]!)
        let mean = ConstantMath.doubles(c[bn.inputs[3]]!), variance = ConstantMath.doubles(c[bn.inputs[4]]!)
        let channels = gamma.count
        guard beta.count == channels, mean.count == channels, variance.count == channels else { return }
        let s = (0..<channels).map { gamma[$0] / (variance[$0] + eps).squareRoot() }
        let shift = (0..<channels).map { beta[$0] - mean[$0] * s[$0] }
        guard var f = fold(p, s: s, shift: shift, &rw), rw.claim([pi, bi]) else { return }
        f.outputs = [bn.outputs[0]]
        rw.replace(bi, with: [f])
        tally.add(p.opType)
    }

    private func foldMul(_ mi: Int, _ mul: Node, _ rw: inout Rewrite, _ tally: inout Tally) {
        let idx = rw.index
        guard mul.inputs.count == 2 else { return }
        for (v, cv) in [(mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])] {
            guard let ct = idx.constant(cv), ct.dtype == .float32, let out = idx.shape(v), idx.shape(mul.outputs[0]) == out,
                  let (pi, p) = producer(of: v, reader: mi, idx), out.count >= 2,
                  let s = ConstantMath.perAxis(ct, target: out, axis: 1) else { continue }
            guard var f = fold(p, s: s, shift: [Double](repeating: 0, count: s.count), &rw), rw.claim([pi, mi]) else { return }
            f.outputs = [mul.outputs[0]]
            rw.replace(mi, with: [f])
            tally.add(p.opType)
            return
        }
    }

    /// Conv weight [M, C/g, k...] scales along axis 0; ConvTranspose weight [C, M/g, k...] along axis 1 within each group.
    private func foldConv(_ p: Node, s: [Double], shift: [Double], _ rw: inout Rewrite) -> Node? {
        let c = rw.graph.initializers
        guard p.inputs.count >= 2, let w = c[p.inputs[1]], w.dtype == .float32, w.rank >= 3 else { return nil }
        let hasBias = p.inputs.count > 2 && !p.inputs[2].isEmpty
        if hasBias && c[p.inputs[2]] == nil { return nil }
        let groups = (try? p.attrs.int("group", default: 1)) ?? 1
        let transpose = p.opType == "ConvTranspose"
        let m = transpose ? w.shape[1] * groups : w.shape[0]
        guard m == s.count, groups > 0, w.shape[0] % groups == 0 else { return nil }
        let bias = hasBias ? ConstantMath.doubles(c[p.inputs[2]]!) : [Double](repeating: 0, count: m)
        guard bias.count == m else { return nil }
        var wv = w.floats
        let inner = w.shape[2...].reduce(1, *)
        if transpose {
            let cg = w.shape[0] / groups, mg = w.shape[1]
            for ci in 0..<w.shape[0] {
                for j in 0..<mg {
                    let f = Float(s[(ci / cg) * mg + j]), base = (ci * mg + j) * inner
                    for e in 0..<inner { wv[base + e] *= f }
                }
            }
        } else {
            let per = wv.count / m
            for o in 0..<m { let f = Float(s[o]); for e in 0..<per { wv[o * per + e] *= f } }
        }
        var f = p
        let wName = rw.addConstant(p.inputs[1] + "_bnfolded", Tensor(wv, shape: w.shape))
        let bName = rw.addConstant((hasBias ? p.inputs[2] : p.inputs[1]) + "_bnbias",
                                   ConstantMath.tensor((0..<m).map { bias[$0] * s[$0] + shift[$0] }, shape: [m]))
        f.inputs = [p.inputs[0], wName, bName]
        return f
    }

    /// Gemm Y = α·A·op(B) + β·C over [M, N]: B' = α·op(B)·s column-wise (kept in B's layout), C' = s·β·C + shift.
    private func foldGemm(_ p: Node, s: [Double], shift: [Double], _ rw: inout Rewrite) -> Node? {
        let c = rw.graph.initializers
        guard p.inputs.count >= 2, let b = c[p.inputs[1]], b.dtype == .float32, b.rank == 2 else { return nil }
        let a = p.attrs
        let transB = ((try? a.int("transB", default: 0)) ?? 0) != 0
        let alpha = Double((try? a.float("alpha", default: 1)) ?? 1), beta = Double((try? a.float("beta", default: 1)) ?? 1)
        let n = transB ? b.shape[0] : b.shape[1]
        guard n == s.count else { return nil }
        var cvals = [Double](repeating: 0, count: n)
        if p.inputs.count > 2, !p.inputs[2].isEmpty {
            guard let ct = c[p.inputs[2]], let v = ConstantMath.perAxis(ct, target: [1, n], axis: 1) else { return nil }
            cvals = v
        }
        var bv = b.floats
        for r in 0..<b.shape[0] {
            for col in 0..<b.shape[1] {
                bv[r * b.shape[1] + col] = Float(alpha * Double(bv[r * b.shape[1] + col]) * s[transB ? r : col])
            }
        }
        var f = p
        let bName = rw.addConstant(p.inputs[1] + "_bnfolded", Tensor(bv, shape: b.shape))
        let cName = rw.addConstant(p.inputs[1] + "_bnbias", ConstantMath.tensor((0..<n).map { s[$0] * beta * cvals[$0] + shift[$0] }, shape: [n]))
        f.inputs = [p.inputs[0], bName, cName]
        f.attributes["alpha"] = .float(1)
        f.attributes["beta"] = .float(1)
        return f
    }
}
