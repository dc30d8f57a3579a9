import PSEdgeIR
import PSEdgeKernels

/// A fixed set of threads for parallel loops (`--threads`). Wraps the C pool so kernels in C and Swift share it.
public final class ThreadPool: @unchecked Sendable {
    let pool: OpaquePointer?
    public let threads: Int

    public init(threads: Int) {
        let pool = pse_pool_create(Int32(max(1, threads)))
        let n = Int(pse_pool_threads(pool))  // fewer if threads could not be started
        self.pool = pool
        self.threads = n
        self.ownScratch = UnsafeMutablePointer<Storage>.allocate(capacity: n)
        for t in 0..<n { (ownScratch + t).initialize(to: Storage(byteCount: 0)) }
    }

    deinit {
        pse_pool_destroy(pool)
        ownScratch.deinitialize(count: threads)
        ownScratch.deallocate()
    }

    /// Runs body(i) for i in 0..<count across the pool.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            var box = escaping
            withUnsafeMutablePointer(to: &box) { ptr in
                pse_pool_parallel_for(pool, count, { ctx, i in
                    ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(i))
                }, ptr)
            }
        }
    }

    /// Runs body(t) once on each thread t in 0..<threads (the caller is 0): the same share of work lands on the same
    /// core every time.
    public func perThread(_ body: (Int) -> Void) {
        if threads == 1 { body(0); return }
        withoutActuallyEscaping(body) { escaping in
            var box = escaping
            withUnsafeMutablePointer(to: &box) { ptr in
                pse_pool_parallel_threads(pool, { ctx, i in
                    ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(i))
                }, ptr)
            }
        }
    }

    /// Kernels split work in fixed per-thread shares (`perThread` + `share`) where that keeps data with one core
    /// (docs/KERNELS.md, "Work split"). Tests turn it off to compare with the shared split; results are identical.
    public static var fixedShares = true

    /// Thread t's share of 0..<count in whole units (the last one may be partial): contiguous, in thread order.
    public func share(_ t: Int, of count: Int, unit: Int = 1) -> Range<Int> {
        let units = (count + unit - 1) / unit
        return min(count, units * t / threads * unit)..<min(count, units * (t + 1) / threads * unit)
    }

    /// Splits 0..<count into about `threads * 4` contiguous chunks and runs body on each range.
    public func parallelChunks(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = max(1, min(threads * 4, count / max(1, minChunk)))
        if chunks == 1 { body(0..<count); return }
        if chunks >= threads {
            // One contiguous range per thread, the same one every call: what a thread wrote is what it rewrites.
            perThread { t in
                let range = share(t, of: count)
                if !range.isEmpty { body(range) }
            }
            return
        }
        let step = (count + chunks - 1) / chunks
        parallelFor((count + step - 1) / step) { c in
            body(c * step..<min(count, (c + 1) * step))
        }
    }

    /// Covers a rows × cols output with tiles (at most tileRows × tileCols; consecutive tiles go down a column
    /// block, so they share its inputs) run side by side in `tileChunks` contiguous runs: body(r0, nr, c0, nc, run).
    /// `run` < tileChunks(…) indexes per-run scratch.
    public func parallelTiles(rows: Int, cols: Int, tileRows: Int, tileCols: Int,
                              _ body: (_ r0: Int, _ nr: Int, _ c0: Int, _ nc: Int, _ run: Int) -> Void) {
        let rowTiles = (rows + tileRows - 1) / tileRows, tiles = rowTiles * ((cols + tileCols - 1) / tileCols)
        if tiles == 0 { return }
        let runs = tileChunks(rows: rows, cols: cols, tileRows: tileRows, tileCols: tileCols), step = (tiles + runs - 1) / runs
        parallelFor((tiles + step - 1) / step) { run in
            for t in run * step..<min(tiles, (run + 1) * step) {
                let r0 = (t % rowTiles) * tileRows, c0 = (t / rowTiles) * tileCols
                body(r0, min(tileRows, rows - r0), c0, min(tileCols, cols - c0), run)
            }
        }
    }

    /// How many runs parallelTiles uses (for sizing per-run scratch).
    public func tileChunks(rows: Int, cols: Int, tileRows: Int, tileCols: Int) -> Int {
        min(((rows + tileRows - 1) / tileRows) * ((cols + tileCols - 1) / tileCols), threads * 4)
    }

    /// A single-threaded pool for small helper loops that must not fan out.
    public static let serial = ThreadPool(threads: 1)

    private var scratchStorage = Storage(byteCount: 0)
    /// One workspace per thread, each touched only by its own thread (see `threadScratch`).
    private let ownScratch: UnsafeMutablePointer<Storage>

    /// 64-byte-aligned regions of thread t's own workspace, for use inside `perThread` by thread t only: the memory
    /// is written and read by one core, so writing it never has to take lines back from the other core's cache
    /// (which costs more than the write itself when the two cores are far apart). Valid until t's next call.
    public func threadScratch(_ t: Int, bytes sizes: [Int]) -> [UnsafeMutableRawPointer] {
        precondition(t >= 0 && t < threads)
        return Self.regions(sizes, of: &ownScratch[t])
    }

    /// Temporary float workspace shared by the kernels of one plan (they run one at a time).
    /// Valid until the next call; grows on demand.
    public func scratch(floats: Int) -> UnsafeMutablePointer<Float> {
        scratch(bytes: [floats * 4])[0].assumingMemoryBound(to: Float.self)
    }

    /// Several 64-byte-aligned regions of the shared workspace at once (valid until the next call).
    public func scratch(bytes sizes: [Int]) -> [UnsafeMutableRawPointer] {
        Self.regions(sizes, of: &scratchStorage)
    }

    /// 64-byte-aligned regions of `storage`, grown first if too small (freeing the old block first: the peak is one
    /// block, not two).
    private static func regions(_ sizes: [Int], of storage: inout Storage) -> [UnsafeMutableRawPointer] {
        let aligned = sizes.map { ($0 + 63) / 64 * 64 }
        let total = aligned.reduce(0, +)
        if storage.byteCount < total {
            storage = Storage(byteCount: 0)
            storage = Storage(byteCount: total)
        }
        var offset = 0
        return aligned.map { size in
            defer { offset += size }
            return storage.base + offset
        }
    }
}
