import Foundation
import XCTest
@testable import PSEdgeFormat
import PSEdgeIR

/// Tests/Fixtures/format, located from this source file (written by tools/make_format_fixtures.py).
let formatFixturesDir: String = {
    var p = "\(#filePath)"
    for _ in 0..<2 { if let s = p.lastIndex(of: "/") { p = String(p[..<s]) } }
    return p + "/Fixtures/format"
}()

final class NPYTests: FormatTempDirTestCase {
    private func fixture(_ name: String) -> String { formatFixturesDir + "/npy/" + name + ".npy" }

    private func values<T>(_ t: Tensor, _: T.Type) -> [T] { Array(UnsafeBufferPointer(start: t.pointer(T.self), count: t.count)) }

    func testReadsEveryDtypeWrittenByNumpy() throws {
        let f4 = try NPY.read(path: fixture("f4"))
        XCTAssertEqual(f4.dtype, .float32)
        XCTAssertEqual(f4.shape, [2, 3])
        XCTAssertEqual(values(f4, Float.self).map(\.bitPattern), ([0, -1.5, 3.25, .infinity, -.infinity, -0.0] as [Float]).map(\.bitPattern))

        let f2 = try NPY.read(path: fixture("f2"))
        XCTAssertEqual(f2.dtype, .float16)
        XCTAssertEqual(f2.shape, [2, 2])
        XCTAssertEqual(f2.floats, [1, -2, 0.5, 65504])

        let f8 = try NPY.read(path: fixture("f8"))
        XCTAssertEqual(f8.dtype, .float32)
        XCTAssertEqual(f8.shape, [3])
        XCTAssertEqual(f8.floats, [Float(0.1 as Double), Float(-1e-3 as Double), 2.5])

        let i8 = try NPY.read(path: fixture("i8"))
        XCTAssertEqual(i8.dtype, .int64)
        XCTAssertEqual(values(i8, Int64.self), [0, -1, 1 << 40, Int64.min])

        let i4 = try NPY.read(path: fixture("i4"))
        XCTAssertEqual(i4.dtype, .int32)
        XCTAssertEqual(values(i4, Int32.self), [7, -7, Int32.max, Int32.min])

        let i1 = try NPY.read(path: fixture("i1"))
        XCTAssertEqual(i1.dtype, .int8)
        XCTAssertEqual(values(i1, Int8.self), [-128, -1, 0, 1, 127])

        let u1 = try NPY.read(path: fixture("u1"))
        XCTAssertEqual(u1.dtype, .uint8)
        XCTAssertEqual(u1.shape, [2, 2])
        XCTAssertEqual(values(u1, UInt8.self), [0, 1, 128, 255])

        let b1 = try NPY.read(path: fixture("b1"))
        XCTAssertEqual(b1.dtype, .bool)
        XCTAssertEqual(values(b1, UInt8.self), [1, 0, 1])

        let three = try NPY.read(path: fixture("f4_2x3x4"))
        XCTAssertEqual(three.shape, [2, 3, 4])
        XCTAssertEqual(three.floats, (0..<24).map { Float($0) / 4 })
    }

