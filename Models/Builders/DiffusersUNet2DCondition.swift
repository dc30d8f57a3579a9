import Foundation
import PSEdgeIR

/// diffusers' `UNet2DConditionModel` (the Stable Diffusion 1.x/2.x denoiser) from its `config.json` and a
/// state dict with diffusers' names (conv_in, time_embedding.linear_{1,2}, down_blocks.{i}.resnets.{j}.*,
/// down_blocks.{i}.attentions.{j}.*, mid_block.*, up_blocks.*, conv_norm_out, conv_out).
///
/// Inputs: `sample` [B, in_channels, H, W], `timestep` [T] float32 (T = 1 or B), `encoder_hidden_states`
/// [B, S, cross_attention_dim]. Output: `out_sample` [B, out_channels, H, W].
///
/// With `taps`, the outputs are module outputs named by their module path instead, and the graph stops at the
/// last one needed (DiffPS-style feature extraction from a truncated UNet). Taps are:
/// - any module: `conv_in`, `time_proj`, `time_embedding`, `down_blocks.1`, `down_blocks.1.resnets.0`,
///   `down_blocks.1.attentions.0`, `down_blocks.1.downsamplers.0`, `mid_block`, `up_blocks.2.upsamplers.0`,
///   `conv_norm_out`, `conv_act`, `conv_out`; inside a resnet `norm1`, `conv1`, `time_emb_proj`, `norm2`, `conv2`,
///   `conv_shortcut`; inside an attention `norm`, `proj_in`, `transformer_blocks.0` (and its `norm1`…`norm3`,
///   `attn1`, `attn2`, `ff`, `ff.net.0`, `ff.net.0.proj`, `ff.net.2`), `proj_out`;
/// - attention projections `…attn1.to_q`, `to_k`, `to_v`, `to_out.0`: the raw projection [B, tokens, C];
/// - `…attn1.probs`, `…attn2.probs`: softmax attention probabilities [B, heads, HW, keys].
public enum DiffusersUNet2DCondition {
    public struct Config: Sendable {
        public var inChannels = 4
        public var outChannels = 4
        /// Latent height (and width unless `sampleWidth` is set).
        public var sampleSize = 64
        public var sampleWidth: Int?
        public var downBlockTypes: [String] = []
        public var upBlockTypes: [String] = []
        /// "UNetMidBlock2DCrossAttn", or nil for no middle block.
        public var midBlockType: String? = "UNetMidBlock2DCrossAttn"
        public var blockOutChannels: [Int] = []
        /// Per down block; up block i has reversed(layersPerBlock)[i] + 1 layers.
        public var layersPerBlock: [Int] = []
        /// Transformer blocks per attention, per down block.
        public var transformerLayersPerBlock: [Int] = []
        /// Attention heads per down block (diffusers reads `attention_head_dim` as the number of heads).
        public var attentionHeads: [Int] = []
        public var crossAttentionDim = 768
        public var normNumGroups = 32
        public var normEps: Float = 1e-5
        public var useLinearProjection = false
        public var flipSinToCos = true
        public var freqShift: Double = 0
        public var downsamplePadding = 1
        public var midBlockScaleFactor: Double = 1
        public var timeEmbeddingDim: Int? = nil
        public var convInKernel = 3
        public var convOutKernel = 3

        public init() {}

        static let blockTypes = ["CrossAttnDownBlock2D", "DownBlock2D", "UpBlock2D", "CrossAttnUpBlock2D"]

