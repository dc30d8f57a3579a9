import ArgumentParser
import Foundation
import PSEdgeImage
import PSEdgeIR
import PSEdgePipeline

/// Options shared by the commands that run the person-search pipeline.
struct PipelineOptions: ParsableArguments {
    @Option(help: "The model package: a directory with pipeline.json (Models/default, or the output of psedge convert).")
    var model: String = "Models/default"

    @Option(help: "DDIM steps (1...8 recommended; only the head runs per step).")
    var steps: Int = 1

    @Option(help: "fp32, or int8 (needs a package converted with --quantize int8).")
    var precision: String = "fp32"

    @Option(help: "Threads.")
    var threads: Int = 2

    @Option(help: "Seed of the DDIM noise (results are reproducible for a given seed).")
    var seed: UInt64 = 0

    func validated() throws -> Precision {
        guard let p = Precision(rawValue: precision) else { throw PSEdgeError.invalid("--precision \(precision): expected fp32 or int8") }
        guard steps >= 1 && steps <= 1000 else { throw PSEdgeError.invalid("--steps must be between 1 and 1000, got \(steps)") }
        guard threads >= 1 && threads <= 256 else { throw PSEdgeError.invalid("--threads must be between 1 and 256, got \(threads)") }
        return p
    }

    func load() throws -> PersonSearchModel {
        try PersonSearchModel(directory: model, precision: try validated(), threads: threads)
    }
}

/// Reads an image file with a message naming it when it cannot be decoded.
func readImage(_ path: String) throws -> RGB8Image {
    guard FileManager.default.fileExists(atPath: path) else { throw PSEdgeError.io("image '\(path)' does not exist") }
    let img = try ImageCodec.read(path: path)
    guard img.width > 0, img.height > 0 else { throw PSEdgeError.invalid("image '\(path)' is empty") }
    return img
}

/// "x1,y1,x2,y2" → Box.
func parseBox(_ s: String) throws -> Box {
    let v = s.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
    guard v.count == 4, v.allSatisfy({ $0 != nil }) else { throw PSEdgeError.invalid("--box '\(s)': expected x1,y1,x2,y2 in pixels") }
    return Box(v[0]!, v[1]!, v[2]!, v[3]!)
}

/// Image files (.png, .jpg, .jpeg) under `dir`, recursively, as sorted relative paths.
func galleryImages(in dir: String) throws -> [String] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
        throw PSEdgeError.io("gallery '\(dir)' is not a directory")
    }
    guard let e = FileManager.default.enumerator(atPath: dir) else { throw PSEdgeError.io("gallery '\(dir)' cannot be listed") }
    var out: [String] = []
    while let f = e.nextObject() as? String {
        if ["png", "jpg", "jpeg"].contains((f as NSString).pathExtension.lowercased()) { out.append(f) }
    }
    guard !out.isEmpty else { throw PSEdgeError.invalid("gallery '\(dir)' has no images (.png, .jpg, .jpeg)") }
    return out.sorted()
}

/// A one-line progress bar on stderr (only when stderr is a terminal, or forced).
struct ProgressBar {
    let total: Int
    let label: String
    let start = DispatchTime.now()
    var enabled = isatty(2) != 0

    func update(_ done: Int) {
        guard enabled else { return }
        let width = 30
        let filled = total > 0 ? width * done / total : width
        let secs = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let rate = secs > 0 ? Double(done) / secs : 0
        let line = String(format: "\r%@ [%@%@] %d/%d  %.1f/s", label, String(repeating: "#", count: filled),
                          String(repeating: ".", count: width - filled), done, total, rate)
        FileHandle.standardError.write(Data(line.utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Writes a PNG atomically (temporary file, then rename).
func writePNGAtomically(_ image: RGB8Image, to path: String) throws {
    let bytes = try ImageCodec.encodePNG(image)
    try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
}

func jsonString(_ object: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
}

func rounded(_ v: Float, _ digits: Int = 2) -> Double {
    let p = pow(10.0, Double(digits))
    return (Double(v) * p).rounded() / p
}
