import PSEdgeIR

/// The feature backbone of a DiffPS-style model built from safetensors + config: a fixed pixel-unshuffle
/// "latent encoder", a diffusers UNet2DConditionModel run once at a fixed timestep with a constant context, taps of
/// its up path, and a neck per tap (3x3 conv, ReLU, 1x1 conv). The shipped default model (tools/psref/default_model.py)
/// has this layout; its config.json describes it:
///
///     {"input": {"height": 192, "width": 256}, "latent": {"pixel_unshuffle": 4}, "feature_timestep": 50,
///      "context": {"tensor": "context"}, "taps": {"up_blocks.0.attentions.1": "p4", …},
///      "neck": {"prefix": "neck.levels"}}
///
/// Weights: `unet.*`, the context tensor, `<neck prefix>.<level>.{0,2}.{weight,bias}`. Input `image` [1, 3, H, W];
/// outputs the levels (p2, p3, p4…) in the order given.
public enum DiffusionFeatureBackbone {
    public struct Config: Sendable {
        public var unet: DiffusersUNet2DCondition.Config
        public var height: Int, width: Int
        public var unshuffle: Int
        public var timestep: Float
        public var contextTensor: String
        /// UNet module output → feature level name.
        public var taps: [String: String]
        public var neckPrefix: String
        public var unetPrefix = "unet."

        /// Reads the model's config.json and the UNet's diffusers config.
        public static func load(configPath: String, unetConfigPath: String) throws -> Config {
            var r = try ConfigReader(path: configPath, what: "diffusion backbone")
            let root = r.root
            let input = try root.member("input")
            var taps: [String: String] = [:]
            for (k, v) in try root.member("taps").members() { taps[k] = try v.string() }
            guard !taps.isEmpty else { throw root.error("'taps' must map UNet module names to feature levels") }
            return Config(unet: try DiffusersUNet2DCondition.Config.load(path: unetConfigPath),
                          height: try input.member("height").int(), width: try input.member("width").int(),
                          unshuffle: try root.member("latent").member("pixel_unshuffle").int(),
                          timestep: Float(try r.double("feature_timestep", default: .nan)),
                          contextTensor: try root.member("context").member("tensor").string(), taps: taps,
                          neckPrefix: try root.member("neck").member("prefix").string())
        }
    }

    /// Levels in output order: sorted by name (p2, p3, p4).
    public static func levels(_ c: Config) -> [String] { Array(Set(c.taps.values)).sorted() }