        /// Reads diffusers' config.json. Settings that would change the network in a way this builder does not
        /// implement are errors naming the key and what is supported.
        public static func load(path: String) throws -> Config {
            var r = try ConfigReader(path: path, what: "UNet")
            var c = Config()
            try r.require("_class_name", in: ["\"UNet2DConditionModel\""])
            c.inChannels = try r.int("in_channels", default: 4)
            c.outChannels = try r.int("out_channels", default: 4)
            // An int (square) or [height, width].
            if let hw = try r.intOrList("sample_size", count: 2) { (c.sampleSize, c.sampleWidth) = (hw[0], hw[1]) }
            c.downBlockTypes = try r.strings("down_block_types")
            c.upBlockTypes = try r.strings("up_block_types")
            let n = c.downBlockTypes.count
            c.midBlockType = try r.string("mid_block_type", default: "UNetMidBlock2DCrossAttn")
            c.blockOutChannels = try r.field("block_out_channels").map { try $0.ints() } ?? []
            r.known.insert("block_out_channels")
            c.layersPerBlock = try r.intOrList("layers_per_block", count: n) ?? [Int](repeating: 2, count: n)
            c.transformerLayersPerBlock = try r.intOrList("transformer_layers_per_block", count: n) ?? [Int](repeating: 1, count: n)
            c.attentionHeads = try r.intOrList("attention_head_dim", count: n) ?? [Int](repeating: 8, count: n)
            if let f = try r.field("cross_attention_dim") {
                guard case .number = f.value else {
                    throw r.unsupported("cross_attention_dim", String(decoding: f.value.serialized, as: UTF8.self), supported: "a single integer")
                }
                c.crossAttentionDim = try f.int()
            }
            r.known.insert("cross_attention_dim")
            c.normNumGroups = try r.int("norm_num_groups", default: 32)
            c.normEps = Float(try r.double("norm_eps", default: 1e-5))
            c.useLinearProjection = try r.bool("use_linear_projection", default: false)
            c.flipSinToCos = try r.bool("flip_sin_to_cos", default: true)
            c.freqShift = try r.double("freq_shift", default: 0)
            c.downsamplePadding = try r.int("downsample_padding", default: 1)
            c.midBlockScaleFactor = try r.double("mid_block_scale_factor", default: 1)
            c.timeEmbeddingDim = try r.optionalInt("time_embedding_dim")
            c.convInKernel = try r.int("conv_in_kernel", default: 3)
            c.convOutKernel = try r.int("conv_out_kernel", default: 3)

            try r.require("act_fn", in: ["\"silu\""])
            try r.require("center_input_sample", in: ["false"])
            try r.require("time_embedding_type", in: ["\"positional\""])
            for key in ["time_embedding_act_fn", "timestep_post_act", "time_cond_proj_dim", "addition_embed_type",
                        "addition_time_embed_dim", "class_embed_type", "num_class_embeds", "encoder_hid_dim",
                        "encoder_hid_dim_type", "projection_class_embeddings_input_dim", "cross_attention_norm",
                        "reverse_transformer_layers_per_block"] {
                try r.require(key, in: ["null"])
            }
            try r.require("num_attention_heads", in: ["null"])
            try r.require("class_embeddings_concat", in: ["false"])
            try r.require("resnet_time_scale_shift", in: ["\"default\""])
            try r.require("resnet_skip_time_act", in: ["false"])
            try r.require("dual_cross_attention", in: ["false"])
            try r.require("attention_type", in: ["\"default\""])
            try r.require("mid_block_only_cross_attention", in: ["null", "false"])
            let onlyCross = try r.field("only_cross_attention")
            r.known.insert("only_cross_attention")
            if let f = onlyCross {
                var flags: [Bool]
                if case .array = f.value { flags = try f.array().map { try $0.bool() } } else { flags = [try f.bool()] }
                if flags.contains(true) {
                    throw r.unsupported("only_cross_attention", String(decoding: f.value.serialized, as: UTF8.self), supported: "false")
                }
            }
            // No effect on this network in float32 inference: dropout; attention upcasting; the output scale of
            // resnets in block types this builder does not build; heads of the added-condition embedding.
            try r.checkUnknown(ignored: ["dropout", "upcast_attention", "resnet_out_scale_factor", "addition_embed_type_num_heads"])
            try c.validate()
            return c
        }

