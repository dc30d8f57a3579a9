import Foundation
import PSEdgeIR

extension PSDiffHeadBuilder {
    /// `PSDiffConfig` of tools/psref/psdiff.py (same keys, same defaults); only the settings that shape the head graph
    /// are kept, the sampler's (timesteps, scales, renewal, NMS…) are read by the pipeline.
    public struct Config: Sendable {
        /// C: RoI feature channels = re-ID embedding dimension.
        public var hiddenDim = 256
        public var dimFeedforward = 2048
        /// Attention heads of self_attn and cross_attn (`nheads`).
        public var attentionHeads = 8
        /// CDLs in head_series (`num_heads`).
        public var layers = 1
        public var numCls = 1
        public var numReg = 3
        public var numReid = 1
        public var numDynamic = 2
        public var dimDynamic = 64
        public var numClasses = 1
        public var poolerResolution = 7
        public var samplingRatio = 2
        public var canonicalSize = 224.0
        public var canonicalLevel = 4
        /// One FPN level per stride, p{log2(stride)}: [4, 8, 16, 32] is p2..p5.
        public var fpnStrides = [4, 8, 16, 32]
        /// N, the default number of boxes the graph is built for.
        public var numProposals = 300

        public init() {}

        /// Sections a config.json may keep the head settings under.
        static let sections = ["head_config", "config"]
        /// Settings of the sampler and of training; they do not change the head graph.
        static let samplerKeys: Set<String> = [
            "prior_prob", "timesteps", "box_scale", "emb_scale", "ddim_eta", "box_renewal", "renewal_threshold",
            "use_ensemble", "ensemble_include_last", "use_nms", "nms_thresh", "backbone", "pixel_mean", "pixel_std",
        ]

        public static func load(path: String) throws -> Config {
            var file = try HeadConfigFile(path: path, sections: sections, what: "PSDiff head")
            return try Config(reading: &file.settings)
        }

        init(reading r: inout ConfigReader) throws {
            hiddenDim = try r.int("hidden_dim", default: hiddenDim)
            dimFeedforward = try r.int("dim_feedforward", default: dimFeedforward)
            attentionHeads = try r.int("nheads", default: attentionHeads)
            layers = try r.int("num_heads", default: layers)
            numCls = try r.int("num_cls", default: numCls)
            numReg = try r.int("num_reg", default: numReg)
            numReid = try r.int("num_reid", default: numReid)
            numDynamic = try r.int("num_dynamic", default: numDynamic)
            dimDynamic = try r.int("dim_dynamic", default: dimDynamic)
            numClasses = try r.int("num_classes", default: numClasses)
            poolerResolution = try r.int("pooler_resolution", default: poolerResolution)
            samplingRatio = try r.int("pooler_sampling_ratio", default: samplingRatio)
            canonicalSize = try r.double("pooler_canonical_size", default: canonicalSize)
            canonicalLevel = try r.int("pooler_canonical_level", default: canonicalLevel)
            numProposals = try r.int("num_proposals", default: numProposals)
            r.known.insert("fpn_strides")
            if let f = try r.field("fpn_strides") { fpnStrides = try f.ints() }
            try r.checkUnknown(ignored: Self.samplerKeys)
            try validate()
        }

        /// The FPN level of each stride (2 for stride 4).
        public var levels: [Int] { fpnStrides.map { Int(log2(Double($0)).rounded()) } }
        /// The feature inputs, "p2"…
        public var featureNames: [String] { levels.map { "p\($0)" } }

        func validate() throws {
            func bad(_ key: String, _ value: Any, _ why: String) -> PSEdgeError {
                PSEdgeError.unsupported("PSDiff head config: \(key) = \(value) is not supported (\(why))")
            }
            guard !fpnStrides.isEmpty, fpnStrides.allSatisfy({ $0 > 0 && $0 & ($0 - 1) == 0 }),
                  zip(fpnStrides, fpnStrides.dropFirst()).allSatisfy({ $1 == 2 * $0 }) else {
                throw bad("fpn_strides", fpnStrides, "powers of two, each twice the one before, as the level assignment needs")
            }
            guard hiddenDim >= 4, hiddenDim % 2 == 0 else { throw bad("hidden_dim", hiddenDim, "an even number >= 4") }
            guard attentionHeads > 0, hiddenDim % attentionHeads == 0 else {
                throw bad("nheads", attentionHeads, "it must divide hidden_dim \(hiddenDim)")
            }
            guard numDynamic >= 2 else { throw bad("num_dynamic", numDynamic, "at least 2: the dynamic convolution uses two kernels") }
            for (k, v) in [("num_heads", layers), ("num_reid", numReid), ("dim_dynamic", dimDynamic), ("num_classes", numClasses),
                           ("dim_feedforward", dimFeedforward), ("pooler_resolution", poolerResolution), ("num_proposals", numProposals)]
                where v < 1 {
                throw bad(k, v, "must be positive")
            }
            guard numCls >= 0, numReg >= 0 else { throw bad("num_cls/num_reg", "\(numCls)/\(numReg)", "must not be negative") }
            guard samplingRatio >= 0 else { throw bad("pooler_sampling_ratio", samplingRatio, "0 (adaptive) or positive") }
            guard canonicalSize > 0 else { throw bad("pooler_canonical_size", canonicalSize, "must be positive") }
        }
    }

    /// The sizes the graph is built for (PSEdge graphs are static).
    public struct InputShapes: Sendable {
        public var batch = 1
        /// N; nil: the config's num_proposals.
        public var proposals: Int?
        /// [height, width] of each feature map, finest level first.
        public var featureSizes: [[Int]] = []

        public init(batch: Int = 1, proposals: Int? = nil, featureSizes: [[Int]] = []) {
            self.batch = batch
            self.proposals = proposals
            self.featureSizes = featureSizes
        }
    }
}
