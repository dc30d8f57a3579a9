import PSEdgeIR

extension GraphBuilder {
    /// softmax(q kᵀ / √d) v over `heads` heads of width d, for q [B, Lq, H·d] and k, v [B, Lk, H·d] (already
    /// projected). Returns the heads merged back, [B, Lq, H·d], and the probabilities [B, H, Lq, Lk] (the softmax
    /// node is named `probsScope`).
    func scaledDotProductAttention(q: Value, k: Value, v: Value, heads: Int, scope p: String,
                                   probsScope: String) throws -> (out: Value, probs: Value) {
        guard q.rank == 3, k.rank == 3, v.shape == k.shape, q.shape[0] == k.shape[0], q.shape[2] == k.shape[2],
              heads > 0, q.shape[2] % heads == 0 else {
            throw PSEdgeError.shape("\(p): attention with \(heads) heads over q \(q), k \(k), v \(v)")
        }
        let (batch, nq, nk, inner) = (q.shape[0], q.shape[1], k.shape[1], q.shape[2])
        let d = inner / heads
        let qh = transpose(try reshape(q, [batch, nq, heads, d], scope: "\(p)/heads"), [0, 2, 1, 3], scope: "\(p)/q_heads")
        let kt = transpose(try reshape(k, [batch, nk, heads, d], scope: "\(p)/heads"), [0, 2, 3, 1], scope: "\(p)/k_heads")
        let vh = transpose(try reshape(v, [batch, nk, heads, d], scope: "\(p)/heads"), [0, 2, 1, 3], scope: "\(p)/v_heads")
        let scores = try scale(try matmul(qh, kt, scope: "\(p)/scores"), by: 1 / Float(d).squareRoot(), scope: "\(p)/scores")
        let probs = softmax(scores, axis: -1, scope: probsScope)
        let o = try matmul(probs, vh, scope: "\(p)/context")
        let merged = try reshape(transpose(o, [0, 2, 1, 3], scope: "\(p)/merge_heads"), [batch, nq, inner], scope: "\(p)/merge_heads")
        return (merged, probs)
    }
}

extension TorchModules {
    /// torch.nn.MultiheadAttention `name` (packed `in_proj_weight` [3E, E], `in_proj_bias`, `out_proj`), batch first:
    /// query [B, Lq, E], key and value [B, Lk, E] -> [B, Lq, E]. Dropout is off (inference).
    func multiheadAttention(query: Value, key: Value, value: Value, _ name: String, heads: Int) throws -> Value {
        let e = query.shape.last ?? 0
        let w = try weights.tensor("\(name).in_proj_weight", [3 * e, e])
        let bias = try weights.tensor("\(name).in_proj_bias", [3 * e])
        func project(_ x: Value, _ part: Int, _ what: String) throws -> Value {
            try b.linear(x, weight: w.rows(part * e, e), bias: bias.rows(part * e, e), scope: "\(name).\(what)_proj")
        }
        let q = try project(query, 0, "q"), k = try project(key, 1, "k"), v = try project(value, 2, "v")
        let (merged, _) = try b.scaledDotProductAttention(q: q, k: k, v: v, heads: heads, scope: name, probsScope: "\(name)/softmax")
        return try linear(merged, "\(name).out_proj", out: e)
    }
}

extension Tensor {
    /// A float32 copy of rows [start, start + count) of a tensor whose first axis is rows.
    func rows(_ start: Int, _ count: Int) -> Tensor {
        let src = toFloat32()
        let rowSize = shape.dropFirst().reduce(1, *)
        let out = Tensor(zeros: .float32, shape: [count] + shape.dropFirst())
        out.pointer(Float.self).update(from: src.pointer(Float.self) + start * rowSize, count: count * rowSize)
        return out
    }
}
