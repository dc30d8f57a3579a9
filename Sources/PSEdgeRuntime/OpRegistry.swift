import PSEdgeIR

/// The operator set: ONNX op type -> kernel factory. Each group lives in the file that implements it.
/// PSEdge's own operators (what the converter's fusion and quantization passes emit) live in the
/// `psedge` domain and are keyed "psedge.<OpType>".
public enum OpRegistry {
    public static let psedgeDomain = "psedge"

    public static let factories: [String: KernelFactory] = {
        var all: [String: KernelFactory] = [:]
        for group in [elementwiseOps, shapeOps, linearOps, normalizationOps, poolingOps, resizeOps, reductionOps, miscOps,
                      fusedOps, winogradOps, quantizedOps] {
            all.merge(group) { a, b in preconditionFailure("operator registered twice") }
        }
        return all
    }()

    public static var supportedOps: [String] { factories.keys.sorted() }

    /// Builds the kernel for a node, or throws naming an unsupported op and the node.
    public static func makeKernel(_ ctx: KernelContext) throws -> Kernel {
        let node = ctx.node
        let key: String
        switch node.domain {
        case "", "ai.onnx": key = node.opType
        case psedgeDomain: key = "\(psedgeDomain).\(node.opType)"
        default: throw PSEdgeError.unsupported("unsupported operator '\(node.domain)::\(node.opType)' in \(node.label)")
        }
        guard let f = factories[key] else {
            throw PSEdgeError.unsupported("unsupported operator '\(node.opType)' in \(node.label)")
        }
        return try f(ctx)
    }
}
