import PSEdgeIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A separable gather: output[o_0, ..., o_n] = input[Σ_d map_d[o_d]], or a fill value when any map entry
/// is negative. Pad (all modes), Tile and nearest-neighbour Resize/Upsample are all this, with per-axis
/// tables built at plan time. Works on raw elements of 1, 2, 4 or 8 bytes, so every dtype is handled.
final class IndexGather: @unchecked Sendable {
    let outShape: [Int]
    /// Per output axis: input element offset (index * input stride) or -1 for "fill".
    let maps: [[Int]]
    let elemSize: Int
    /// Contiguous runs of the last axis (dst start, src offset or -1, length), used when runs are long.
    let runs: [(dst: Int, src: Int, len: Int)]
    let useRuns: Bool

    /// `sourceIndex[d][o]` is the input index along axis d read by output index o (or -1 to fill).
    init(inShape: [Int], sourceIndex: [[Int]], elemSize: Int) {
        precondition(inShape.count == sourceIndex.count)
        let inDims = inShape.isEmpty ? [1] : inShape
        let src = sourceIndex.isEmpty ? [[0]] : sourceIndex
        let strides = Shapes.strides(inDims)
        outShape = src.map(\.count)
        maps = src.enumerated().map { d, m in m.map { $0 < 0 ? -1 : $0 * strides[d] } }
        self.elemSize = elemSize
        var r: [(dst: Int, src: Int, len: Int)] = []
        for (j, s) in maps[maps.count - 1].enumerated() {
            if let last = r.last, last.dst + last.len == j,
               (s < 0 && last.src < 0) || (s >= 0 && last.src >= 0 && last.src + last.len == s) {
                r[r.count - 1].len += 1
            } else {
                r.append((j, s, 1))
            }
        }
        runs = r
        let width = outShape.last ?? 1
        useRuns = !r.isEmpty && width / r.count >= 8
    }

    var outCount: Int { outShape.reduce(1, *) }

    func run(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, fill: [UInt8], pool: ThreadPool) {
        switch elemSize {
        case 1: typed(src, dst, fill, UInt8.self, pool)
        case 2: typed(src, dst, fill, UInt16.self, pool)
        case 4: typed(src, dst, fill, UInt32.self, pool)
        default: typed(src, dst, fill, UInt64.self, pool)
        }
    }

    private func typed<E: FixedWidthInteger>(_ srcRaw: UnsafeRawPointer, _ dstRaw: UnsafeMutableRawPointer, _ fillBytes: [UInt8],
                                             _: E.Type, _ pool: ThreadPool) {
        let total = outCount
        if total == 0 { return }
        var fillValue: E = 0
        withUnsafeMutableBytes(of: &fillValue) { b in
            for i in 0..<min(b.count, fillBytes.count) { b[i] = fillBytes[i] }
        }
        let fill = fillValue
        let src = srcRaw.assumingMemoryBound(to: E.self)
        let dst = dstRaw.assumingMemoryBound(to: E.self)
        let rank = outShape.count
        let width = outShape[rank - 1]
        let rows = total / width
        let maps = self.maps, outShape = self.outShape, runs = self.runs, useRuns = self.useRuns
        maps[rank - 1].withUnsafeBufferPointer { lastMapBuf in
            let lastMap = lastMapBuf.baseAddress!
            pool.parallelChunks(rows, minChunk: max(1, 16384 / max(width, 1))) { range in
                var idx = [Int](repeating: 0, count: rank)
                var rem = range.lowerBound
                for d in stride(from: rank - 2, through: 0, by: -1) {
                    idx[d] = rem % outShape[d]
                    rem /= outShape[d]
                }
                for r in range {
                    let out = dst + r * width
                    var off = 0
                    var isFill = false
                    for d in 0..<(rank - 1) {
                        let m = maps[d][idx[d]]
                        if m < 0 { isFill = true; break }
                        off += m
                    }
                    if isFill {
                        for j in 0..<width { out[j] = fill }
                    } else if useRuns {
                        for run in runs {
                            if run.src < 0 {
                                for j in 0..<run.len { out[run.dst + j] = fill }
                            } else {
                                memcpy(out + run.dst, src + off + run.src, run.len * MemoryLayout<E>.stride)
                            }
                        }
                    } else {
                        let s = src + off
                        for j in 0..<width {
                            let m = lastMap[j]
                            out[j] = m < 0 ? fill : s[m]
                        }
                    }
                    var d = rank - 2
                    while d >= 0 {
                        idx[d] += 1
                        if idx[d] < outShape[d] { break }
                        idx[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }
}
