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

    /// Quantization and min/max: every path equals the scalar reference bit for bit, on every tail length and on
    /// values past the clamp, NaN, ±∞ and −0; and the reference rounds half to even.
    func testQuantizePathsEqualScalar() {
        defer { _ = pse_quantize_kernel_select(ProcessInfo.processInfo.environment["PSEDGE_QUANTIZE_KERNEL"] ?? "avx512") != 0
                    || pse_quantize_kernel_select("avx2") != 0 || pse_quantize_kernel_select("scalar") != 0 }
        var rng = SystemRandomNumberGenerator()
        var ran: [String] = []
        for n in Array(0...40) + [1000, 4099] {
            var x = (0..<n).map { _ in Float.random(in: -40...40, using: &rng) }
            for i in stride(from: 0, to: n, by: 7) { x[i] = [Float.nan, .infinity, -.infinity, -0.0, 1e30, -1e30, 2.5][(i / 7) % 7] }
            for (scale, zp) in [(Float(0.1), 128), (0.37, 0), (0.02, 255)] {
                XCTAssertEqual(pse_quantize_kernel_select("scalar"), 1)
                var ref = [UInt8](repeating: 1, count: n), got = ref
                pse_quantize_u8(x, &ref, n, scale, Int32(zp))
                var rlo: Float = 0, rhi: Float = 0
                pse_minmax(x, n, &rlo, &rhi)
                for path in ["avx2", "avx512"] where pse_quantize_kernel_select(path) != 0 {
                    if !ran.contains(path) { ran.append(path) }
                    pse_quantize_u8(x, &got, n, scale, Int32(zp))
                    XCTAssertEqual(got, ref, "\(path) quantize n=\(n) scale=\(scale)")
                    var lo: Float = 0, hi: Float = 0
                    pse_minmax(x, n, &lo, &hi)
                    XCTAssertEqual([lo.bitPattern, hi.bitPattern], [rlo.bitPattern, rhi.bitPattern], "\(path) minmax n=\(n)")
                }
            }
        }
        XCTAssertEqual(pse_quantize_kernel_select("scalar"), 1)
        var q = [UInt8](repeating: 0, count: 4)
        pse_quantize_u8([0.5, 1.5, 2.5, -0.5], &q, 4, 1, 10)
        XCTAssertEqual(q, [10, 12, 12, 10], "half to even")
        print("quantize paths checked against scalar: \(ran)")
    }

    /// The epilogue combinations the dequantize tests cover: (bias, residual, relu, residual first).
    typealias EpilogueCase = (bias: Bool, residual: Bool, relu: Bool, first: Bool)

    /// Runs `call` on every dequantize path this CPU has and compares with `expected` bit for bit, for each case.
    /// `epilogue(v, bias, residual, case)` is the Swift statement of the epilogue steps after the dequantized value.
    func checkDequantPaths(_ form: String, rows: Int, n: Int, cases: [EpilogueCase], ldy: Int,
                           expected: (EpilogueCase) -> [Float], call: (EpilogueCase, inout [Float]) -> Void) -> Set<String> {
        var ran: Set<String> = []
        for c in cases {
            let want = expected(c)
            for path in ["scalar", "avx2", "avx512"] where pse_dequant_kernel_select(path) != 0 {
                ran.insert(path)
                var y = [Float](repeating: .nan, count: rows * ldy)
                call(c, &y)
                XCTAssertEqual(y.map(\.bitPattern), want.map(\.bitPattern), "\(form) \(path) n=\(n) \(c)")
            }
        }
        return ran
    }

    /// The epilogue after the dequantized value, as the kernels' reference order states it.
    func epilogueSteps(_ v: Float, bias: Float, residual: Float, _ c: EpilogueCase) -> Float {
        var v = v
        if c.bias { v = v + bias }
        if c.residual && c.first { v = v + residual }
        if c.relu { v = v > 0 ? v : 0 }
        if c.residual && !c.first { v = v + residual }
        return v
    }

    /// Dequantize-with-epilogue: the scalar reference equals the same steps written in Swift, and every vector path
    /// equals it bit for bit (every epilogue combination, row lengths around the vector widths, padded row strides).
    func testDequantRowsPathsEqualScalar() {
        defer { for p in [ProcessInfo.processInfo.environment["PSEDGE_DEQUANT_KERNEL"] ?? "avx512", "avx2", "scalar"] where pse_dequant_kernel_select(p) != 0 { break } }
        var rng = SystemRandomNumberGenerator()
        var ran: Set<String> = []
        for n in [1, 7, 8, 15, 16, 17, 49, 196] {
            let rows = 3, xs: Float = 0.02, zp: Int32 = 37
            let (lda, ldr, ldy) = (n + 3, n + 1, n + 2)
            let acc = (0..<(rows * lda)).map { _ in Int32.random(in: -200_000...200_000, using: &rng) }
            let ws = (0..<rows).map { _ in Float.random(in: 0.001...0.01, using: &rng) }
            let wsum = (0..<rows).map { _ in Int32.random(in: -3000...3000, using: &rng) }
            let bias = (0..<rows).map { _ in Float.random(in: -2...2, using: &rng) }
            let res = (0..<(rows * ldr)).map { _ in Float.random(in: -20...20, using: &rng) }
            ran.formUnion(checkDequantPaths("rows", rows: rows, n: n, cases: [(false, false, false, false), (true, false, true, false), (true, true, true, true),
                                                                               (true, true, true, false), (false, true, false, false)], ldy: ldy, expected: { c in
                var expected = [Float](repeating: .nan, count: rows * ldy)
                for r in 0..<rows {
                    for j in 0..<n {
                        expected[r * ldy + j] = self.epilogueSteps(Float(acc[r * lda + j] - zp * wsum[r]) * (xs * ws[r]), bias: bias[r], residual: res[r * ldr + j], c)
                    }
                }
                return expected
            }, call: { c, y in
                bias.withUnsafeBufferPointer { b in
                    res.withUnsafeBufferPointer { rp in
                        pse_dequant_rows(acc, Int32(lda), Int32(rows), Int32(n), xs, zp, ws, wsum, c.bias ? b.baseAddress : nil,
                                         c.residual ? rp.baseAddress : nil, Int32(ldr), c.relu ? 1 : 0, c.first ? 1 : 0, &y, Int32(ldy))
                    }
                }
            }))
        }
        print("dequant paths checked: \(ran.sorted())")
    }

    /// The matmul form (weight terms per column, activation scale and zero point per row), the same way.
    func testDequantColsPathsEqualScalar() {
        defer { for p in [ProcessInfo.processInfo.environment["PSEDGE_DEQUANT_KERNEL"] ?? "avx512", "avx2", "scalar"] where pse_dequant_kernel_select(p) != 0 { break } }
        var rng = SystemRandomNumberGenerator()
        var ran: Set<String> = []
        for n in [1, 7, 8, 15, 16, 17, 64, 200] {
            let rows = 3, (lda, ldr, ldy) = (n + 3, n + 1, n + 2)
            let acc = (0..<(rows * lda)).map { _ in Int32.random(in: -200_000...200_000, using: &rng) }
            let xs = (0..<rows).map { _ in Float.random(in: 0.01...0.05, using: &rng) }, zp = (0..<rows).map { _ in Int32.random(in: 0...255, using: &rng) }
            let ws = (0..<n).map { _ in Float.random(in: 0.001...0.01, using: &rng) }
            let wsum = (0..<n).map { _ in Int32.random(in: -3000...3000, using: &rng) }
            let bias = (0..<n).map { _ in Float.random(in: -2...2, using: &rng) }
            let res = (0..<(rows * ldr)).map { _ in Float.random(in: -20...20, using: &rng) }
            ran.formUnion(checkDequantPaths("cols", rows: rows, n: n, cases: [(false, false, false, false), (true, false, true, false), (true, true, true, true),
                                                                               (true, true, false, false)], ldy: ldy, expected: { c in
                var expected = [Float](repeating: .nan, count: rows * ldy)
                for r in 0..<rows {
                    for j in 0..<n {
                        expected[r * ldy + j] = self.epilogueSteps(Float(acc[r * lda + j] &- zp[r] &* wsum[j]) * (xs[r] * ws[j]), bias: bias[j], residual: res[r * ldr + j], c)
                    }
                }
                return expected
            }, call: { c, y in
                bias.withUnsafeBufferPointer { b in
                    res.withUnsafeBufferPointer { rp in
                        pse_dequant_cols(acc, Int32(lda), Int32(rows), Int32(n), xs, zp, ws, wsum, c.bias ? b.baseAddress : nil,
                                         c.residual ? rp.baseAddress : nil, Int32(ldr), c.relu ? 1 : 0, c.first ? 1 : 0, &y, Int32(ldy))
                    }
                }
            }))
        }
        print("dequant (matmul form) paths checked: \(ran.sorted())")
    }

    /// Packed im2col against im2col then pack, on ResNet's geometries (3×3 pad 1 strides 1 and 2, the 7×7 stride-2
    /// stem, 1×1 stride 2; rows of 16+ outputs at stride 2 take the vector gather; stride 1 with padding taller than
    /// the kernel's reach and with dilation take the block copy) and random ones (dilation, asymmetric padding, kernels wider than the image).
    func testPackedIm2colEqualsIm2colThenPack() {
        var rng = SystemRandomNumberGenerator()
        typealias Geometry = (c: Int, h: Int, w: Int, kh: Int, kw: Int, sh: Int, sw: Int, pt: Int, pl: Int, pb: Int, pr: Int, dh: Int, dw: Int)
        var cases: [Geometry] = [
            (3, 7, 9, 3, 2, 2, 1, 1, 0, 1, 0, 1, 2), (4, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1), (4, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
            (3, 30, 30, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1), (3, 12, 80, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1), (2, 9, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1), (2, 2, 6, 5, 3, 1, 1, 6, 1, 6, 1, 1, 1), (3, 5, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2), (5, 9, 9, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1), (2, 3, 2, 3, 5, 1, 1, 2, 3, 2, 3, 1, 1),
        ]
        for _ in 0..<30 {
            let kh = Int.random(in: 1...4, using: &rng), kw = Int.random(in: 1...4, using: &rng)
            cases.append((Int.random(in: 1...3, using: &rng), Int.random(in: 1...12, using: &rng), Int.random(in: 1...20, using: &rng), kh, kw,
                          Int.random(in: 1...3, using: &rng), Int.random(in: 1...3, using: &rng), Int.random(in: 0...2, using: &rng),
                          Int.random(in: 0...3, using: &rng), Int.random(in: 0...2, using: &rng), Int.random(in: 0...3, using: &rng),
                          Int.random(in: 1...2, using: &rng), Int.random(in: 1...2, using: &rng)))
        }
        for g in cases {
            let oh = (g.h + g.pt + g.pb - g.dh * (g.kh - 1) - 1) / g.sh + 1, ow = (g.w + g.pl + g.pr - g.dw * (g.kw - 1) - 1) / g.sw + 1
            if oh < 1 || ow < 1 { continue }
            let img = randomBytes(g.c * g.h * g.w, &rng)
            let k = g.c * g.kh * g.kw, p = oh * ow
            var cols = [UInt8](repeating: 0, count: k * p)
            pse_im2col_u8(img, Int32(g.c), Int32(g.h), Int32(g.w), Int32(g.kh), Int32(g.kw), Int32(g.pt), Int32(g.pl), Int32(g.sh), Int32(g.sw),
                          Int32(g.dh), Int32(g.dw), Int32(oh), Int32(ow), 77, &cols)
            var viaPack = [UInt8](repeating: 0, count: pse_packed_b_size(Int32(k), Int32(p))), direct = [UInt8](repeating: 0xAB, count: viaPack.count)
            var scratch = [UInt8](repeating: 0, count: 4 * p)
            pse_pack_b(cols, Int32(p), Int32(k), Int32(p), &viaPack)
            pse_im2col_u8_packed(img, Int32(g.c), Int32(g.h), Int32(g.w), Int32(g.kh), Int32(g.kw), Int32(g.pt), Int32(g.pl), Int32(g.sh), Int32(g.sw),
                                 Int32(g.dh), Int32(g.dw), Int32(oh), Int32(ow), 77, &direct, &scratch)
            XCTAssertEqual(direct, viaPack, "\(g)")
        }
    }
}
