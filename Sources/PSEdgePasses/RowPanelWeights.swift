import PSEdgeIR
import PSEdgeKernels

/// Stores the weights of fp32 convolutions with few output columns in 16-row panels (`weight_layout` = rows16,
/// docs/PASSES.md), so the runtime multiplies with vectors down the output channels (pse_sconv_rows) instead of
/// across 16-column activation panels that would be mostly padding: ResNet's 7×7 stage has 49 columns, 64 computed.
/// Packed at convert time so loading does no repacking. Results are bit-identical to the plain layout.
public enum RowPanelWeights {
    public static let layout = "rows16"
    /// Outputs with fewer columns than this, wasting at least `minWaste` of their last 16-column panels.
    public static let maxColumns = 64
    public static let minWaste = 0.1
    /// At least this many output channels (two panels).
    public static let minChannels = 32

    public static func run(_ graph: Graph, report: inout PassReport) -> Graph {
        var g = graph
        var packedName: [String: String] = [:]
        var count = 0
        for i in g.nodes.indices {
            let node = g.nodes[i]
            let fused = node.domain == "psedge" && node.opType == "FusedConv"
            guard fused || (node.opType == "Conv" && (node.domain.isEmpty || node.domain == "ai.onnx")),
                  node.attributes["weight_layout"] == nil, node.inputs.count >= 2, eligible(node, g) else { continue }
            let wName = node.inputs[1], w = g.initializers[wName]!
            let m = w.shape[0], k = w.shape.dropFirst().reduce(1, *)
            let name: String
            if let existing = packedName[wName] {
                name = existing
            } else {
                let packed = Tensor(zeros: .float32, shape: [(m + 15) / 16, k, 16])
                pse_sconv_pack_row_panels(w.pointer(Float.self), Int32(m), Int32(k), packed.pointer(Float.self))
                name = g.freshName(wName + ".rows16")
                g.initializers[name] = packed
                packedName[wName] = name
            }
            var rewritten = node
            rewritten.opType = "FusedConv"
            rewritten.domain = "psedge"
            rewritten.inputs[1] = name
            rewritten.attributes["weight_layout"] = .string(layout)
            rewritten.attributes["weight_shape"] = .ints(w.shape)
            g.nodes[i] = rewritten
            count += 1
        }
        g.removeUnreadInitializers(packedName.keys)
        report.add("row-panels", count == 0 ? "no narrow-output convolutions"
                   : "\(count) convolutions with few output columns keep their weights in 16-row panels")
        return g
    }

    static func eligible(_ node: Node, _ g: Graph) -> Bool {
        guard let w = g.initializers[node.inputs[1]], w.dtype == .float32, w.shape.count == 4, w.shape[0] >= minChannels,
              (try? node.attrs.int("group", default: 1)) == 1,
              let out = node.outputs.first, let os = g.type(of: out)?.staticShape, os.count == 4, os[1] == w.shape[0],
              let xt = g.type(of: node.inputs[0]), xt.dtype == .float32 else { return false }
        let columns = os[2] * os[3], padded = (columns + 15) / 16 * 16
        return columns > 0 && columns < maxColumns && Double(padded - columns) / Double(padded) >= minWaste
    }
}
