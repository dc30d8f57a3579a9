import PSEdgeIR

/// The graph optimizations `psedge convert` runs after static shapes and constant folding.
///
/// Order: no-op removal first (it exposes patterns: exporters put Cast-to-same-type and Div-by-1 between the
/// ops to fuse); then weight folding (BatchNorm); then the normalization and activation recognizers, GroupNorm
/// before SiLU so a GroupNorm takes its SiLU, and both before the linear epilogue fusion so a Conv/MatMul can
/// absorb a SiLU/GELU; attention before the epilogue (its MatMuls have no constant weight anyway); dead code last.
public enum Optimizer {
    public enum PassKind: String, CaseIterable, Sendable {
        case identity, batchNorm = "batchnorm", groupNorm = "groupnorm", layerNorm = "layernorm", gelu, geglu, silu, attention,
             linearEpilogue = "linear-epilogue"
    }

    public struct Options: Sendable {
        /// Passes to run (in the pipeline's fixed order). Default: all.
        public var passes: Set<PassKind> = Set(PassKind.allCases)
        /// Check after every pass that the graph is still well formed (a cycle or a dangling value throws).
        public var validate = true

        public init() {}

        /// Only the given passes.
        public static func only(_ kinds: PassKind...) -> Options {
            var o = Options()
            o.passes = Set(kinds)
            return o
        }
    }

    /// The pipeline in order.
    public static let pipeline: [(PassKind, GraphPass)] = [
        (.identity, IdentityElimination()),
        (.batchNorm, BatchNormFolding()),
        (.groupNorm, GroupNormFusion()),
        (.layerNorm, LayerNormFusion()),
        (.gelu, GeluFusion()),
        (.geglu, GEGLUFusion()),
        (.silu, SiLUFusion()),
        (.attention, AttentionFusion()),
        (.linearEpilogue, LinearEpilogueFusion()),
    ]

    public static func run(_ g: Graph, report: inout PassReport, options: Options = Options()) throws -> Graph {
        var graph = g
        let before = graph.nodes.count
        for (kind, pass) in pipeline where options.passes.contains(kind) {
            graph = try pass.run(graph, report: &report)
            if options.validate { _ = try graph.topologicallySorted() }
        }
        graph = try DeadCodeElimination.run(graph, report: &report)
        report.add("optimize", "\(before) → \(graph.nodes.count) nodes")
        return graph
    }
}
