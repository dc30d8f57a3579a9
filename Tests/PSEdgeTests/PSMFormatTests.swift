import Foundation
import XCTest
@testable import PSEdgeFormat
import PSEdgeIR

/// A fresh directory per test, removed afterwards.
class FormatTempDirTestCase: XCTestCase {
    var dir: String = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "psedge-format-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func path(_ name: String) -> String { dir + "/" + name }

    func readBytes(_ p: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: p))) }

    func writeBytes(_ b: [UInt8], _ p: String) throws { try Data(b).write(to: URL(fileURLWithPath: p)) }

    /// Asserts `body` throws a PSEdgeError whose message contains every fragment.
    func assertThrows(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an error containing \(fragments)", file: file, line: line)
        } catch let e as PSEdgeError {
            for f in fragments where !e.message.contains(f) {
                XCTFail("error \"\(e.message)\" does not contain \"\(f)\"", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
        }
    }
}

final class PSMFormatTests: FormatTempDirTestCase {
    // MARK: CRC32

    private func bitwiseCRC(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return ~c
    }

    func testCRC32KnownVectors() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32.checksum(Array("a".utf8)), 0xE8B7_BE43)
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        XCTAssertEqual(CRC32.checksum([UInt8](repeating: 0, count: 32)), 0x190A_55AD)
    }

    func testCRC32MatchesBitwiseAtEveryLengthAndAlignment() {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        data.withUnsafeBytes { all in
            for start in 0..<9 {
                for len in [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 100, 291 - start] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + len)])
                    XCTAssertEqual(CRC32.checksum(slice), bitwiseCRC(Array(slice)), "start \(start) len \(len)")
                    // Incremental in two pieces gives the same value.
                    var c = CRC32()
                    c.update(UnsafeRawBufferPointer(rebasing: slice[slice.startIndex..<(slice.startIndex + len / 3)]))
                    c.update(UnsafeRawBufferPointer(rebasing: slice[(slice.startIndex + len / 3)...]))
                    XCTAssertEqual(c.value, bitwiseCRC(Array(slice)))
                }
            }
        }
    }

    // MARK: JSON

    func testJSONParsesAndRejects() throws {
        let v = try JSON.parse(Array(#" {"a": [1, -2.5e3, true, null, "x\u00e9\ud83d\ude00\n"], "b": {}} "#.utf8))
        let f = JSONField(v, context: "test")
        XCTAssertEqual(try f.member("a").array()[0].int(), 1)
        XCTAssertEqual(try f.member("a").array()[4].string(), "xé😀\n")
        for bad in [#"{"a":1,"a":2}"#, "[1,]", "01", "\"\\ud800\"", "[", "{\"a\" 1}", "1 2", "\"\u{01}\"", "-", "1.", "nul"] {
            XCTAssertThrowsError(try JSON.parse(Array(bad.utf8)), bad)
        }
        XCTAssertThrowsError(try JSON.parse([0x22, 0xff, 0x22]))  // invalid UTF-8
        XCTAssertThrowsError(try JSON.parse(Array(String(repeating: "[", count: 10000).utf8)))  // too deep, no stack overflow
        let s = "q\"\\\u{0}\u{7f}\n✓"
        XCTAssertEqual(try JSONField(JSON.parse(JSON.string(s).serialized), context: "t").string(), s)
        assertThrows(["field 'a[1]'", "integer"]) { _ = try f.member("a").array()[1].int() }
        assertThrows(["missing field 'b.c'"]) { _ = try f.member("b").member("c") }
    }

    // MARK: round trip

    private func makeTensor(_ dtype: DType, _ shape: [Int], seed: Int = 1) -> Tensor {
        let t = Tensor(zeros: dtype, shape: shape)
        let p = t.raw.assumingMemoryBound(to: UInt8.self)
        for i in 0..<t.byteCount { p[i] = UInt8(truncatingIfNeeded: i &* 31 &+ seed &* 7) }
        if dtype == .bool { for i in 0..<t.count { p[i] &= 1 } }
        return t
    }

    private func bytes(_ t: Tensor) -> [UInt8] { Array(t.rawBuffer) }

    private let specialFloats: [Float] = [
        0, -0.0, 1.5, -3.25e-7, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
        Float(bitPattern: 0x7FC0_0000), Float(bitPattern: 0xFFA1_2345), Float(bitPattern: 0x7F80_0001), 0.1,
    ]

    private func sampleGraph() -> (Graph, [String: QuantParams]) {
        let attrTensor = makeTensor(.int64, [3], seed: 5)
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"], attributes: [
                "i": .int(-7), "imax": .int(Int.max), "imin": .int(Int.min),
                "f": .float(Float(bitPattern: 0x7FC0_1234)), "fneg0": .float(-0.0), "fsub": .float(.leastNonzeroMagnitude),
                "s": .string("tab\tquote\" nul\u{0} ünï 😀"), "empty": .string(""),
                "is": .ints([1, -2, 3, Int.min]), "fs": .floats(specialFloats), "ss": .strings(["a", "", "ß"]),
                "no_ints": .ints([]), "no_floats": .floats([]),
                "t": .tensor(attrTensor),
            ]),
            Node(name: "", opType: "Custom", domain: "com.example", inputs: ["y", "", "q8"], outputs: ["z", ""],
                 attributes: ["t": .tensor(makeTensor(.float32, [2, 2], seed: 9)), "scalar": .tensor(makeTensor(.float16, [], seed: 2))]),
            Node(name: "dup", opType: "Identity", inputs: ["z"], outputs: ["out"]),
        ]
        let inits: [String: Tensor] = [
            "w": makeTensor(.float32, [4, 3, 3, 3]), "b": makeTensor(.float16, [4], seed: 2),
            "bf": makeTensor(.bfloat16, [2, 5], seed: 3), "q8": makeTensor(.int8, [4, 2], seed: 4),
            "u8": makeTensor(.uint8, [7], seed: 6), "i32": makeTensor(.int32, [1, 1, 3], seed: 8),
            "mask": makeTensor(.bool, [5], seed: 10), "scalar": makeTensor(.float32, [], seed: 11),
            "empty": makeTensor(.float32, [0, 16]), "i64": makeTensor(.int64, [2, 2], seed: 12),
            "conv/t": makeTensor(.uint8, [1], seed: 13),  // collides with the attribute tensor's natural table name
        ]
        let g = Graph(
            name: "sample \"graph\"", nodes: nodes,
            inputs: [ValueInfo(name: "x", type: TensorType(.float32, [nil, 3, 8, nil]), dimNames: [0: "batch", 3: "width"]),
                     ValueInfo(name: "untyped", type: nil)],
            outputs: [ValueInfo(name: "out", type: TensorType(.float32, [nil, 4, 6, 6])), ValueInfo(name: "y", type: nil)],
            initializers: inits,
            valueTypes: ["y": TensorType(.float32, [1, 4, 6, 6]), "z": TensorType(.float16, [nil])],
            opsets: ["": 17, "com.example": 2],
            metadata: ["source": "/models/x.onnx", "converter": "psedge 0.1", "options": "--fold"])
        let q: [String: QuantParams] = [
            "q8": QuantParams(scheme: .perChannel, axis: 0, scales: [0.5, 0.25, Float(bitPattern: 0x3DCC_CCCD), 3], zeroPoints: [0, -1, 127, -128]),
            "u8": QuantParams(scheme: .perTensor, scales: [0.0078125], zeroPoints: [128]),
        ]
        return (g, q)
    }

    private func assertAttributesEqual(_ a: [String: Attribute], _ b: [String: Attribute], _ ctx: String) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), ctx)
        for (k, x) in a {
            guard let y = b[k] else { continue }
            switch (x, y) {
            case (.int(let p), .int(let q)): XCTAssertEqual(p, q, "\(ctx).\(k)")
            case (.float(let p), .float(let q)): XCTAssertEqual(p.bitPattern, q.bitPattern, "\(ctx).\(k)")
            case (.string(let p), .string(let q)): XCTAssertEqual(Array(p.utf8), Array(q.utf8), "\(ctx).\(k)")
            case (.ints(let p), .ints(let q)): XCTAssertEqual(p, q, "\(ctx).\(k)")
            case (.floats(let p), .floats(let q)): XCTAssertEqual(p.map(\.bitPattern), q.map(\.bitPattern), "\(ctx).\(k)")
            case (.strings(let p), .strings(let q)): XCTAssertEqual(p, q, "\(ctx).\(k)")
            case (.tensor(let p), .tensor(let q)):
                XCTAssertEqual(p.dtype, q.dtype, "\(ctx).\(k)")
                XCTAssertEqual(p.shape, q.shape, "\(ctx).\(k)")
                XCTAssertEqual(bytes(p), bytes(q), "\(ctx).\(k)")
            default: XCTFail("\(ctx).\(k): kind \(x.kindName) came back as \(y.kindName)")
            }
        }
    }

    func testRoundTripPreservesEverything() throws {
        let (g, q) = sampleGraph()
        let p = path("model.psm")
        try PSMWriter.write(g, quantization: q, to: p)
        let m = try PSMModel.load(path: p, verifyTensorChecksums: true)
        try m.verify()
        let h = m.graph

        XCTAssertEqual(h.name, g.name)
        XCTAssertEqual(h.opsets, g.opsets)
        XCTAssertEqual(h.metadata, g.metadata)
        XCTAssertEqual(h.inputs.map(\.name), g.inputs.map(\.name))
        XCTAssertEqual(h.inputs.map(\.type), g.inputs.map(\.type))
        XCTAssertEqual(h.inputs.map(\.dimNames), g.inputs.map(\.dimNames))
        XCTAssertEqual(h.outputs.map(\.name), g.outputs.map(\.name))
        XCTAssertEqual(h.outputs.map(\.type), g.outputs.map(\.type))
        XCTAssertEqual(h.valueTypes, g.valueTypes)
        XCTAssertEqual(Set(h.initializers.keys), Set(g.initializers.keys))
        for (name, t) in g.initializers {
            let u = try XCTUnwrap(h.initializers[name])
            XCTAssertEqual(u.dtype, t.dtype, name)
            XCTAssertEqual(u.shape, t.shape, name)
            XCTAssertEqual(bytes(u), bytes(t), name)
        }
        XCTAssertEqual(h.nodes.count, g.nodes.count)
        for (a, b) in zip(g.nodes, h.nodes) {
            XCTAssertEqual(a.name, b.name)
            XCTAssertEqual(a.opType, b.opType)
            XCTAssertEqual(a.domain, b.domain)
            XCTAssertEqual(a.inputs, b.inputs)
            XCTAssertEqual(a.outputs, b.outputs)
            assertAttributesEqual(a.attributes, b.attributes, a.label)
        }
        XCTAssertEqual(m.quantization, q)
        XCTAssertTrue(try XCTUnwrap(h.nodes[0].attributes["f"]).isNaNFloat)
        XCTAssertEqual(m.formatVersion, 1)
        XCTAssertEqual(m.fileSize, try readBytes(p).count)
        XCTAssertEqual(m.tensorTable.count, g.initializers.count + 3)
        _ = try h.topologicallySorted()

        // Deterministic: writing the loaded model again gives identical bytes.
        let p2 = path("again.psm")
        try PSMWriter.write(h, quantization: m.quantization, to: p2)
        XCTAssertEqual(try readBytes(p), try readBytes(p2))
    }

    func testEmptyGraphRoundTrips() throws {
        let p = path("empty.psm")
        try PSMWriter.write(Graph(name: "", opsets: [:]), to: p)
        let m = try PSMModel.load(path: p, verifyTensorChecksums: true)
        XCTAssertEqual(m.graph.nodes.count, 0)
        XCTAssertEqual(m.graph.opsets, [:])
        XCTAssertEqual(m.fileSize % 64, 0)
    }

    func testTensorsBorrowTheMappingAndAreAligned() throws {
        let (g, q) = sampleGraph()
        let p = path("model.psm")
        try PSMWriter.write(g, quantization: q, to: p)
        let m = try PSMModel.load(path: p)
        let map = m.mappedBytes
        let lo = UInt(bitPattern: map.baseAddress), hi = lo + UInt(map.count)
        for (name, t) in m.graph.initializers where t.byteCount > 0 {
            let ptr = UInt(bitPattern: t.raw)
            XCTAssertTrue(ptr >= lo && ptr + UInt(t.byteCount) <= hi, "\(name) is not inside the mapping")
            XCTAssertEqual(ptr % 64, 0, "\(name) is not 64-byte aligned")
        }
        // Attribute tensors too.
        if case .tensor(let t)? = m.graph.nodes[0].attributes["t"] {
            XCTAssertTrue(UInt(bitPattern: t.raw) >= lo && UInt(bitPattern: t.raw) < hi)
        } else { XCTFail("attribute t is not a tensor") }
        for e in m.tensorTable { XCTAssertEqual((m.dataOffset + e.offset) % 64, 0) }
    }

    func testTensorsOutliveTheModelValue() throws {
        let p = path("m.psm")
        try PSMWriter.write(Graph(initializers: ["w": Tensor([1, 2, 3], shape: [3])]), to: p)
        var w: Tensor?
        do { w = try PSMModel.load(path: p).graph.initializers["w"] }
        XCTAssertEqual(w?.floats, [1, 2, 3])
    }

    // MARK: atomic writes

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
    }

    func testWriteReplacesExistingFileAtomically() throws {
        let p = path("model.psm")
        try writeBytes(Array("old contents".utf8), p)
        try PSMWriter.write(Graph(initializers: ["w": Tensor([1, 2], shape: [2])]), to: p)
        XCTAssertEqual(try PSMModel.load(path: p).graph.initializers["w"]?.floats, [1, 2])
        try PSMWriter.write(Graph(initializers: ["w": Tensor([3], shape: [1])]), to: p)
        XCTAssertEqual(try PSMModel.load(path: p).graph.initializers["w"]?.floats, [3])
        XCTAssertEqual(try leftovers(), [])
    }

    func testFailedWritesLeaveNoTemporaryFile() throws {
        let g = Graph(initializers: ["w": Tensor([1, 2], shape: [2])])
        assertThrows(["cannot write", "no-such-dir"]) { try PSMWriter.write(g, to: self.path("no-such-dir/m.psm")) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("no-such-dir")))

        // The rename fails (target is a non-empty directory) after all data was written.
        let target = path("target")
        try FileManager.default.createDirectory(atPath: target + "/inside", withIntermediateDirectories: true)
        assertThrows(["cannot write", "rename"]) { try PSMWriter.write(g, to: target) }
        XCTAssertEqual(try leftovers(), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: target + "/inside"))
    }

    func testWriterRejectsInvalidGraphsWithoutWriting() throws {
        let p = path("bad.psm")
        let uses = Graph(nodes: [Node(name: "n", opType: "Relu", inputs: ["ghost"], outputs: ["y"])])
        assertThrows(["'ghost'"]) { try PSMWriter.write(uses, to: p) }
        let twice = Graph(nodes: [Node(name: "a", opType: "Relu", inputs: ["x"], outputs: ["y"]),
                                  Node(name: "b", opType: "Relu", inputs: ["x"], outputs: ["y"])],
                          inputs: [ValueInfo(name: "x", type: nil)])
        assertThrows(["'y'", "more than once"]) { try PSMWriter.write(twice, to: p) }
        let output = Graph(outputs: [ValueInfo(name: "nowhere", type: nil)])
        assertThrows(["'nowhere'"]) { try PSMWriter.write(output, to: p) }
        let w = Graph(initializers: ["w": Tensor([1], shape: [1])])
        assertThrows(["'nope'", "not an initializer"]) {
            try PSMWriter.write(w, quantization: ["nope": QuantParams(scheme: .perTensor, scales: [1], zeroPoints: [0])], to: p)
        }
        assertThrows(["per-channel"]) {
            try PSMWriter.write(w, quantization: ["w": QuantParams(scheme: .perChannel, axis: 0, scales: [1, 2], zeroPoints: [0, 0])], to: p)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: p))
        XCTAssertEqual(try leftovers(), [])
    }

    // MARK: corruption

    /// A small valid model file.
    private func smallModel() throws -> String {
        let p = path("small.psm")
        let g = Graph(name: "small",
                      nodes: [Node(name: "add", opType: "Add", inputs: ["x", "w"], outputs: ["y"], attributes: ["k": .float(2)])],
                      inputs: [ValueInfo(name: "x", type: TensorType(.float32, [2]))],
                      outputs: [ValueInfo(name: "y", type: TensorType(.float32, [2]))],
                      initializers: ["w": Tensor([1, 2], shape: [2]), "v": Tensor(int64: [7, 8, 9], shape: [3])])
        try PSMWriter.write(g, to: p)
        return p
    }

    private struct Parts { var version: UInt32; var header: String; var data: [UInt8] }

    private func split(_ b: [UInt8]) -> Parts {
        func u64(_ at: Int) -> Int { Int(b[at..<(at + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
        let hlen = u64(12), off = u64(24), dlen = u64(32)
        return Parts(version: UInt32(b[8]), header: String(decoding: b[40..<(40 + hlen)], as: UTF8.self),
                     data: Array(b[off..<(off + dlen)]))
    }

    /// Reassembles a file with a consistent preamble (correct lengths and header CRC).
    private func assemble(_ p: Parts) -> [UInt8] {
        let h = Array(p.header.utf8)
        let dataOffset = (40 + h.count + 63) / 64 * 64
        var out = Array("PSEDGE".utf8) + [0, 0]
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le(p.version)
        le(UInt64(h.count))
        le(CRC32.checksum(h))
        le(UInt64(dataOffset))
        le(UInt64(p.data.count))
        out += h + [UInt8](repeating: 0, count: dataOffset - 40 - h.count) + p.data
        return out
    }

    /// Edits the header text of the small model, fixes the preamble, and expects a load error.
    private func assertHeaderEditRejected(_ edit: (String) -> String, _ fragments: [String],
                                          file: StaticString = #filePath, line: UInt = #line) throws {
        var parts = split(try readBytes(try smallModel()))
        let edited = edit(parts.header)
        XCTAssertNotEqual(edited, parts.header, "the edit changed nothing", file: file, line: line)
        parts.header = edited
        let p = path("edited.psm")
        try writeBytes(assemble(parts), p)
        assertThrows(fragments, file: file, line: line) { _ = try PSMModel.load(path: p) }
    }

    func testAssembleReproducesTheWriterOutput() throws {
        let b = try readBytes(try smallModel())
        XCTAssertEqual(assemble(split(b)), b)
    }

    func testRejectsBadMagic() throws {
        var b = try readBytes(try smallModel())
        b[0] = UInt8(ascii: "X")
        try writeBytes(b, path("x.psm"))
        assertThrows(["'\(path("x.psm"))' is not a PSEdge model (bad magic)"]) { _ = try PSMModel.load(path: self.path("x.psm")) }
        try writeBytes(Array("{\"not\": \"a model\"}".utf8), path("j.psm"))
        assertThrows(["bad magic"]) { _ = try PSMModel.load(path: self.path("j.psm")) }
        try writeBytes([], path("empty.psm"))
        assertThrows(["is empty"]) { _ = try PSMModel.load(path: self.path("empty.psm")) }
        assertThrows(["cannot open"]) { _ = try PSMModel.load(path: self.path("missing.psm")) }
    }

    func testRejectsNewerAndZeroVersion() throws {
        var parts = split(try readBytes(try smallModel()))
        parts.version = 2
        try writeBytes(assemble(parts), path("v2.psm"))
        assertThrows(["made by a newer PSEdge", "version 2"]) { _ = try PSMModel.load(path: self.path("v2.psm")) }
        parts.version = 0
        try writeBytes(assemble(parts), path("v0.psm"))
        assertThrows(["version 0"]) { _ = try PSMModel.load(path: self.path("v0.psm")) }
    }

    func testRejectsFlippedHeaderByte() throws {
        var b = try readBytes(try smallModel())
        b[60] ^= 0x20
        try writeBytes(b, path("f.psm"))
        assertThrows(["corrupt header", "checksum"]) { _ = try PSMModel.load(path: self.path("f.psm")) }
    }

    func testRejectsTruncationAtEveryLength() throws {
        let b = try readBytes(try smallModel())
        let p = path("t.psm")
        for n in 0..<b.count {
            try writeBytes(Array(b[0..<n]), p)
            do {
                _ = try PSMModel.load(path: p)
                XCTFail("a file truncated to \(n) of \(b.count) bytes loaded")
            } catch let e as PSEdgeError {
                XCTAssertTrue(e.message.contains("truncated") || e.message.contains("empty"), "\(n): \(e.message)")
            }
        }
        try writeBytes(b + [0], p)
        assertThrows(["unexpected bytes after the data section"]) { _ = try PSMModel.load(path: p) }
    }

    func testEverySingleByteFlipIsDetected() throws {
        let b = try readBytes(try smallModel())
        let p = path("flip.psm")
        for i in 0..<b.count {
            var c = b
            c[i] ^= 0x01
            try writeBytes(c, p)
            XCTAssertThrowsError(try PSMModel.load(path: p, verifyTensorChecksums: true), "flipping byte \(i) went unnoticed")
        }
    }

    func testVerifyCatchesFlippedDataByte() throws {
        let p = try smallModel()
        var b = try readBytes(p)
        b[b.count - 1] ^= 0x80
        try writeBytes(b, p)
        let m = try PSMModel.load(path: p)  // structure is fine
        assertThrows(["tensor 'w'", "checksum"]) { try m.verify() }
        assertThrows(["tensor 'w'", "checksum"]) { _ = try PSMModel.load(path: p, verifyTensorChecksums: true) }
    }

    func testRejectsTensorOutsideDataSection() throws {
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"offset\":64", with: "\"offset\":6400") },
                                     ["tensor 'w'", "outside the data section"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"offset\":64", with: "\"offset\":9223372036854775807") },
                                     ["tensor 'w'"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"offset\":64", with: "\"offset\":-64") },
                                     ["tensors[1].offset"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"offset\":64", with: "\"offset\":32") },
                                     ["tensor 'w'", "multiple of 64"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"offset\":64", with: "\"offset\":0") },
                                     ["overlap"])
    }

    func testRejectsShapeSizeMismatch() throws {
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"shape\":[3]", with: "\"shape\":[4]") },
                                     ["tensor 'v'", "needs 32 bytes", "length is 24"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"shape\":[3]", with: "\"shape\":[-3]") },
                                     ["tensors[0].shape[0]", "non-negative"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"shape\":[3]", with: "\"shape\":[4294967296,4294967296,0]") },
                                     ["tensor 'v'", "overflows"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"shape\":[3]", with: "\"shape\":[3.0]") },
                                     ["tensors[0].shape[0]", "integer"])
    }

    func testRejectsDuplicateNames() throws {
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"name\":\"v\"", with: "\"name\":\"w\"") },
                                     ["'w'", "more than once"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"outputs\":[\"y\"]", with: "\"outputs\":[\"w\"]") },
                                     ["produces 'w'", "initializer"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"role\":\"initializer\",", with: "\"role\":\"initializer\",\"role\":\"attribute\",") },
                                     ["duplicate key"])
    }

    func testRejectsBadHeaderContents() throws {
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"dtype\":\"i64\"", with: "\"dtype\":\"f64\"") },
                                     ["tensors[0].dtype", "unknown dtype \"f64\""])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"inputs\":[\"x\",\"w\"]", with: "\"inputs\":[\"x\",\"ghost\"]") },
                                     ["'ghost'"])
    }

    func testEmptyOptionalInputIsAllowed() throws {
        var parts = split(try readBytes(try smallModel()))
        parts.header = parts.header.replacingOccurrences(of: "\"inputs\":[\"x\",\"w\"]", with: "\"inputs\":[\"x\",\"\"]")
        try writeBytes(assemble(parts), path("e.psm"))
        XCTAssertEqual(try PSMModel.load(path: path("e.psm")).graph.nodes[0].inputs, ["x", ""])
    }

    func testRejectsMoreBadHeaders() throws {
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"kind\":\"float\"", with: "\"kind\":\"double\"") },
                                     ["nodes[0].attributes.k.kind", "double"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"value\":\"0x40000000\"", with: "\"value\":2.0") },
                                     ["nodes[0].attributes.k.value", "bit pattern"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"op_type\":\"Add\",", with: "") },
                                     ["missing field 'nodes[0].op_type'"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"crc32\":", with: "\"crc32\":-") },
                                     ["crc32"])
        try assertHeaderEditRejected({ String($0.dropLast()) }, ["not valid JSON"])
        try assertHeaderEditRejected({ $0.replacingOccurrences(of: "\"shape\":[2]}", with: "\"shape\":[2],\"dim_names\":{\"1\":\"n\"}}") },
                                     ["dim_names"])
        try assertHeaderEditRejected({ _ in "[]" }, ["should be an object"])
    }

    func testCorruptPreambleFields() throws {
        let b = try readBytes(try smallModel())
        let p = path("pre.psm")
        // Data offset not aligned.
        var c = b
        c[24] = c[24] &+ 1
        try writeBytes(c, p)
        XCTAssertThrowsError(try PSMModel.load(path: p))
        // Header length huge.
        c = b
        c[19] = 0x7f
        try writeBytes(c, p)
        assertThrows(["truncated"]) { _ = try PSMModel.load(path: p) }
        // Lengths beyond Int.
        c = b
        c[39] = 0xff
        try writeBytes(c, p)
        assertThrows(["corrupt preamble"]) { _ = try PSMModel.load(path: p) }
    }

    /// Random edits of the header (with a recomputed CRC, so they reach the JSON parser and the
    /// validator) must give a model or a PSEdgeError, never a crash.
    func testRandomHeaderMutationsNeverCrash() throws {
        let (g, q) = sampleGraph()
        let good = path("good.psm")
        try PSMWriter.write(g, quantization: q, to: good)
        let original = split(try readBytes(good))
        let header = Array(original.header.utf8)
        let alphabet = Array("{}[]\",:-0123456789.eE\\ntrulfasx ".utf8) + [0x00, 0xff, 0xc3]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let p = path("fuzz.psm")
        var loaded = 0
        for _ in 0..<1500 {
            var h = header
            for _ in 0..<(1 + next(3)) {
                let i = next(h.count)
                switch next(3) {
                case 0: h[i] = alphabet[next(alphabet.count)]
                case 1: h.remove(at: i)
                default: h.insert(alphabet[next(alphabet.count)], at: i)
                }
            }
            var parts = original
            parts.header = String(decoding: h, as: UTF8.self)
            try writeBytes(assemble(parts), p)
            do {
                _ = try PSMModel.load(path: p, verifyTensorChecksums: true)
                loaded += 1
            } catch is PSEdgeError {
            }
        }
        XCTAssertLessThan(loaded, 1500)
    }

    func testQuantizationRulesAreCheckedOnLoad() throws {
        let g = Graph(initializers: ["q": Tensor(zeros: .int8, shape: [2, 3])])
        let p = path("q.psm")
        try PSMWriter.write(g, quantization: ["q": QuantParams(scheme: .perChannel, axis: 1, scales: [1, 2, 4], zeroPoints: [0, 1, -1])], to: p)
        XCTAssertEqual(try PSMModel.load(path: p).quantization["q"]?.axis, 1)
        var parts = split(try readBytes(p))
        parts.header = parts.header.replacingOccurrences(of: "\"axis\":1", with: "\"axis\":0")
        try writeBytes(assemble(parts), p)
        assertThrows(["tensor 'q'", "needs 2 scales"]) { _ = try PSMModel.load(path: p) }
    }
}

