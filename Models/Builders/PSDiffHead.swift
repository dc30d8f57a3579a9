import Foundation
import PSEdgeIR

/// The PSDiff head of tools/psref/psdiff.py, `PSDiffHead.forward(features, boxes, emb_in, t)`, from its state dict
/// (names without the `head.` prefix: `time_mlp.{1,3}`, `head_series.{k}.*`) and a `PSDiffConfig`: the time MLP,
/// then per Collaborative Denoising Layer the multi-level RoIAlign, self-attention among the proposals, the dynamic
/// convolution with kernels from the re-ID features, cross-attention, the time modulation and the cascaded
/// prediction (embeddings, then class logits and boxes). A later CDL gets the previous boxes and normalize(ê0).
///
/// Inputs and outputs are named as in the ONNX export (cdl_head.onnx / head.onnx): p2…pK [B, C, H_l, W_l],
/// boxes [B, N, 4] (xyxy, image pixels), emb_in [B, N, C], t [B] (float timestep) -> logits [B, N, classes],
/// pred_boxes [B, N, 4], pred_emb [B, N, C] (the last CDL's).
public enum PSDiffHeadBuilder {
    public static let outputNames = ["logits", "pred_boxes", "pred_emb"]
    /// DiffusionDet's box-delta weights and scale clamp log(100000 / 16).
    static let boxWeights: [Float] = [2, 2, 1, 1]
    static let scaleClamp = Float(log(100000.0 / 16))

    public static func build(config: Config, weights: StateDict, inputs: InputShapes = InputShapes()) throws -> Graph {
        try config.validate()
        let c = config.hiddenDim, n = inputs.proposals ?? config.numProposals, batch = inputs.batch
        guard inputs.featureSizes.count == config.fpnStrides.count, inputs.featureSizes.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0 > 0 } }) else {
            throw PSEdgeError.invalid("PSDiff head: give the [height, width] of each feature map \(config.featureNames.joined(separator: ", ")) "
                + "(got \(inputs.featureSizes.count) sizes for \(config.fpnStrides.count) levels)")
        }
        guard batch >= 1, n >= 1 else { throw PSEdgeError.invalid("PSDiff head: batch and number of boxes must be positive") }
        let b = GraphBuilder(name: "psdiff_head")
        var taps = try Taps(outputNames)
        let graph = try b.finish(taps: &taps, model: "the PSDiff head") { taps in
            let features = zip(config.featureNames, inputs.featureSizes).map { b.input($0, shape: [batch, c, $1[0], $1[1]]) }
            var boxes = b.input("boxes", shape: [batch, n, 4])
            var emb = b.input("emb_in", shape: [batch, n, c])
            let t = b.input("t", shape: [batch])
            let m = TorchModules(b: b, weights: weights)
            let time = try timeMLP(t, m, hiddenDim: c)
            var out: CDLOutput!
            for k in 0..<config.layers {
                let cdl = CDL(m: m, config: config, prefix: "head_series.\(k)")
                if let previous = out {
                    boxes = previous.boxes
                    emb = try b.l2Normalize(previous.embeddings, axis: -1, scope: "\(cdl.prefix)/normalize_emb_in")
                }
                let rois = try b.multiLevelRoIAlign(features, boxes: boxes, strides: config.fpnStrides, resolution: config.poolerResolution,
                                                    samplingRatio: config.samplingRatio, canonicalSize: config.canonicalSize,
                                                    canonicalLevel: config.canonicalLevel, scope: "\(cdl.prefix).box_pooler")
                out = try cdl.forward(rois: rois, boxes: boxes, embeddings: emb, time: time)
            }
            try taps.offer("logits", out.logits)
            try taps.offer("pred_boxes", out.boxes)
            try taps.offer("pred_emb", out.embeddings)
        }
        var g = graph
        g.metadata["builder"] = "PSDiffHead \(config.layers) CDL, strides \(config.fpnStrides)"
        let unused = weights.unusedNames.filter { $0.hasPrefix("time_mlp.") || $0.hasPrefix("head_series.") }
        if !unused.isEmpty { g.metadata["unused_weights"] = unused.prefix(20).joined(separator: ",") }
        return g
    }

    /// time_mlp: SinusoidalPositionEmbeddings(C) (sin | cos of t · exp(-i ln(10000) / (C/2 - 1)), in float32 as torch
    /// computes the frequencies), Linear(C, 4C), GELU, Linear(4C, 4C) -> [B, 4C].
    static func timeMLP(_ t: Value, _ m: TorchModules, hiddenDim c: Int) throws -> Value {
        let b = m.b, half = c / 2
        let step = Float(-(log(10000.0) / Double(half - 1)))
        let freqs = (0..<half).map { Float(Foundation.exp(Double(Float($0) * step))) }
        let args = try b.mul(try b.reshape(t, [t.shape[0], 1], scope: "time_mlp.0"),
                             b.constant(floats: freqs, shape: [1, half], name: "time_mlp.0.frequencies"), scope: "time_mlp.0")
        let emb = try b.concat([b.unary("Sin", args, scope: "time_mlp.0"), b.unary("Cos", args, scope: "time_mlp.0")], axis: 1,
                               scope: "time_mlp.0")
        let h = b.gelu(try m.linear(emb, "time_mlp.1", out: 4 * c), scope: "time_mlp.2")
        return try m.linear(h, "time_mlp.3", out: 4 * c)
    }
}

