import Foundation

/// The gallery index: images and the persons detected in them (box, score, L2-normalised embedding) in SQLite.
///
/// Each image is written in one transaction together with its detections, so an interrupted `psedge index` leaves
/// only complete images behind, and running it again continues where it stopped.
public final class GalleryStore {
    public struct Hit: Sendable {
        public var imagePath: String
        public var box: (Float, Float, Float, Float)
        public var score: Float
        public var similarity: Float
    }

    public struct Entry: Sendable {
        public var box: (Float, Float, Float, Float)
        public var score: Float
        public var embedding: [Float]
        public init(box: (Float, Float, Float, Float), score: Float, embedding: [Float]) {
            (self.box, self.score, self.embedding) = (box, score, embedding)
        }
    }

    let db: SQLiteDatabase
    public let path: String
    static let schemaVersion = "1"

    /// Opens (creating if needed) the gallery at `path`. `create: false` requires an existing gallery.
    public init(path: String, create: Bool = true) throws {
        self.path = path
        if !create {
            guard FileManager.default.fileExists(atPath: path) else { throw GalleryError("'\(path)' does not exist (build it with psedge index)") }
        }
        db = try SQLiteDatabase(path: path)
        do {
            try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        } catch {
            throw GalleryError("'\(path)' is not a gallery database (\(error))")
        }
        if create {
            try db.execute("""
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS images(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, width INTEGER NOT NULL,
                    height INTEGER NOT NULL, milliseconds REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS detections(id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
                    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL, score REAL NOT NULL, embedding BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS detections_image ON detections(image_id);
                INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '\(Self.schemaVersion)');
                """)
        }
        guard let schema = try meta("schema") else { throw GalleryError("'\(path)' is not a gallery database (no schema entry)") }
        guard schema == Self.schemaVersion else { throw GalleryError("'\(path)' has schema \(schema), this psedge reads \(Self.schemaVersion)") }
    }

    public func meta(_ key: String) throws -> String? {
        let s: Statement
        do { s = try db.prepare("SELECT value FROM meta WHERE key = ?") } catch { throw GalleryError("'\(path)' is not a gallery database") }
        s.bind(key)
        return try s.step() ? s.text(0) : nil
    }

    /// Records what built the gallery; a later run with another model or settings is refused.
    public func checkOrSetMeta(_ values: [String: String]) throws {
        try db.transaction {
            for (k, v) in values.sorted(by: { $0.key < $1.key }) {
                if let old = try meta(k) {
                    guard old == v else { throw GalleryError("'\(path)' was indexed with \(k) = \(old), not \(v); use another --db") }
                } else {
                    try db.prepare("INSERT INTO meta(key, value) VALUES(?, ?)").bind(k, v).run()
                }
            }
        }
    }

    public func contains(imagePath: String) throws -> Bool {
        let s = try db.prepare("SELECT 1 FROM images WHERE path = ?").bind(imagePath)
        return try s.step()
    }

    /// Adds one image and its detections atomically.
    public func add(imagePath: String, width: Int, height: Int, milliseconds: Double, entries: [Entry]) throws {
        try db.transaction {
            try db.prepare("INSERT INTO images(path, width, height, milliseconds) VALUES(?, ?, ?, ?)")
                .bind(imagePath, width, height, milliseconds).run()
            let id = db.lastInsertRowID
            let ins = try db.prepare("INSERT INTO detections(image_id, x1, y1, x2, y2, score, embedding) VALUES(?, ?, ?, ?, ?, ?, ?)")
            for e in entries {
                try ins.bind(id, e.box.0, e.box.1, e.box.2, e.box.3, e.score, e.embedding).run()
            }
        }
    }

    public func counts() throws -> (images: Int, detections: Int) {
        let a = try db.prepare("SELECT COUNT(*) FROM images"), b = try db.prepare("SELECT COUNT(*) FROM detections")
        _ = try a.step()
        _ = try b.step()
        return (a.int(0), b.int(0))
    }

    /// The `top` detections most similar (cosine) to `query`, best first; optionally skipping one image.
    public func search(_ query: [Float], top: Int, excludingImage: String? = nil) throws -> [Hit] {
        let s = try db.prepare("SELECT i.path, d.x1, d.y1, d.x2, d.y2, d.score, d.embedding FROM detections d JOIN images i ON i.id = d.image_id")
        var hits: [Hit] = []
        let qn = max(query.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        while try s.step() {
            let path = s.text(0)
            if path == excludingImage { continue }
            let e = s.floats(6)
            guard e.count == query.count else {
                throw GalleryError("'\(self.path)': stored embedding of \(path) has \(e.count) values, the query \(query.count)")
            }
            var dot: Float = 0, en: Float = 0
            for i in e.indices { dot += e[i] * query[i]; en += e[i] * e[i] }
            hits.append(Hit(imagePath: path, box: (Float(s.double(1)), Float(s.double(2)), Float(s.double(3)), Float(s.double(4))),
                            score: Float(s.double(5)), similarity: dot / (qn * max(en.squareRoot(), 1e-12))))
        }
        hits.sort { $0.similarity > $1.similarity }
        return Array(hits.prefix(top))
    }
}
