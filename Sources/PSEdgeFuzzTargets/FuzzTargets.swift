import Foundation
import PSEdgeEval
import PSEdgeFormat
import PSEdgeIR
import PSEdgeImage
import PSEdgeONNX
import PSEdgePipeline
import PSEdgeRuntime
import PSEdgeSafetensors

/// The readers a user or an attacker can hand a file to, each as one fuzz target. A target takes
/// arbitrary bytes and must either accept them or throw a `PSEdgeError`/`PipelineError`; a crash,
/// a trap, a leak or an allocation beyond the fuzzer's limit is a bug. `tools/fuzz.sh` runs them
/// under libFuzzer; `FuzzRegressionTests` replays the committed corpora and crash inputs.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case onnx, safetensors, psm, npy, png, jpeg, manifest, detections, pipeline

    /// What a run of one input ended in.
    public enum Outcome: Equatable, Sendable {
        case accepted
        case rejected(String)
    }

    /// The fuzzers run with a 1 GiB allocation limit; plans and constants get the same checks as in normal use,
    /// with limits below it.
    public static func applyFuzzingLimits() {
        ResourceLimits.maxPlanBytes = 256 << 20
        ResourceLimits.maxConstantBytes = 256 << 20
    }

    /// Runs one input through the reader. Only reader errors are caught: anything else escapes.
    @discardableResult
    public func run(_ bytes: [UInt8]) -> Outcome {
        do {
            try body(bytes)
            return .accepted
        } catch let e as PSEdgeError {
            return .rejected(e.message)
        } catch let e as PipelineError {
            return .rejected(e.description)
        } catch {
            return .rejected("\(error)")
        }
    }

    private func body(_ bytes: [UInt8]) throws {
        switch self {
        case .onnx:
            // Through protobuf-c and the graph builder; external data is refused (no base directory).
            let graph = try ONNXImporter.load(bytes: bytes, sourceName: "fuzz.onnx")
            touch(graph)
            // Shape inference and memory planning of every node, as `psedge run`/`bench` do before executing.
            if graph.nodes.count <= 256 { _ = try Plan(graph: graph, threads: 1) }
        case .safetensors:
            let file = try SafetensorsFile.load(path: try FuzzScratch.write(bytes, suffix: "safetensors"))
            for (_, t) in file.tensors { touchBytes(t) }
        case .psm:
            let model = try PSMModel.load(path: try FuzzScratch.write(bytes, suffix: "psm"), verifyTensorChecksums: true)
            touch(model.graph)
            // Planning sizes buffers from the file's declared shapes: it must refuse absurd ones, not allocate them.
            _ = try Plan(graph: model.graph, threads: 1)
        case .npy:
            touchBytes(try NPY.read(path: try FuzzScratch.write(bytes, suffix: "npy")))
        case .png:
            let image = try ImageCodec.decodePNG(bytes, name: "fuzz.png")
            precondition(image.pixels.count == image.width * image.height * 3)
        case .jpeg:
            let image = try ImageCodec.decodeJPEG(bytes, name: "fuzz.jpg")
            precondition(image.pixels.count == image.width * image.height * 3)
        case .manifest:
            _ = try Manifest.decode(bytes, source: "fuzz-manifest.json")
        case .detections:
            let detections = try Detections.decode(bytes, source: "fuzz-detections.json", manifest: FuzzTarget.fixedManifest)
            _ = try PersonSearchEval.evaluate(manifest: FuzzTarget.fixedManifest, detections: detections)
            _ = PersonSearchEval.detectionMetrics(manifest: FuzzTarget.fixedManifest, detections: detections)
        case .pipeline:
            let directory = FuzzScratch.packageDirectory
            _ = try FuzzScratch.write(bytes, to: directory + "/pipeline.json")
            _ = try PipelineSpec.load(directory: directory)
        }
    }

    /// Reads every byte a tensor claims to have, so a storage that lies about its size shows up under ASan.
    private func touchBytes(_ t: Tensor) {
        // A reader must never hand out a tensor whose shape claims more bytes than its storage holds
        // (the multiplication traps on overflow, which is a bug of the reader too).
        let claimed = t.shape.reduce(1, *) * t.dtype.byteSize
        precondition(t.offset >= 0 && t.offset + claimed <= t.storage.byteCount, "tensor larger than its storage")
        let count = t.storage.byteCount
        guard count > 0 else { return }
        let bytes = t.storage.base.assumingMemoryBound(to: UInt8.self)
        var x: UInt8 = 0
        for i in stride(from: 0, to: count, by: 4096) { x ^= bytes[i] }
        x ^= bytes[count - 1]
        blackHole(x)
    }

    private func touch(_ graph: Graph) {
        for (_, t) in graph.initializers { touchBytes(t) }
    }

    /// The manifest the detections target decodes against (Tests/Fixtures/eval/example_cuhk/manifest.json).
    public static let fixedManifest: Manifest = {
        let text = """
        {"protocol": "cuhk-sysu", "images": [
          {"name": "q.jpg", "width": 200, "height": 200, "persons": [{"box": [0, 0, 40, 100], "pid": 7}]},
          {"name": "g1.jpg", "width": 200, "height": 200,
           "persons": [{"box": [10, 10, 50, 110], "pid": 7}, {"box": [100, 10, 140, 110], "pid": -1}]},
          {"name": "g2.jpg", "width": 200, "height": 200, "persons": [{"box": [0, 0, 10, 20], "pid": 7}]},
          {"name": "g3.jpg", "width": 200, "height": 200, "persons": [{"box": [0, 0, 40, 100], "pid": 3}]},
          {"name": "g4.jpg", "width": 200, "height": 200, "persons": []}],
         "queries": [{"image": "q.jpg", "box": [0, 0, 40, 100], "pid": 7,
                      "gallery": ["g1.jpg", "g2.jpg", "g3.jpg", "g4.jpg"]}]}
        """
        return try! Manifest.decode(Array(text.utf8), source: "fixed manifest")
    }()
}

@inline(never) func blackHole<T>(_ x: T) { _ = x }

/// One scratch file per process for readers that take a path (they mmap it).
enum FuzzScratch {
    static let root: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = "\(base)/psedge-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static var packageDirectory: String { root + "/package" }

    static func write(_ bytes: [UInt8], suffix: String) throws -> String {
        try write(bytes, to: "\(root)/input.\(suffix)")
    }

    static func write(_ bytes: [UInt8], to path: String) throws -> String {
        let dir = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw PSEdgeError.io("fuzz scratch '\(path)' cannot be written") }
        defer { close(fd) }
        var done = 0
        try bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = Foundation.write(fd, buf.baseAddress! + done, buf.count - done)
                guard n > 0 else { throw PSEdgeError.io("fuzz scratch '\(path)': short write") }
                done += n
            }
        }
        return path
    }

    /// Removes this process's scratch files.
    static func clean() { try? FileManager.default.removeItem(atPath: root) }
}

extension FuzzTarget {
    /// Removes the scratch files of this process.
    public static func cleanUp() { FuzzScratch.clean() }
}