    func testScalarAndEmptyShapes() throws {
        let s = try NPY.read(path: fixture("scalar_f4"))
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.floats, [3.5])
        let e = try NPY.read(path: fixture("empty_f4"))
        XCTAssertEqual(e.shape, [0])
        XCTAssertEqual(e.count, 0)
        let e2 = try NPY.read(path: fixture("empty_i4_0x3"))
        XCTAssertEqual(e2.dtype, .int32)
        XCTAssertEqual(e2.shape, [0, 3])
    }

    func testReadsVersion2And3Headers() throws {
        for v in ["v2_f4", "v3_f4"] {
            let t = try NPY.read(path: fixture(v))
            XCTAssertEqual(t.shape, [2, 3], v)
            XCTAssertEqual(t.floats, [0, 1, 2, 3, 4, 5], v)
        }
    }

    func testWriterOutputIsByteIdenticalToNumpy() throws {
        for name in ["f4", "f2", "i8", "i4", "i1", "u1", "b1", "scalar_f4", "empty_f4", "empty_i4_0x3", "f4_2x3x4"] {
            let t = try NPY.read(path: fixture(name))
            let out = path(name + ".npy")
            try NPY.write(t, to: out)
            XCTAssertEqual(try readBytes(out), try readBytes(fixture(name)), name)
        }
    }

    func testRoundTripEveryWritableDtype() throws {
        for dtype in DType.allCases where dtype != .bfloat16 {
            for shape in [[], [0], [5], [2, 0, 3], [2, 3, 4]] {
                let t = Tensor(zeros: dtype, shape: shape)
                let p = t.raw.assumingMemoryBound(to: UInt8.self)
                for i in 0..<t.byteCount { p[i] = UInt8(truncatingIfNeeded: i * 37 + 1) }
                if dtype == .bool { for i in 0..<t.count { p[i] &= 1 } }
                let file = path("rt.npy")
                try NPY.write(t, to: file)
                let u = try NPY.read(path: file)
                XCTAssertEqual(u.dtype, dtype)
                XCTAssertEqual(u.shape, shape)
                XCTAssertEqual(Array(u.rawBuffer), Array(t.rawBuffer), "\(dtype.name)\(shape)")
                XCTAssertEqual(try readBytes(file).count % 64, t.byteCount % 64)
            }
        }
        // A view into a larger storage writes only its own bytes.
        let base = Tensor([1, 2, 3, 4, 5, 6], shape: [6])
        let view = Tensor(dtype: .float32, shape: [2], storage: base.storage, offset: 8)
        try NPY.write(view, to: path("view.npy"))
        XCTAssertEqual(try NPY.read(path: path("view.npy")).floats, [3, 4])
    }

    func testFortranOrderIsReadAsRowMajor() throws {
        // fortran_f4.npy is np.asfortranarray(a) of the same array as v2_f4.npy.
        let f = try NPY.read(path: fixture("fortran_f4")), c = try NPY.read(path: fixture("v2_f4"))
        XCTAssertEqual(f.shape, c.shape)
        XCTAssertEqual(f.floats, c.floats)
        XCTAssertGreaterThan(f.shape.count, 1)
    }

    func testClearErrors() throws {
        assertThrows(["big-endian", "'>f4'"]) { _ = try NPY.read(path: self.fixture("bad_big_endian")) }
        assertThrows(["unsupported dtype '<u2'"]) { _ = try NPY.read(path: self.fixture("bad_u2")) }

        try writeBytes(Array("just text, not numpy".utf8), path("text.npy"))
        assertThrows(["is not an NPY file"]) { _ = try NPY.read(path: self.path("text.npy")) }
        try writeBytes([], path("empty.npy"))
        assertThrows(["is not an NPY file"]) { _ = try NPY.read(path: self.path("empty.npy")) }

        let good = try readBytes(fixture("f4"))
        for cut in [1, 4, 23] {
            try writeBytes(Array(good.dropLast(cut)), path("cut.npy"))
            assertThrows(["truncated", "needs 24 data bytes"]) { _ = try NPY.read(path: self.path("cut.npy")) }
        }
        for n in [3, 8, 9, 11, 60] {
            try writeBytes(Array(good.prefix(n)), path("short.npy"))
            XCTAssertThrowsError(try NPY.read(path: path("short.npy")), "prefix \(n)")
        }
        try writeBytes(good + [0], path("long.npy"))
        assertThrows(["unexpected bytes"]) { _ = try NPY.read(path: self.path("long.npy")) }

        var v9 = good
        v9[6] = 9
        try writeBytes(v9, path("v9.npy"))
        assertThrows(["version 9.0"]) { _ = try NPY.read(path: self.path("v9.npy")) }

        assertThrows(["NPY has no bf16"]) { try NPY.write(Tensor(zeros: .bfloat16, shape: [2]), to: self.path("bf.npy")) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bf.npy")))
    }

    func testMalformedHeaders() throws {
        func npy(_ header: String, data: [UInt8] = []) -> [UInt8] {
            var h = Array(header.utf8)
            let total = (10 + h.count + 1 + 63) / 64 * 64
            h += [UInt8](repeating: 0x20, count: total - 10 - h.count - 1) + [0x0a]
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xff), UInt8(h.count >> 8)] + h + data
        }
        let cases: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False}", "keys"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected character"),
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "structured"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "unexpected character"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "not a tuple of non-negative integers"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,) ", "malformed header"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", "overflows"),
            ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "unsupported dtype '<c8'"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "duplicate key"),
        ]
        for (i, (header, fragment)) in cases.enumerated() {
            let p = path("m\(i).npy")
            try writeBytes(npy(header, data: [0, 0, 0, 0]), p)
            assertThrows([fragment]) { _ = try NPY.read(path: p) }
        }
        // Python 2 style long and double-quoted strings are accepted.
        try writeBytes(npy("{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (1L,)}", data: [5, 0, 0, 0]), path("py2.npy"))
        XCTAssertEqual(try NPY.read(path: path("py2.npy")).ints, [5])
    }
}
