import CSQLite
import Foundation

/// A thin layer over the SQLite C API: open, execute, prepared statements, transactions.
final class SQLiteDatabase {
    private(set) var handle: OpaquePointer?
    let path: String

    init(path: String, readOnly: Bool = false) throws {
        self.path = path
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        handle = db
        guard rc == SQLITE_OK else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            handle = nil
            throw GalleryError("cannot open '\(path)': \(msg)")
        }
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close(handle) }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    func execute(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &err) == SQLITE_OK else {
            let msg = err.map { String(cString: $0) } ?? lastError
            sqlite3_free(err)
            throw GalleryError("'\(path)': \(msg)")
        }
    }

    func prepare(_ sql: String) throws -> Statement {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
            throw GalleryError("'\(path)': \(lastError)")
        }
        return Statement(stmt, db: self)
    }

    /// Runs `body` in one transaction: all of it is committed, or (on a throw or a crash) none of it.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let r = try body()
            try execute("COMMIT")
            return r
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
}

/// A prepared statement; bind with 1-based indices, then `step()` until it returns false.
final class Statement {
    private let stmt: OpaquePointer
    private let db: SQLiteDatabase
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ stmt: OpaquePointer, db: SQLiteDatabase) { (self.stmt, self.db) = (stmt, db) }
    deinit { sqlite3_finalize(stmt) }

    @discardableResult
    func bind(_ values: Any?...) -> Statement {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        for (i, v) in values.enumerated() {
            let k = Int32(i + 1)
            switch v {
            case nil: sqlite3_bind_null(stmt, k)
            case let x as Int: sqlite3_bind_int64(stmt, k, Int64(x))
            case let x as Int64: sqlite3_bind_int64(stmt, k, x)
            case let x as Double: sqlite3_bind_double(stmt, k, x)
            case let x as Float: sqlite3_bind_double(stmt, k, Double(x))
            case let x as String: sqlite3_bind_text(stmt, k, x, -1, Self.transient)
            case let x as [Float]:
                _ = x.withUnsafeBytes { sqlite3_bind_blob(stmt, k, $0.baseAddress, Int32($0.count), Self.transient) }
            default: preconditionFailure("unsupported SQLite binding \(type(of: v))")
            }
        }
        return self
    }

    /// Advances; true while a row is available.
    func step() throws -> Bool {
        switch sqlite3_step(stmt) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw GalleryError("'\(db.path)': \(db.lastError)")
        }
    }

    func run() throws { while try step() {} }

    func int(_ col: Int32) -> Int { Int(sqlite3_column_int64(stmt, col)) }
    func double(_ col: Int32) -> Double { sqlite3_column_double(stmt, col) }
    func text(_ col: Int32) -> String { sqlite3_column_text(stmt, col).map { String(cString: $0) } ?? "" }
    func floats(_ col: Int32) -> [Float] {
        let n = Int(sqlite3_column_bytes(stmt, col)) / MemoryLayout<Float>.size
        guard n > 0, let p = sqlite3_column_blob(stmt, col) else { return [] }
        return Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Float.self), count: n))
    }
}

public struct GalleryError: Error, CustomStringConvertible {
    public let description: String
    init(_ m: String) { description = "gallery database: " + m }
}
