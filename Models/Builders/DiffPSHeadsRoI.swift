import PSEdgeIR

/// DiffPS RoI heads (tools/psref/diffps.py, SEAS modules): the detection box head (`ResNetHead` layer4 +
/// `BoxPredictor`) and the re-ID head (SFAN, layer4 enhancer, multi-granularity embedder, L2 normalisation).
struct DiffPSRoIHeads {
    let m: TorchModules
    let config: DiffPSHeads.Config
    var b: GraphBuilder { m.b }

    /// rois [n, D, h, w] -> (cls_logits [n, 2], box_regression [n, 4]).
    func boxHead(_ rois: Value) throws -> (logits: Value, regression: Value) {
        let p = "detection_roi_heads"
        let features = try resNetHead(rois, "\(p).box_head.layer4")
        let v = b.reduceMean(features, axes: [2, 3], keepDims: false, scope: "\(p).box_predictor/mean")
        let logits = try m.linear(v, "\(p).box_predictor.classifier", out: 2)
        let regression = try m.batchNorm(try m.linear(v, "\(p).box_predictor.regressor.fc", out: 4, bias: false),
                                         "\(p).box_predictor.regressor.bn")
        return (logits, regression)
    }

    /// rois [n, D, h, w] -> L2-normalised embeddings [n, dim_identity].
    func reidHead(_ rois: Value) throws -> Value {
        let p = "reid_roi_heads"
        let x = try sfan(rois, "\(p).sfan")
        let headOutput = try resNetHead(x, "\(p).enhancer.body.layer4")
        let dims = Self.split(config.dimIdentity, 2)
        var parts: [Value] = []
        for (i, (input, d)) in zip([x, headOutput], dims).enumerated() {
            parts.append(try multiGranularityEmbedding(input, "\(p).embedder.encoders.\(i)", out: d))
        }
        let embedding = try b.concat(parts, axis: 1, scope: "\(p).embedder")
        ["reid_loss.lut", "reid_loss.cq"].forEach { m.weights.ignore("\(p).\($0)") }  // OIM training state
        return try b.l2Normalize(embedding, axis: -1, scope: "\(p)/normalize")
    }

    /// torchvision ResNet-50 layer4 (first block stride 2 with a 1x1 stride-2 downsample, then two blocks):
    /// D -> 4 × head_width at half the size.
    func resNetHead(_ x: Value, _ p: String) throws -> Value {
        let width = config.headWidth, out = 4 * config.headWidth
        var h = x
        for i in 0..<3 {
            let q = "\(p).\(i)", stride = i == 0 ? 2 : 1
            var y = b.relu(try convBN(h, "\(q).conv1", "\(q).bn1", out: width, k: 1), scope: "\(q).relu")
            y = b.relu(try convBN(y, "\(q).conv2", "\(q).bn2", out: width, k: 3, stride: stride), scope: "\(q).relu")
            y = try convBN(y, "\(q).conv3", "\(q).bn3", out: out, k: 1)
            let shortcut = i == 0 ? try convBN(h, "\(q).downsample.0", "\(q).downsample.1", out: out, k: 1, stride: stride) : h
            h = b.relu(try b.add(y, shortcut, scope: "\(q)/residual"), scope: "\(q).relu")
        }
        return h
    }

    func convBN(_ x: Value, _ conv: String, _ bn: String, out: Int, k: Int, stride: Int = 1) throws -> Value {
        try m.batchNorm(try m.conv(x, conv, out: out, k: k, stride: stride), bn)
    }

