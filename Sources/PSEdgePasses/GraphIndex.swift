import PSEdgeIR

/// Who produces and who consumes each value: what pattern-matching passes look up.
public struct GraphIndex {
    public let graph: Graph
    /// Value name → index of the node producing it.
    public let producer: [String: Int]
    /// Value name → indices of nodes reading it (a node reading a value twice appears twice).
    public let consumers: [String: [Int]]
    public let graphOutputs: Set<String>

    public init(_ graph: Graph) {
        self.graph = graph
        var p: [String: Int] = [:], c: [String: [Int]] = [:]
        for (i, n) in graph.nodes.enumerated() {
            for o in n.outputs where !o.isEmpty { p[o] = i }
            for v in n.inputs where !v.isEmpty { c[v, default: []].append(i) }
        }
        producer = p
        consumers = c
        graphOutputs = Set(graph.outputs.map(\.name))
    }

    public func node(producing v: String) -> Node? { producer[v].map { graph.nodes[$0] } }

    /// The only node reading v, when v is not also a graph output (so v can disappear in a fusion).
    public func soleConsumer(of v: String) -> Int? {
        guard !graphOutputs.contains(v), let c = consumers[v], c.count == 1 else { return nil }
        return c[0]
    }

    public func constant(_ v: String) -> Tensor? { graph.initializers[v] }

    /// A constant holding one value (any rank with a single element), as Double.
    public func scalar(_ v: String) -> Double? {
        guard let t = graph.initializers[v], t.count == 1 else { return nil }
        return t.double(at: 0)
    }
}

/// A graph transformation that `psedge convert` runs and reports on.
public protocol GraphPass {
    var name: String { get }
    func run(_ graph: Graph, report: inout PassReport) throws -> Graph
}

extension Graph {
    /// Makes every reader of `old` read `new` instead (graph outputs are renamed at their producer instead).
    public mutating func replaceUses(of old: String, with new: String) {
        for i in nodes.indices {
            for j in nodes[i].inputs.indices where nodes[i].inputs[j] == old { nodes[i].inputs[j] = new }
        }
    }

    /// Drops those of `names` that no node reads and no output names (weights a layout pass replaced); returns them.
    @discardableResult
    public mutating func removeUnreadInitializers<S: Sequence>(_ names: S) -> [String] where S.Element == String {
        let used = Set(nodes.flatMap(\.inputs)).union(outputs.map(\.name))
        let unread = names.filter { !used.contains($0) }.sorted()
        for name in unread { initializers[name] = nil }
        return unread
    }

    /// A value name not used anywhere in the graph, derived from `base`.
    public func freshName(_ base: String) -> String {
        var used = Set(initializers.keys)
        for n in nodes { used.formUnion(n.outputs) }
        used.formUnion(inputs.map(\.name))
        if !used.contains(base) { return base }
        var k = 1
        while used.contains("\(base)_\(k)") { k += 1 }
        return "\(base)_\(k)"
    }
}
