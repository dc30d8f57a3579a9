import CImageCodecs
import Foundation
import PSEdgeIR

/// An 8-bit RGB image: `pixels` holds width × height × 3 bytes, RGB interleaved, rows top to bottom.
public struct RGB8Image: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width >= 0, height >= 0, pixels.count == width * height * 3 else {
            throw PSEdgeError.shape("RGB8 image \(width)x\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// (r, g, b) at column x, row y.
    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let o = (y * width + x) * 3
        return (pixels[o], pixels[o + 1], pixels[o + 2])
    }
}

public enum ImageFormat: String, Sendable {
    case png, jpeg

    /// Recognizes a file by its first bytes (PNG signature, JPEG start-of-image marker).
    public static func sniff(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.count >= 8 && bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF { return .jpeg }
        return nil
    }
}

/// PNG (libpng) and JPEG (libjpeg-turbo) files. Errors name the file.
public enum ImageCodec {
    /// Decodes a PNG or JPEG file (recognized by content, not by extension) to RGB8.
    public static func read(path: String) throws -> RGB8Image {
        // 256 MB: far above any PNG/JPEG a camera writes; the decoders bound the pixel count separately.
        try decode(try FileBytes.read(path, what: "image", limit: 1 << 28), name: path)
    }

    /// Decodes PNG or JPEG bytes; `name` is what error messages call the data.
    public static func decode(_ bytes: [UInt8], name: String) throws -> RGB8Image {
        switch ImageFormat.sniff(bytes) {
        case .png: return try decodePNG(bytes, name: name)
        case .jpeg: return try decodeJPEG(bytes, name: name)
        case nil:
            if bytes.isEmpty { throw PSEdgeError.malformed("\(name): empty file, not an image") }
            throw PSEdgeError.unsupported("\(name): not a PNG or JPEG file (unrecognized signature)")
        }
    }

    public static func decodePNG(_ bytes: [UInt8], name: String) throws -> RGB8Image {
        try run(name: name, what: "PNG") { data, n, out, err, errlen in psedge_png_decode(data, n, out, err, errlen) }(bytes)
    }

    public static func decodeJPEG(_ bytes: [UInt8], name: String) throws -> RGB8Image {
        try run(name: name, what: "JPEG") { data, n, out, err, errlen in psedge_jpeg_decode(data, n, out, err, errlen) }(bytes)
    }

    private typealias Decoder = (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<psedge_rgb8>, UnsafeMutablePointer<CChar>, Int) -> Int32

    private static func run(name: String, what: String, _ decoder: @escaping Decoder) -> ([UInt8]) throws -> RGB8Image {
        { bytes in
            var out = psedge_rgb8()
            var err = [CChar](repeating: 0, count: 512)
            let status = bytes.withUnsafeBufferPointer { b in
                err.withUnsafeMutableBufferPointer { e in decoder(b.baseAddress, b.count, &out, e.baseAddress!, e.count) }
            }
            let message = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            guard status == PSEDGE_CODEC_OK, let p = out.pixels else {
                switch status {
                case PSEDGE_CODEC_UNSUPPORTED: throw PSEdgeError.unsupported("\(name): unsupported \(what): \(message)")
                case PSEDGE_CODEC_NOMEM: throw PSEdgeError.io("\(name): \(what) decode: \(message)")
                default: throw PSEdgeError.malformed("\(name): corrupt \(what): \(message)")
                }
            }
            defer { psedge_codec_free(p) }
            let w = Int(out.width), h = Int(out.height)
            let pixels = [UInt8](UnsafeBufferPointer(start: p, count: w * h * 3))
            return try RGB8Image(width: w, height: h, pixels: pixels)
        }
    }

    /// PNG bytes of an RGB8 image (8-bit RGB, no interlace, default compression).
    public static func encodePNG(_ image: RGB8Image) throws -> [UInt8] {
        var data: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var err = [CChar](repeating: 0, count: 512)
        let status = image.pixels.withUnsafeBufferPointer { px in
            err.withUnsafeMutableBufferPointer { e in
                psedge_png_encode_rgb8(px.baseAddress, UInt32(clamping: image.width), UInt32(clamping: image.height), &data, &size, e.baseAddress!, e.count)
            }
        }
        guard status == PSEDGE_CODEC_OK, let d = data else {
            let message = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw PSEdgeError.invalid("PNG encode of a \(image.width)x\(image.height) image: \(message)")
        }
        defer { psedge_codec_free(d) }
        return [UInt8](UnsafeBufferPointer(start: d, count: size))
    }

    public static func writePNG(_ image: RGB8Image, path: String) throws {
        let bytes = try encodePNG(image)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw PSEdgeError.io("\(path): cannot be written")
        }
    }
}