    /// SFAN: x + α (gate ⊙ x - x), gate = softmax over parts of cos(x[:, :, y, x], text_p) · softmax(part_weights).
    func sfan(_ x: Value, _ p: String) throws -> Value {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let parts = config.numParts
        let f = b.transpose(try b.reshape(try b.l2Normalize(x, axis: 1, scope: "\(p)/normalize_features"), [n, c, h * w], scope: p),
                            [0, 2, 1], scope: p)
        let text = try b.l2Normalize(try m.parameter("text_embeds", [parts, config.textDim]), axis: 1, scope: "\(p)/normalize_text")
        let similarity = b.softmax(try b.matmul(f, b.transpose(text, [1, 0], scope: p), scope: p), axis: -1, scope: "\(p)/softmax_parts")
        let weights = b.softmax(try b.reshape(try m.parameter("\(p).part_weights", [parts]), [parts, 1], scope: p), axis: 0,
                                scope: "\(p)/softmax_weights")
        let gate = try b.reshape(try b.matmul(similarity, weights, scope: "\(p)/gate"), [n, 1, h, w], scope: "\(p)/gate")
        let delta = try b.binary("Sub", try b.mul(gate, x, scope: p), x, scope: p)
        return try b.add(x, try b.mul(try m.scalar("\(p).alpha"), delta, scope: p), scope: p)
    }

    /// MultiGranularityEmbedding: branch k (1…branches) cuts the height into k strips, each projected by a
    /// StripProjector; output dims `split(out, branches)`, then `split(d_k, k)` per strip.
    func multiGranularityEmbedding(_ x: Value, _ p: String, out: Int) throws -> Value {
        var outputs: [Value] = []
        for (k, d) in Self.split(out, config.mgeBranches).enumerated() {
            let strips = try b.split(x, sizes: Self.split(x.shape[2], k + 1), axis: 2, scope: "\(p).branches.\(k)/strips")
            for (j, (strip, dj)) in zip(strips, Self.split(d, k + 1)).enumerated() {
                outputs.append(try stripProjector(strip, "\(p).branches.\(k).strip_projectors.\(j)", out: dj))
            }
        }
        return try b.concat(outputs, axis: 1, scope: p)
    }

    /// StripProjector: RobustCBAM, global max pool, Linear (no bias), BatchNorm1d (DropPath is the identity).
    func stripProjector(_ x: Value, _ p: String, out: Int) throws -> Value {
        let c = x.shape[1], cbam = "\(p).cbam"
        // Channel attention: sigmoid(mlp(mean) + mlp(max)).
        func mlp(_ v: Value) throws -> Value {
            let body = "\(cbam).channel_attention.body"
            let neck = c / config.cbamReduction
            return try m.linear(b.relu(try m.linear(v, "\(body).fc1", out: neck), scope: "\(body).relu"), "\(body).fc2", out: c)
        }
        let avg = b.reduceMean(x, axes: [2, 3], keepDims: false, scope: "\(cbam).channel_attention/mean")
        let mx = b.reduce("ReduceMax", x, axes: [2, 3], keepDims: false, scope: "\(cbam).channel_attention/max")
        let ca = b.sigmoid(try b.add(try mlp(avg), try mlp(mx), scope: "\(cbam).channel_attention"), scope: "\(cbam).channel_attention")
        var y = try b.mul(x, try b.reshape(ca, [x.shape[0], c, 1, 1], scope: "\(cbam).channel_attention"), scope: "\(cbam).channel_attention")
        // Spatial attention: sigmoid(conv7x7([mean over C, max over C])).
        let sa = "\(cbam).spatial_attention"
        let pooled = try b.concat([b.reduceMean(y, axes: [1], keepDims: true, scope: "\(sa)/mean"),
                                   b.reduce("ReduceMax", y, axes: [1], keepDims: true, scope: "\(sa)/max")], axis: 1, scope: sa)
        y = try b.mul(y, b.sigmoid(try m.conv(pooled, "\(sa).body", out: 1, k: 7, bias: true), scope: sa), scope: sa)
        let v = b.flatten(b.node("GlobalMaxPool", [y], scope: "\(p).gmp", outputs: [TensorType(.float32, static: [y.shape[0], c, 1, 1])])[0],
                          scope: "\(p).flatten")
        m.weights.ignore("\(p).drop_path.keep_prob")
        return try m.batchNorm(try m.linear(v, "\(p).linear", out: out, bias: false), "\(p).norm")
    }

    /// SEAS `num_split`: floor(num / parts) each, the remainder spread over the first ones (512 -> 171, 171, 170).
    static func split(_ num: Int, _ parts: Int) -> [Int] {
        (0..<parts).map { num / parts + ($0 < num % parts ? 1 : 0) }
    }
}
