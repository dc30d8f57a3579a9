import Foundation
import PSEdgeIR

/// DiffPS feature aggregation (tools/psref/diffps.py): `DetectionAggregationNetwork` on the level-3 self-attention
/// key tap -> det_agg, and the MSFRN `Frq_AggregationNetwork` (LPMs, level fusion with bilinear up-sampling, channel
/// LayerNorm, frequency refinement with Haar DWT/IDWT) on the seven re-ID taps -> feat_reid.
struct DiffPSAggregation {
    let m: TorchModules
    let config: DiffPSHeads.Config
    var b: GraphBuilder { m.b }

    static let detTap = tap(3, 0, "self-k")
    static let reidL1Tap = tap(1, 2, "self-q")
    static let reidL2Taps = [tap(2, 1, "self-v"), tap(2, 2, "self-q")]
    static let reidL3Taps = [tap(3, 0, "self-q"), tap(3, 0, "self-k"), tap(3, 0, "self-v"), tap(3, 1, "self-k")]
    /// The graph inputs, in the ONNX export's order; with the level (1…3) of each tap.
    static let inputs: [(name: String, level: Int)] = [(detTap, 3), (reidL1Tap, 1)] + reidL2Taps.map { ($0, 2) }
        + reidL3Taps.filter { $0 != detTap }.map { ($0, 3) }

    static func tap(_ level: Int, _ repeat_: Int, _ kind: String) -> String { "up-level\(level)-repeat\(repeat_)-vit-block0-\(kind)" }

    /// taps by name -> (det_agg, feat_reid).
    func forward(_ taps: [String: Value]) throws -> (detAgg: Value, featReid: Value) {
        let d = config.projDim
        let det = "detection_aggregation_network"
        var x = try m.batchNorm(try m.conv(taps[Self.detTap]!, "\(det).proj", out: d, k: 1), "\(det).bn1")
        x = try m.batchNorm(try m.conv(b.relu(x, scope: "\(det).relu"), "\(det).dw_conv", out: d, k: 3, groups: d), "\(det).bn2")
        return (x, try msfrn(taps))
    }

    func msfrn(_ taps: [String: Value]) throws -> Value {
        let p = "reid_frq_aggregation_network", d = config.projDim
        let l1 = try lpm(taps[Self.reidL1Tap]!, "\(p).lpm_1280")
        let l2Taps = Self.reidL2Taps.map { taps[$0]! }
        let l2In = try b.concat(try l2Taps.map { try lpm($0, "\(p).lpm_640") }, axis: 1, scope: "\(p)/cat_level2")
        var l2 = try b.add(try m.conv(l2In, "\(p).conv_level2", out: d, k: 1),
                           try upsample(l1, like: l2Taps[0], scope: "\(p)/up_level1"), scope: "\(p)/level2")
        // LayerNorm over the channels: NCHW -> NHWC -> LN -> NCHW.
        l2 = b.transpose(try m.layerNorm(b.transpose(l2, [0, 2, 3, 1], scope: "\(p).layer_norm"), "\(p).layer_norm"),
                         [0, 3, 1, 2], scope: "\(p).layer_norm")
        l2 = try frm(l2, "\(p).frm_level2")
        let l3Taps = Self.reidL3Taps.map { taps[$0]! }
        let l3In = try b.concat(try l3Taps.map { try lpm($0, "\(p).lpm_320") }, axis: 1, scope: "\(p)/cat_level3")
        let l3 = try b.add(try m.conv(l3In, "\(p).conv_level3", out: d, k: 1),
                           try upsample(l2, like: l3Taps[0], scope: "\(p)/up_level2"), scope: "\(p)/level3")
        return try m.conv(try frm(l3, "\(p).frm_level3"), "\(p).final_conv", out: d, k: 1)
    }

    /// F.interpolate(x, size of `like`, mode="bilinear", align_corners=False).
    func upsample(_ x: Value, like: Value, scope: String) throws -> Value {
        let shape = [x.shape[0], x.shape[1], like.shape[2], like.shape[3]]
        return b.node("Resize", [x, nil, nil, b.int64s(shape)],
                      ["mode": .string("linear"), "coordinate_transformation_mode": .string("pytorch_half_pixel")],
                      scope: scope, outputs: [TensorType(.float32, static: shape)])[0]
    }

    /// LPM: 1x1, BN, ReLU, depthwise 3x3, BN, ReLU, 1x1, BN.
    func lpm(_ x: Value, _ p: String) throws -> Value {
        let d = config.projDim
        var h = b.relu(try m.batchNorm(try m.conv(x, "\(p).conv1", out: d, k: 1), "\(p).bn1"), scope: "\(p).relu")
        h = b.relu(try m.batchNorm(try m.conv(h, "\(p).dw_conv", out: d, k: 3, groups: d), "\(p).bn2"), scope: "\(p).relu")
        return try m.batchNorm(try m.conv(h, "\(p).conv2", out: d, k: 1), "\(p).bn3")
    }

    /// FRM: DWT, SRB-refined and γ-scaled high bands (LL passes through), IDWT, + x.
    func frm(_ x: Value, _ p: String) throws -> Value {
        try checkHaarBuffers(p)
        let (ll, bands) = try b.haarDWT(x, scope: "\(p).DWT")
        var refined: [Value] = []
        for (band, name) in zip(bands, ["lh", "hl", "hh"]) {
            refined.append(try b.mul(try m.scalar("\(p).gamma_\(name)"), try srb(band, "\(p).srb_\(name)"), scope: "\(p)/gamma_\(name)"))
        }
        return try b.add(try b.haarIDWT(ll: ll, bands: refined, scope: "\(p).IDWT"), x, scope: "\(p)/residual")
    }

    /// SRB: depthwise 3x3, 1x1, BN, ReLU, then · sigmoid(1x1 conv (bias) of the spatial mean).
    func srb(_ x: Value, _ p: String) throws -> Value {
        let d = x.shape[1]
        let h = try m.conv(try m.conv(x, "\(p).dw_conv", out: d, k: 3, groups: d), "\(p).pw_conv", out: d, k: 1)
        let out = b.relu(try m.batchNorm(h, "\(p).bn"), scope: "\(p).relu")
        let mean = b.reduceMean(out, axes: [2, 3], keepDims: true, scope: "\(p)/mean")
        let att = b.sigmoid(try m.conv(mean, "\(p).attention", out: d, k: 1, bias: true), scope: "\(p)/sigmoid")
        return try b.mul(out, att, scope: "\(p)/scale")
    }

    /// The DWT/IDWT buffers must hold the Haar filters the graph hard-codes (as `load_diffps_checkpoint` checks).
    func checkHaarBuffers(_ p: String) throws {
        let s = Float(1 / 2.0.squareRoot())
        for (module, filters) in [("DWT", ["h0", "h1"]), ("IDWT", ["g0", "g1"])] {
            for (i, f) in filters.enumerated() {
                for (axis, shape) in [("col", [1, 1, 2, 1]), ("row", [1, 1, 1, 2])] {
                    let name = "\(p).\(module).\(f)_\(axis)"
                    let v = try m.weights.tensor(name, shape).floats
                    let expected: [Float] = i == 0 ? [s, s] : [s, -s]
                    guard zip(v, expected).allSatisfy({ abs($0 - $1) <= 1e-6 }) else {
                        throw PSEdgeError.unsupported("\(m.weights.source): '\(name)' = \(v) is not the Haar filter \(expected); only Haar wavelets are supported")
                    }
                }
            }
        }
    }
}