    public static func build(config c: Config, weights: StateDict) throws -> Graph {
        let r = c.unshuffle
        guard r >= 1, c.height % r == 0, c.width % r == 0, c.unet.inChannels == 3 * r * r else {
            throw PSEdgeError.invalid("diffusion backbone: input \(c.height)x\(c.width) with pixel_unshuffle \(r) does not give the UNet's \(c.unet.inChannels) channels")
        }
        guard c.timestep.isFinite else { throw PSEdgeError.invalid("diffusion backbone: missing feature_timestep") }
        guard let context = weights.raw(c.contextTensor), context.rank == 3, context.shape[0] == 1,
              context.shape[2] == c.unet.crossAttentionDim else {
            throw PSEdgeError.invalid("\(weights.source) has no context tensor '\(c.contextTensor)' of shape [1, tokens, \(c.unet.crossAttentionDim)]")
        }
        var shapes = DiffusersUNet2DCondition.InputShapes()
        (shapes.height, shapes.width, shapes.sequenceLength) = (c.height / r, c.width / r, context.shape[1])
        let unetWeights = weights.subset(prefix: c.unetPrefix)
        var g = try DiffusersUNet2DCondition.build(config: c.unet, weights: unetWeights, taps: Array(c.taps.keys).sorted(), inputs: shapes)

        // pixel_unshuffle: [1,3,H,W] → [1,3,H/r,r,W/r,r] → (n, c, i, j, h, w) → [1, 3r², H/r, W/r] as `sample`.
        g.inputs.removeAll { ["sample", "timestep", "encoder_hidden_states"].contains($0.name) }
        g.inputs.insert(ValueInfo(name: "image", type: TensorType(.float32, static: [1, 3, c.height, c.width])), at: 0)
        g.initializers["backbone/unshuffle_shape"] = Tensor(int64: [1, 3, Int64(c.height / r), Int64(r), Int64(c.width / r), Int64(r)], shape: [6])
        g.initializers["backbone/latent_shape"] = Tensor(int64: [1, Int64(3 * r * r), Int64(c.height / r), Int64(c.width / r)], shape: [4])
        g.initializers["timestep"] = Tensor([c.timestep], shape: [1])
        g.initializers["encoder_hidden_states"] = context.toFloat32()
        var pre = [
            Node(name: "backbone/unshuffle/split", opType: "Reshape", inputs: ["image", "backbone/unshuffle_shape"], outputs: ["backbone/unshuffle/split"]),
            Node(name: "backbone/unshuffle/transpose", opType: "Transpose", inputs: ["backbone/unshuffle/split"], outputs: ["backbone/unshuffle/transpose"],
                 attributes: ["perm": .ints([0, 1, 3, 5, 2, 4])]),
            Node(name: "backbone/unshuffle/merge", opType: "Reshape", inputs: ["backbone/unshuffle/transpose", "backbone/latent_shape"], outputs: ["sample"]),
        ]
        // The neck on each tap.
        var outputs: [ValueInfo] = []
        let tapOutputs = Dictionary(uniqueKeysWithValues: g.outputs.map { ($0.name, $0) })
        for level in levels(c) {
            guard let tap = c.taps.first(where: { $0.value == level })?.key, let info = tapOutputs[tap],
                  let shape = info.type?.staticShape, shape.count == 4 else {
                throw PSEdgeError.invalid("diffusion backbone: no UNet tap for level \(level)")
            }
            let p = "\(c.neckPrefix).\(level)"
            guard let s0 = weights.shape(of: "\(p).0.weight") else { throw PSEdgeError.invalid("\(weights.source) has no tensor '\(p).0.weight'") }
            let w0 = try weights.tensor("\(p).0.weight", s0)
            guard w0.rank == 4, w0.shape[1] == shape[1], w0.shape[2] == 3, w0.shape[3] == 3 else {
                throw PSEdgeError.shape("\(weights.source): '\(p).0.weight' is \(Shapes.describe(w0.shape)), expected [C, \(shape[1]), 3, 3]")
            }
            let width = w0.shape[0]
            g.initializers["\(p).0.weight"] = w0
            g.initializers["\(p).0.bias"] = try weights.tensor("\(p).0.bias", [width])
            g.initializers["\(p).2.weight"] = try weights.tensor("\(p).2.weight", [width, width, 1, 1])
            g.initializers["\(p).2.bias"] = try weights.tensor("\(p).2.bias", [width])
            g.nodes += [
                Node(name: "\(p).0", opType: "Conv", inputs: [tap, "\(p).0.weight", "\(p).0.bias"], outputs: ["\(p).0"],
                     attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
                Node(name: "\(p).1", opType: "Relu", inputs: ["\(p).0"], outputs: ["\(p).1"]),
                Node(name: "\(p).2", opType: "Conv", inputs: ["\(p).1", "\(p).2.weight", "\(p).2.bias"], outputs: [level],
                     attributes: ["kernel_shape": .ints([1, 1])]),
            ]
            outputs.append(ValueInfo(name: level, type: TensorType(.float32, static: [1, width, shape[2], shape[3]])))
        }
        g.nodes = pre + g.nodes
        g.outputs = outputs
        g.name = "diffusion_feature_backbone"
        g.metadata["builder"] = "DiffusionFeatureBackbone (pixel_unshuffle \(r), t = \(c.timestep), taps \(c.taps.keys.sorted().joined(separator: ",")))"
        return g
    }
}
