#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A block of bytes that tensor data lives in: either allocated here (64-byte aligned, freed on deinit)
/// or borrowed from an owner that keeps it alive (a memory-mapped file), so weights are never copied.
public final class Storage: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    private let owner: AnyObject?
    private let ownsMemory: Bool

    public static let alignment = 64

    /// Zero-filled, aligned memory owned by this storage.
    public init(byteCount: Int) {
        let n = max(byteCount, 1)
        var p: UnsafeMutableRawPointer?
        let rc = posix_memalign(&p, Storage.alignment, (n + Storage.alignment - 1) / Storage.alignment * Storage.alignment)
        guard rc == 0, let ptr = p else { fatalError("out of memory allocating \(byteCount) bytes") }
        memset(ptr, 0, n)
        self.base = ptr
        self.byteCount = byteCount
        self.owner = nil
        self.ownsMemory = true
    }

    /// Bytes owned by someone else (e.g. a mapped file); `owner` is retained for this storage's lifetime.
    public init(borrowing base: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject?) {
        self.base = base
        self.byteCount = byteCount
        self.owner = owner
        self.ownsMemory = false
    }

    deinit { if ownsMemory { free(base) } }
}

/// A read-only memory-mapped file. Tensors borrow from it without copying.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeMutableRawPointer?
    public let size: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw PSEdgeError.io("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw PSEdgeError.io("cannot stat '\(path)'") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw PSEdgeError.io("'\(path)' is a directory, not a file") }
        size = Int(st.st_size)
        if size == 0 { base = nil; return }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if p == MAP_FAILED || p == nil { throw PSEdgeError.io("cannot map '\(path)': \(String(cString: strerror(errno)))") }
        base = p
    }

    deinit { if let b = base { munmap(b, size) } }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// A storage view of [offset, offset+count), bounds-checked against the file size.
    public func storage(offset: Int, count: Int, what: String) throws -> Storage {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw PSEdgeError.malformed("\(what): data range [\(offset), \(offset)+\(count)) lies outside '\(path)' (\(size) bytes)")
        }
        if count == 0 { return Storage(byteCount: 0) }
        return Storage(borrowing: base!.advanced(by: offset), byteCount: count, owner: self)
    }
}
