import Foundation
import PSEdgeFormat
import PSEdgeImage
import PSEdgeIR
import PSEdgeRuntime
import PSEdgeSafetensors

/// A loaded PSDiff-style person-search model: one backbone pass per image, then DDIM over boxes and re-ID embeddings
/// with only the head running per step.
public final class PersonSearchModel {
    public let directory: String
    public let spec: PipelineSpec
    public let precision: Precision
    public let letterbox: Letterbox
    public let sampler: PSDiffSampler
    public let scoreThreshold: Float
    public let maxDetections: Int
    let backbone: Plan
    let head: Plan
    let headSpec: PipelineSpec.HeadSpec
    let backboneSpec: PipelineSpec.BackboneSpec

    /// Time spent in the last `detect` call, milliseconds.
    public private(set) var lastBackboneMilliseconds = 0.0
    public private(set) var lastHeadMilliseconds = 0.0

    public init(directory: String, precision: Precision = .fp32, threads: Int = 1, source: GraphSource = .onnx) throws {
        self.directory = directory
        spec = try PipelineSpec.load(directory: directory)
        self.precision = precision
        let input = spec.input!
        letterbox = Letterbox(width: input.width, height: input.height, mean: input.mean, std: input.std)
        let backboneSpec = spec.backbone!, headSpec = spec.head!
        self.backboneSpec = backboneSpec
        self.headSpec = headSpec
        let pool = ThreadPool(threads: max(1, threads))
        let backboneGraph = try backboneSpec.files.graph(in: directory, part: "backbone", precision: precision, source: source, weights: spec.weights)
        let headGraph = try headSpec.files.graph(in: directory, part: "head", precision: precision, source: source, weights: spec.weights)
        try Self.check(backboneGraph, part: "backbone", inputs: [backboneSpec.input], outputs: backboneSpec.outputs)
        try Self.check(headGraph, part: "head", inputs: headSpec.features + [headSpec.boxes, headSpec.embeddings, headSpec.timestep],
                       outputs: [headSpec.outputs.logits, headSpec.outputs.boxes, headSpec.outputs.embeddings])
        guard let inShape = backboneGraph.inputs.first(where: { $0.name == backboneSpec.input })?.type?.staticShape,
              inShape == [1, 3, input.height, input.width] else {
            throw PipelineError.invalidModel("'\(directory)': the backbone input '\(backboneSpec.input)' is not [1, 3, \(input.height), \(input.width)]")
        }
        backbone = try Plan(graph: backboneGraph, pool: pool)
        head = try Plan(graph: headGraph, pool: pool)
        let d = spec.diffusion!
        var s = PSDiffSettings()
        s.numProposals = d.numProposals
        guard let embShape = headGraph.inputs.first(where: { $0.name == headSpec.embeddings })?.type?.staticShape,
              embShape.count == 3, embShape[1] == d.numProposals,
              let logitShape = head.outputType(headSpec.outputs.logits)?.staticShape, logitShape.count == 3 else {
            throw PipelineError.invalidModel("'\(directory)': the head's '\(headSpec.embeddings)' input must be [1, \(d.numProposals), C] and '\(headSpec.outputs.logits)' [1, N, K]")
        }
        s.embeddingDim = embShape[2]
        s.numClasses = logitShape[2]
        if let v = d.boxScale { s.boxScale = v }
        if let v = d.embScale { s.embeddingScale = v }
        if let v = d.eta { s.eta = v }
        if let v = d.renewalThreshold { s.renewalThreshold = v }
        if let v = d.nmsThresh { s.nmsThreshold = v }
        sampler = PSDiffSampler(settings: s, schedule: try Self.loadSchedule(spec: spec, directory: directory))
        scoreThreshold = d.scoreThresh ?? 0
        maxDetections = d.maxDetections ?? Int.max
    }

    private static func check(_ g: Graph, part: String, inputs: [String], outputs: [String]) throws {
        let ins = Set(g.inputs.map(\.name)), outs = Set(g.outputs.map(\.name))
        for name in inputs where !ins.contains(name) {
            throw PipelineError.invalidModel("the \(part) graph has no input '\(name)' (it has \(g.inputs.map(\.name).joined(separator: ", ")))")
        }
        for name in outputs where !outs.contains(name) {
            throw PipelineError.invalidModel("the \(part) graph has no output '\(name)' (it has \(g.outputs.map(\.name).joined(separator: ", ")))")
        }
    }

