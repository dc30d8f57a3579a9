import PSEdgeIR

/// Iteration plan for an N-ary broadcast: the output is walked row by row; each input advances with its
/// own stride (0 where it is broadcast). Adjacent dims that broadcast alike are merged so rows are long.
struct BroadcastPlan {
    let outShape: [Int]
    let rowLength: Int
    let rowCount: Int
    /// Per input: stride of the innermost (row) dimension: 0 or 1.
    let innerStrides: [Int]
    private let outerShape: [Int]
    private let outerStrides: [[Int]]

    init(_ shapes: [[Int]], label: String) throws {
        var out: [Int] = []
        for s in shapes {
            guard let b = Shapes.broadcast(out, s) else {
                throw PSEdgeError.shape("\(label): shapes \(shapes.map(Shapes.describe).joined(separator: " and ")) cannot be broadcast together")
            }
            out = b
        }
        outShape = out
        let rank = out.count
        // Strides of each input over the output's axes.
        var strides: [[Int]] = shapes.map { s in
            let padded = [Int](repeating: 1, count: rank - s.count) + s
            let st = Shapes.strides(padded)
            return (0..<rank).map { padded[$0] == 1 && out[$0] != 1 ? 0 : st[$0] }
        }
        // Drop size-1 axes, then merge axis i into i+1 when every input is contiguous across them.
        var dims: [Int] = []
        var kept: [[Int]] = Array(repeating: [], count: shapes.count)
        for a in 0..<rank where out[a] != 1 {
            if let last = dims.last,
               strides.indices.allSatisfy({ k in kept[k].last! == strides[k][a] * out[a] }) {
                dims[dims.count - 1] = last * out[a]
                for k in strides.indices { kept[k][kept[k].count - 1] = strides[k][a] }
            } else {
                dims.append(out[a])
                for k in strides.indices { kept[k].append(strides[k][a]) }
            }
        }
        strides = kept
        if dims.isEmpty { dims = [1]; strides = strides.map { _ in [0] } }
        rowLength = dims.last!
        rowCount = dims.dropLast().reduce(1, *)
        innerStrides = strides.map { $0.last! }
        outerShape = Array(dims.dropLast())
        outerStrides = strides.map { Array($0.dropLast()) }
    }

    var count: Int { rowLength * rowCount }

    /// Offset of row r in each input.
    @inline(__always) func rowOffsets(_ r: Int, into offs: inout [Int]) {
        var rem = r
        for k in offs.indices { offs[k] = 0 }
        var a = outerShape.count - 1
        while a >= 0 {
            let i = rem % outerShape[a]
            rem /= outerShape[a]
            for k in offs.indices { offs[k] += i * outerStrides[k][a] }
            a -= 1
        }
    }

    /// Calls body(outOffset, inputOffsets, length) over contiguous spans covering the output; spans are
    /// spread over the pool when the work is large (long rows are split too).
    func forEachSpan(pool: ThreadPool, _ body: (Int, [Int], Int) -> Void) {
        let n = innerStrides.count
        if count == 0 { return }
        let serial = count < 1 << 15 || pool.threads == 1
        let split = serial ? rowLength : max(4096, min(rowLength, count / (pool.threads * 8)))
        let piecesPerRow = (rowLength + split - 1) / split
        let total = rowCount * piecesPerRow
        func work(_ range: Range<Int>) {
            var offs = [Int](repeating: 0, count: n)
            var row = -1
            for p in range {
                let r = p / piecesPerRow, start = (p % piecesPerRow) * split
                if r != row { self.rowOffsets(r, into: &offs); row = r }
                var o = offs
                for k in 0..<n { o[k] += start * self.innerStrides[k] }
                body(r * self.rowLength + start, o, min(split, self.rowLength - start))
            }
        }
        if serial { work(0..<total) } else { pool.parallelChunks(total) { work($0) } }
    }
}
