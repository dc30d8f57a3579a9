import Foundation
import PSEdgeIR
import PSEdgePasses
import PSEdgeRuntime
import PSEdgeSafetensors

/// DiffPS from the UNet taps to detections and embeddings: the aggregation network, DGRPN, the RPN, RoIAlign and the
/// box and re-ID heads. The four neural parts are graphs (ONNX exports or builder graphs); everything between them
/// is `DiffPSSteps`.
public final class DiffPSPipeline {
    public struct Config: Decodable, Sendable {
        public var imageSize: [Int]
        public var anchorSizes: [Float]
        public var aspectRatios: [Float]
        public var rpnPreNmsTopN: Int, rpnPostNmsTopN: Int
        public var rpnNmsThresh: Float, rpnScoreThresh: Float, rpnMinSize: Float
        public var dgrpnTau: Float, dgrpnDelta: Float, dgrpnPeakWindow: Int, dgrpnNeighWindow: Int, dgrpnTopk: Int
        public var attnHead: Int, attnToken: Int
        public var detRoiSize: [Int], reidRoiSize: [Int]
        public var detScoreThresh: Float, detNmsThresh: Float, detPerImg: Int, detMinSize: Float
        public var detBboxWeights: [Float]
        public var roiSamplingRatio: Int
    }

    /// The four parts. The RoI heads take a variable number of RoIs, so they come as functions giving the graph
    /// for a RoI count (built or shape-fixed on demand, then cached).
    public struct Parts {
        public var aggregation: Graph, rpnHead: Graph
        public var boxHead: (Int) throws -> Graph, reidHead: (Int) throws -> Graph
        public init(aggregation: Graph, rpnHead: Graph, boxHead: @escaping (Int) throws -> Graph, reidHead: @escaping (Int) throws -> Graph) {
            (self.aggregation, self.rpnHead, self.boxHead, self.reidHead) = (aggregation, rpnHead, boxHead, reidHead)
        }
        /// Heads whose RoI dimension is symbolic (ONNX exports): the dimension is fixed per count.
        public init(aggregation: Graph, rpnHead: Graph, boxHead: Graph, reidHead: Graph) {
            self.init(aggregation: aggregation, rpnHead: rpnHead, boxHead: { try DiffPSPipeline.withRoICount(boxHead, $0) },
                      reidHead: { try DiffPSPipeline.withRoICount(reidHead, $0) })
        }
    }

    public struct Output {
        public var boxes: [Box], scores: [Float], embeddings: [[Float]]
        public var queryEmbeddings: [[Float]]
        public var intermediates: [String: [Float]]
    }

    public let config: Config
    public let crossMapTap: String
    let beta: Float, gamma: Float
    let aggregation: Plan, rpnHead: Plan
    let boxHead: (Int) throws -> Graph, reidHead: (Int) throws -> Graph
    private var boxPlans: [Int: Plan] = [:], reidPlans: [Int: Plan] = [:]
    let pool: ThreadPool

    /// `configPath`: the model's config.json (its "config" object); `weightsPath`: the safetensors holding
    /// `dgrpn.beta` and `dgrpn.gamma`.
    public init(configPath: String, weightsPath: String, parts: Parts, crossMapTap: String, threads: Int = 1) throws {
        let data = Data(try FileBytes.read(configPath, what: "DiffPS config", limit: 1 << 24))
        struct File: Decodable { var config: Config }
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        do { config = try dec.decode(File.self, from: data).config } catch {
            throw PipelineError.invalidModel("'\(configPath)': not a DiffPS config (\(error))")
        }
        let weights = try SafetensorsFile.load(path: weightsPath)
        guard let b = weights["dgrpn.beta"], let g = weights["dgrpn.gamma"] else {
            throw PipelineError.invalidModel("'\(weightsPath)' has no dgrpn.beta / dgrpn.gamma")
        }
        beta = b.toFloat32().floats[0]
        gamma = g.toFloat32().floats[0]
        self.crossMapTap = crossMapTap
        pool = ThreadPool(threads: threads)
        aggregation = try Plan(graph: parts.aggregation, pool: pool)
        rpnHead = try Plan(graph: parts.rpnHead, pool: pool)
        boxHead = parts.boxHead
        reidHead = parts.reidHead
    }

    /// A head whose first dimension (the number of RoIs) is symbolic, planned for `count` RoIs (cached).
    private func plan(_ graph: (Int) throws -> Graph, count: Int, cache: inout [Int: Plan]) throws -> Plan {
        if let p = cache[count] { return p }
        let p = try Plan(graph: try graph(count), pool: pool)
        cache[count] = p
        return p
    }

    /// The head with its RoI dimension fixed to `count`, shapes inferred and constants folded.
    public static func withRoICount(_ g: Graph, _ count: Int) throws -> Graph {
        guard let input = g.inputs.first, let shape = input.type?.shape, !shape.isEmpty else {
            throw PipelineError.invalidModel("the head graph '\(g.name)' has no RoI input")
        }
        var options = StaticShapes.Options()
        options.inputShapes = [input.name: [count] + shape.dropFirst().map { $0 ?? 1 }]
        var report = PassReport()
        return try Optimizer.run(try StaticShapes.run(g, options: options, report: &report), report: &report)
    }

