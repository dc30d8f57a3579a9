/// CRC-32 (IEEE 802.3; reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF),
/// the checksum zlib, PNG and gzip use. "123456789" gives 0xCBF43926.
///
/// Slicing-by-8: eight 256-entry tables let the inner loop consume 8 bytes per step.
public struct CRC32: Sendable {
    /// The running register (pre-inverted form); read the checksum with `value`.
    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The checksum of everything passed to `update` so far.
    public var value: UInt32 { ~state }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }

    public static func checksum<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        let a = Array(bytes)
        return a.withUnsafeBytes { checksum($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var crc = state
        var p = base
        var n = bytes.count
        CRC32.tables.withUnsafeBufferPointer { t in
            // Bring p to 8-byte alignment one byte at a time (not required for loadUnaligned, but cheap).
            while n > 0 && Int(bitPattern: p) & 7 != 0 {
                crc = t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xff)] ^ (crc >> 8)
                p += 1
                n -= 1
            }
            while n >= 8 {
                let w = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
                let lo = UInt32(truncatingIfNeeded: w) ^ crc
                let hi = UInt32(truncatingIfNeeded: w >> 32)
                crc = t[7 * 256 + Int(lo & 0xff)] ^ t[6 * 256 + Int((lo >> 8) & 0xff)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xff)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xff)] ^ t[2 * 256 + Int((hi >> 8) & 0xff)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xff)] ^ t[Int(hi >> 24)]
                p += 8
                n -= 8
            }
            while n > 0 {
                crc = t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xff)] ^ (crc >> 8)
                p += 1
                n -= 1
            }
        }
        state = crc
    }

    /// tables[k*256 + b] = CRC register after feeding byte b followed by k zero bytes.
    private static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = t[Int(prev & 0xff)] ^ (prev >> 8)
            }
        }
        return t
    }()
}

extension UInt32 {
    /// "0xcbf43926" — how checksums appear in messages.
    var hex8: String {
        let s = String(self, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - s.count) + s
    }
}
