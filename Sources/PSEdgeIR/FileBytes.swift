import Foundation

/// Whole-file reads for the small files PSEdge parses in memory (JSON manifests, detections, configs,
/// images). The size is checked before anything is allocated, so a huge or endless file (a FIFO,
/// /dev/zero) is refused with a clear error instead of exhausting memory.
public enum FileBytes {
    /// Default upper bound: far above any manifest, config or image PSEdge reads whole.
    public static let defaultLimit = 1 << 30

    /// Reads `path`; `what` names the file's role in errors ("manifest", "pipeline.json", …).
    public static func read(_ path: String, what: String = "file", limit: Int = defaultLimit) throws -> [UInt8] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw PSEdgeError.io("\(what) '\(path)': \(errno == ENOENT ? "no such file" : String(cString: strerror(errno)))")
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: throw PSEdgeError.io("\(what) '\(path)' is a directory, not a file")
        case S_IFREG: break
        default: throw PSEdgeError.io("\(what) '\(path)' is not a regular file")
        }
        guard Int(st.st_size) <= limit else {
            throw PSEdgeError.io("\(what) '\(path)' is \(st.st_size) bytes; more than the \(limit)-byte limit for this kind of file")
        }
        let file = try MappedFile(path: path)
        return Array(file.bytes)
    }
}