    public static func loadSchedule(spec: PipelineSpec, directory: String) throws -> DiffusionSchedule {
        func path(_ f: String) -> String { resolve(f, in: directory) }
        if let file = spec.schedule {
            let t = try NPY.read(path: path(file)).toFloat32()
            guard t.rank == 2, t.shape[0] == 3 else { throw PipelineError.invalidModel("'\(file)' must be [3, T], is \(t.shape)") }
            let f = t.floats, n = t.shape[1]
            return try DiffusionSchedule(alphasCumprod: Array(f[0..<n]), sqrtRecipAlphasCumprod: Array(f[n..<(2 * n)]),
                                         sqrtRecipm1AlphasCumprod: Array(f[(2 * n)...]))
        }
        guard let w = spec.weights else { throw PipelineError.invalidModel("'\(directory)': no weights to read the diffusion schedule from") }
        let file = try SafetensorsFile.load(path: path(w))
        func buffer(_ name: String) throws -> [Float] {
            let prefix = spec.diffusion?.bufferPrefix ?? ""
            if let t = file[prefix + name] { return t.toFloat32().floats }
            if let hit = file.tensors.first(where: { $0.name.hasSuffix("." + name) || $0.name == name }) { return hit.tensor.toFloat32().floats }
            throw PipelineError.invalidModel("'\(w)' has no diffusion buffer '\(prefix + name)'")
        }
        return try DiffusionSchedule(alphasCumprod: buffer("alphas_cumprod"), sqrtRecipAlphasCumprod: buffer("sqrt_recip_alphas_cumprod"),
                                     sqrtRecipm1AlphasCumprod: buffer("sqrt_recipm1_alphas_cumprod"))
    }

    /// The backbone's feature maps for one letterboxed image.
    public func features(_ input: Tensor) throws -> [String: Tensor] {
        let start = DispatchTime.now()
        let out = try backbone.run([backboneSpec.input: input])
        lastBackboneMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        var f: [String: Tensor] = [:]
        for (name, headName) in zip(backboneSpec.outputs, headSpec.features) { f[headName] = out[name]! }
        return f
    }

    /// Detections in network-input pixels from precomputed features.
    public func sample<R: NoiseSource>(features: [String: Tensor], steps: Int, noise: inout R,
                                       trace: ((SamplerStep) -> Void)? = nil) throws -> [Detection] {
        var h = PlanDenoisingHead(plan: head, spec: headSpec, features: features,
                                  proposals: sampler.settings.numProposals, embeddingDim: sampler.settings.embeddingDim)
        let start = DispatchTime.now()
        let dets = try sampler.sample(head: &h, width: letterbox.inputWidth, height: letterbox.inputHeight, steps: steps,
                                      noise: &noise, trace: trace)
        lastHeadMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        return dets
    }

    /// Every person in `image`: boxes in image pixels, scores above the model's threshold, best first.
    public func detect(_ image: RGB8Image, steps: Int = 1, seed: UInt64 = 0) throws -> [Detection] {
        let (input, placement) = letterbox.tensor(image)
        var noise = SeededNoise(seed: seed)
        let raw = try sample(features: try features(input), steps: steps, noise: &noise)
        return finalize(raw, placement: placement)
    }

    /// Network-input detections → image detections: threshold, map back, drop empty boxes, cap the count.
    public func finalize(_ raw: [Detection], placement: Letterbox.Placement) -> [Detection] {
        var out: [Detection] = []
        for d in raw where d.score >= scoreThreshold {
            var d = d
            d.box = placement.toImage(d.box)
            if d.box.width > 0 && d.box.height > 0 { out.append(d) }
            if out.count == maxDetections { break }
        }
        return out
    }

