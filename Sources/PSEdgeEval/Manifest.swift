import Foundation
import PSEdgeIR

/// An axis-aligned box in pixels, corners (x1, y1) top-left and (x2, y2) bottom-right.
public struct Box: Equatable, Sendable, CustomStringConvertible {
    public var x1, y1, x2, y2: Double

    public init(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) {
        self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2
    }

    public var width: Double { x2 - x1 }
    public var height: Double { y2 - y1 }
    public var area: Double { (x2 - x1) * (y2 - y1) }

    /// Intersection over union as the community code computes it (no +1 pixel convention):
    /// inter = max(0, min x2 - max x1) · max(0, min y2 - max y1), union = area(a) + area(b) - inter.
    @inline(__always)
    public func iou(_ b: Box) -> Double {
        let ix = max(0, min(x2, b.x2) - max(x1, b.x1))
        let iy = max(0, min(y2, b.y2) - max(y1, b.y1))
        let inter = ix * iy
        let union = (x2 - x1) * (y2 - y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
        return inter / union
    }

    public var description: String { "[\(fmt(x1)), \(fmt(y1)), \(fmt(x2)), \(fmt(y2))]" }
}

func fmt(_ d: Double) -> String {
    d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
}

/// One annotated person. `pid` is the identity; −1 marks an unlabeled person.
public struct Person: Equatable, Sendable {
    public var box: Box
    public var pid: Int

    public init(box: Box, pid: Int) {
        self.box = box
        self.pid = pid
    }
}

public struct ManifestImage: Sendable {
    public var name: String
    public var path: String?
    public var width: Int?
    public var height: Int?
    /// Camera id as text (a JSON number or string in the file); nil when the dataset has none (CUHK-SYSU).
    public var camera: String?
    public var persons: [Person]

    public init(name: String, path: String? = nil, width: Int? = nil, height: Int? = nil, camera: String? = nil, persons: [Person]) {
        self.name = name; self.path = path; self.width = width; self.height = height; self.camera = camera
        self.persons = persons
    }
}

public struct ManifestQuery: Sendable {
    /// Index of the query image in `Manifest.images`.
    public var image: Int
    public var box: Box
    public var pid: Int
    /// Explicit gallery (indices into `Manifest.images`, duplicates removed, order kept), or nil: every
    /// other image.
    public var gallery: [Int]?

    public init(image: Int, box: Box, pid: Int, gallery: [Int]?) {
        self.image = image; self.box = box; self.pid = pid; self.gallery = gallery
    }
}

public enum EvalProtocol: String, Sendable {
    case cuhkSysu = "cuhk-sysu"
    case prw = "prw"
}

/// A person-search test set: images with annotated persons and queries (docs/EVALUATION.md).
public struct Manifest: Sendable {
    public var evalProtocol: EvalProtocol
    public var images: [ManifestImage]
    public var queries: [ManifestQuery]
    /// Image name → index.
    public let index: [String: Int]

    /// Builds a manifest in code; names must be unique and query indices valid.
    public init(evalProtocol: EvalProtocol, images: [ManifestImage], queries: [ManifestQuery]) throws {
        var index: [String: Int] = [:]
        for (i, im) in images.enumerated() {
            if let j = index[im.name] { throw PSEdgeError.malformed("manifest: images[\(i)] repeats the name '\(im.name)' of images[\(j)]") }
            index[im.name] = i
        }
        for (qi, q) in queries.enumerated() {
            guard images.indices.contains(q.image), (q.gallery ?? []).allSatisfy(images.indices.contains) else {
                throw PSEdgeError.malformed("manifest: queries[\(qi)] refers to an image index out of range")
            }
        }
        self.evalProtocol = evalProtocol
        self.images = images
        self.queries = queries
        self.index = index
    }

    public static func load(path: String) throws -> Manifest {
        try decode(try FileBytes.read(path, what: "manifest"), source: path)
    }

