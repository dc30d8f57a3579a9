import PSEdgeKernels
import XCTest

/// Every int8 GEMM path this CPU can run equals the scalar reference bit for bit.
final class Int8KernelTests: XCTestCase {
    let paths = ["scalar", "avx2", "avx512vnni"]

    override func tearDown() {
        // Back to the automatic choice for the other tests.
        for path in [ProcessInfo.processInfo.environment["PSEDGE_INT8_KERNEL"] ?? "avx512vnni", "avx2", "scalar"]
        where pse_int8_kernel_select(path) != 0 { break }
    }

    func randomBytes(_ n: Int, _ rng: inout SystemRandomNumberGenerator) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }

    func testPackedGemmsEqualUnpackedReferenceOnEveryPath() throws {
        var rng = SystemRandomNumberGenerator()
        var ran: [String] = []
        for (m, n, k) in [(1, 1, 1), (5, 17, 3), (7, 33, 29), (16, 64, 64), (9, 100, 130), (4, 15, 4)] {
            let a = randomBytes(m * k, &rng), b = randomBytes(k * n, &rng)
            // Extremes too: all 255 / all −128 stress any 16-bit saturation.
            let aMax = [UInt8](repeating: 255, count: m * k), bMin = [UInt8](repeating: 0x80, count: k * n)
            for (av, bv) in [(a, b), (aMax, bMin)] {
                var refU8S8 = [Int32](repeating: 0, count: m * n), refS8U8 = refU8S8
                av.withUnsafeBufferPointer { pa in bv.withUnsafeBufferPointer { pb in
                    pse_gemm_u8s8_s32(Int32(m), Int32(n), Int32(k), pa.baseAddress, Int32(k), UnsafeRawPointer(pb.baseAddress!).assumingMemoryBound(to: Int8.self), Int32(n), &refU8S8, Int32(n))
                    pse_gemm_s8u8_s32(Int32(m), Int32(n), Int32(k), UnsafeRawPointer(pa.baseAddress!).assumingMemoryBound(to: Int8.self), Int32(k), pb.baseAddress, Int32(n), &refS8U8, Int32(n))
                } }
                var packed = [UInt8](repeating: 0, count: pse_packed_b_size(Int32(k), Int32(n)))
                pse_pack_b(bv, Int32(n), Int32(k), Int32(n), &packed)
                for path in paths where pse_int8_kernel_select(path) != 0 {
                    if !ran.contains(path) { ran.append(path) }
                    XCTAssertEqual(String(cString: pse_int8_kernel_name()), path)
                    var c1 = [Int32](repeating: -1, count: m * n), c2 = c1
                    av.withUnsafeBufferPointer { pa in packed.withUnsafeBufferPointer { pp in
                        pse_gemm_u8s8_packed(Int32(m), Int32(n), Int32(k), pa.baseAddress, Int32(k), UnsafeRawPointer(pp.baseAddress!).assumingMemoryBound(to: Int8.self), &c1, Int32(n))
                        pse_gemm_s8u8_packed(Int32(m), Int32(n), Int32(k), UnsafeRawPointer(pa.baseAddress!).assumingMemoryBound(to: Int8.self), Int32(k), pp.baseAddress, &c2, Int32(n))
                    } }
                    XCTAssertEqual(c1, refU8S8, "u8×s8 \(path) m\(m) n\(n) k\(k)")
                    XCTAssertEqual(c2, refS8U8, "s8×u8 \(path) m\(m) n\(n) k\(k)")
                }
            }
        }
        print("int8 GEMM paths checked: \(ran)")
        XCTAssertTrue(ran.contains("scalar"))
    }

    func testPackedIm2colEqualsIm2colThenPack() {
        var rng = SystemRandomNumberGenerator()
        let (c, h, w) = (3, 7, 9)
        let img = randomBytes(c * h * w, &rng)
        let (kh, kw, sh, sw, pt, pl, dh, dw) = (3, 2, 2, 1, 1, 0, 1, 2)
        let oh = (h + 2 * pt - dh * (kh - 1) - 1) / sh + 1, ow = (w + 2 * pl - dw * (kw - 1) - 1) / sw + 1
        let k = c * kh * kw, p = oh * ow
        var cols = [UInt8](repeating: 0, count: k * p)
        pse_im2col_u8(img, Int32(c), Int32(h), Int32(w), Int32(kh), Int32(kw), Int32(pt), Int32(pl), Int32(sh), Int32(sw), Int32(dh), Int32(dw),
                      Int32(oh), Int32(ow), 77, &cols)
        var viaPack = [UInt8](repeating: 0, count: pse_packed_b_size(Int32(k), Int32(p))), direct = [UInt8](repeating: 0xAB, count: viaPack.count)
        var scratch = [UInt8](repeating: 0, count: 4 * p)
        pse_pack_b(cols, Int32(p), Int32(k), Int32(p), &viaPack)
        pse_im2col_u8_packed(img, Int32(c), Int32(h), Int32(w), Int32(kh), Int32(kw), Int32(pt), Int32(pl), Int32(sh), Int32(sw), Int32(dh), Int32(dw),
                             Int32(oh), Int32(ow), 77, &direct, &scratch)
        XCTAssertEqual(direct, viaPack)
    }
}
