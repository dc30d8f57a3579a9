import PSEdgeIR

/// The operator set: ONNX op type -> kernel factory. Each group lives in the file that implements it.
public enum OpRegistry {
    public static let factories: [String: KernelFactory] = {
        var all: [String: KernelFactory] = [:]
        for group in [elementwiseOps, shapeOps, linearOps, normalizationOps, poolingOps, resizeOps, reductionOps, miscOps] {
            all.merge(group) { a, _ in a }
        }
        return all
    }()

    public static var supportedOps: [String] { factories.keys.sorted() }

    /// Builds the kernel for a node, or throws naming an unsupported op and the node.
    public static func makeKernel(_ ctx: KernelContext) throws -> Kernel {
        let node = ctx.node
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw PSEdgeError.unsupported("unsupported operator '\(node.domain)::\(node.opType)' in \(node.label)")
        }
        guard let f = factories[node.opType] else {
            throw PSEdgeError.unsupported("unsupported operator '\(node.opType)' in \(node.label)")
        }
        return try f(ctx)
    }
}