    /// Decodes and validates a manifest. Every error names the file and the entry.
    public static func decode(_ bytes: [UInt8], source: String = "manifest") throws -> Manifest {
        let root = EvalField(value: try EvalJSON.parse(bytes, source: source), path: "", source: source)
        _ = try root.object()
        let protoField = try root.member("protocol")
        let protoName = try protoField.string()
        guard let proto = EvalProtocol(rawValue: protoName) else {
            throw protoField.error("is '\(protoName)'; expected \"cuhk-sysu\" or \"prw\"")
        }

        var images: [ManifestImage] = []
        var index: [String: Int] = [:]
        for (i, f0) in try root.member("images").array().enumerated() {
            _ = try f0.object()
            let name = try f0.member("name").string()
            guard !name.isEmpty else { throw f0.error("has an empty name") }
            let f = f0.relabeled("images[\(i)] ('\(name)')")
            if let j = index[name] { throw f.error("repeats the name of images[\(j)]") }
            index[name] = i
            let path = try f.optionalMember("path").map { try $0.string() }
            let width = try f.optionalMember("width").map { try nonNegativeInt($0) }
            let height = try f.optionalMember("height").map { try nonNegativeInt($0) }
            var camera: String? = nil
            if let c = try f.optionalMember("camera") {
                switch c.value {
                case .string(let s): camera = s
                case .number: camera = String(try c.int())
                default: throw c.wrongKind("a number, a string or null")
                }
            }
            var persons: [Person] = []
            for p in try f.member("persons").array() {
                let box = try decodeBox(try p.member("box"), positiveArea: true)
                let pidField = try p.member("pid")
                let pid = try pidField.int()
                guard pid >= -1 else { throw pidField.error("is \(pid); identities are >= 0, and -1 marks an unlabeled person") }
                persons.append(Person(box: box, pid: pid))
            }
            images.append(ManifestImage(name: name, path: path, width: width, height: height, camera: camera, persons: persons))
        }

        var queries: [ManifestQuery] = []
        for qf in try root.member("queries").array() {
            _ = try qf.object()
            let imField = try qf.member("image")
            let imName = try imField.string()
            guard let im = index[imName] else { throw imField.error("is '\(imName)', which is not an image of the manifest") }
            let box = try decodeBox(try qf.member("box"), positiveArea: true)
            let pidField = try qf.member("pid")
            let pid = try pidField.int()
            guard pid >= 0 else { throw pidField.error("is \(pid); a query needs an identity (pid >= 0)") }
            var gallery: [Int]? = nil
            if let gf = try qf.optionalMember("gallery") {
                var seen = Set<Int>()
                var g: [Int] = []
                for e in try gf.array() {
                    let n = try e.string()
                    guard let gi = index[n] else { throw e.error("is '\(n)', which is not an image of the manifest") }
                    if seen.insert(gi).inserted { g.append(gi) }
                }
                gallery = g
            }
            queries.append(ManifestQuery(image: im, box: box, pid: pid, gallery: gallery))
        }
        return try Manifest(evalProtocol: proto, images: images, queries: queries)
    }
}

func nonNegativeInt(_ f: EvalField) throws -> Int {
    let v = try f.int()
    guard v >= 0 else { throw f.error("is \(v); expected a non-negative integer") }
    return v
}

/// [x1, y1, x2, y2] of finite numbers with x2 >= x1 and y2 >= y1 (strictly greater for annotated persons:
/// a zero-area ground-truth box has no meaningful IoU).
func decodeBox(_ f: EvalField, positiveArea: Bool) throws -> Box {
    guard case .numbers(let v) = f.value else {
        if case .array = f.value { _ = try f.finiteNumbers() }
        throw f.wrongKind("an array of 4 numbers [x1, y1, x2, y2]")
    }
    guard v.count == 4 else { throw f.error("has \(v.count) values; expected 4 [x1, y1, x2, y2]") }
    _ = try f.finiteNumbers()
    let b = Box(v[0], v[1], v[2], v[3])
    if positiveArea {
        guard b.x2 > b.x1 else { throw f.error("\(b) has x2 (\(fmt(b.x2))) <= x1 (\(fmt(b.x1))); a person box needs x2 > x1") }
        guard b.y2 > b.y1 else { throw f.error("\(b) has y2 (\(fmt(b.y2))) <= y1 (\(fmt(b.y1))); a person box needs y2 > y1") }
    } else {
        guard b.x2 >= b.x1 else { throw f.error("\(b) has x2 (\(fmt(b.x2))) < x1 (\(fmt(b.x1)))") }
        guard b.y2 >= b.y1 else { throw f.error("\(b) has y2 (\(fmt(b.y2))) < y1 (\(fmt(b.y1)))") }
    }
    return b
}
