import Foundation
import PSEdgeIR

extension GraphBuilder {
    /// torchvision `roi_align` of `x` [B, C, H, W] over `rois` [K, 4] (x1, y1, x2, y2 in input pixels) from the images
    /// `batchIndices` [K] (int64): [K, C, outH, outW]. aligned=True is ONNX `half_pixel`, False `output_half_pixel`.
    func roiAlign(_ x: Value, rois: Value, batchIndices: Value, output: (height: Int, width: Int), spatialScale: Float,
                  samplingRatio: Int, aligned: Bool, scope: String) -> Value {
        node("RoiAlign", [x, rois, batchIndices],
             ["output_height": .int(output.height), "output_width": .int(output.width), "spatial_scale": .float(spatialScale),
              "sampling_ratio": .int(samplingRatio), "mode": .string("avg"),
              "coordinate_transformation_mode": .string(aligned ? "half_pixel" : "output_half_pixel")],
             scope: scope, outputs: [TensorType(.float32, static: [rois.shape[0], x.shape[1], output.height, output.width])])[0]
    }

    /// Detectron2's ROIPooler with ROIAlignV2 (tools/psref/psdiff.py `MultiLevelRoIPooler`): each box of `boxes`
    /// [B, N, 4] is pooled from the level floor(canonicalLevel + log2(sqrt(area) / canonicalSize + 1e-8)), clamped to
    /// the levels of `features` (one per stride, finest first, consecutive). The level depends on the data, so every
    /// level is pooled for every box and the assigned one chosen with Where (as the ONNX export does; exact).
    /// Returns [B·N, C, resolution, resolution], image-major.
    func multiLevelRoIAlign(_ features: [Value], boxes: Value, strides: [Int], resolution: Int, samplingRatio: Int,
                            canonicalSize: Double, canonicalLevel: Int, scope p: String) throws -> Value {
        guard boxes.rank == 3, boxes.shape[2] == 4, features.count == strides.count, !features.isEmpty else {
            throw PSEdgeError.shape("\(p): boxes \(boxes) should be [B, N, 4], with one stride per feature map")
        }
        let (batch, n) = (boxes.shape[0], boxes.shape[1])
        let flat = try reshape(boxes, [batch * n, 4], scope: "\(p)/rois")
        let images = constant(Tensor(int64: (0..<batch).flatMap { [Int64](repeating: Int64($0), count: n) }, shape: [batch * n]),
                              name: "\(p)/batch_indices")
        let level = try assignLevels(flat, strides: strides, canonicalSize: canonicalSize, canonicalLevel: canonicalLevel,
                                     scope: "\(p)/level")
        var out: Value?
        for (i, (feature, stride)) in zip(features, strides).enumerated() {
            let pooled = roiAlign(feature, rois: flat, batchIndices: images, output: (resolution, resolution),
                                  spatialScale: 1 / Float(stride), samplingRatio: samplingRatio, aligned: true, scope: "\(p).level\(i)")
            guard let previous = out else { out = pooled; continue }
            let isLevel = try binary("Equal", level, scalar(Float(i), name: "\(p)/level\(i)"), scope: "\(p).level\(i)/select")
            let mask = try reshape(isLevel, [batch * n, 1, 1, 1], scope: "\(p).level\(i)/select")
            out = node("Where", [mask, pooled, previous], scope: "\(p).level\(i)/select",
                       outputs: [TensorType(.float32, static: pooled.shape)])[0]
        }
        return out!
    }

    /// The level index (0 = finest) of each roi [K, 4] as float [K, 1], by torch's formula and op order.
    private func assignLevels(_ rois: Value, strides: [Int], canonicalSize: Double, canonicalLevel: Int, scope p: String) throws -> Value {
        let minLevel = Int(log2(Double(strides.first!)).rounded()), maxLevel = Int(log2(Double(strides.last!)).rounded())
        let c = try split(rois, sizes: [1, 1, 1, 1], axis: 1, scope: p)
        let area = try mul(try binary("Sub", c[2], c[0], scope: p), try binary("Sub", c[3], c[1], scope: p), scope: p)
        let size = try div(unary("Sqrt", area, scope: p), scalar(Float(canonicalSize), name: "\(p)/canonical_size"), scope: p)
        let log = unary("Log", try add(size, scalar(1e-8, name: "\(p)/eps"), scope: p), scope: p)
        let log2 = try div(log, scalar(Float(M_LN2), name: "\(p)/ln2"), scope: p)
        let level = unary("Floor", try add(log2, scalar(Float(canonicalLevel), name: "\(p)/canonical_level"), scope: p), scope: p)
        let clamped = node("Clip", [level, scalar(Float(minLevel), name: "\(p)/min"), scalar(Float(maxLevel), name: "\(p)/max")],
                           scope: p, outputs: [TensorType(.float32, static: level.shape)])[0]
        return try binary("Sub", clamped, scalar(Float(minLevel), name: "\(p)/min"), scope: p)
    }
}
