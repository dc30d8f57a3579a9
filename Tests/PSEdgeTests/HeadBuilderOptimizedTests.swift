import Foundation
import PSEdgeIR
import PSEdgeModels
import PSEdgePasses
import PSEdgeRuntime
import XCTest

/// The head graphs after `psedge convert`'s optimizations (BatchNorm folding, attention and epilogue fusion…) still
/// give the PyTorch reference outputs: what a converted package would run.
final class HeadBuilderOptimizedTests: XCTestCase {
    func testOptimizedHeadGraphsMatchTorch() throws {
        let parts = [("psdiff_small", "cdl_head"), ("diffps_small", "aggregation"), ("diffps_small", "rpn_head"),
                     ("diffps_small", "box_head"), ("diffps_small", "reid_head")]
        for (fixture, part) in parts {
            let fx = try HeadFixture(fixture)
            let inputs = try fx.files(part, "inputs")
            let graph = try PersonSearchHeads.build(part: part, configPath: fx.configPath, weightsPath: fx.weightsPath,
                                                    inputShapes: inputs.mapValues(\.shape))
            var report = PassReport()
            let optimized = try Optimizer.run(try StaticShapes.run(graph, report: &report), report: &report)
            print("\(part): " + report.lines.filter { !$0.hasPrefix("[static") }.joined(separator: "; "))
            XCTAssertLessThan(optimized.nodes.count, graph.nodes.count, "\(part): nothing was optimized")
            let out = try Plan(graph: optimized, threads: 2).run(inputs)
            checkOutputs(out, try fx.files(part, "outputs"), rtol: fx.rtol, atol: fx.atol, "\(part) optimized builder vs torch")
        }
    }
}
