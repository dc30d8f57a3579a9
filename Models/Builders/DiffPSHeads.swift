import PSEdgeIR
import PSEdgeSafetensors

/// The DiffPS heads of tools/psref/diffps.py as four graphs, from the model's state dict (public DiffPS names) and a
/// `DiffPSConfig`, with the inputs and outputs of the ONNX parts:
/// aggregation (UNet taps -> det_agg, feat_reid), rpn_head (feat_det -> objectness, deltas), box_head
/// (rois [n, D, 14, 14] -> cls_logits, box_regression) and reid_head (rois [n, D, 24, 12] -> embeddings).
/// DGRPN, anchors, proposal filtering, RoIAlign and NMS between them are done by the pipeline.
public enum DiffPSHeads {
    public enum Part: String, CaseIterable, Sendable {
        case aggregation, rpnHead = "rpn_head", boxHead = "box_head", reidHead = "reid_head"

        public var outputNames: [String] {
            switch self {
            case .aggregation: return ["det_agg", "feat_reid"]
            case .rpnHead: return ["objectness", "deltas"]
            case .boxHead: return ["cls_logits", "box_regression"]
            case .reidHead: return ["embeddings"]
            }
        }

        /// Module prefixes of the part's weights.
        var modules: [String] {
            switch self {
            case .aggregation: return ["detection_aggregation_network.", "reid_frq_aggregation_network."]
            case .rpnHead: return ["rpn.head."]
            case .boxHead: return ["detection_roi_heads."]
            case .reidHead: return ["reid_roi_heads.", "text_embeds"]
            }
        }

        /// A tensor every checkpoint of the part has (locates the prefix of the names).
        var anchorTensor: String {
            switch self {
            case .aggregation: return "detection_aggregation_network.proj.weight"
            case .rpnHead: return "rpn.head.cls_logits.weight"
            case .boxHead: return "detection_roi_heads.box_predictor.classifier.weight"
            case .reidHead: return "reid_roi_heads.sfan.part_weights"
            }
        }
    }

    /// The part's graph inputs with their shapes; `given` overrides by name.
    public static func inputShapes(_ part: Part, config c: Config, given: [String: [Int]] = [:]) throws -> [(name: String, shape: [Int])] {
        let d = c.projDim
        var defaults: [(String, [Int]?)]
        let (h, w) = (c.imageSize[0], c.imageSize[1])
        func grid(_ div: Int) -> [Int]? { h % div == 0 && w % div == 0 ? [h / div, w / div] : nil }
        switch part {
        case .aggregation:
            defaults = DiffPSAggregation.inputs.map { tap in (tap.name, grid(8 << (3 - tap.level)).map { [1, c.tapChannels[tap.level - 1]] + $0 }) }
        case .rpnHead:
            defaults = [("feat_det", grid(8).map { [1, d] + $0 })]
        case .boxHead:
            defaults = [("rois", [c.rpnPostNmsTopN, d] + c.detRoiSize)]
        case .reidHead:
            defaults = [("rois", [c.detPerImage, d] + c.reidRoiSize)]
        }
        try PersonSearchHeads.checkNames(given, inputs: defaults.map(\.0), part: part.rawValue)
        return try defaults.map { name, shape in
            guard let s = given[name] ?? shape else {
                throw PSEdgeError.invalid("\(part.rawValue): no size for input '\(name)': image_size \(c.imageSize) is not a multiple of "
                    + "its stride; give \(name)=BxCxHxW")
            }
            return (name, s)
        }
    }

    public static func build(part: Part, config: Config, weights: StateDict, inputShapes given: [String: [Int]] = [:]) throws -> Graph {
        try config.validate()
        let shapes = try inputShapes(part, config: config, given: given)
        try checkChannels(part, config, shapes)
        let b = GraphBuilder(name: "diffps_\(part.rawValue)")
        let m = TorchModules(b: b, weights: weights)
        var taps = try Taps(part.outputNames)
        let graph = try b.finish(taps: &taps, model: "the DiffPS \(part.rawValue)") { taps in
            var inputs: [String: Value] = [:]
            for (name, shape) in shapes { inputs[name] = b.input(name, shape: shape) }
            let outputs: [Value]
            switch part {
            case .aggregation:
                let (det, reid) = try DiffPSAggregation(m: m, config: config).forward(inputs)
                outputs = [det, reid]
            case .rpnHead:
                outputs = try rpnHead(inputs["feat_det"]!, m, config)
            case .boxHead:
                let (logits, regression) = try DiffPSRoIHeads(m: m, config: config).boxHead(inputs["rois"]!)
                outputs = [logits, regression]
            case .reidHead:
                outputs = [try DiffPSRoIHeads(m: m, config: config).reidHead(inputs["rois"]!)]
            }
            for (name, v) in zip(part.outputNames, outputs) { try taps.offer(name, v) }
        }
        var g = graph
        g.metadata["builder"] = "DiffPS \(part.rawValue)"
        let unused = weights.unusedNames.filter { n in part.modules.contains { n.hasPrefix($0) } }
        if !unused.isEmpty { g.metadata["unused_weights"] = unused.prefix(20).joined(separator: ",") }
        return g
    }

    /// torchvision RPNHead: 3x3 conv (bias) + ReLU, then 1x1 convs to A objectness logits and 4A box deltas.
    static func rpnHead(_ x: Value, _ m: TorchModules, _ c: Config) throws -> [Value] {
        let a = c.anchorsPerLocation, d = x.shape[1]
        let t = m.b.relu(try m.conv(x, "rpn.head.conv.0.0", out: d, k: 3, bias: true), scope: "rpn.head.conv.0.2")
        return [try m.conv(t, "rpn.head.cls_logits", out: a, k: 1, bias: true),
                try m.conv(t, "rpn.head.bbox_pred", out: 4 * a, k: 1, bias: true)]
    }

    /// Given shapes must have the channel counts the config implies (the weights are checked as they are read).
    static func checkChannels(_ part: Part, _ c: Config, _ shapes: [(name: String, shape: [Int])]) throws {
        for (name, s) in shapes {
            let level = DiffPSAggregation.inputs.first { $0.name == name }?.level
            let channels = level.map { c.tapChannels[$0 - 1] } ?? c.projDim
            guard s.count == 4, s[1] == channels, s.allSatisfy({ $0 > 0 }) else {
                throw PSEdgeError.invalid("\(part.rawValue): \(name)=\(PersonSearchHeads.describe(s)) should be Bx\(channels)xHxW")
            }
        }
    }

    /// From a config.json and the model's weights file (names with any common prefix).
    static func build(part: Part, configPath: String, file: SafetensorsFile, inputShapes: [String: [Int]]) throws -> Graph {
        let config = try Config.load(path: configPath)
        let prefix = try PersonSearchHeads.modulePrefix(file, anchor: part.anchorTensor, part: part.rawValue)
        return try build(part: part, config: config, weights: StateDict(file, prefix: prefix), inputShapes: inputShapes)
    }
}
