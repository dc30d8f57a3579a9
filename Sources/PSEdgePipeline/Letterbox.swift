import PSEdgeImage
import PSEdgeIR

/// Fits an image into the network input: scale = min(W/w, H/h), bilinear resize, placed at the top-left, the rest
/// zero after normalisation. Boxes in the network input map back to the image by dividing by `scale`.
public struct Letterbox: Sendable {
    public let inputWidth: Int, inputHeight: Int
    public let mean: [Float], std: [Float]

    public init(width: Int, height: Int, mean: [Float], std: [Float]) {
        (inputWidth, inputHeight, self.mean, self.std) = (width, height, mean, std)
    }

    public struct Placement: Sendable, Equatable {
        /// Network pixels per image pixel.
        public var scale: Float
        /// The resized image's size inside the input (the rest is padding).
        public var width: Int, height: Int
        public var imageWidth: Int, imageHeight: Int

        /// A network-input box in image pixels, clipped to the image.
        public func toImage(_ b: Box) -> Box {
            b.scaled(by: 1 / scale).clipped(width: Float(imageWidth), height: Float(imageHeight))
        }
        public func toNetwork(_ b: Box) -> Box { b.scaled(by: scale) }
    }

    public func placement(imageWidth w: Int, imageHeight h: Int) -> Placement {
        let s = min(Double(inputWidth) / Double(w), Double(inputHeight) / Double(h))
        let nw = min(inputWidth, max(1, Int((Double(w) * s).rounded())))
        let nh = min(inputHeight, max(1, Int((Double(h) * s).rounded())))
        return Placement(scale: Float(s), width: nw, height: nh, imageWidth: w, imageHeight: h)
    }

    /// [1, 3, H, W] float32, normalised.
    public func tensor(_ image: RGB8Image) -> (Tensor, Placement) {
        let p = placement(imageWidth: image.width, imageHeight: image.height)
        let plane = inputWidth * inputHeight
        var out = [Float](repeating: 0, count: 3 * plane)
        // Bilinear with half-pixel centres and edge clamping (torch interpolate, align_corners=False, no antialias).
        let sx = Float(image.width) / Float(p.width), sy = Float(image.height) / Float(p.height)
        let xs = (0..<p.width).map { samplePosition($0, scale: sx, size: image.width) }
        let ys = (0..<p.height).map { samplePosition($0, scale: sy, size: image.height) }
        let inv = std.map { 1 / $0 }
        image.pixels.withUnsafeBufferPointer { px in
            for (oy, y) in ys.enumerated() {
                let r0 = y.i0 * image.width, r1 = y.i1 * image.width
                for (ox, x) in xs.enumerated() {
                    for ch in 0..<3 {
                        let a = Float(px[(r0 + x.i0) * 3 + ch]), b = Float(px[(r0 + x.i1) * 3 + ch])
                        let c = Float(px[(r1 + x.i0) * 3 + ch]), d = Float(px[(r1 + x.i1) * 3 + ch])
                        let top = a * (1 - x.f) + b * x.f, bottom = c * (1 - x.f) + d * x.f
                        let v = top * (1 - y.f) + bottom * y.f
                        out[ch * plane + oy * inputWidth + ox] = (v - mean[ch]) * inv[ch]
                    }
                }
            }
        }
        return (Tensor(out, shape: [1, 3, inputHeight, inputWidth]), p)
    }

    private func samplePosition(_ o: Int, scale: Float, size: Int) -> (i0: Int, i1: Int, f: Float) {
        let src = max((Float(o) + 0.5) * scale - 0.5, 0)
        let i0 = min(Int(src), size - 1)
        let i1 = min(i0 + 1, size - 1)
        return (i0, i1, src - Float(i0))
    }
}