private extension Attribute {
    var isNaNFloat: Bool { if case .float(let f) = self { return f.isNaN } else { return false } }
}

extension PSMFormatTests {
    private func peakRSSKB() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss)
    }

    /// Writing streams tensor bytes from their storage: peak memory must not grow by the model size.
    func testWritingALargeModelDoesNotCopyIt() throws {
        let mb = 96
        let t = Tensor(zeros: .float32, shape: [mb << 18])
        let p = t.raw.assumingMemoryBound(to: UInt32.self)
        for i in 0..<t.count { p[i] = UInt32(truncatingIfNeeded: i &* 2654435761) }  // touch every page
        let before = peakRSSKB()
        let file = path("big.psm")
        let start = DispatchTime.now()
        try PSMWriter.write(Graph(initializers: ["big": t]), to: file)
        let written = DispatchTime.now()
        let grew = peakRSSKB() - before
        XCTAssertLessThan(grew, (mb / 4) << 10, "peak RSS grew by \(grew) KB while writing a \(mb) MB model")
        let m = try PSMModel.load(path: file)
        let loaded = DispatchTime.now()
        try m.verify()
        let verified = DispatchTime.now()
        XCTAssertEqual(m.graph.initializers["big"]?.byteCount, mb << 20)
        func ms(_ a: DispatchTime, _ b: DispatchTime) -> Double { Double(b.uptimeNanoseconds - a.uptimeNanoseconds) / 1e6 }
        print("large model: write \(ms(start, written)) ms, load \(ms(written, loaded)) ms, verify \(ms(loaded, verified)) ms, RSS +\(grew) KB")
    }
}
