import PSEdgeIR

extension DiffPSHeads {
    /// `DiffPSConfig` of tools/psref/diffps.py (same keys, same defaults); the settings that shape the head graphs.
    /// Post-processing settings (NMS, thresholds, DGRPN, top-k) are read by the pipeline.
    public struct Config: Sendable {
        /// Channels of the level-1, level-2 and level-3 UNet taps.
        public var tapChannels = [1280, 640, 320]
        /// D: aggregated feature channels.
        public var projDim = 1024
        /// layer4 bottleneck width (output 4 × width).
        public var headWidth = 512
        public var textDim = 1024
        /// (height, width) of the network input.
        public var imageSize = [1280, 1280]
        public var anchorSizes = [32, 64, 128, 256, 512]
        public var aspectRatios: [Double] = [0.5, 1.0, 2.0]
        public var detRoiSize = [14, 14]
        public var reidRoiSize = [24, 12]
        public var dimIdentity = 1024
        public var mgeBranches = 3
        public var cbamReduction = 16
        public var numParts = 4
        /// Default box counts the RoI heads are built for (RPN proposals kept; detections per image).
        public var rpnPostNmsTopN = 300
        public var detPerImage = 300

        public init() {}

        static let sections = ["config"]
        /// Post-processing and training settings; they do not change the head graphs.
        static let pipelineKeys: Set<String> = [
            "rpn_pre_nms_top_n", "rpn_nms_thresh", "rpn_score_thresh", "rpn_min_size", "dgrpn_tau", "dgrpn_delta",
            "dgrpn_peak_window", "dgrpn_neigh_window", "dgrpn_topk", "dgrpn_init_beta", "dgrpn_init_gamma", "attn_head",
            "attn_token", "det_score_thresh", "det_nms_thresh", "det_min_size", "det_bbox_weights", "drop_path",
            "roi_sampling_ratio", "oim_num_pids", "oim_cq_size",
        ]

        public static func load(path: String) throws -> Config {
            var file = try HeadConfigFile(path: path, sections: sections, what: "DiffPS")
            return try Config(reading: &file.settings)
        }

        init(reading r: inout ConfigReader) throws {
            func ints(_ key: String, _ d: [Int], count: Int?) throws -> [Int] {
                r.known.insert(key)
                guard let f = try r.field(key) else { return d }
                let v = try f.ints()
                if let count, v.count != count { throw f.error("should have \(count) values, has \(v.count)") }
                return v
            }
            tapChannels = try ints("tap_channels", tapChannels, count: 3)
            projDim = try r.int("proj_dim", default: projDim)
            headWidth = try r.int("head_width", default: headWidth)
            textDim = try r.int("text_dim", default: textDim)
            imageSize = try ints("image_size", imageSize, count: 2)
            anchorSizes = try ints("anchor_sizes", anchorSizes, count: nil)
            r.known.insert("aspect_ratios")
            if let f = try r.field("aspect_ratios") {
                aspectRatios = try f.array().map { e -> Double in
                    guard case .number(let s) = e.value, let v = Double(s) else { throw e.error("should be a number") }
                    return v
                }
            }
            detRoiSize = try ints("det_roi_size", detRoiSize, count: 2)
            reidRoiSize = try ints("reid_roi_size", reidRoiSize, count: 2)
            dimIdentity = try r.int("dim_identity", default: dimIdentity)
            mgeBranches = try r.int("mge_branches", default: mgeBranches)
            cbamReduction = try r.int("cbam_reduction", default: cbamReduction)
            numParts = try r.int("num_parts", default: numParts)
            rpnPostNmsTopN = try r.int("rpn_post_nms_top_n", default: rpnPostNmsTopN)
            detPerImage = try r.int("det_per_img", default: detPerImage)
            try r.checkUnknown(ignored: Self.pipelineKeys)
            try validate()
        }

        /// Anchors per feature-map cell (one level): sizes × aspect ratios.
        public var anchorsPerLocation: Int { anchorSizes.count * aspectRatios.count }

        func validate() throws {
            func bad(_ key: String, _ value: Any, _ why: String) -> PSEdgeError {
                PSEdgeError.unsupported("DiffPS config: \(key) = \(value) is not supported (\(why))")
            }
            for (k, v) in [("proj_dim", projDim), ("head_width", headWidth), ("dim_identity", dimIdentity),
                           ("mge_branches", mgeBranches), ("cbam_reduction", cbamReduction), ("num_parts", numParts),
                           ("rpn_post_nms_top_n", rpnPostNmsTopN), ("det_per_img", detPerImage)] where v < 1 {
                throw bad(k, v, "must be positive")
            }
            for (k, v) in [("tap_channels", tapChannels), ("image_size", imageSize), ("det_roi_size", detRoiSize),
                           ("reid_roi_size", reidRoiSize)] where v.contains(where: { $0 < 1 }) {
                throw bad(k, v, "must be positive")
            }
            guard textDim == projDim else { throw bad("text_dim", textDim, "SFAN needs text_dim == proj_dim (\(projDim))") }
            guard anchorsPerLocation > 0 else { throw bad("anchor_sizes/aspect_ratios", "empty", "the RPN needs anchors") }
            guard dimIdentity >= 2 * mgeBranches * mgeBranches else {
                throw bad("dim_identity", dimIdentity, "at least 2 × mge_branches² so every strip projector has an output")
            }
        }
    }
}