    /// Runs everything for one image's taps (B = 1). `queryBoxes` (network pixels) get embeddings too.
    public func run(taps: [String: Tensor], queryBoxes: [Box] = []) throws -> Output {
        let c = config
        var inter: [String: [Float]] = [:]
        let agg = try aggregation.run(taps.filter { k, _ in aggregation.graph.inputs.contains { $0.name == k } })
        guard let detAgg = agg["det_agg"], let featReid = agg["feat_reid"] else {
            throw PipelineError.invalidModel("the aggregation graph must output det_agg and feat_reid")
        }
        guard let cross = taps[crossMapTap], cross.rank == 4 else { throw PipelineError.invalidInput("tap '\(crossMapTap)' (cross-attention map [1, heads, HW, tokens]) is missing") }
        let (ch, h, w) = (detAgg.shape[1], detAgg.shape[2], detAgg.shape[3])
        guard cross.shape[2] == h * w else { throw PipelineError.invalidInput("cross-attention map has \(cross.shape[2]) pixels, the features \(h)x\(w)") }
        let attn = DiffPSSteps.attentionMap(cross.toFloat32().floats, heads: cross.shape[1], pixels: h * w, tokens: cross.shape[3],
                                            head: c.attnHead, token: c.attnToken)
        inter["attn_map"] = attn
        let dg = DiffPSSteps.dgrpn(features: detAgg.floats, channels: ch, attention: attn, height: h, width: w, beta: beta, gamma: gamma,
                                   tau: c.dgrpnTau, delta: c.dgrpnDelta, peakWindow: c.dgrpnPeakWindow,
                                   neighbourhood: c.dgrpnNeighWindow, topK: c.dgrpnTopk)
        inter["feat_det"] = dg.features
        inter["dgrpn_G"] = dg.g
        let featDet = Tensor(dg.features, shape: detAgg.shape)
        let rpn = try rpnHead.run(["feat_det": featDet])
        guard let obj = rpn["objectness"], let deltas = rpn["deltas"] else { throw PipelineError.invalidModel("the rpn_head graph must output objectness and deltas") }
        let imageHW = (c.imageSize[0], c.imageSize[1])
        let anchors = DiffPSSteps.anchors(imageHW: imageHW, featureHW: (h, w), sizes: c.anchorSizes, ratios: c.aspectRatios)
        let (proposals, propScores) = DiffPSSteps.proposals(
            objectness: obj.floats, deltas: deltas.floats, anchors: anchors, featureHW: (h, w), imageHW: imageHW,
            preTopN: c.rpnPreNmsTopN, postTopN: c.rpnPostNmsTopN, nmsThreshold: c.rpnNmsThresh, minSize: c.rpnMinSize,
            scoreThreshold: c.rpnScoreThresh)
        inter["proposals"] = proposals.flatMap(\.array)
        inter["proposal_scores"] = propScores
        // RoI scale 2^round(log2(feature / image)) (torchvision MultiScaleRoIAlign with one level).
        let scale = pow(2, (log2(Double(h) / Double(imageHW.0))).rounded())
        let detParams = RoIAlign.Parameters(outputHeight: c.detRoiSize[0], outputWidth: c.detRoiSize[1], samplingRatio: c.roiSamplingRatio,
                                            spatialScale: scale, halfPixel: false)
        var boxes: [Box] = [], scores: [Float] = []
        if !proposals.isEmpty {
            let rois = RoIAlign.pool(featDet, rois: proposals.flatMap(\.array), batchIndices: [Int](repeating: 0, count: proposals.count),
                                     parameters: detParams, pool: pool)
            let head = try plan(boxHead, count: proposals.count, cache: &boxPlans)
            let out = try head.run(["rois": rois])
            guard let logits = out["cls_logits"], let reg = out["box_regression"] else { throw PipelineError.invalidModel("the box_head graph must output cls_logits and box_regression") }
            inter["det_cls_logits"] = logits.floats
            inter["det_box_regression"] = reg.floats
            let w = c.detBboxWeights
            (boxes, scores) = DiffPSSteps.detections(clsLogits: logits.floats, boxRegression: reg.floats, proposals: proposals, imageHW: imageHW,
                                                     scoreThreshold: c.detScoreThresh, nmsThreshold: c.detNmsThresh, perImage: c.detPerImg,
                                                     minSize: c.detMinSize, weights: (w[0], w[1], w[2], w[3]))
        }
        let reidParams = RoIAlign.Parameters(outputHeight: c.reidRoiSize[0], outputWidth: c.reidRoiSize[1], samplingRatio: c.roiSamplingRatio,
                                             spatialScale: scale, halfPixel: false)
        func embed(_ bs: [Box]) throws -> [[Float]] {
            guard !bs.isEmpty else { return [] }
            let rois = RoIAlign.pool(featReid, rois: bs.flatMap(\.array), batchIndices: [Int](repeating: 0, count: bs.count),
                                     parameters: reidParams, pool: pool)
            let head = try plan(reidHead, count: bs.count, cache: &reidPlans)
            guard let e = try head.run(["rois": rois])["embeddings"] else { throw PipelineError.invalidModel("the reid_head graph must output embeddings") }
            let d = e.shape[1]
            let f = e.floats
            return (0..<bs.count).map { Array(f[($0 * d)..<(($0 + 1) * d)]) }
        }
        return Output(boxes: boxes, scores: scores, embeddings: try embed(boxes), queryEmbeddings: try embed(queryBoxes), intermediates: inter)
    }
}
