import PSEdgeIR
import PSEdgeKernels

/// Rewrites fp32 3×3 stride-1 convolutions as `psedge.WinogradConv` with Winograd F(4×4, 3×3) weights computed here,
/// at convert time (docs/PASSES.md): the runtime then does 36 multiplies per input/output channel pair and 4×4
/// outputs instead of 144, and loads the transformed weights straight from the file.
///
/// Runs after quantization (int8 convolutions are not touched; fp32 ones left in an int8 graph are). Only
/// convolutions with enough tiles and channels for the transforms to pay off are rewritten.
public enum WinogradConvolution {
    /// At least this many 4×4 output tiles (the GEMMs' column count): a 7×7 output has 4, too few.
    public static let minTiles = 16
    /// At least this many input and output channels: with fewer, the transforms cost more than the products save.
    public static let minChannels = 16

    public static func run(_ graph: Graph, report: inout PassReport) -> Graph {
        var g = graph
        var transformed: [String: String] = [:]  // original weight → transformed weight
        var count = 0, bytes = 0
        for i in g.nodes.indices {
            let node = g.nodes[i]
            let fused = node.domain == "psedge" && node.opType == "FusedConv"
            guard fused || (node.opType == "Conv" && (node.domain.isEmpty || node.domain == "ai.onnx")),
                  node.inputs.count >= 2, let pads = eligiblePads(node, g) else { continue }
            let wName = node.inputs[1], w = g.initializers[wName]!
            let (m, c) = (w.shape[0], w.shape[1])
            let uName: String
            if let existing = transformed[wName] {
                uName = existing
            } else {
                let u = Tensor(zeros: .float32, shape: [36, m, c])
                pse_winograd_f43_weights(w.pointer(Float.self), Int32(m), Int32(c), u.pointer(Float.self))
                uName = g.freshName(wName + ".winograd4x3")
                g.initializers[uName] = u
                transformed[wName] = uName
                bytes += u.count * 4
            }
            var attributes: [String: Attribute] = ["pads": .ints(pads)]
            if fused {
                for key in ["activation", "residual_before_activation"] { attributes[key] = node.attributes[key] }
            }
            var inputs = node.inputs
            inputs[1] = uName
            g.nodes[i] = Node(name: node.name, opType: "WinogradConv", domain: "psedge", inputs: inputs, outputs: node.outputs,
                              attributes: attributes)
            count += 1
        }
        g.removeUnreadInitializers(transformed.keys)
        report.add("winograd", count == 0 ? "no 3×3 stride-1 fp32 convolutions to rewrite"
                   : "\(count) 3×3 convolutions → psedge.WinogradConv F(4×4,3×3) (\(bytes / 1024) KiB of transformed weights)")
        return g
    }

    /// The [top, left, bottom, right] pads of a convolution Winograd F(4×4, 3×3) can run, or nil.
    static func eligiblePads(_ node: Node, _ g: Graph) -> [Int]? {
        guard let w = g.initializers[node.inputs[1]], w.dtype == .float32, w.shape.count == 4, w.shape[2] == 3, w.shape[3] == 3,
              let xt = g.type(of: node.inputs[0]), xt.dtype == .float32, let xs = xt.staticShape, xs.count == 4, xs[1] == w.shape[1],
              w.shape[0] >= minChannels, w.shape[1] >= minChannels else { return nil }
        let a = node.attrs
        /// An ints attribute: absent → `absent`; unreadable → nil.
        func ints(_ name: String, absent: [Int]) -> [Int]? {
            do { return try a.ints(name) ?? absent } catch { return nil }
        }
        guard (try? a.int("group", default: 1)) == 1, ints("kernel_shape", absent: [3, 3]) == [3, 3],
              ints("strides", absent: [1, 1]) == [1, 1], ints("dilations", absent: [1, 1]) == [1, 1],
              let pads = ints("pads", absent: [0, 0, 0, 0]), pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 <= 2 })
        else { return nil }
        let autoPad = (try? a.string("auto_pad", default: "NOTSET")) ?? "?"
        let p: [Int]
        switch autoPad {
        case "NOTSET": p = pads
        case "VALID": p = [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER": p = [1, 1, 1, 1]  // a 3×3 stride-1 kernel pads one on every side
        default: return nil
        }
        let oh = xs[2] + p[0] + p[2] - 2, ow = xs[3] + p[1] + p[3] - 2
        guard oh > 0, ow > 0, ((oh + 3) / 4) * ((ow + 3) / 4) >= minTiles else { return nil }
        return p
    }
}
