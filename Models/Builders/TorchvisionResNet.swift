import PSEdgeIR

/// torchvision's ResNet (`torchvision.models.resnet`, v1.5: the stride sits on the 3x3 conv of a bottleneck)
/// from a state dict with torchvision's names: conv1, bn1, layer{1-4}.{i}.{conv1,bn1,conv2,bn2,conv3,bn3,
/// downsample.0,downsample.1}, fc. BatchNorm is emitted as inference BatchNormalization nodes (a later pass
/// can fold them into the convolutions).
///
/// Input `input` [N, 3, H, W]; output `logits` [N, num_classes], or, with `outputs`, the named module outputs
/// ("layer3" for a backbone feature map; "conv1", "bn1", "relu", "maxpool", "layer1"…"layer4", "layer2.1",
/// "avgpool", "flatten", "fc"). Nothing after the last requested output is built.
public enum TorchvisionResNet {
    public struct Config: Sendable {
        /// 18, 34 (BasicBlock) or 50, 101, 152 (Bottleneck).
        public var depth: Int
        /// nil: read from fc.weight (needed only when fc is built).
        public var numClasses: Int?
        public var widthPerGroup = 64
        public var groups = 1
        public var batch = 1
        public var height = 224
        public var width = 224

        public init(depth: Int, numClasses: Int? = nil, widthPerGroup: Int = 64, groups: Int = 1) {
            self.depth = depth
            self.numClasses = numClasses
            self.widthPerGroup = widthPerGroup
            self.groups = groups
        }

        /// {"depth": 50, "num_classes": 1000, "width_per_group": 64, "groups": 1, "input_size": [224, 224],
        /// "batch": 1}; "arch": "resnet50" may stand for depth.
        public static func load(path: String) throws -> Config {
            var r = try ConfigReader(path: path, what: "ResNet")
            var depth = try r.optionalInt("depth")
            if let arch = try r.string("arch", default: nil) {
                guard arch.hasPrefix("resnet"), let d = Int(arch.dropFirst(6)) else {
                    throw r.unsupported("arch", "\"\(arch)\"", supported: "resnet18, resnet34, resnet50, resnet101, resnet152")
                }
                if let depth, depth != d { throw PSEdgeError.invalid("ResNet config: arch \(arch) contradicts depth \(depth)") }
                depth = d
            }
            guard let depth else { throw PSEdgeError.invalid("ResNet config: missing 'depth' (or 'arch')") }
            var c = Config(depth: depth, numClasses: try r.optionalInt("num_classes"),
                           widthPerGroup: try r.int("width_per_group", default: 64), groups: try r.int("groups", default: 1))
            c.batch = try r.int("batch", default: 1)
            if let size = try r.field("input_size") {
                let hw = try size.ints()
                guard hw.count == 2 else { throw size.error("should be [height, width]") }
                (c.height, c.width) = (hw[0], hw[1])
            }
            r.known.insert("input_size")
            try r.require("replace_stride_with_dilation", in: ["null", "[false,false,false]"])
            try r.require("zero_init_residual", in: ["false", "true"])  // training-time init only
            try r.checkUnknown(ignored: [])
            return c
        }

        /// The configuration a torchvision state dict implies: block type and counts from its names, groups and
        /// width per group from layer1.0.conv2, classes from fc (torchvision checkpoints come without a config).
        public static func infer(from weights: StateDict) throws -> Config {
            let bottleneck = weights.contains("layer1.0.conv3.weight")
            var blocks: [Int] = []
            for stage in 1...4 {
                var n = 0
                while weights.contains("layer\(stage).\(n).conv1.weight") { n += 1 }
                blocks.append(n)
            }
            let depths: [([Int], Bool, Int)] = [([2, 2, 2, 2], false, 18), ([3, 4, 6, 3], false, 34), ([3, 4, 6, 3], true, 50),
                                               ([3, 4, 23, 3], true, 101), ([3, 8, 36, 3], true, 152)]
            guard let depth = depths.first(where: { $0.0 == blocks && $0.1 == bottleneck })?.2 else {
                throw PSEdgeError.unsupported("\(weights.source) does not look like a torchvision ResNet (blocks per layer \(blocks), "
                    + "\(bottleneck ? "bottleneck" : "basic") blocks); give --config with depth, num_classes, width_per_group, groups")
            }
            var c = Config(depth: depth, numClasses: weights.shape(of: "fc.weight")?.first)
            if bottleneck, let s = weights.shape(of: "layer1.0.conv2.weight"), s.count == 4, s[1] > 0, s[0] % s[1] == 0 {
                c.groups = s[0] / s[1]
                c.widthPerGroup = s[0] / c.groups
            }
            return c
        }

        /// (bottleneck?, blocks per stage)
        func layout() throws -> (bottleneck: Bool, blocks: [Int]) {
            switch depth {
            case 18: return (false, [2, 2, 2, 2])
            case 34: return (false, [3, 4, 6, 3])
            case 50: return (true, [3, 4, 6, 3])
            case 101: return (true, [3, 4, 23, 3])
            case 152: return (true, [3, 8, 36, 3])
            default: throw PSEdgeError.unsupported("ResNet config: depth = \(depth) is not supported (supported: 18, 34, 50, 101, 152)")
            }
        }
    }