        func validate() throws {
            func bad(_ key: String, _ value: Any, _ supported: String) -> PSEdgeError {
                PSEdgeError.unsupported("UNet config: \(key) = \(value) is not supported (supported: \(supported))")
            }
            let n = downBlockTypes.count
            guard n > 0 else { throw bad("down_block_types", "[]", "one or more blocks") }
            for t in downBlockTypes where !["CrossAttnDownBlock2D", "DownBlock2D"].contains(t) {
                throw bad("down_block_types", "[…\"\(t)\"…]", "CrossAttnDownBlock2D, DownBlock2D")
            }
            for t in upBlockTypes where !["CrossAttnUpBlock2D", "UpBlock2D"].contains(t) {
                throw bad("up_block_types", "[…\"\(t)\"…]", "CrossAttnUpBlock2D, UpBlock2D")
            }
            guard upBlockTypes.count == n else {
                throw PSEdgeError.invalid("UNet config: \(n) down blocks but \(upBlockTypes.count) up blocks")
            }
            guard blockOutChannels.count == n else {
                throw PSEdgeError.invalid("UNet config: block_out_channels has \(blockOutChannels.count) values for \(n) blocks")
            }
            if let m = midBlockType, m != "UNetMidBlock2DCrossAttn" {
                throw bad("mid_block_type", "\"\(m)\"", "UNetMidBlock2DCrossAttn, null")
            }
            guard normNumGroups > 0, blockOutChannels.allSatisfy({ $0 > 0 && $0 % normNumGroups == 0 }) else {
                throw PSEdgeError.invalid("UNet config: norm_num_groups \(normNumGroups) must divide every block_out_channels \(blockOutChannels)")
            }
            guard blockOutChannels[0] % 2 == 0 else { throw bad("block_out_channels[0]", blockOutChannels[0], "an even number") }
            for (i, h) in attentionHeads.enumerated() where h <= 0 || blockOutChannels[i] % h != 0 {
                throw PSEdgeError.invalid("UNet config: attention_head_dim (heads) \(h) does not divide block_out_channels[\(i)] = \(blockOutChannels[i])")
            }
            guard layersPerBlock.allSatisfy({ $0 >= 1 }), transformerLayersPerBlock.allSatisfy({ $0 >= 1 }) else {
                throw PSEdgeError.invalid("UNet config: layers_per_block and transformer_layers_per_block must be positive")
            }
            for (key, k) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] where k < 1 || k % 2 == 0 {
                throw bad(key, k, "odd sizes")
            }
            guard downsamplePadding >= 0 else { throw bad("downsample_padding", downsamplePadding, "0 or more") }
            guard midBlockScaleFactor > 0 else { throw bad("mid_block_scale_factor", midBlockScaleFactor, "positive values") }
        }
    }

    /// Static input sizes the graph is built for.
    public struct InputShapes: Sendable {
        public var batch = 1
        /// Latent height and width; nil: the config's sample_size.
        public var height: Int? = nil
        public var width: Int? = nil
        /// Text tokens in encoder_hidden_states.
        public var sequenceLength = 77
        /// Timesteps: 1 (shared by the batch) or the batch size.
        public var timesteps = 1

        public init() {}
    }

    public static let outputName = "out_sample"
    /// Transformer2DModel's GroupNorm and BasicTransformerBlock's LayerNorms use fixed epsilons.
    static let attentionGroupNormEps: Float = 1e-6
    static let layerNormEps: Float = 1e-5

    public static func build(config: Config, weights: StateDict, taps: [String] = [],
                             inputs: InputShapes = InputShapes()) throws -> Graph {
        try config.validate()
        let h = inputs.height ?? config.sampleSize, w = inputs.width ?? config.sampleWidth ?? config.sampleSize
        guard inputs.batch >= 1, h >= 1, w >= 1, inputs.sequenceLength >= 1 else {
            throw PSEdgeError.invalid("UNet: batch, height, width and sequence length must be positive")
        }
        guard inputs.timesteps == 1 || inputs.timesteps == inputs.batch else {
            throw PSEdgeError.invalid("UNet: \(inputs.timesteps) timesteps for batch \(inputs.batch) (expected 1 or the batch size)")
        }
        let b = GraphBuilder(name: "unet2d_condition")
        var t = try Taps(taps.isEmpty ? ["conv_out"] : taps)
        let u = UNetGraph(b: b, c: config, weights: weights)
        let graph = try b.finish(taps: &t, model: "the UNet", outputNames: taps.isEmpty ? ["conv_out": outputName] : [:]) { taps in
            let sample = b.input("sample", shape: [inputs.batch, config.inChannels, h, w])
            let timestep = b.input("timestep", shape: [inputs.timesteps])
            let context = b.input("encoder_hidden_states", shape: [inputs.batch, inputs.sequenceLength, config.crossAttentionDim])
            try u.forward(sample: sample, timestep: timestep, context: context, taps: &taps)
        }
        var g = graph
        g.metadata["builder"] = "DiffusersUNet2DCondition"
        if taps.isEmpty, !weights.unusedNames.isEmpty {
            g.metadata["unused_weights"] = weights.unusedNames.prefix(20).joined(separator: ",")
        }
        return g
    }

    /// Builds from a config.json and a .safetensors file.
    public static func build(configPath: String, weightsPath: String, taps: [String] = [],
                             inputs: InputShapes = InputShapes()) throws -> Graph {
        try build(config: try Config.load(path: configPath), weights: try StateDict(path: weightsPath), taps: taps, inputs: inputs)
    }
}

