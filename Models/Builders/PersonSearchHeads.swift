import PSEdgeIR
import PSEdgeSafetensors

/// The person-search heads as graphs built from weights.safetensors + config.json, with the input and output names
/// of the ONNX parts they replace:
///
/// | part | model | inputs -> outputs |
/// | --- | --- | --- |
/// | cdl_head | PSDiff | p2…pK, boxes, emb_in, t -> logits, pred_boxes, pred_emb |
/// | aggregation | DiffPS | the 7 UNet taps -> det_agg, feat_reid |
/// | rpn_head | DiffPS | feat_det -> objectness, deltas |
/// | box_head | DiffPS | rois -> cls_logits, box_regression |
/// | reid_head | DiffPS | rois -> embeddings |
///
/// `inputShapes` fixes input sizes by input name (PSEdge graphs are static); inputs not given take the sizes the
/// config file records or implies (image size / stride, num_proposals…).
public enum PersonSearchHeads {
    public static let parts = ["cdl_head"] + DiffPSHeads.Part.allCases.map(\.rawValue)

    public static func build(part: String, configPath: String, weightsPath: String,
                             inputShapes: [String: [Int]] = [:]) throws -> Graph {
        let file = try SafetensorsFile.load(path: weightsPath)
        if part == "cdl_head" {
            var config = try HeadConfigFile(path: configPath, sections: PSDiffHeadBuilder.Config.sections, what: "PSDiff head")
            let c = try PSDiffHeadBuilder.Config(reading: &config.settings)
            let shapes = try psdiffShapes(c, config, given: inputShapes)
            let weights = StateDict(file, prefix: try modulePrefix(file, anchor: "time_mlp.1.weight", part: part))
            return try PSDiffHeadBuilder.build(config: c, weights: weights, inputs: shapes)
        }
        guard let p = DiffPSHeads.Part(rawValue: part) else {
            throw PSEdgeError.invalid("unknown head part '\(part)' (parts: \(parts.joined(separator: ", ")))")
        }
        return try DiffPSHeads.build(part: p, configPath: configPath, file: file, inputShapes: inputShapes)
    }

    /// The prefix ("head.", "psdiff.head.", "") in front of the module names: whatever precedes `anchor` in the one
    /// tensor name ending with it.
    static func modulePrefix(_ file: SafetensorsFile, anchor: String, part: String) throws -> String {
        let prefixes = Set(file.tensors.map(\.name).filter { $0.hasSuffix(anchor) }.map { String($0.dropLast(anchor.count)) })
            .filter { $0.isEmpty || $0.hasSuffix(".") }
        guard prefixes.count == 1, let prefix = prefixes.first else {
            throw PSEdgeError.invalid(prefixes.isEmpty
                ? "'\(file.path)' has no tensor '\(anchor)' (under any prefix): not the weights of the \(part) part"
                : "'\(file.path)' holds several \(part) weight sets (prefixes \(prefixes.sorted().map { "'\($0)'" }.joined(separator: ", ")))")
        }
        return prefix
    }

    /// Checks that every given shape names an input of the part.
    static func checkNames(_ given: [String: [Int]], inputs: [String], part: String) throws {
        for name in given.keys.sorted() where !inputs.contains(name) {
            throw PSEdgeError.invalid("\(part) has no input '\(name)' (inputs: \(inputs.joined(separator: ", ")))")
        }
    }

    static func describe(_ d: [Int]) -> String { d.map(String.init).joined(separator: "x") }

    /// Sizes of the PSDiff head inputs: given, else recorded in the config file ("features"), else image size / stride.
    static func psdiffShapes(_ c: PSDiffHeadBuilder.Config, _ file: HeadConfigFile, given: [String: [Int]]) throws -> PSDiffHeadBuilder.InputShapes {
        let names = c.featureNames
        try checkNames(given, inputs: names + ["boxes", "emb_in", "t"], part: "cdl_head")
        var s = PSDiffHeadBuilder.InputShapes()
        var batch: Int?
        func setBatch(_ v: Int, _ name: String, _ d: [Int]) throws {
            if let batch, batch != v { throw PSEdgeError.invalid("cdl_head: \(name)=\(describe(d)) has batch \(v), another input has \(batch)") }
            batch = v
        }
        if let d = given["boxes"] {
            guard d.count == 3, d[2] == 4 else { throw PSEdgeError.invalid("cdl_head: boxes=\(describe(d)) should be BxNx4") }
            try setBatch(d[0], "boxes", d)
            s.proposals = d[1]
        }
        if let d = given["emb_in"] {
            guard d.count == 3, d[2] == c.hiddenDim, s.proposals == nil || s.proposals == d[1] else {
                throw PSEdgeError.invalid("cdl_head: emb_in=\(describe(d)) should be BxNx\(c.hiddenDim) with the N of boxes")
            }
            try setBatch(d[0], "emb_in", d)
            s.proposals = d[1]
        }
        if let d = given["t"] {
            guard d.count == 1 else { throw PSEdgeError.invalid("cdl_head: t=\(describe(d)) should be a vector of B timesteps") }
            try setBatch(d[0], "t", d)
        }
        let image = try file.imageSize()
        for (name, stride) in zip(names, c.fpnStrides) {
            var d = given[name]
            if d == nil { d = try file.recordedShape("features", name) }
            if d == nil, let image, image.height % stride == 0, image.width % stride == 0 {
                d = [batch ?? 1, c.hiddenDim, image.height / stride, image.width / stride]
            }
            guard let d else {
                throw PSEdgeError.invalid("cdl_head: no size for input '\(name)': give it (\(name)=Bx\(c.hiddenDim)xHxW) or record "
                    + "\"features\" or the image size (\"image_size_hw\") in the config")
            }
            guard d.count == 4, d[1] == c.hiddenDim else {
                throw PSEdgeError.invalid("cdl_head: \(name)=\(describe(d)) should be Bx\(c.hiddenDim)xHxW (hidden_dim channels)")
            }
            if given[name] != nil { try setBatch(d[0], name, d) }
            s.featureSizes.append([d[2], d[3]])
        }
        s.batch = batch ?? 1
        return s
    }
}
