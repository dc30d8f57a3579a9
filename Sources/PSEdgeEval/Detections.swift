import PSEdgeIR

/// Detections of one image: boxes, scores and one embedding per box (row-major, `dim` values each).
public struct ImageDetections: Sendable {
    public var boxes: [Box]
    public var scores: [Double]
    public var embeddings: [Double]

    public init(boxes: [Box] = [], scores: [Double] = [], embeddings: [Double] = []) {
        self.boxes = boxes; self.scores = scores; self.embeddings = embeddings
    }

    public var count: Int { boxes.count }
}

/// A system's output on a manifest: per-image detections and one embedding per query (taken from the query's
/// ground-truth box), in manifest query order.
public struct Detections: Sendable {
    /// Embedding dimension.
    public var dim: Int
    /// Indexed like `Manifest.images`; an image absent from the file has no detections.
    public var images: [ImageDetections]
    /// `queries × dim`, row-major.
    public var queryEmbeddings: [Double]

    public init(dim: Int, images: [ImageDetections], queryEmbeddings: [Double]) throws {
        for (i, d) in images.enumerated() {
            guard d.scores.count == d.boxes.count, d.embeddings.count == d.boxes.count * dim else {
                throw PSEdgeError.shape("detections: image \(i) has \(d.boxes.count) boxes, \(d.scores.count) scores and \(d.embeddings.count) embedding values (dim \(dim))")
            }
        }
        guard dim > 0 || queryEmbeddings.isEmpty, dim == 0 || queryEmbeddings.count % dim == 0 else {
            throw PSEdgeError.shape("detections: \(queryEmbeddings.count) query embedding values do not split into rows of \(dim)")
        }
        self.dim = dim
        self.images = images
        self.queryEmbeddings = queryEmbeddings
    }

    public static func load(path: String, manifest: Manifest) throws -> Detections {
        try decode(try FileBytes.read(path, what: "detections"), source: path, manifest: manifest)
    }

    /// Decodes a detections file and checks it against the manifest. Every error names the file and the entry.
    public static func decode(_ bytes: [UInt8], source: String = "detections", manifest: Manifest) throws -> Detections {
        let root = EvalField(value: try EvalJSON.parse(bytes, source: source), path: "", source: source)
        _ = try root.object()
        let qfield = try root.member("queries")
        let qs = try qfield.array()
        guard qs.count == manifest.queries.count else {
            throw qfield.error("has \(qs.count) entries; the manifest has \(manifest.queries.count) queries (one embedding each, in manifest order)")
        }
        // The embedding dimension is set by the first embedding in the file (queries first).
        var dim = 0
        var dimFrom = ""
        func checkDim(_ f: EvalField, _ n: Int) throws {
            guard n > 0 else { throw f.error("is empty") }
            if dim == 0 { dim = n; dimFrom = f.path; return }
            guard n == dim else { throw f.error("has \(n) values; expected \(dim) like \(dimFrom)") }
        }
        var queryEmbeddings: [Double] = []
        for q in qs {
            let e = try q.member("embedding")
            let v = try e.finiteNumbers()
            try checkDim(e, v.count)
            queryEmbeddings.append(contentsOf: v)
        }

        var images = [ImageDetections](repeating: ImageDetections(), count: manifest.images.count)
        for (name, f) in try root.member("images").entries() {
            guard let i = manifest.index[name] else { throw f.error("is not an image of the manifest") }
            let bf = try f.member("boxes"), sf = try f.member("scores"), ef = try f.member("embeddings")
            let boxes = try bf.array().map { try decodeBox($0, positiveArea: false) }
            let scores = try sf.finiteNumbers()
            guard scores.count == boxes.count else { throw f.error("has \(boxes.count) boxes but \(scores.count) scores") }
            let embs = try ef.array()
            guard embs.count == boxes.count else { throw f.error("has \(boxes.count) boxes but \(embs.count) embeddings") }
            var flat: [Double] = []
            flat.reserveCapacity(boxes.count * max(dim, 1))
            for e in embs {
                let v = try e.finiteNumbers()
                try checkDim(e, v.count)
                flat.append(contentsOf: v)
            }
            images[i] = ImageDetections(boxes: boxes, scores: scores, embeddings: flat)
        }
        return try Detections(dim: dim, images: images, queryEmbeddings: queryEmbeddings)
    }
}
