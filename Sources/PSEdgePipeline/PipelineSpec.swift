import Foundation
import PSEdgeIR

/// `pipeline.json`: what a person-search model package holds and how its parts fit together.
///
/// A package is a directory: `pipeline.json`, the weights, and one graph per neural part (ONNX from the exporter,
/// or `.psm` after `psedge convert`). docs/PIPELINE.md describes every field.
public struct PipelineSpec: Codable, Sendable {
    public var format: String
    public var version: Int
    /// "psdiff" (DDIM over boxes and embeddings) or "diffps" (RPN + RoI heads).
    public var kind: String
    public var name: String?
    public var input: InputSpec?
    public var backbone: BackboneSpec?
    public var head: HeadSpec?
    public var weights: String?
    public var diffusion: DiffusionSpec?
    /// Set by `psedge convert`: which precisions the package has .psm parts for.
    public var precisions: [String]?
    /// Set by `psedge convert`: the schedule buffers as an .npy of [3, T] (alphas_cumprod,
    /// sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod), so a converted package needs no safetensors.
    public var schedule: String?

    public struct InputSpec: Codable, Sendable {
        public var height: Int
        public var width: Int
        /// "letterbox-topleft": scale = min(W/w, H/h), bilinear resize, image at the top-left, zero padding after
        /// normalisation.
        public var resize: String
        public var mean: [Float]
        public var std: [Float]
    }

    /// A neural part: its ONNX export, its builder (safetensors + config) and, after conversion, its .psm files.
    public struct PartFiles: Codable, Sendable {
        public var onnx: String?
        public var psm: String?
        public var psmInt8: String?
        public var builder: BuilderSpec?
        enum CodingKeys: String, CodingKey { case onnx, psm, psmInt8 = "psm_int8", builder }
    }

    /// How to build a part from the package's weights: `kind` "diffusion-unet" (DiffusionFeatureBackbone: `config`
    /// and `unet_config`) or "psdiff-head" (`config`).
    public struct BuilderSpec: Codable, Sendable {
        public var kind: String
        public var config: String
        public var unetConfig: String?
        enum CodingKeys: String, CodingKey { case kind, config, unetConfig = "unet_config" }
    }

    public struct BackboneSpec: Codable, Sendable {
        public var onnx: String?
        public var psm: String?
        public var psmInt8: String?
        public var input: String
        public var outputs: [String]
        public var builder: BuilderSpec?
        enum CodingKeys: String, CodingKey { case onnx, psm, psmInt8 = "psm_int8", input, outputs, builder }
        public var files: PartFiles { PartFiles(onnx: onnx, psm: psm, psmInt8: psmInt8, builder: builder) }
    }

    public struct HeadSpec: Codable, Sendable {
        public var onnx: String?
        public var psm: String?
        public var psmInt8: String?
        public var features: [String]
        public var boxes: String
        public var embeddings: String
        public var timestep: String
        public var outputs: HeadOutputs
        public var builder: BuilderSpec?
        enum CodingKeys: String, CodingKey { case onnx, psm, psmInt8 = "psm_int8", features, boxes, embeddings, timestep, outputs, builder }
        public var files: PartFiles { PartFiles(onnx: onnx, psm: psm, psmInt8: psmInt8, builder: builder) }
    }

    public struct HeadOutputs: Codable, Sendable {
        public var logits: String
        public var boxes: String
        public var embeddings: String
    }

    public struct DiffusionSpec: Codable, Sendable {
        public var timesteps: Int?
        public var numProposals: Int
        public var boxScale: Float?
        public var embScale: Float?
        public var eta: Double?
        public var renewalThreshold: Float?
        public var nmsThresh: Float?
        /// Detections scoring below this are dropped from the final output.
        public var scoreThresh: Float?
        public var maxDetections: Int?
        /// safetensors keys of the schedule buffers (defaults: alphas_cumprod, sqrt_recip_alphas_cumprod,
        /// sqrt_recipm1_alphas_cumprod, with or without a prefix found in the weights).
        public var bufferPrefix: String?
        enum CodingKeys: String, CodingKey {
            case timesteps, numProposals = "num_proposals", boxScale = "box_scale", embScale = "emb_scale", eta
            case renewalThreshold = "renewal_threshold", nmsThresh = "nms_thresh", scoreThresh = "score_thresh"
            case maxDetections = "max_detections", bufferPrefix = "buffer_prefix"
        }
    }

