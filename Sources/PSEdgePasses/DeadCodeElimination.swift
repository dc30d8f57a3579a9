import PSEdgeIR

/// Removes nodes and initializers that no graph output depends on.
public enum DeadCodeElimination {
    public static func run(_ graph: Graph, report: inout PassReport) throws -> Graph {
        let before = (graph.nodes.count, graph.initializers.count)
        var g = try graph.pruned(to: graph.outputs.map(\.name))
        g.inputs = graph.inputs  // graph inputs are the model's interface: keep them even if unused
        let removed = (before.0 - g.nodes.count, before.1 - g.initializers.count)
        if removed.0 > 0 || removed.1 > 0 {
            report.add("dead-code", "removed \(removed.0) unused nodes and \(removed.1) unused constants")
        }
        return g
    }
}
