import Foundation
import PSEdgeIR
import PSEdgeImage
import XCTest

/// PNG (libpng) and JPEG (libjpeg-turbo) decoding against Pillow's decode of the same files
/// (Tests/Fixtures/images, made by tools/make_image_fixtures.py), PNG round trips, and clean errors that name
/// the file for truncated, corrupt and unsupported data.
final class ImageCodecTests: XCTestCase {
    func fixture(_ name: String) -> String { Fixtures.path("images/\(name)") }

    func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name)))) }

    /// Largest and mean absolute difference per sample against Pillow's RGB bytes.
    func difference(_ image: RGB8Image, pil name: String) throws -> (max: Int, mean: Double) {
        let want = try bytes(name)
        XCTAssertEqual(image.pixels.count, want.count, "\(name): size")
        var mx = 0, sum = 0
        for (a, b) in zip(image.pixels, want) {
            let d = abs(Int(a) - Int(b))
            mx = max(mx, d)
            sum += d
        }
        return (mx, Double(sum) / Double(max(want.count, 1)))
    }

    // MARK: PNG

    func testPNGRoundTrip() throws {
        var state: UInt32 = 12345
        for (w, h) in [(1, 1), (3, 5), (64, 31), (257, 2)] {
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for i in px.indices {
                state = state &* 1_664_525 &+ 1_013_904_223
                px[i] = UInt8(truncatingIfNeeded: state >> 24)
            }
            let img = try RGB8Image(width: w, height: h, pixels: px)
            let png = try ImageCodec.encodePNG(img)
            XCTAssertEqual(ImageFormat.sniff(png), .png)
            let back = try ImageCodec.decode(png, name: "roundtrip.png")
            XCTAssertEqual(back, img, "\(w)x\(h)")
        }
        // Through a file.
        let img = try RGB8Image(width: 2, height: 1, pixels: [255, 0, 0, 0, 0, 255])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("psedge-png-\(getpid()).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ImageCodec.writePNG(img, path: path)
        XCTAssertEqual(try ImageCodec.read(path: path), img)
        XCTAssertEqual(try ImageCodec.read(path: path)[1, 0].2, 255)
    }

    /// Palette (with a transparent entry), 1-bit gray, RGBA (alpha dropped, as Pillow's convert("RGB")) and
    /// 16-bit gray (scaled v/257, rounded): all exact.
    func testPNGColorTypesMatchPillow() throws {
        for (name, w, h) in [("palette", 21, 13), ("gray1", 21, 13), ("rgba", 21, 13), ("gray16", 23, 9)] {
            let img = try ImageCodec.read(path: fixture("\(name).png"))
            XCTAssertEqual(img.width, w, name)
            XCTAssertEqual(img.height, h, name)
            let d = try difference(img, pil: "\(name).rgb")
            XCTAssertEqual(d.max, 0, "\(name).png differs from Pillow's decode by up to \(d.max)")
        }
    }

    // MARK: JPEG

    /// libjpeg-turbo (Debian) against Pillow's decode (Pillow's bundled libjpeg-turbo). Both use the default
    /// islow IDCT and fancy upsampling; measured: identical on all three fixtures (max diff 0). The bound allows
    /// ±1 for a different libjpeg-turbo release's rounding in the upsampler/color conversion.
    func testJPEGDecodeMatchesPillow() throws {
        for (name, w, h) in [("photo_420", 37, 23), ("photo_444_progressive", 33, 17), ("gray", 19, 11)] {
            let img = try ImageCodec.read(path: fixture("\(name).jpg"))
            XCTAssertEqual(img.width, w, name)
            XCTAssertEqual(img.height, h, name)
            let d = try difference(img, pil: "\(name).rgb")
            print("\(name).jpg vs Pillow: max |diff| \(d.max), mean \(d.mean)")
            XCTAssertLessThanOrEqual(d.max, 1, "\(name).jpg")
            XCTAssertLessThanOrEqual(d.mean, 0.05, "\(name).jpg")
        }
        // Grayscale JPEG comes out as R = G = B.
        let g = try ImageCodec.read(path: fixture("gray.jpg"))
        var gray = true
        for i in stride(from: 0, to: g.pixels.count, by: 3) where g.pixels[i] != g.pixels[i + 1] || g.pixels[i] != g.pixels[i + 2] {
            gray = false
        }
        XCTAssertTrue(gray)
    }

    // MARK: errors

    func assertDecodeError(_ data: [UInt8], name: String, kind: PSEdgeError.Kind, _ fragments: [String],
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ImageCodec.decode(data, name: name), file: file, line: line) { e in
            guard let pe = e as? PSEdgeError else { return XCTFail("not a PSEdgeError: \(e)", file: file, line: line) }
            XCTAssertEqual(pe.kind, kind, pe.message, file: file, line: line)
            for f in fragments + [name] {
                XCTAssertTrue(pe.message.contains(f), "'\(pe.message)' should mention '\(f)'", file: file, line: line)
            }
        }
    }

    func testTruncatedFilesFailNamingTheFile() throws {
        for f in ["photo_420.jpg", "photo_444_progressive.jpg", "gray.jpg"] {
            let b = try bytes(f)
            assertDecodeError(Array(b[..<(b.count / 2)]), name: "cut-\(f)", kind: .malformed, ["corrupt JPEG", "truncated"])
        }
        // Only the first bytes: the header itself is cut.
        assertDecodeError(Array(try bytes("photo_420.jpg")[..<40]), name: "head.jpg", kind: .malformed, ["corrupt JPEG"])
        for f in ["palette.png", "rgba.png", "gray16.png"] {
            let b = try bytes(f)
            assertDecodeError(Array(b[..<(b.count / 2)]), name: "cut-\(f)", kind: .malformed, ["corrupt PNG", "truncated"])
        }
        assertDecodeError(Array(try bytes("rgba.png")[..<12]), name: "sig-only.png", kind: .malformed, ["corrupt PNG"])
    }

    func testCorruptFilesFailNamingTheFile() throws {
        // A flipped byte inside the compressed image data: zlib's error, reported with the chunk.
        var png = try bytes("rgba.png")
        let idat = try XCTUnwrap(findChunk(png, "IDAT"))
        png[idat + 8 + 3] ^= 0x55
        assertDecodeError(png, name: "idat.png", kind: .malformed, ["corrupt PNG", "IDAT"])
        // A header whose checksum does not match: libpng's CRC check.
        png = try bytes("rgba.png")
        png[8 + 8 + 13] ^= 0x01
        assertDecodeError(png, name: "crc.png", kind: .malformed, ["corrupt PNG", "IHDR", "CRC"])

        // A JPEG whose frame header says 0 lines wide.
        var jpg = try bytes("photo_420.jpg")
        let sof = try XCTUnwrap(findMarker(jpg, 0xC0))
        jpg[sof + 7] = 0
        jpg[sof + 8] = 0
        assertDecodeError(jpg, name: "sof.jpg", kind: .malformed, ["corrupt JPEG"])

        // Garbage after a valid SOI.
        assertDecodeError([0xFF, 0xD8, 0xFF] + [UInt8](repeating: 0x13, count: 64), name: "junk.jpg", kind: .malformed, ["corrupt JPEG"])

        // Not an image at all; empty.
        assertDecodeError(Array("GIF89a....".utf8), name: "anim.gif", kind: .unsupported, ["not a PNG or JPEG"])
        assertDecodeError([], name: "empty.png", kind: .malformed, ["empty"])
        XCTAssertThrowsError(try ImageCodec.read(path: "/nonexistent/x.jpg")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/x.jpg"), "\(e)")
        }
    }

    func testEncodeRejectsEmptyImage() throws {
        XCTAssertThrowsError(try ImageCodec.encodePNG(try RGB8Image(width: 0, height: 0, pixels: [])))
        XCTAssertThrowsError(try RGB8Image(width: 2, height: 2, pixels: [1, 2, 3]))
    }

    /// Offset of a PNG chunk's length field.
    func findChunk(_ b: [UInt8], _ type: String) -> Int? {
        var p = 8
        let t = Array(type.utf8)
        while p + 8 <= b.count {
            let len = Int(b[p]) << 24 | Int(b[p + 1]) << 16 | Int(b[p + 2]) << 8 | Int(b[p + 3])
            if Array(b[(p + 4)..<(p + 8)]) == t { return p }
            p += 12 + len
        }
        return nil
    }

    /// Offset of a JPEG marker (0xFF, code).
    func findMarker(_ b: [UInt8], _ code: UInt8) -> Int? {
        (0..<(b.count - 1)).first { b[$0] == 0xFF && b[$0 + 1] == code }
    }
}
