import PSEdgeIR

/// torchvision's ShuffleNetV2 (`torchvision.models.shufflenetv2`) from a state dict with torchvision's names:
/// conv1.{0,1}, stage{2,3,4}.{i}.branch1.{0..3} (stride-2 units), stage{2,3,4}.{i}.branch2.{0..6}, conv5.{0,1}, fc.
/// PretrainPS's light backbone (its C4 = stage3, C5 = stage4).
///
/// Input `input` [N, 3, H, W]; output `logits`, or with `outputs` the named module outputs ("conv1", "maxpool",
/// "stage2", "stage3", "stage4", "conv5", "fc"); nothing after the last requested output is built.
public enum TorchvisionShuffleNetV2 {
    public struct Config: Sendable {
        public var stagesRepeats: [Int]
        /// conv1, stage2, stage3, stage4, conv5 output channels (x1.0: 24, 116, 232, 464, 1024).
        public var stagesOutChannels: [Int]
        public var numClasses: Int?
        public var batch = 1, height = 224, width = 224

        public init(stagesRepeats: [Int] = [4, 8, 4], stagesOutChannels: [Int] = [24, 116, 232, 464, 1024], numClasses: Int? = nil) {
            (self.stagesRepeats, self.stagesOutChannels, self.numClasses) = (stagesRepeats, stagesOutChannels, numClasses)
        }

        /// {"stages_repeats": [4, 8, 4], "stages_out_channels": [24, 116, 232, 464, 1024], "num_classes": 1000,
        /// "input_size": [224, 224], "batch": 1}
        public static func load(path: String) throws -> Config {
            var r = try ConfigReader(path: path, what: "ShuffleNetV2")
            var c = Config()
            if let f = try r.field("stages_repeats") { c.stagesRepeats = try f.ints() }
            if let f = try r.field("stages_out_channels") { c.stagesOutChannels = try f.ints() }
            r.known.formUnion(["stages_repeats", "stages_out_channels", "input_size"])
            c.numClasses = try r.optionalInt("num_classes")
            c.batch = try r.int("batch", default: 1)
            if let size = try r.field("input_size") {
                let hw = try size.ints()
                guard hw.count == 2 else { throw size.error("should be [height, width]") }
                (c.height, c.width) = (hw[0], hw[1])
            }
            try r.checkUnknown(ignored: [])
            return c
        }

        /// Repeats and channels read off a torchvision state dict.
        public static func infer(from weights: StateDict) throws -> Config {
            var repeats: [Int] = []
            var channels: [Int] = []
            guard let c1 = weights.shape(of: "conv1.0.weight")?.first else {
                throw PSEdgeError.unsupported("\(weights.source) does not look like a torchvision ShuffleNetV2 (no conv1.0.weight)")
            }
            channels.append(c1)
            for stage in 2...4 {
                var n = 0
                while weights.contains("stage\(stage).\(n).branch2.0.weight") { n += 1 }
                guard n > 0, let bf = weights.shape(of: "stage\(stage).0.branch2.0.weight")?.first else {
                    throw PSEdgeError.unsupported("\(weights.source): no stage\(stage) units (not a torchvision ShuffleNetV2)")
                }
                repeats.append(n)
                channels.append(2 * bf)
            }
            guard let c5 = weights.shape(of: "conv5.0.weight")?.first else { throw PSEdgeError.unsupported("\(weights.source): no conv5.0.weight") }
            channels.append(c5)
            return Config(stagesRepeats: repeats, stagesOutChannels: channels, numClasses: weights.shape(of: "fc.weight")?.first)
        }
    }

    static let bnEpsilon: Float = 1e-5

