/// Assigns arena offsets to activation buffers so that buffers whose lifetimes do not overlap share memory
/// (greedy by size: biggest first, each at the lowest offset free for its whole lifetime).
public struct MemoryPlanner {
    public struct Request {
        public let bytes: Int
        /// First and last step (inclusive) the buffer must hold its value.
        public let firstStep: Int
        public let lastStep: Int
    }

    public static let alignment = 64

    /// Returns one offset per request and the arena size.
    public static func plan(_ requests: [Request]) -> (offsets: [Int], arenaBytes: Int) {
        let order = requests.indices.sorted { requests[$0].bytes > requests[$1].bytes }
        var offsets = [Int](repeating: 0, count: requests.count)
        var placed: [(offset: Int, end: Int, first: Int, last: Int)] = []
        var arena = 0
        for i in order {
            let r = requests[i]
            let size = (r.bytes + alignment - 1) / alignment * alignment
            let conflicts = placed.filter { $0.first <= r.lastStep && r.firstStep <= $0.last }
                .sorted { $0.offset < $1.offset }
            var candidate = 0
            for c in conflicts {
                if candidate + size <= c.offset { break }
                candidate = max(candidate, c.end)
            }
            offsets[i] = candidate
            placed.append((candidate, candidate + size, r.firstStep, r.lastStep))
            arena = max(arena, candidate + size)
        }
        return (offsets, arena)
    }
}