    public init(format: String, version: Int, kind: String, name: String? = nil, input: InputSpec? = nil,
                backbone: BackboneSpec? = nil, head: HeadSpec? = nil, weights: String? = nil, diffusion: DiffusionSpec? = nil) {
        (self.format, self.version, self.kind, self.name, self.input) = (format, version, kind, name, input)
        (self.backbone, self.head, self.weights, self.diffusion) = (backbone, head, weights, diffusion)
    }

    public static func load(directory: String) throws -> PipelineSpec {
        let path = (directory as NSString).appendingPathComponent("pipeline.json")
        guard FileManager.default.fileExists(atPath: path) else {
            throw PipelineError.invalidModel("'\(directory)' is not a model package: it has no pipeline.json")
        }
        let spec: PipelineSpec
        do {
            spec = try JSONDecoder().decode(PipelineSpec.self, from: Data(try FileBytes.read(path, what: "pipeline.json", limit: 1 << 24)))
        } catch let e as DecodingError {
            throw PipelineError.invalidModel("'\(path)': \(describe(e))")
        } catch {
            throw PipelineError.invalidModel((error as? PSEdgeError)?.message ?? "'\(path)' cannot be read: \(error)")
        }
        try spec.validate(path: path)
        return spec
    }

    func validate(path: String) throws {
        guard format == "psedge-pipeline" else { throw PipelineError.invalidModel("'\(path)': format must be \"psedge-pipeline\", is \"\(format)\"") }
        guard version == 1 else { throw PipelineError.invalidModel("'\(path)': version \(version) is not supported (this psedge reads version 1)") }
        guard kind == "psdiff" else {
            throw PipelineError.invalidModel("'\(path)': kind \"\(kind)\" has no end-to-end pipeline here (supported: psdiff)")
        }
        guard let input, input.height > 0, input.width > 0, input.mean.count == 3, input.std.count == 3,
              input.std.allSatisfy({ $0 > 0 }) else {
            throw PipelineError.invalidModel("'\(path)': input needs height, width > 0 and three mean and std values (std > 0)")
        }
        guard input.resize == "letterbox-topleft" else {
            throw PipelineError.invalidModel("'\(path)': input.resize \"\(input.resize)\" is not supported (letterbox-topleft)")
        }
        guard backbone != nil else { throw PipelineError.invalidModel("'\(path)': no backbone") }
        guard head != nil else { throw PipelineError.invalidModel("'\(path)': no head") }
        guard let d = diffusion, d.numProposals > 0 else { throw PipelineError.invalidModel("'\(path)': diffusion.num_proposals must be > 0") }
        guard weights != nil || schedule != nil else { throw PipelineError.invalidModel("'\(path)': no weights file (or schedule) to read the diffusion buffers from") }
    }

    public func write(directory: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(self)
        try data.write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("pipeline.json")), options: .atomic)
    }
}

private func describe(_ e: DecodingError) -> String {
    func path(_ c: [CodingKey]) -> String { c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
    switch e {
    case .keyNotFound(let k, let ctx): return "missing field '\(path(ctx.codingPath + [k]))'"
    case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx): return "field '\(path(ctx.codingPath))' has the wrong type"
    case .dataCorrupted(let ctx): return ctx.codingPath.isEmpty ? "not valid JSON" : "field '\(path(ctx.codingPath))' is invalid"
    @unknown default: return "cannot be decoded"
    }
}