/// The forward pass, module by module, in diffusers' order.
private final class UNetGraph {
    let b: GraphBuilder
    let c: DiffusersUNet2DCondition.Config
    let weights: StateDict
    var timestep: Value!
    /// silu(time embedding), shared by every resnet; built on first use.
    private var tembAct: Value?

    init(b: GraphBuilder, c: DiffusersUNet2DCondition.Config, weights: StateDict) {
        self.b = b
        self.c = c
        self.weights = weights
    }

    func forward(sample: Value, timestep: Value, context: Value, taps: inout Taps) throws {
        self.timestep = timestep
        let n = c.blockOutChannels.count
        var h = try conv(sample, "conv_in", out: c.blockOutChannels[0], k: c.convInKernel, taps: &taps)
        var skips = [h]

        for i in 0..<n {
            let p = "down_blocks.\(i)"
            let out = c.blockOutChannels[i]
            let cross = c.downBlockTypes[i] == "CrossAttnDownBlock2D"
            for j in 0..<c.layersPerBlock[i] {
                h = try resnet(h, "\(p).resnets.\(j)", out: out, taps: &taps)
                if cross {
                    h = try transformer(h, context, "\(p).attentions.\(j)", heads: c.attentionHeads[i],
                                        layers: c.transformerLayersPerBlock[i], taps: &taps)
                }
                skips.append(h)
            }
            if i < n - 1 {
                let s = "\(p).downsamplers.0.conv"
                let pad = c.downsamplePadding
                let wt = try weights.tensor("\(s).weight", [out, out, 3, 3])
                h = try b.conv2d(h, weight: wt, bias: try weights.tensor("\(s).bias", [out]), stride: 2,
                                 pads: pad == 0 ? [0, 0, 1, 1] : [pad, pad, pad, pad], scope: s)
                try taps.offer(s, h)
                try taps.offer("\(p).downsamplers.0", h)
                skips.append(h)
            }
            try taps.offer(p, h)
        }

        if c.midBlockType != nil {
            let out = c.blockOutChannels[n - 1]
            let scale = c.midBlockScaleFactor
            h = try resnet(h, "mid_block.resnets.0", out: out, outputScale: scale, taps: &taps)
            h = try transformer(h, context, "mid_block.attentions.0", heads: c.attentionHeads[n - 1],
                                layers: c.transformerLayersPerBlock[n - 1], taps: &taps)
            h = try resnet(h, "mid_block.resnets.1", out: out, outputScale: scale, taps: &taps)
            try taps.offer("mid_block", h)
        }

        let reversedChannels = Array(c.blockOutChannels.reversed())
        let reversedLayers = Array(c.layersPerBlock.reversed())
        let reversedHeads = Array(c.attentionHeads.reversed())
        let reversedTransformerLayers = Array(c.transformerLayersPerBlock.reversed())
        for i in 0..<n {
            let p = "up_blocks.\(i)"
            let out = reversedChannels[i]
            let cross = c.upBlockTypes[i] == "CrossAttnUpBlock2D"
            for j in 0...reversedLayers[i] {
                guard let skip = skips.popLast() else {
                    throw PSEdgeError.invalid("UNet config: the up blocks use more skip connections than the down blocks make")
                }
                h = try b.concat([h, skip], axis: 1, scope: "\(p).resnets.\(j)/skip")
                h = try resnet(h, "\(p).resnets.\(j)", out: out, taps: &taps)
                if cross {
                    h = try transformer(h, context, "\(p).attentions.\(j)", heads: reversedHeads[i],
                                        layers: reversedTransformerLayers[i], taps: &taps)
                }
            }
            if i < n - 1 {
                // As diffusers: to the size of the next skip connection (2x unless the input size was odd).
                guard let next = skips.last else {
                    throw PSEdgeError.invalid("UNet config: the up blocks use more skip connections than the down blocks make")
                }
                let s = "\(p).upsamplers.0.conv"
                h = b.resizeNearest(h, to: Array(next.shape[2...]), scope: "\(p).upsamplers.0/interpolate")
                h = try b.conv2d(h, weight: try weights.tensor("\(s).weight", [out, out, 3, 3]),
                                 bias: try weights.tensor("\(s).bias", [out]), pads: [1, 1, 1, 1], scope: s)
                try taps.offer(s, h)
                try taps.offer("\(p).upsamplers.0", h)
            }
            try taps.offer(p, h)
        }
        if !skips.isEmpty {
            throw PSEdgeError.invalid("UNet config: the up blocks leave \(skips.count) skip connections of the down blocks unused")
        }

        h = try groupNorm(h, "conv_norm_out", eps: c.normEps, taps: &taps)
        h = try b.silu(h, scope: "conv_act")
        try taps.offer("conv_act", h)
        _ = try conv(h, "conv_out", out: c.outChannels, k: c.convOutKernel, taps: &taps)
    }

