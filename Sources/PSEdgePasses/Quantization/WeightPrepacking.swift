import PSEdgeIR
import PSEdgeKernels
import PSEdgeRuntime

/// Stores the int8 weights of QMatMul nodes in the packed layout the int8 GEMM reads (16 columns × 4 k,
/// psedge_kernels_int8.h), so loading a .psm does no repacking and the weights stay in the file mapping instead
/// of being copied into a packed buffer per plan. The layout is the same on every ISA, so the file stays portable.
/// (QConv needs nothing: its weight is the GEMM's row-major A operand already.)
public enum WeightPrepacking {
    /// The packed graph and the names of the unpacked weights it no longer holds.
    public static func run(_ graph: Graph, report: inout PassReport) throws -> (graph: Graph, replaced: [String]) {
        var g = graph
        var packedName: [String: String] = [:]
        var count = 0, bytes = 0
        for i in g.nodes.indices {
            let node = g.nodes[i]
            guard node.domain == OpRegistry.psedgeDomain, node.opType == "QMatMul", node.attributes["weight_layout"] == nil,
                  node.inputs.count > 1, case .string(let mode)? = node.attributes["mode"], mode != QuantMode.weightOnly.rawValue,
                  let w = g.initializers[node.inputs[1]], w.dtype == .int8, w.shape.count == 2,
                  w.shape[0] > 0, w.shape[1] > 0, w.shape[0] <= Int(Int32.max), w.shape[1] <= Int(Int32.max)
            else { continue }
            let (k, n) = (w.shape[0], w.shape[1])
            let name: String
            if let existing = packedName[node.inputs[1]] {
                name = existing
            } else {
                let size = pse_packed_b_size(Int32(k), Int32(n))
                let packed = Tensor(zeros: .int8, shape: [size])
                pse_pack_b(w.raw, Int32(n), Int32(k), Int32(n), packed.raw)
                name = uniqueName(node.inputs[1] + ".packed16x4", in: g)
                g.initializers[name] = packed
                packedName[node.inputs[1]] = name
                bytes += size
            }
            g.nodes[i].inputs[1] = name
            g.nodes[i].attributes["weight_layout"] = .string(QuantizedWeightLayout.packed16x4)
            g.nodes[i].attributes["weight_k"] = .int(k)
            g.nodes[i].attributes["weight_n"] = .int(n)
            count += 1
        }
        // Drop the unpacked weights nothing reads any more.
        let replaced = g.removeUnreadInitializers(packedName.keys)
        report.add("prepack", count == 0 ? "no int8 matmul weights to pack"
                   : "packed \(count) QMatMul weights (\(packedName.count) tensors, \(bytes / 1024) KiB) into the int8 GEMM layout")
        return (g, replaced)
    }

    private static func uniqueName(_ base: String, in g: Graph) -> String {
        var name = base, i = 1
        while g.initializers[name] != nil { name = "\(base).\(i)"; i += 1 }
        return name
    }
}
