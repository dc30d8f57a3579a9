import PSEdgeIR

extension OpRegistry {
    static let miscOps: [String: KernelFactory] = [:]
}