    // MARK: modules

    func conv(_ x: Value, _ name: String, out: Int, k: Int, taps: inout Taps) throws -> Value {
        let y = try b.conv2d(x, weight: try weights.tensor("\(name).weight", [out, x.shape[1], k, k]),
                             bias: try weights.tensor("\(name).bias", [out]), pads: [Int](repeating: k / 2, count: 4), scope: name)
        try taps.offer(name, y)
        return y
    }

    func groupNorm(_ x: Value, _ name: String, eps: Float, taps: inout Taps) throws -> Value {
        let ch = x.shape[1]
        let y = try b.groupNorm(x, groups: c.normNumGroups, scale: try weights.tensor("\(name).weight", [ch]),
                                bias: try weights.tensor("\(name).bias", [ch]), epsilon: eps, scope: name)
        try taps.offer(name, y)
        return y
    }

    func linear(_ x: Value, _ name: String, out: Int, bias: Bool, taps: inout Taps) throws -> Value {
        let k = x.shape.last!
        let y = try b.linear(x, weight: try weights.tensor("\(name).weight", [out, k]),
                             bias: bias ? try weights.tensor("\(name).bias", [out]) : try weights.optional("\(name).bias", [out]),
                             scope: name)
        try taps.offer(name, y)
        return y
    }

