import PSEdgeIR

extension GraphBuilder {
    /// One-level 2-D Haar DWT of x [B, C, H, W] (even H, W), tools/psref/diffps.py `HaarDWT` (pytorch_wavelets
    /// DWTForward(J=1, wave='haar', mode='zero')): with a, b, c, d = x[2i,2j], x[2i,2j+1], x[2i+1,2j], x[2i+1,2j+1],
    /// LL = (a+b+c+d)/2 and the bands (a+b-c-d)/2, (a-b+c-d)/2, (a-b-c+d)/2, in torch's evaluation order.
    func haarDWT(_ x: Value, scope p: String) throws -> (ll: Value, bands: [Value]) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard x.rank == 4, h % 2 == 0, w % 2 == 0 else {
            throw PSEdgeError.shape("\(p): the Haar DWT needs even height and width, got \(x)")
        }
        let x6 = try reshape(x, [n, c, h / 2, 2, w / 2, 2], scope: p)
        let top = select(x6, axis: 3, index: 0, scope: p), bottom = select(x6, axis: 3, index: 1, scope: p)
        let a = select(top, axis: 4, index: 0, scope: p), b = select(top, axis: 4, index: 1, scope: p)
        let cc = select(bottom, axis: 4, index: 0, scope: p), d = select(bottom, axis: 4, index: 1, scope: p)
        // Terms as torch evaluates (a ± b ± c ± d) left to right.
        let bands = try haarCombine(a, b, cc, d, scope: p)
        return (bands[0], Array(bands.dropFirst()))
    }

    /// Inverse of `haarDWT` (exact): a = (LL+B0+B1+B2)/2, b = (LL+B0-B1-B2)/2, c = (LL-B0+B1-B2)/2, d = (LL-B0-B1+B2)/2,
    /// interleaved back to [B, C, 2h, 2w].
    func haarIDWT(ll: Value, bands: [Value], scope p: String) throws -> Value {
        guard bands.count == 3, bands.allSatisfy({ $0.shape == ll.shape }) else {
            throw PSEdgeError.shape("\(p): the Haar IDWT needs LL and three bands of one shape")
        }
        let q = try haarCombine(ll, bands[0], bands[1], bands[2], scope: p)
        let (n, c, h, w) = (ll.shape[0], ll.shape[1], ll.shape[2], ll.shape[3])
        let cell = [n, c, h, 1, w, 1]
        let parts = try q.map { try reshape($0, cell, scope: p) }
        let top = try concat([parts[0], parts[1]], axis: 5, scope: p)
        let bottom = try concat([parts[2], parts[3]], axis: 5, scope: p)
        return try reshape(try concat([top, bottom], axis: 3, scope: p), [n, c, 2 * h, 2 * w], scope: p)
    }

    /// (u+v+x+y, u+v-x-y, u-v+x-y, u-v-x+y) · 0.5, each sum left to right.
    private func haarCombine(_ u: Value, _ v: Value, _ x: Value, _ y: Value, scope p: String) throws -> [Value] {
        let half = scalar(0.5, name: "\(p)/half")
        let sum = try add(u, v, scope: p), diff = try binary("Sub", u, v, scope: p)
        let terms = [
            try add(try add(sum, x, scope: p), y, scope: p),
            try binary("Sub", try binary("Sub", sum, x, scope: p), y, scope: p),
            try binary("Sub", try add(diff, x, scope: p), y, scope: p),
            try add(try binary("Sub", diff, x, scope: p), y, scope: p),
        ]
        return try terms.map { try mul($0, half, scope: p) }
    }
}