struct CDLOutput {
    let logits: Value, boxes: Value, embeddings: Value
}

/// One Collaborative Denoising Layer (`head_series.{k}`), psdiff.py `CDL.forward_rois`.
struct CDL {
    let m: TorchModules
    let config: PSDiffHeadBuilder.Config
    let prefix: String
    var b: GraphBuilder { m.b }

    func name(_ s: String) -> String { "\(prefix).\(s)" }

    /// rois [B·N, C, S, S] pooled at boxes [B, N, 4]; embeddings [B, N, C]; time [B, 4C].
    func forward(rois: Value, boxes: Value, embeddings: Value, time: Value) throws -> CDLOutput {
        let (batch, n, c) = (boxes.shape[0], boxes.shape[1], config.hiddenDim)
        let bn = batch * n, s2 = config.poolerResolution * config.poolerResolution
        // [B·N, S², C]: the RoI tokens of each box.
        let tokens = b.transpose(try b.reshape(rois, [bn, c, s2], scope: name("tokens")), [0, 2, 1], scope: name("tokens"))

        // Self-attention among the N proposals of an image, on the mean-pooled RoI features.
        var pro = b.reduceMean(try b.reshape(rois, [batch, n, c, s2], scope: name("mean_pool")), axes: [3], keepDims: false,
                               scope: name("mean_pool"))
        let attended = try m.multiheadAttention(query: pro, key: pro, value: pro, name("self_attn"), heads: config.attentionHeads)
        pro = try m.layerNorm(try b.add(pro, attended, scope: name("norm1")), name("norm1"))

        // Dynamic convolution with kernels from the re-ID features, then the FFN.
        let fr = try b.reshape(embeddings, [bn, c], scope: name("f_r"))
        let dynamic = try dynamicConv(kernelSource: fr, tokens: tokens)
        var fd = try m.layerNorm(try b.add(try b.reshape(pro, [bn, c], scope: name("norm2")), dynamic, scope: name("norm2")), name("norm2"))
        let ffn = try m.linear(b.relu(try m.linear(fd, name("linear1"), out: config.dimFeedforward), scope: name("activation")),
                               name("linear2"), out: c)
        fd = try m.layerNorm(try b.add(fd, ffn, scope: name("norm3")), name("norm3"))

        // Cross-attention: the re-ID features query the RoI tokens of their own box.
        let query = try b.reshape(fr, [bn, 1, c], scope: name("cross_attn"))
        let crossed = try m.multiheadAttention(query: query, key: tokens, value: tokens, name("cross_attn"), heads: config.attentionHeads)
        let frOut = try m.layerNorm(try b.add(fr, try b.reshape(crossed, [bn, c], scope: name("norm4")), scope: name("norm4")), name("norm4"))

        // F_c = [F_d', F_r'] · (scale + 1) + shift, (scale, shift) = block_time_mlp(time).
        var fc = try b.reshape(try b.concat([fd, frOut], axis: 1, scope: name("f_c")), [batch, n, 2 * c], scope: name("f_c"))
        let tm = try m.linear(try b.silu(time, scope: name("block_time_mlp.0")), name("block_time_mlp.1"), out: 4 * c)
        let ss = try b.split(try b.reshape(tm, [batch, 1, 4 * c], scope: name("block_time_mlp")), sizes: [2 * c, 2 * c], axis: 2,
                             scope: name("block_time_mlp"))
        let one = b.scalar(1, name: name("block_time_mlp/one"))
        fc = try b.add(try b.mul(fc, try b.add(ss[0], one, scope: name("time_scale")), scope: name("time_scale")), ss[1],
                       scope: name("time_shift"))

        // Cascaded prediction: embeddings first, class logits and box deltas from them.
        let emb = try m.linear(try tower(fc, "reid_module", blocks: config.numReid), name("reid_embed"), out: c)
        let logits = try m.linear(try tower(emb, "cls_module", blocks: config.numCls), name("class_logits"), out: config.numClasses)
        let deltas = try m.linear(try tower(emb, "reg_module", blocks: config.numReg), name("bboxes_delta"), out: 4)
        let pred = try b.decodeBoxDeltas(deltas, boxes: boxes, weights: PSDiffHeadBuilder.boxWeights,
                                         scaleClamp: PSDiffHeadBuilder.scaleClamp, scope: name("apply_deltas"))
        return CDLOutput(logits: logits, boxes: pred, embeddings: emb)
    }