    /// silu(time_embedding(time_proj(timestep))).
    func timeEmbeddingActivation(taps: inout Taps) throws -> Value {
        if let t = tembAct { return t }
        let dim = c.blockOutChannels[0], half = dim / 2
        // get_timestep_embedding: exp(-ln(10000) · i / (half - shift)), in float32 as torch computes it.
        let lnMax = Float(-log(10000.0))
        let divisor = Float(Double(half) - c.freqShift)
        let freqs = (0..<half).map { i -> Float in Float(Foundation.exp(Double((lnMax * Float(i)) / divisor))) }
        let tcol = try b.reshape(timestep, [timestep.shape[0], 1], scope: "time_proj")
        let args = try b.mul(tcol, b.constant(floats: freqs, shape: [1, half], name: "time_proj.frequencies"), scope: "time_proj")
        let sin = b.unary("Sin", args, scope: "time_proj"), cos = b.unary("Cos", args, scope: "time_proj")
        let proj = try b.concat(c.flipSinToCos ? [cos, sin] : [sin, cos], axis: 1, scope: "time_proj")
        try taps.offer("time_proj", proj)
        let tdim = c.timeEmbeddingDim ?? 4 * dim
        var e = try linear(proj, "time_embedding.linear_1", out: tdim, bias: true, taps: &taps)
        e = try b.silu(e, scope: "time_embedding.act")
        e = try linear(e, "time_embedding.linear_2", out: tdim, bias: true, taps: &taps)
        try taps.offer("time_embedding", e)
        let act = try b.silu(e, scope: "time_embedding/silu")
        tembAct = act
        return act
    }

    /// ResnetBlock2D: (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + time_emb_proj(silu(temb)))))) / scale.
    func resnet(_ x: Value, _ p: String, out: Int, outputScale: Double = 1, taps: inout Taps) throws -> Value {
        let temb = try timeEmbeddingActivation(taps: &taps)
        var h = try groupNorm(x, "\(p).norm1", eps: c.normEps, taps: &taps)
        h = try b.silu(h, scope: "\(p).nonlinearity")
        h = try conv(h, "\(p).conv1", out: out, k: 3, taps: &taps)
        var t = try linear(temb, "\(p).time_emb_proj", out: out, bias: true, taps: &taps)
        t = try b.reshape(t, [t.shape[0], out, 1, 1], scope: "\(p).time_emb_proj")
        h = try b.add(h, t, scope: "\(p)/add_time")
        h = try groupNorm(h, "\(p).norm2", eps: c.normEps, taps: &taps)
        h = try b.silu(h, scope: "\(p).nonlinearity")
        h = try conv(h, "\(p).conv2", out: out, k: 3, taps: &taps)
        var shortcut = x
        if x.shape[1] != out {
            shortcut = try conv(x, "\(p).conv_shortcut", out: out, k: 1, taps: &taps)
        }
        var y = try b.add(shortcut, h, scope: "\(p)/residual")
        if outputScale != 1 {
            y = try b.div(y, b.constant(floats: [Float(outputScale)], shape: [], name: "\(p).output_scale_factor"), scope: p)
        }
        try taps.offer(p, y)
        return y
    }

    /// Transformer2DModel: GroupNorm, proj_in, BasicTransformerBlocks over the HW tokens, proj_out, + input.
    func transformer(_ x: Value, _ context: Value, _ p: String, heads: Int, layers: Int, taps: inout Taps) throws -> Value {
        let (n, ch, hh, ww) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let inner = heads * (ch / heads)
        var h = try groupNorm(x, "\(p).norm", eps: DiffusersUNet2DCondition.attentionGroupNormEps, taps: &taps)
        if c.useLinearProjection {
            h = try b.reshape(b.transpose(h, [0, 2, 3, 1], scope: "\(p)/to_tokens"), [n, hh * ww, ch], scope: "\(p)/to_tokens")
            h = try linear(h, "\(p).proj_in", out: inner, bias: true, taps: &taps)
        } else {
            h = try b.conv2d(h, weight: try weights.tensor("\(p).proj_in.weight", [inner, ch, 1, 1]),
                             bias: try weights.tensor("\(p).proj_in.bias", [inner]), pads: [0, 0, 0, 0], scope: "\(p).proj_in")
            try taps.offer("\(p).proj_in", h)
            h = try b.reshape(b.transpose(h, [0, 2, 3, 1], scope: "\(p)/to_tokens"), [n, hh * ww, inner], scope: "\(p)/to_tokens")
        }
        for k in 0..<layers {
            h = try transformerBlock(h, context, "\(p).transformer_blocks.\(k)", heads: heads, taps: &taps)
        }
        if c.useLinearProjection {
            h = try linear(h, "\(p).proj_out", out: ch, bias: true, taps: &taps)
            h = b.transpose(try b.reshape(h, [n, hh, ww, ch], scope: "\(p)/to_image"), [0, 3, 1, 2], scope: "\(p)/to_image")
        } else {
            h = b.transpose(try b.reshape(h, [n, hh, ww, inner], scope: "\(p)/to_image"), [0, 3, 1, 2], scope: "\(p)/to_image")
            h = try b.conv2d(h, weight: try weights.tensor("\(p).proj_out.weight", [ch, inner, 1, 1]),
                             bias: try weights.tensor("\(p).proj_out.bias", [ch]), pads: [0, 0, 0, 0], scope: "\(p).proj_out")
            try taps.offer("\(p).proj_out", h)
        }
        let y = try b.add(h, x, scope: "\(p)/residual")
        try taps.offer(p, y)
        return y
    }