    /// The query person's embedding: one head evaluation at t = T - 1 with the query box as proposal 0 (the other
    /// proposals and the embedding input are seeded noise, as at the first DDIM step), normalised. Also returns the
    /// detection overlapping the query box most and its IoU (nil if nothing was detected there), for reporting.
    public func queryEmbedding(_ image: RGB8Image, box: Box, steps: Int = 1, seed: UInt64 = 0) throws -> (embedding: [Float], iou: Float, detected: Box?) {
        try Self.validate(box: box, image: image)
        let (input, placement) = letterbox.tensor(image)
        let f = try features(input)
        let embedding = try embed(features: f, boxes: [placement.toNetwork(box)], seed: seed)[0]
        var noise = SeededNoise(seed: seed)
        let dets = finalize(try sample(features: f, steps: steps, noise: &noise), placement: placement)
        let best = dets.max(by: { $0.box.iou(box) < $1.box.iou(box) })
        let iou = best.map { $0.box.iou(box) } ?? 0
        return (embedding, iou, iou > 0 ? best?.box : nil)
    }

    /// Embeddings of given boxes (network pixels, at most N): the head at t = T - 1 with these boxes as the first
    /// proposals, the rest of the proposals and the embedding input drawn from seeded noise.
    public func embed(features: [String: Tensor], boxes: [Box], seed: UInt64 = 0) throws -> [[Float]] {
        let s = sampler.settings
        guard boxes.count <= s.numProposals else { throw PipelineError.invalidInput("at most \(s.numProposals) boxes can be embedded at once") }
        var noise = SeededNoise(seed: seed)
        var xBox = noise.normal(key: "box_T", count: s.numProposals * 4)
        let xEmb = noise.normal(key: "emb_T", count: s.numProposals * s.embeddingDim)
        var proposals = sampler.boxesFromDiffusion(xBox, width: Float(letterbox.inputWidth), height: Float(letterbox.inputHeight))
        for (i, b) in boxes.enumerated() { proposals.replaceSubrange((4 * i)..<(4 * i + 4), with: b.array) }
        xBox.removeAll()
        let embIn = xEmb.map { min(max($0, -s.embeddingScale), s.embeddingScale) / s.embeddingScale }
        var head = PlanDenoisingHead(plan: head, spec: headSpec, features: features, proposals: s.numProposals, embeddingDim: s.embeddingDim)
        let p = try head.predict(boxes: proposals, embeddings: embIn, timestep: sampler.schedule.timesteps - 1)
        let c = s.embeddingDim
        return boxes.indices.map { l2Normalized(p.embeddings[($0 * c)..<(($0 + 1) * c)]) }
    }

    public static func validate(box: Box, image: RGB8Image) throws {
        guard box.x1.isFinite, box.y1.isFinite, box.x2.isFinite, box.y2.isFinite, box.x2 > box.x1, box.y2 > box.y1 else {
            throw PipelineError.invalidInput("query box \(box) is empty or not finite (need x1 < x2, y1 < y2)")
        }
        guard box.x1 >= 0, box.y1 >= 0, box.x2 <= Float(image.width), box.y2 <= Float(image.height) else {
            throw PipelineError.invalidInput("query box \(box) lies outside the \(image.width)x\(image.height) image")
        }
    }
}

/// The head graph as a `DenoisingHead`, with one image's features bound.
struct PlanDenoisingHead: DenoisingHead {
    let plan: Plan
    let spec: PipelineSpec.HeadSpec
    let features: [String: Tensor]
    let proposals: Int, embeddingDim: Int

    mutating func predict(boxes: [Float], embeddings: [Float], timestep: Int) throws -> HeadPrediction {
        var inputs = features
        inputs[spec.boxes] = Tensor(boxes, shape: [1, proposals, 4])
        inputs[spec.embeddings] = Tensor(embeddings, shape: [1, proposals, embeddingDim])
        inputs[spec.timestep] = Tensor([Float(timestep)], shape: [1])
        let out = try plan.run(inputs)
        return HeadPrediction(logits: out[spec.outputs.logits]!.toFloat32().floats,
                              boxes: out[spec.outputs.boxes]!.toFloat32().floats,
                              embeddings: out[spec.outputs.embeddings]!.toFloat32().floats)
    }
}
