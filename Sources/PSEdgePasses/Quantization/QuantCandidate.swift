import PSEdgeIR
import PSEdgeRuntime

/// A node with constant float weights that the quantizer can turn into psedge.QConv / psedge.QMatMul.
struct QuantCandidate {
    enum Kind { case conv, matmul }

    let node: Node
    let kind: Kind
    let weight: QuantizedWeight
    /// Name of the float weight the node used (for the report and size accounting).
    let floatWeightName: String
    let floatWeightBytes: Int
    /// Bias as its own constant (Gemm's C reshaped to [N]) or an existing input name; "" when absent.
    let biasName: String
    let extraConstants: [String: Tensor]
    /// Residual input (fused ops), "" when absent.
    let residualName: String
    /// Attributes the quantized node keeps (geometry, epilogue).
    let baseAttributes: [String: Attribute]

    var name: String { node.name.isEmpty ? node.outputs[0] : node.name }
    var activationInput: String { node.inputs[0] }
    /// Weight layout of the quantized node: channel axis 0 ([M, K], conv) or 1 ([K, N], matmul).
    var channelAxis: Int { kind == .conv ? 0 : 1 }

    /// Recognizes a quantizable node (nil when it is not one).
    static func make(_ node: Node, in graph: Graph) -> QuantCandidate? {
        let isDefault = node.domain.isEmpty || node.domain == "ai.onnx"
        let isFused = node.domain == OpRegistry.psedgeDomain
        func const(_ i: Int) -> Tensor? {
            i < node.inputs.count && !node.inputs[i].isEmpty ? graph.initializers[node.inputs[i]] : nil
        }
        func input(_ i: Int) -> String { i < node.inputs.count ? node.inputs[i] : "" }
        let attrs = node.attrs

        switch (isDefault, isFused, node.opType) {
        case (true, _, "Conv"), (_, true, "FusedConv"):
            guard let w = const(1), w.dtype == .float32, w.rank >= 3, w.rank <= 4 else { return nil }
            let rows = w.shape[0], cols = w.count / max(w.shape[0], 1)
            var a = node.attributes
            a["kernel_shape"] = .ints(Array(w.shape[2...]))
            return QuantCandidate(node: node, kind: .conv,
                                  weight: QuantizedWeight(w.pointer(Float.self), rows: rows, cols: cols, channelAxis: 0),
                                  floatWeightName: node.inputs[1], floatWeightBytes: w.byteCount, biasName: input(2),
                                  extraConstants: [:], residualName: node.opType == "FusedConv" ? input(3) : "", baseAttributes: a)
        case (true, _, "MatMul"), (_, true, "FusedMatMul"):
            guard let w = const(1), w.dtype == .float32, w.rank == 2 else { return nil }
            return QuantCandidate(node: node, kind: .matmul,
                                  weight: QuantizedWeight(w.pointer(Float.self), rows: w.shape[0], cols: w.shape[1], channelAxis: 1),
                                  floatWeightName: node.inputs[1], floatWeightBytes: w.byteCount,
                                  biasName: node.opType == "FusedMatMul" ? input(2) : "", extraConstants: [:],
                                  residualName: node.opType == "FusedMatMul" ? input(3) : "", baseAttributes: node.attributes)
        case (true, _, "Gemm"):
            guard let w = const(1), w.dtype == .float32, w.rank == 2,
                  (try? attrs.int("transA", default: 0)) == 0, (try? attrs.float("alpha", default: 1)) == 1 else { return nil }
            let transB = (try? attrs.int("transB", default: 0)) ?? 0 != 0
            let (k, n) = transB ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
            var kn = w
            if transB {
                kn = Tensor(zeros: .float32, shape: [k, n])
                let src = w.pointer(Float.self), dst = kn.pointer(Float.self)
                for i in 0..<n { for j in 0..<k { dst[j * n + i] = src[i * k + j] } }
            }
            var extra: [String: Tensor] = [:]
            var bias = ""
            if !input(2).isEmpty {
                guard let c = const(2), c.dtype == .float32, c.count == n, (try? attrs.float("beta", default: 1)) == 1 else { return nil }
                bias = graph.freshName("\(node.inputs[2]).bias")
                extra[bias] = c.reshaped([n])
            }
            return QuantCandidate(node: node, kind: .matmul,
                                  weight: QuantizedWeight(kn.pointer(Float.self), rows: k, cols: n, channelAxis: 1),
                                  floatWeightName: node.inputs[1], floatWeightBytes: w.byteCount, biasName: bias,
                                  extraConstants: extra, residualName: "", baseAttributes: [:])
        default:
            return nil
        }
    }

    /// Names of the quantized weight and scale constants.
    func weightNames(in graph: Graph) -> (values: String, scales: String) {
        let base = "\(name).w"
        return (graph.freshName("\(base)_q8"), graph.freshName("\(base)_scale"))
    }

    /// The quantized node reading constants `wq`/`ws` (which the caller adds to the graph).
    func quantizedNode(mode: QuantMode, range: U8Range, wq: String, ws: String) -> Node {
        var a = baseAttributes
        a["mode"] = .string(mode.rawValue)
        a["x_scale"] = .float(range.scale)
        a["x_zero_point"] = .int(range.zeroPoint)
        var inputs = [activationInput, wq, ws, biasName]
        if !residualName.isEmpty { inputs.append(residualName) }
        while inputs.last == "" { inputs.removeLast() }
        return Node(name: node.name, opType: kind == .conv ? "QConv" : "QMatMul", domain: OpRegistry.psedgeDomain,
                    inputs: inputs, outputs: node.outputs, attributes: a)
    }
}