    func layerNorm(_ x: Value, _ name: String, taps: inout Taps) throws -> Value {
        let d = x.shape.last!
        let y = try b.layerNorm(x, scale: try weights.tensor("\(name).weight", [d]), bias: try weights.tensor("\(name).bias", [d]),
                                epsilon: DiffusersUNet2DCondition.layerNormEps, scope: name)
        try taps.offer(name, y)
        return y
    }

    /// BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward, each pre-norm and residual.
    func transformerBlock(_ x: Value, _ context: Value, _ p: String, heads: Int, taps: inout Taps) throws -> Value {
        let dim = x.shape[2]
        var h = x
        var n = try layerNorm(h, "\(p).norm1", taps: &taps)
        h = try b.add(try attention(n, n, "\(p).attn1", heads: heads, taps: &taps), h, scope: "\(p).attn1/residual")
        n = try layerNorm(h, "\(p).norm2", taps: &taps)
        h = try b.add(try attention(n, context, "\(p).attn2", heads: heads, taps: &taps), h, scope: "\(p).attn2/residual")
        n = try layerNorm(h, "\(p).norm3", taps: &taps)
        // GEGLU: proj → (hidden, gate) halves; hidden · gelu(gate); then net.2.
        let ffInner = 4 * dim
        let proj = try linear(n, "\(p).ff.net.0.proj", out: 2 * ffInner, bias: true, taps: &taps)
        let halves = try b.split(proj, sizes: [ffInner, ffInner], axis: -1, scope: "\(p).ff.net.0")
        let geglu = try b.mul(halves[0], b.gelu(halves[1], scope: "\(p).ff.net.0"), scope: "\(p).ff.net.0")
        try taps.offer("\(p).ff.net.0", geglu)
        let ff = try linear(geglu, "\(p).ff.net.2", out: dim, bias: true, taps: &taps)
        try taps.offer("\(p).ff", ff)
        h = try b.add(ff, h, scope: "\(p).ff/residual")
        try taps.offer(p, h)
        return h
    }

    /// Multi-head attention (diffusers Attention with AttnProcessor2_0): softmax(q kᵀ / √d) v, then to_out.0.
    func attention(_ x: Value, _ context: Value, _ p: String, heads: Int, taps: inout Taps) throws -> Value {
        let dim = x.shape[2]
        let inner = heads * (dim / heads)
        let q = try linear(x, "\(p).to_q", out: inner, bias: false, taps: &taps)
        let k = try linear(context, "\(p).to_k", out: inner, bias: false, taps: &taps)
        let v = try linear(context, "\(p).to_v", out: inner, bias: false, taps: &taps)
        let (merged, probs) = try b.scaledDotProductAttention(q: q, k: k, v: v, heads: heads, scope: p, probsScope: "\(p).probs")
        try taps.offer("\(p).probs", probs)
        let out = try linear(merged, "\(p).to_out.0", out: dim, bias: true, taps: &taps)
        try taps.offer(p, out)
        return out
    }
}
