/// One detected person: box in pixels of the image it came from, confidence, and L2-normalised re-ID embedding.
public struct Detection: Sendable, Equatable {
    public var box: Box
    public var score: Float
    public var embedding: [Float]

    public init(box: Box, score: Float, embedding: [Float]) {
        self.box = box
        self.score = score
        self.embedding = embedding
    }
}

/// x / max(||x||₂, 1e-12) (torch `F.normalize`).
public func l2Normalized(_ x: ArraySlice<Float>) -> [Float] {
    var ss: Float = 0
    for v in x { ss += v * v }
    let n = max(ss.squareRoot(), 1e-12)
    return x.map { $0 / n }
}

public func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var dot: Float = 0, na: Float = 0, nb: Float = 0
    for i in a.indices { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
    return dot / max((na * nb).squareRoot(), 1e-12)
}