    public static func build(config c: Config, weights: StateDict, outputs: [String] = []) throws -> Graph {
        guard c.stagesRepeats.count == 3, c.stagesOutChannels.count == 5, c.stagesRepeats.allSatisfy({ $0 >= 1 }),
              c.stagesOutChannels.allSatisfy({ $0 >= 1 }), c.stagesOutChannels[1...3].allSatisfy({ $0 % 2 == 0 }) else {
            throw PSEdgeError.invalid("ShuffleNetV2 config: need 3 positive stage repeats and 5 positive channel counts (stages even)")
        }
        guard c.batch >= 1, c.height >= 1, c.width >= 1 else { throw PSEdgeError.invalid("ShuffleNetV2 config: batch and input size must be positive") }
        let b = GraphBuilder(name: "shufflenet_v2")
        var taps = try Taps(outputs.isEmpty ? ["fc"] : outputs)
        let graph = try b.finish(taps: &taps, model: "ShuffleNetV2", outputNames: outputs.isEmpty ? ["fc": "logits"] : [:]) { taps in
            let x = b.input("input", shape: [c.batch, 3, c.height, c.width])

            /// Conv (no bias) + BatchNorm (+ ReLU) of a torchvision Sequential: weights at `seq.conv`, `seq.bn`.
            func convBN(_ x: Value, _ seq: String, conv: Int, bn: Int, out: Int, k: Int, stride: Int, groups: Int = 1, relu: Bool) throws -> Value {
                let w = try weights.tensor("\(seq).\(conv).weight", [out, x.shape[1] / groups, k, k])
                var y = try b.conv2d(x, weight: w, bias: nil, stride: stride, pads: [Int](repeating: k / 2, count: 4), groups: groups,
                                     scope: "\(seq).\(conv)")
                weights.ignore("\(seq).\(bn).num_batches_tracked")
                y = b.batchNorm(y, scale: try weights.tensor("\(seq).\(bn).weight", [out]), bias: try weights.tensor("\(seq).\(bn).bias", [out]),
                                mean: try weights.tensor("\(seq).\(bn).running_mean", [out]),
                                variance: try weights.tensor("\(seq).\(bn).running_var", [out]), epsilon: bnEpsilon, scope: "\(seq).\(bn)")
                return relu ? b.relu(y, scope: "\(seq).relu") : y
            }

            var h = try convBN(x, "conv1", conv: 0, bn: 1, out: c.stagesOutChannels[0], k: 3, stride: 2, relu: true)
            try taps.offer("conv1", h)
            h = b.maxPool(h, kernel: 3, stride: 2, pad: 1, scope: "maxpool")
            try taps.offer("maxpool", h)
            for (s, repeats) in c.stagesRepeats.enumerated() {
                let name = "stage\(s + 2)", out = c.stagesOutChannels[s + 1], bf = out / 2
                for i in 0..<repeats {
                    let p = "\(name).\(i)", stride = i == 0 ? 2 : 1
                    var left: Value, right: Value
                    if stride > 1 {
                        let inp = h.shape[1]
                        left = try convBN(h, "\(p).branch1", conv: 0, bn: 1, out: inp, k: 3, stride: stride, groups: inp, relu: false)
                        left = try convBN(left, "\(p).branch1", conv: 2, bn: 3, out: bf, k: 1, stride: 1, relu: true)
                        right = h
                    } else {
                        let halves = try b.split(h, sizes: [h.shape[1] / 2, h.shape[1] / 2], axis: 1, scope: "\(p)/chunk")
                        (left, right) = (halves[0], halves[1])
                    }
                    right = try convBN(right, "\(p).branch2", conv: 0, bn: 1, out: bf, k: 1, stride: 1, relu: true)
                    right = try convBN(right, "\(p).branch2", conv: 3, bn: 4, out: bf, k: 3, stride: stride, groups: bf, relu: false)
                    right = try convBN(right, "\(p).branch2", conv: 5, bn: 6, out: bf, k: 1, stride: 1, relu: true)
                    h = try channelShuffle(try b.concat([left, right], axis: 1, scope: "\(p)/cat"), groups: 2, b, scope: "\(p)/shuffle")
                    try taps.offer(p, h)
                }
                try taps.offer(name, h)
            }
            h = try convBN(h, "conv5", conv: 0, bn: 1, out: c.stagesOutChannels[4], k: 1, stride: 1, relu: true)
            try taps.offer("conv5", h)
            h = b.flatten(b.globalAveragePool(h, scope: "mean"), scope: "flatten")
            let classes = c.numClasses ?? weights.shape(of: "fc.weight")?.first ?? 1000
            h = try b.linear(h, weight: try weights.tensor("fc.weight", [classes, h.shape[1]]), bias: try weights.tensor("fc.bias", [classes]), scope: "fc")
            try taps.offer("fc", h)
        }
        var g = graph
        g.metadata["builder"] = "TorchvisionShuffleNetV2 \(c.stagesRepeats) \(c.stagesOutChannels)"
        return g
    }

    /// [N, C, H, W] → [N, g, C/g, H, W] → swap the group axes → [N, C, H, W].
    static func channelShuffle(_ x: Value, groups: Int, _ b: GraphBuilder, scope: String) throws -> Value {
        let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let r = try b.reshape(x, [n, groups, ch / groups, h, w], scope: scope + "/split")
        return try b.reshape(b.transpose(r, [0, 2, 1, 3, 4], scope: scope + "/transpose"), [n, ch, h, w], scope: scope + "/merge")
    }
}
