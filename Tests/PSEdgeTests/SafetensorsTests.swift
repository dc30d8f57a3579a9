import Foundation
import XCTest
import PSEdgeFormat
import PSEdgeIR
import PSEdgeSafetensors

final class SafetensorsTests: FormatTempDirTestCase {
    private var stDir: String { formatFixturesDir + "/safetensors" }

    private func reference(_ name: String) throws -> Tensor { try NPY.read(path: "\(stDir)/ref/\(name).npy") }

    private func assertMatchesReferences(_ file: SafetensorsFile, _ names: [String]) throws {
        XCTAssertEqual(Set(file.tensors.map(\.name)), Set(names))
        for (name, t) in file.tensors {
            let ref = try reference(name)
            XCTAssertEqual(t.shape, ref.shape, name)
            if t.dtype == .bfloat16 {
                XCTAssertEqual(ref.dtype, .float32)
                XCTAssertEqual(t.floats.map(\.bitPattern), ref.floats.map(\.bitPattern), name)
            } else {
                XCTAssertEqual(t.dtype, ref.dtype, name)
                XCTAssertEqual(Array(t.rawBuffer), Array(ref.rawBuffer), name)
            }
        }
    }

    func testReadsFileWrittenBySafetensorsNumpy() throws {
        let f = try SafetensorsFile.load(path: "\(stDir)/numpy.safetensors")
        try assertMatchesReferences(f, ["f32", "f16", "i8", "u8", "i32", "i64", "bool", "scalar", "empty"])
        XCTAssertEqual(f.metadata, ["format": "np", "source": "make_format_fixtures.py"])
        XCTAssertEqual(f["scalar"]?.shape, [])
        XCTAssertEqual(f["scalar"]?.floats, [42])
        XCTAssertEqual(f["empty"]?.shape, [0, 4])
        XCTAssertEqual(f["i64"]?.int64s, [Int64.min, 1 << 62])
        XCTAssertNil(f["missing"])
    }

    func testReadsAllEightDtypes() throws {
        let f = try SafetensorsFile.load(path: "\(stDir)/all_dtypes.safetensors")
        try assertMatchesReferences(f, ["f32", "f16", "bf16", "i8", "u8", "i32", "i64", "bool", "empty"])
        XCTAssertEqual(Set(f.tensors.map(\.tensor.dtype)), Set(DType.allCases))
        XCTAssertEqual(f["bf16"]?.floats, [1, -2, 0.15625, 256, -0.0078125, 3])
        XCTAssertEqual(f.metadata, ["kind": "all dtypes"])
    }

    func testTensorsAreInFileOrderAndBorrowTheMapping() throws {
        let p = "\(stDir)/numpy.safetensors"
        let f = try SafetensorsFile.load(path: p)
        let bytes = try readBytes(p)
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        // Storage of a zero-copy tensor is the file mapping: the storage begins inside it at a
        // position that reproduces the file's bytes.
        var lastOffset = -1
        for (name, t) in f.tensors where t.byteCount > 0 {
            XCTAssertGreaterThanOrEqual(t.storage.byteCount, t.byteCount, name)
            let start = bytes.firstRange(of: Array(t.rawBuffer))
            XCTAssertNotNil(start, name)
            if let s = start?.lowerBound { XCTAssertGreaterThan(s, lastOffset, "\(name) out of file order"); lastOffset = s }
            XCTAssertGreaterThanOrEqual(start?.lowerBound ?? 0, 8 + headerLength)
        }
    }

    func testUnsupportedDtypeNamesDtypeAndTensor() {
        assertThrows(["tensor 'w'", "dtype F64"]) { _ = try SafetensorsFile.load(path: "\(self.stDir)/bad_f64.safetensors") }
    }

    // MARK: malformed files

    private func file(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: (lengthOverride ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + h + data
    }

    private func assertRejected(_ bytes: [UInt8], _ fragments: [String], line: UInt = #line) throws {
        let p = path("bad.safetensors")
        try writeBytes(bytes, p)
        assertThrows(fragments, line: line) { _ = try SafetensorsFile.load(path: p) }
    }

    func testMalformedFiles() throws {
        let eight = [UInt8](repeating: 1, count: 8)
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let p = path("ok.safetensors")
        try writeBytes(file(header: ok, data: eight), p)
        XCTAssertEqual(try SafetensorsFile.load(path: p)["a"]?.shape, [2])

        try assertRejected([1, 2, 3], ["not a safetensors file", "too short"])
        try assertRejected(file(header: ok, data: eight, lengthOverride: 1 << 40), ["exceeds"])
        try assertRejected(file(header: ok, data: eight, lengthOverride: 1000), ["header length 1000"])
        try assertRejected(file(header: "{\"a\":", data: []), ["not valid JSON"])
        try assertRejected(file(header: "[]", data: []), ["should be an object"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, data: eight),
                           ["tensor 'a'", "outside"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: eight),
                           ["tensor 'a'", "[8, 0]"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
                           ["tensor 'a'", "needs 12 bytes", "span 8"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
                           ["a.shape[0]", "non-negative"])
        try assertRejected(file(header: #"{"a":{"dtype":"I8","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: eight),
                           ["tensor 'a'", "overflows"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: eight),
                           ["overlap"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[2]}}"#, data: eight), ["missing field 'a.data_offsets'"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, data: eight), ["a.data_offsets"])
        try assertRejected(file(header: #"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: eight), ["tensor 'a'", "dtype C64"])
        try assertRejected(file(header: #"{"__metadata__":{"k":1}}"#, data: []), ["__metadata__.k", "string"])
        try assertRejected(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                           ["duplicate key"])
    }

    func testMisalignedDataIsCopiedNotMisread() throws {
        // Header length 3 puts the data at byte 11: not aligned for F32.
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let padded = h + String(repeating: " ", count: (3 - (8 + h.utf8.count) % 4 + 4) % 4)  // data at 4k+3
        var data: [UInt8] = []
        for f: Float in [1.5, -2] { withUnsafeBytes(of: f.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        let p = path("mis.safetensors")
        try writeBytes(file(header: padded, data: data), p)
        let t = try XCTUnwrap(SafetensorsFile.load(path: p)["a"])
        XCTAssertEqual(t.floats, [1.5, -2])
        XCTAssertEqual(Int(bitPattern: t.raw) % 4, 0)
    }
}
