import Foundation
import PSEdgeIR
import PSEdgeONNX
import XCTest

/// Fixtures come from tools/make_onnx_import_fixtures.py (committed in Tests/Fixtures/onnx-import/).
final class ONNXImporterTests: XCTestCase {
    private static let fixtureDir = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx-import")

    private func fixture(_ name: String) -> String { Self.fixtureDir.appendingPathComponent(name).path }

    private func fixtureBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name))))
    }

    /// Asserts that `body` throws a PSEdgeError of `kind` whose message contains every string in `contains`.
    private func assertError<T>(_ kind: PSEdgeError.Kind, contains: [String], file: StaticString = #filePath, line: UInt = #line,
                                _ body: () throws -> T) {
        do {
            _ = try body()
            XCTFail("expected an error containing \(contains)", file: file, line: line)
        } catch let e as PSEdgeError {
            XCTAssertEqual(e.kind, kind, "wrong kind for: \(e.message)", file: file, line: line)
            for s in contains {
                XCTAssertTrue(e.message.contains(s), "message lacks '\(s)': \(e.message)", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error type \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    private func load(_ name: String) throws -> Graph { try ONNXImporter.load(path: fixture(name)) }

    // MARK: - initializers

    func testRawDataInitializers() throws {
        let g = try load("raw_initializers.onnx")
        XCTAssertEqual(g.name, "raw_graph")
        let w = try XCTUnwrap(g.initializers["w"])
        XCTAssertEqual(w.dtype, .float32)
        XCTAssertEqual(w.shape, [2, 3])
        XCTAssertEqual(w.floats, [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
        XCTAssertEqual(g.initializers["shape"]?.int64s, [3, -1])
        XCTAssertEqual(g.initializers["h"]?.dtype, .float16)
        XCTAssertEqual(g.initializers["h"]?.floats, [0.5, -1, 2, 65504])
        XCTAssertEqual(g.initializers["flags"]?.dtype, .bool)
        XCTAssertEqual(g.initializers["flags"]?.ints, [1, 0, 1])
        XCTAssertEqual(g.initializers["u"]?.dtype, .uint8)
        XCTAssertEqual(g.initializers["u"]?.ints, [0, 7, 255])
        XCTAssertEqual(g.initializers["s8"]?.dtype, .int8)
        XCTAssertEqual(g.initializers["s8"]?.ints, [-128, 0, 127])
        XCTAssertEqual(g.initializers["i32"]?.dtype, .int32)
        XCTAssertEqual(g.initializers["i32"]?.ints, [-2147483648, 0, 2147483647])
        XCTAssertEqual(g.initializers["bf"]?.dtype, .bfloat16)
        XCTAssertEqual(g.initializers["bf"]?.floats, [1, -2])
        // Types PSEdge lacks, converted.
        XCTAssertEqual(g.initializers["d"]?.dtype, .float32)
        XCTAssertEqual(g.initializers["d"]?.floats, [0.25, -1e10])
        XCTAssertEqual(g.initializers["i16"]?.dtype, .int32)
        XCTAssertEqual(g.initializers["i16"]?.ints, [-32768, 32767])
        XCTAssertEqual(g.initializers["u16"]?.dtype, .int32)
        XCTAssertEqual(g.initializers["u16"]?.ints, [65535, 1])
        XCTAssertEqual(g.initializers["u32"]?.dtype, .int64)
        XCTAssertEqual(g.initializers["u32"]?.int64s, [4294967295, 2])
        XCTAssertEqual(g.initializers["u64"]?.dtype, .int64)
        XCTAssertEqual(g.initializers["u64"]?.int64s, [Int64.max, 3])
        let conversions = try XCTUnwrap(g.metadata["onnx.dtype_conversions"])
        for name in ["'d'", "'i16'", "'u16'", "'u32'", "'u64'"] { XCTAssertTrue(conversions.contains(name), conversions) }
        // Rank 0 and zero-element tensors.
        XCTAssertEqual(g.initializers["scalar"]?.shape, [])
        XCTAssertEqual(g.initializers["scalar"]?.floats, [4])
        XCTAssertEqual(g.initializers["empty"]?.shape, [0, 4])
        XCTAssertEqual(g.initializers["empty"]?.count, 0)
        XCTAssertEqual(g.initializers.count, 15)
    }

    func testGraphStructureTypesAndMetadata() throws {
        let path = fixture("raw_initializers.onnx")
        let g = try ONNXImporter.load(path: path)
        XCTAssertEqual(g.inputs.map(\.name), ["x", "z", "q"])
        XCTAssertEqual(g.inputs[0].type, TensorType(.float32, [nil, 3]))
        XCTAssertEqual(g.inputs[0].dimNames, [0: "batch"])
        XCTAssertEqual(g.inputs[1].type, TensorType(.int64, [nil, 2]))
        XCTAssertEqual(g.inputs[1].dimNames, [:])
        XCTAssertNil(g.inputs[2].type, "an input without a shape has unknown rank")
        XCTAssertEqual(g.outputs.map(\.name), ["y"])
        XCTAssertEqual(g.outputs[0].type, TensorType(.float32, [nil, 3]))

        XCTAssertEqual(g.nodes.map(\.opType), ["Constant", "Add", "Mul"])
        XCTAssertEqual(g.nodes[0].name, "const")
        XCTAssertEqual(try g.nodes[0].attrs.tensor("value")?.floats, [1, 2, 3])
        XCTAssertEqual(g.nodes[1].inputs, ["x", "c"])
        XCTAssertEqual(g.nodes[1].outputs, ["t"])
        XCTAssertEqual(g.nodes[2].name, "")
        XCTAssertEqual(g.nodes[2].domain, "")

        XCTAssertEqual(g.valueTypes["c"], TensorType(.float32, static: [3]))
        XCTAssertNil(g.valueTypes["t"], "symbolic value_info is left to shape inference")
        XCTAssertEqual(g.opsets, ["": 17])
        XCTAssertEqual(g.metadata["source"], path)
        XCTAssertEqual(g.metadata["format"], "onnx")
        XCTAssertEqual(g.metadata["producer_name"], "psedge-fixtures")
        XCTAssertEqual(g.metadata["producer_version"], "1.0")
        XCTAssertEqual(g.metadata["ir_version"], "8")
        XCTAssertNoThrow(try g.topologicallySorted())
    }

    func testTypedFieldInitializers() throws {
        let g = try load("typed_initializers.onnx")
        XCTAssertEqual(g.initializers["f"]?.dtype, .float32)
        XCTAssertEqual(g.initializers["f"]?.shape, [2, 2])
        XCTAssertEqual(g.initializers["f"]?.floats, [1, -2, 3.5, 0])
        XCTAssertEqual(g.initializers["l"]?.int64s, [-1, 0, 1 << 40])
        XCTAssertEqual(g.initializers["h"]?.dtype, .float16)
        XCTAssertEqual(g.initializers["h"]?.floats, [0.5, -1, 2])
        XCTAssertEqual(g.initializers["bf"]?.dtype, .bfloat16)
        XCTAssertEqual(g.initializers["bf"]?.floats, [1, -2])
        XCTAssertEqual(g.initializers["i"]?.ints, [-7, 123456])
        XCTAssertEqual(g.initializers["s8"]?.dtype, .int8)
        XCTAssertEqual(g.initializers["s8"]?.ints, [-5, 100])
        XCTAssertEqual(g.initializers["u8"]?.dtype, .uint8)
        XCTAssertEqual(g.initializers["u8"]?.ints, [200, 3])
        XCTAssertEqual(g.initializers["b"]?.dtype, .bool)
        XCTAssertEqual(g.initializers["b"]?.ints, [1, 0, 1])
        XCTAssertEqual(g.initializers["i16"]?.dtype, .int32)
        XCTAssertEqual(g.initializers["i16"]?.ints, [-300, 300])
        XCTAssertEqual(g.initializers["d"]?.dtype, .float32)
        XCTAssertEqual(g.initializers["d"]?.floats, [0.5, 3])
        XCTAssertEqual(g.initializers["u32"]?.dtype, .int64)
        XCTAssertEqual(g.initializers["u32"]?.int64s, [4_000_000_000, 1])
        XCTAssertEqual(g.opsets[""], 13)
    }

    // MARK: - external data

    func testExternalDataSharesOneMapping() throws {
        let g = try load("external_data.onnx")
        let a = try XCTUnwrap(g.initializers["a"])
        let b = try XCTUnwrap(g.initializers["b"])
        XCTAssertEqual(a.shape, [2, 2])
        XCTAssertEqual(a.floats, [1, 2, 3, 4])
        XCTAssertEqual(b.dtype, .int64)
        XCTAssertEqual(b.int64s, [10, -20, 30])
        // Zero-copy: both borrow the same mapping of external_data.bin, 16 bytes apart as in the file.
        XCTAssertEqual(b.raw - a.raw, 16)
        XCTAssertEqual(a.storage.byteCount, 16)
        // An odd offset (f16 at 57) and a converted type (f64 → f32) are copied.
        XCTAssertEqual(g.initializers["c"]?.dtype, .float16)
        XCTAssertEqual(g.initializers["c"]?.floats, [1.5, -0.25, 8])
        XCTAssertEqual(g.initializers["d"]?.dtype, .float32)
        XCTAssertEqual(g.initializers["d"]?.floats, [2.5, -4])
    }

    func testExternalDataFromMemoryNeedsBaseDirectory() throws {
        let bytes = try fixtureBytes("external_data.onnx")
        assertError(.invalidArgument, contains: ["'a'", "external_data.bin", "base directory"]) {
            try ONNXImporter.load(bytes: bytes)
        }
        let g = try ONNXImporter.load(bytes: bytes, baseDirectory: Self.fixtureDir.path)
        XCTAssertEqual(g.initializers["a"]?.floats, [1, 2, 3, 4])
    }

    func testExternalDataErrors() {
        assertError(.malformed, contains: ["ext_outside.onnx", "initializer 'a'", "outside", "external_data.bin", "80 bytes"]) {
            try load("ext_outside.onnx")
        }
        assertError(.malformed, contains: ["ext_parent.onnx", "initializer 'a'", "'../external_data.bin'", ".."]) {
            try load("ext_parent.onnx")
        }
        assertError(.malformed, contains: ["ext_absolute.onnx", "initializer 'a'", "'/etc/hostname'", "absolute"]) {
            try load("ext_absolute.onnx")
        }
        assertError(.io, contains: ["ext_missing.onnx", "initializer 'a'", "'missing.bin'", "not found"]) {
            try load("ext_missing.onnx")
        }
        assertError(.malformed, contains: ["ext_length.onnx", "initializer 'a'", "20 bytes", "16 bytes"]) {
            try load("ext_length.onnx")
        }
    }

    // MARK: - inputs, attributes, opsets

    func testIRVersion3InitializersListedAsInputsAreNotInputs() throws {
        let g = try load("ir3_inputs.onnx")
        XCTAssertEqual(g.metadata["ir_version"], "3")
        XCTAssertEqual(g.opsets[""], 7)
        XCTAssertEqual(g.inputs.map(\.name), ["x"])
        XCTAssertEqual(g.inputs[0].type, TensorType(.float32, static: [1, 3]))
        XCTAssertEqual(g.initializers["w"]?.floats, [0.5, 0.5, 0.5])
    }

    func testAttributesOfEveryKind() throws {
        let g = try load("attributes.onnx")
        XCTAssertEqual(g.nodes.count, 2)
        let n = g.nodes[0]
        XCTAssertEqual(n.name, "every")
        XCTAssertEqual(n.opType, "AllAttrs")
        XCTAssertEqual(n.domain, "test.psedge")
        XCTAssertEqual(n.inputs, ["x", ""], "an omitted optional input stays \"\"")
        let a = n.attrs
        XCTAssertEqual(try a.int("i"), -7)
        XCTAssertEqual(try a.float("f"), 0.25)
        XCTAssertEqual(try a.string("s"), "héllo")
        XCTAssertEqual(try a.ints("ints"), [1, -2, 3])
        XCTAssertEqual(try a.floats("floats"), [0.5, -1.5])
        XCTAssertEqual(try a.strings("strings"), ["a", "bc"])
        let t = try XCTUnwrap(a.tensor("t"))
        XCTAssertEqual(t.dtype, .int64)
        XCTAssertEqual(t.int64s, [4, 5])
        XCTAssertEqual(try a.ints("empty"), [])
        XCTAssertEqual(n.attributes.count, 8)
        // "ai.onnx" is the default domain.
        XCTAssertEqual(g.nodes[1].opType, "Relu")
        XCTAssertEqual(g.nodes[1].domain, "")
        XCTAssertEqual(g.opsets, ["": 13, "test.psedge": 1, "ai.onnx.ml": 3])
        XCTAssertEqual(g.metadata["onnx.metadata.author"], "psedge")
        XCTAssertEqual(g.metadata["onnx.metadata.purpose"], "attribute test")
    }

    func testUnsupportedAttributesAndTensors() {
        assertError(.unsupported, contains: ["graph_attr.onnx", "If node 'branch'", "attribute 'else_branch'", "subgraph"]) {
            try load("graph_attr.onnx")
        }
        assertError(.unsupported, contains: ["sparse_attr.onnx", "Constant node 'sparse_const'", "attribute 'sparse_value'", "sparse"]) {
            try load("sparse_attr.onnx")
        }
        assertError(.unsupported, contains: ["string_init.onnx", "initializer 'words'", "STRING"]) {
            try load("string_init.onnx")
        }
    }

    func testMalformedInitializers() {
        assertError(.malformed, contains: ["dup_init.onnx", "initializer 'w'", "more than once"]) {
            try load("dup_init.onnx")
        }
        assertError(.malformed, contains: ["raw_size_mismatch.onnx", "initializer 'short'", "8 bytes", "12 bytes"]) {
            try load("raw_size_mismatch.onnx")
        }
    }

    func testOpsetRange() throws {
        assertError(.unsupported, contains: ["opset6.onnx", "opset 6", "7 to 28"]) { try load("opset6.onnx") }
        assertError(.unsupported, contains: ["opset29.onnx", "opset 29"]) { try load("opset29.onnx") }
        let g = try ONNXImporter.load(path: fixture("opset29.onnx"), opsets: 7...29)
        XCTAssertEqual(g.opset, 29)
    }

    // MARK: - broken and hostile files

    func testTruncatedModelFile() throws {
        assertError(.malformed, contains: ["'\(fixture("truncated.onnx"))' is not a valid ONNX model", "truncated or corrupt?"]) {
            try load("truncated.onnx")
        }
        // Every proper prefix of a valid model is rejected (and none crashes).
        let bytes = try fixtureBytes("raw_initializers.onnx")
        for n in 1..<bytes.count {
            XCTAssertThrowsError(try ONNXImporter.load(bytes: Array(bytes[..<n])), "prefix of \(n) bytes loaded")
        }
    }

    func testNotProtobuf() throws {
        assertError(.malformed, contains: ["not_protobuf.onnx", "is not a valid ONNX model"]) { try load("not_protobuf.onnx") }
        // Random bytes: errors, never a crash.
        var rng = SeededRandom(seed: 42)
        for _ in 0..<300 {
            let count = Int(rng.next() % 512) + 1
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            XCTAssertThrowsError(try ONNXImporter.load(bytes: bytes, sourceName: "random.onnx"))
        }
    }

    func testCorruptedModelsNeverCrash() throws {
        // Flip bytes of valid models; each load either succeeds or throws a PSEdgeError.
        var rng = SeededRandom(seed: 7)
        for name in ["raw_initializers.onnx", "typed_initializers.onnx", "attributes.onnx", "external_data.onnx"] {
            let original = try fixtureBytes(name)
            for _ in 0..<300 {
                var bytes = original
                for _ in 0..<Int(rng.next() % 4 + 1) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                do {
                    _ = try ONNXImporter.load(bytes: bytes, baseDirectory: Self.fixtureDir.path, sourceName: name)
                } catch is PSEdgeError {
                } catch {
                    XCTFail("\(name): unexpected error \(error)")
                }
            }
        }
    }

    func testDeeplyNestedMessagesAreRejectedWithoutRecursing() {
        // graph input 'x' of type sequence<sequence<…<tensor>…>>: 2 messages per level.
        assertError(.malformed, contains: ["deep.onnx", "nest more than"]) {
            try ONNXImporter.load(bytes: Proto.modelWithNestedSequenceInput(levels: 200_000), sourceName: "deep.onnx")
        }
        // Shallow nesting passes the check and is then refused as a non-tensor input.
        assertError(.unsupported, contains: ["shallow.onnx", "graph input 'x'", "sequence"]) {
            try ONNXImporter.load(bytes: Proto.modelWithNestedSequenceInput(levels: 3), sourceName: "shallow.onnx")
        }
    }

    func testHostileTensorHeaders() {
        // dims whose product overflows, and a negative dim, in an otherwise valid model.
        assertError(.malformed, contains: ["huge.onnx", "initializer 'w'", "too many elements"]) {
            try ONNXImporter.load(bytes: Proto.modelWithInitializer(dims: [1 << 40, 1 << 40], rawBytes: 4), sourceName: "huge.onnx")
        }
        assertError(.malformed, contains: ["neg.onnx", "initializer 'w'", "negative dimension"]) {
            try ONNXImporter.load(bytes: Proto.modelWithInitializer(dims: [-1], rawBytes: 4), sourceName: "neg.onnx")
        }
        XCTAssertNoThrow(try ONNXImporter.load(bytes: Proto.modelWithInitializer(dims: [1], rawBytes: 4)))
        assertError(.malformed, contains: ["short.onnx", "initializer 'w'", "3 bytes", "4 bytes"]) {
            try ONNXImporter.load(bytes: Proto.modelWithInitializer(dims: [1], rawBytes: 3), sourceName: "short.onnx")
        }
        assertError(.unsupported, contains: ["c64.onnx", "initializer 'w'", "COMPLEX64"]) {
            try ONNXImporter.load(bytes: Proto.modelWithInitializer(dims: [1], rawBytes: 8, dataType: 14), sourceName: "c64.onnx")
        }
        assertError(.malformed, contains: ["t99.onnx", "initializer 'w'", "unknown data type code 99"]) {
            try ONNXImporter.load(bytes: Proto.modelWithInitializer(dims: [1], rawBytes: 8, dataType: 99), sourceName: "t99.onnx")
        }
        // UINT64 beyond int64's range cannot be represented.
        assertError(.unsupported, contains: ["u64.onnx", "initializer 'w'", "18446744073709551615"]) {
            try ONNXImporter.load(bytes: Proto.modelWithInitializer(dims: [1], rawBytes: 8, dataType: 13, fill: 0xff),
                                  sourceName: "u64.onnx")
        }
    }

    func testModelWithoutGraphOrIRVersion() {
        assertError(.malformed, contains: ["'nograph.onnx' is not a valid ONNX model", "no graph"]) {
            try ONNXImporter.load(bytes: Proto.field(1, varint: 8), sourceName: "nograph.onnx")
        }
        assertError(.malformed, contains: ["'noir.onnx' is not a valid ONNX model", "no ir_version"]) {
            try ONNXImporter.load(bytes: Proto.field(7, Proto.field(2, "g")), sourceName: "noir.onnx")
        }
        // A graph that uses ai.onnx operators without importing the ai.onnx opset.
        let node = Proto.field(1, "x") + Proto.field(2, "y") + Proto.field(4, "Relu")
        assertError(.unsupported, contains: ["noopset.onnx", "imports no ai.onnx operator set", "Relu"]) {
            try ONNXImporter.load(bytes: Proto.field(1, varint: 8) + Proto.field(7, Proto.field(1, node)), sourceName: "noopset.onnx")
        }
    }

    func testMissingEmptyAndDirectoryPaths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("psedge-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.onnx").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        assertError(.io, contains: ["empty.onnx", "empty"]) { try ONNXImporter.load(path: empty) }
        assertError(.io, contains: ["nothing.onnx"]) { try ONNXImporter.load(path: dir.appendingPathComponent("nothing.onnx").path) }
        assertError(.io, contains: ["directory"]) { try ONNXImporter.load(path: dir.path) }
        assertError(.io, contains: ["empty"]) { try ONNXImporter.load(bytes: []) }
    }

    // MARK: - serialized tensors

    func testLoadTensorFiles() throws {
        let (name, t) = try ONNXImporter.loadTensor(path: fixture("input_0.pb"))
        XCTAssertEqual(name, "input_0")
        XCTAssertEqual(t.dtype, .float32)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.floats, [0, 0.5, 1, 1.5, 2, 2.5])
        let (hname, h) = try ONNXImporter.loadTensor(path: fixture("half_typed.pb"))
        XCTAssertEqual(hname, "half")
        XCTAssertEqual(h.dtype, .float16)
        XCTAssertEqual(h.floats, [1, -0.5])
        assertError(.malformed, contains: ["not_protobuf.onnx", "is not a valid serialized ONNX tensor"]) {
            try ONNXImporter.loadTensor(path: fixture("not_protobuf.onnx"))
        }
    }
}


/// Hand-encoded protobuf for inputs the onnx package will not produce.
private enum Proto {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v
        var out: [UInt8] = []
        repeat {
            out.append(UInt8(v & 0x7f) | (v > 0x7f ? 0x80 : 0))
            v >>= 7
        } while v != 0
        return out
    }

    static func field(_ number: UInt64, _ body: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(body.count)) + body
    }

    static func field(_ number: UInt64, varint v: UInt64) -> [UInt8] { varint(number << 3) + varint(v) }

    static func field(_ number: UInt64, _ s: String) -> [UInt8] { field(number, Array(s.utf8)) }

    /// ir_version 8, ai.onnx opset 17, and `graph` as the graph.
    static func model(graph: [UInt8]) -> [UInt8] {
        field(1, varint: 8) + field(7, graph) + field(8, field(2, varint: 17))
    }

    static func modelWithNestedSequenceInput(levels: Int) -> [UInt8] {
        // Build the headers from the inside out, then emit them outside in (linear time).
        let innermost = field(1, field(1, varint: 1))   // TypeProto { tensor_type { elem_type: FLOAT } }
        var headers: [[UInt8]] = []
        var size = innermost.count
        for _ in 0..<levels {
            let elem = varint(1 << 3 | 2) + varint(UInt64(size))   // Sequence.elem_type (1)
            size += elem.count
            let seq = varint(4 << 3 | 2) + varint(UInt64(size))    // TypeProto.sequence_type (4)
            size += seq.count
            headers.append(elem)
            headers.append(seq)
        }
        var typeProto: [UInt8] = []
        typeProto.reserveCapacity(size)
        for h in headers.reversed() { typeProto += h }
        typeProto += innermost
        let input = field(1, "x") + field(2, typeProto)
        return model(graph: field(11, input))
    }

    static func modelWithInitializer(dims: [Int64], rawBytes: Int, dataType: UInt64 = 1, fill: UInt8 = 0) -> [UInt8] {
        var tensor: [UInt8] = []
        for d in dims { tensor += field(1, varint: UInt64(bitPattern: d)) }
        tensor += field(2, varint: dataType)                 // 1 = FLOAT
        tensor += field(8, "w")
        tensor += field(9, [UInt8](repeating: fill, count: rawBytes))
        return model(graph: field(5, tensor))
    }
}