    static let bnEpsilon: Float = 1e-5

    public static func build(config: Config, weights: StateDict, outputs: [String] = []) throws -> Graph {
        let (bottleneck, blocks) = try config.layout()
        guard config.groups >= 1, config.widthPerGroup >= 1 else {
            throw PSEdgeError.invalid("ResNet config: groups and width_per_group must be positive")
        }
        if !bottleneck && (config.groups != 1 || config.widthPerGroup != 64) {
            throw PSEdgeError.unsupported("ResNet config: BasicBlock (depth \(config.depth)) supports only groups = 1 and width_per_group = 64")
        }
        guard config.batch >= 1, config.height >= 1, config.width >= 1 else {
            throw PSEdgeError.invalid("ResNet config: batch and input size must be positive")
        }
        let b = GraphBuilder(name: "resnet\(config.depth)")
        var taps = try Taps(outputs.isEmpty ? ["fc"] : outputs)
        let graph = try b.finish(taps: &taps, model: "ResNet-\(config.depth)", outputNames: outputs.isEmpty ? ["fc": "logits"] : [:]) { taps in
            let x = b.input("input", shape: [config.batch, 3, config.height, config.width])

            func convBN(_ x: Value, _ conv: String, _ bn: String, out: Int, k: Int, stride: Int, groups: Int = 1) throws -> (Value, Value) {
                let w = try weights.tensor("\(conv).weight", [out, x.shape[1] / groups, k, k])
                let c = try b.conv2d(x, weight: w, bias: nil, stride: stride, pads: [Int](repeating: k / 2, count: 4),
                                     groups: groups, scope: conv)
                try taps.offer(conv, c)
                weights.ignore("\(bn).num_batches_tracked")
                let n = b.batchNorm(c, scale: try weights.tensor("\(bn).weight", [out]), bias: try weights.tensor("\(bn).bias", [out]),
                                    mean: try weights.tensor("\(bn).running_mean", [out]),
                                    variance: try weights.tensor("\(bn).running_var", [out]), epsilon: bnEpsilon, scope: bn)
                try taps.offer(bn, n)
                return (c, n)
            }

            var (_, h) = try convBN(x, "conv1", "bn1", out: 64, k: 7, stride: 2)
            h = b.relu(h, scope: "relu")
            try taps.offer("relu", h)
            h = b.maxPool(h, kernel: 3, stride: 2, pad: 1, scope: "maxpool")
            try taps.offer("maxpool", h)

            let expansion = bottleneck ? 4 : 1
            var inplanes = 64
            for (stage, count) in blocks.enumerated() {
                let planes = 64 << stage
                let layer = "layer\(stage + 1)"
                for i in 0..<count {
                    let p = "\(layer).\(i)"
                    let stride = (i == 0 && stage > 0) ? 2 : 1
                    let identity = h
                    var y: Value
                    if bottleneck {
                        let width = planes * config.widthPerGroup / 64 * config.groups
                        (_, y) = try convBN(h, "\(p).conv1", "\(p).bn1", out: width, k: 1, stride: 1)
                        y = b.relu(y, scope: "\(p).relu")
                        (_, y) = try convBN(y, "\(p).conv2", "\(p).bn2", out: width, k: 3, stride: stride, groups: config.groups)
                        y = b.relu(y, scope: "\(p).relu")
                        (_, y) = try convBN(y, "\(p).conv3", "\(p).bn3", out: planes * expansion, k: 1, stride: 1)
                    } else {
                        (_, y) = try convBN(h, "\(p).conv1", "\(p).bn1", out: planes, k: 3, stride: stride)
                        y = b.relu(y, scope: "\(p).relu")
                        (_, y) = try convBN(y, "\(p).conv2", "\(p).bn2", out: planes, k: 3, stride: 1)
                    }
                    var shortcut = identity
                    if stride != 1 || inplanes != planes * expansion {
                        (_, shortcut) = try convBN(identity, "\(p).downsample.0", "\(p).downsample.1",
                                                   out: planes * expansion, k: 1, stride: stride)
                        try taps.offer("\(p).downsample", shortcut)
                    }
                    h = b.relu(try b.add(y, shortcut, scope: "\(p)/residual"), scope: "\(p).relu")
                    inplanes = planes * expansion
                    try taps.offer(p, h)
                }
                try taps.offer(layer, h)
            }
            h = b.globalAveragePool(h, scope: "avgpool")
            try taps.offer("avgpool", h)
            h = b.flatten(h, scope: "flatten")
            try taps.offer("flatten", h)
            let classes = config.numClasses ?? weights.shape(of: "fc.weight")?.first ?? 1000
            h = try b.linear(h, weight: try weights.tensor("fc.weight", [classes, h.shape[1]]),
                             bias: try weights.tensor("fc.bias", [classes]), scope: "fc")
            try taps.offer("fc", h)
        }
        var g = graph
        g.metadata["builder"] = "TorchvisionResNet depth \(config.depth)"
        if outputs.isEmpty, !weights.unusedNames.isEmpty {
            g.metadata["unused_weights"] = weights.unusedNames.prefix(20).joined(separator: ",")
        }
        return g
    }
}
