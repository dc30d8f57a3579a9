#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PSEdgeIR

private func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// Buffered writes to a file descriptor. Small pieces are gathered in a buffer; large ones (tensor
/// data) go straight from the caller's memory to the kernel, so nothing big is ever copied.
final class FileSink {
    private let fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private let bufferLimit = 1 << 20
    private(set) var bytesWritten = 0

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(bufferLimit)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.count >= bufferLimit / 4 {
            try flush()
            try writeAll(bytes)
        } else {
            if buffer.count + bytes.count > bufferLimit { try flush() }
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += bytes.count
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    func writeZeros(_ n: Int) throws {
        precondition(n >= 0)
        var left = n
        let chunk = [UInt8](repeating: 0, count: min(n, 1 << 16))
        while left > 0 {
            let k = min(left, chunk.count)
            try chunk.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<k])) }
            left -= k
        }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = sysWrite(fd, p, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw PSEdgeError.io("cannot write '\(path)': \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw PSEdgeError.io("cannot write '\(path)': the device accepted no data") }
            p += n
            left -= n
        }
    }
}

/// Writes a file atomically: the content goes to `.<name>.tmp-<pid>` in the destination directory,
/// is flushed to disk, then renamed over the destination. Readers see the old file or the complete
/// new one, never a partial file; on any error the temporary file is removed.
enum AtomicFile {
    static func write(to path: String, _ body: (FileSink) throws -> Void) throws {
        let (dir, base) = split(path)
        guard !base.isEmpty, base != ".", base != ".." else {
            throw PSEdgeError.invalid("cannot write '\(path)': not a file name")
        }
        let tmp = (dir == "/" ? "/" : dir + "/") + "." + base + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw PSEdgeError.io("cannot write '\(path)': cannot create '\(tmp)': \(String(cString: strerror(errno)))")
        }
        var isOpen = true
        var done = false
        defer {
            if isOpen { close(fd) }
            if !done { unlink(tmp) }
        }
        let sink = FileSink(fd: fd, path: path)
        try body(sink)
        try sink.flush()
        if fsync(fd) != 0 { throw PSEdgeError.io("cannot write '\(path)': fsync failed: \(String(cString: strerror(errno)))") }
        isOpen = false
        if close(fd) != 0 { throw PSEdgeError.io("cannot write '\(path)': close failed: \(String(cString: strerror(errno)))") }
        if rename(tmp, path) != 0 {
            throw PSEdgeError.io("cannot write '\(path)': cannot rename the temporary file into place: \(String(cString: strerror(errno)))")
        }
        done = true
        // Make the rename itself durable (best effort: some file systems refuse fsync on directories).
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// ("dir", "name") of a path; dir is "." when the path has no slash.
    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }
}
