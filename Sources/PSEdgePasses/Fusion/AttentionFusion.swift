import PSEdgeIR

/// Fuses scaled dot-product attention with its head reshapes into one `psedge.Attention`
/// (inputs Q [B, Lq, H·D], K [B, Lk, H·D], V [B, Lk, H·Dv]; attributes heads, scale; output [B, Lq, H·Dv]):
///
///     Q, K, V [B, L, H·D] → head split (Reshape [B,L,H,D] → Transpose(0,2,1,3), optionally → [B·H, L, D];
///                            K transposed to [.., D, Lk], in one Transpose or two)
///     S = MatMul(Qh, Khᵀ), scaled by constant scalars anywhere on the Q or K path or after the MatMul (Mul/Div)
///     O = MatMul(Softmax(S, axis -1), Vh) → head merge (Transpose(0,2,1,3) → Reshape [B, Lq, H·Dv])
///
/// Head split and merge are checked by moving an index tensor through the actual Reshape/Transpose chain, so any
/// arrangement exporters produce is accepted when (and only when) it is really a head split/merge.
/// The scores and the softmax must have no other reader.
public struct AttentionFusion: GraphPass {
    public let name = "attention"
    public init() {}

    public func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        var rw = Rewrite(graph)
        var kinds: [String] = [], counts: [String: Int] = [:]
        for (i, n) in graph.nodes.enumerated() where n.isOnnx("Softmax") {
            guard let desc = match(i, n, &rw) else { continue }
            if counts[desc] == nil { kinds.append(desc) }
            counts[desc, default: 0] += 1
        }
        let total = counts.values.reduce(0, +)
        report.add(name, total == 0 ? "no attention patterns"
                   : "fused \(total) attention blocks (" + kinds.map { "\($0) ×\(counts[$0]!)" }.joined(separator: ", ") + ")")
        return try rw.apply()
    }

    /// A view of a source tensor: for each element (row-major) of the current value, the flat index it came from.
    private struct IndexView {
        var shape: [Int]
        var index: [Int32]

        init(identity shape: [Int]) {
            self.shape = shape
            index = (0..<Int32(shape.reduce(1, *))).map { $0 }
        }

        mutating func transpose(_ perm: [Int]) {
            let r = shape.count
            let inStrides = Shapes.strides(shape)
            let outShape = perm.map { shape[$0] }
            var out = [Int32](repeating: 0, count: index.count)
            var pos = [Int](repeating: 0, count: r)
            for o in 0..<index.count {
                var src = 0
                for d in 0..<r { src += pos[d] * inStrides[perm[d]] }
                out[o] = index[src]
                var d = r - 1
                while d >= 0 { pos[d] += 1; if pos[d] < outShape[d] { break }; pos[d] = 0; d -= 1 }
            }
            shape = outShape
            index = out
        }
    }

    /// Nodes that move data without changing values (or scale by a constant scalar), and how.
    private enum Step {
        case reshape([Int])
        case transpose([Int])
        case scale(Double)
    }

    private func step(_ n: Node, input v: String, _ idx: GraphIndex) -> Step? {
        guard n.domain.isEmpty || n.domain == "ai.onnx", let out = n.outputs.first, let os = idx.shape(out),
              let ins = idx.shape(v) else { return nil }
        switch n.opType {
        case "Reshape", "Flatten", "Squeeze", "Unsqueeze":
            return n.inputs[0] == v ? .reshape(os) : nil
        case "Identity":
            return .reshape(os)
        case "Cast":
            return idx.dtype(out) == idx.dtype(v) ? .reshape(os) : nil
        case "Transpose":
            guard n.inputs[0] == v else { return nil }
            let perm = ((try? n.attrs.ints("perm")) ?? nil) ?? Array((0..<ins.count).reversed())
            return .transpose(perm)
        case "Mul", "Div":
            guard n.inputs.count == 2, os == ins, let other = n.other(than: v), let c = idx.floatScalar(other), c != 0 else { return nil }
            if n.opType == "Div" { return n.inputs[0] == v ? .scale(1 / c) : nil }
            return .scale(c)
        default:
            return nil
        }
    }

    /// The input carrying the data through n (for a Mul by a scalar constant: the other operand).
    private func dataInput(_ n: Node, _ idx: GraphIndex) -> String {
        n.isOnnx("Mul") ? (n.inputs.first { idx.floatScalar($0) == nil } ?? n.inputs[0]) : n.inputs[0]
    }

    /// The chain of data-moving nodes ending at v, furthest first: (value entering the node, step).
    private func chain(to v: String, _ idx: GraphIndex) -> [(value: String, step: Step)] {
        var out: [(String, Step)] = []
        var cur = v
        while let (_, p) = idx.producing(cur), out.count < 16 {
            let input = dataInput(p, idx)
            guard let s = step(p, input: input, idx) else { break }
            out.insert((input, s), at: 0)
            cur = input
        }
        return out
    }

    /// A head-split source: the furthest value on the chain to `operand` shaped [B, L, H·D] such that the operand,
    /// with its last dims read as (L, D) or, when `transposed`, (D, L), holds x[b, l, h·D + d] at (b·H + h, ·, ·).
    private func headSource(_ operand: String, transposed: Bool, _ idx: GraphIndex) -> (source: String, heads: Int, headDim: Int, scale: Double)? {
        guard let opShape = idx.shape(operand), opShape.count == 3 || opShape.count == 4 else { return nil }
        let steps = chain(to: operand, idx)
        for start in 0...steps.count {
            let source = start < steps.count ? steps[start].value : operand
            guard let s = idx.shape(source), s.count == 3 else { continue }
            let (b, l, c) = (s[0], s[1], s[2])
            let d = transposed ? opShape[opShape.count - 2] : opShape.last!
            let len = transposed ? opShape.last! : opShape[opShape.count - 2]
            guard d > 0, c % d == 0, len == l, opShape.reduce(1, *) == b * l * c else { continue }
            let h = c / d
            if opShape.count == 4 ? (opShape[0] != b || opShape[1] != h) : opShape[0] != b * h { continue }
            var view = IndexView(identity: s)
            var scale = 1.0
            for st in steps[start...] {
                switch st.step {
                case .reshape(let shape): view.shape = shape
                case .transpose(let perm): view.transpose(perm)
                case .scale(let f): scale *= f
                }
            }
            // Expected order of the operand's elements: (b, h, l, d) or (b, h, d, l).
            var ok = true, pos = 0
            outer: for bi in 0..<b {
                for hi in 0..<h {
                    for i in 0..<(transposed ? d : l) {
                        for j in 0..<(transposed ? l : d) {
                            let (li, di) = transposed ? (j, i) : (i, j)
                            if view.index[pos] != Int32(bi * l * c + li * c + hi * d + di) { ok = false; break outer }
                            pos += 1
                        }
                    }
                }
            }
            if ok { return (source, h, d, scale) }
        }
        return nil
    }

    private func match(_ smi: Int, _ sm: Node, _ rw: inout Rewrite) -> String? {
        let idx = rw.index
        guard let smIn = sm.inputs.first, let ss = idx.shape(smIn), ss.count == 3 || ss.count == 4, idx.dtype(smIn) == .float32 else { return nil }
        // Softmax over the last axis (before opset 13 the default axis 1 flattens the trailing dims instead).
        guard let axis = (try? sm.attrs.int("axis", default: rw.graph.opset < 13 ? 1 : -1)),
              axis == -1 || axis == ss.count - 1 else { return nil }
        // Scores: MatMul(Qh, Khᵀ), then constant scalings with no other reader.
        var nodes = [smi]
        var scale = 1.0
        var cur = smIn
        var qk: (Int, Node)?
        while let (pi, p) = idx.producing(cur), idx.soleConsumer(of: cur) != nil {
            if p.isOnnx("MatMul") { qk = (pi, p); nodes.append(pi); break }
            let input = dataInput(p, idx)
            guard let s = step(p, input: input, idx), case .scale(let f) = s else { return nil }
            scale *= f; nodes.append(pi); cur = input
        }
        guard let (_, qkNode) = qk, let (pvi, pv) = idx.soleUser(of: sm.outputs[0]), pv.isOnnx("MatMul"), pv.inputs[0] == sm.outputs[0],
              let q = headSource(qkNode.inputs[0], transposed: false, idx),
              let k = headSource(qkNode.inputs[1], transposed: true, idx),
              let v = headSource(pv.inputs[1], transposed: false, idx),
              q.heads == k.heads, k.heads == v.heads, q.headDim == k.headDim, v.scale == 1,
              let qs = idx.shape(q.source), let ks = idx.shape(k.source), let vs = idx.shape(v.source),
              qs[0] == ks[0], ks[0] == vs[0], ks[1] == vs[1] else { return nil }
        nodes.append(pvi)
        let heads = q.heads, b = qs[0], lq = qs[1], dv = v.headDim
        // Head merge after P·V: follow the only readers until a [B, Lq, H·Dv] value laid out as (b, l, h, e).
        guard let os = idx.shape(pv.outputs[0]), os.reduce(1, *) == b * heads * lq * dv else { return nil }
        var view = IndexView(identity: os)
        var out = pv.outputs[0], last = pvi
        var merged = false
        for _ in 0..<8 {
            if let s = idx.shape(out), s == [b, lq, heads * dv] {
                var ok = true, pos = 0
                outer: for bi in 0..<b {
                    for li in 0..<lq {
                        for hi in 0..<heads {
                            for e in 0..<dv {
                                if view.index[pos] != Int32(((bi * heads + hi) * lq + li) * dv + e) { ok = false; break outer }
                                pos += 1
                            }
                        }
                    }
                }
                if ok { merged = true; break }
            }
            guard let (ni, n) = idx.soleUser(of: out), let s = step(n, input: out, idx) else { break }
            if case .reshape(let shape) = s { view.shape = shape }
            else if case .transpose(let perm) = s { view.transpose(perm) }
            else { break }
            nodes.append(ni); last = ni; out = n.outputs[0]
        }
        guard merged, rw.claim(nodes) else { return nil }
        scale *= q.scale * k.scale
        let node = Node(name: sm.name.isEmpty ? "attention" : sm.name, opType: "Attention", domain: "psedge",
                        inputs: [q.source, k.source, v.source], outputs: [out],
                        attributes: ["heads": .int(heads), "scale": .float(Float(scale))])
        rw.replace(last, with: [node])
        return "H \(heads) Lq×Lk \(lq)×\(ks[1])"
    }
}