    /// DynamicConv (`inst_interact`): kernels dynamic_layer(F_r) -> (C×dd, dd×C); tokens · k1, LN, ReLU, · k2, LN, ReLU,
    /// flatten (token-major), out_layer, LN, ReLU -> [B·N, C].
    func dynamicConv(kernelSource fr: Value, tokens: Value) throws -> Value {
        let (bn, c, dd) = (fr.shape[0], config.hiddenDim, config.dimDynamic)
        let p = name("inst_interact")
        let params = try m.linear(fr, "\(p).dynamic_layer", out: config.numDynamic * c * dd)
        let extra = config.numDynamic > 2 ? [(config.numDynamic - 2) * c * dd] : []
        let parts = try b.split(params, sizes: [c * dd, c * dd] + extra, axis: 1, scope: "\(p)/kernels")
        let k1 = try b.reshape(parts[0], [bn, c, dd], scope: "\(p)/kernels")
        let k2 = try b.reshape(parts[1], [bn, dd, c], scope: "\(p)/kernels")
        var f = b.relu(try m.layerNorm(try b.matmul(tokens, k1, scope: "\(p)/bmm1"), "\(p).norm1"), scope: "\(p).activation")
        f = b.relu(try m.layerNorm(try b.matmul(f, k2, scope: "\(p)/bmm2"), "\(p).norm2"), scope: "\(p).activation")
        f = try b.reshape(f, [bn, f.shape[1] * c], scope: "\(p)/flatten")
        return b.relu(try m.layerNorm(try m.linear(f, "\(p).out_layer", out: c), "\(p).norm3"), scope: "\(p).activation")
    }

    /// `_tower`: `blocks` × [Linear (no bias), LayerNorm, ReLU], module indices 3i and 3i + 1.
    func tower(_ x: Value, _ module: String, blocks: Int) throws -> Value {
        var h = x
        for i in 0..<blocks {
            let l = try m.linear(h, name("\(module).\(3 * i)"), out: config.hiddenDim, bias: false)
            h = b.relu(try m.layerNorm(l, name("\(module).\(3 * i + 1)")), scope: name("\(module).\(3 * i + 2)"))
        }
        return h
    }
}
