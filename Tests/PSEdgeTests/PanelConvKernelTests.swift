import PSEdgeKernels
import XCTest

/// The fp32 panel convolution (pse_sconv_pack + pse_sconv_gemm): every vector path equals the scalar reference bit
/// for bit, and the reference is a correct convolution with its epilogue (checked against a double-precision loop).
final class PanelConvKernelTests: XCTestCase {
    override func tearDown() {
        for path in [ProcessInfo.processInfo.environment["PSEDGE_SCONV_KERNEL"] ?? "avx512", "avx2", "scalar"]
        where pse_sconv_kernel_select(path) != 0 { break }
    }

    struct Case { let c, h, w, m, kh, kw, sh, sw, pt, pl, pb, pr: Int; let bias, residual, relu, first: Bool }

    func testEveryPathEqualsTheScalarReferenceBitForBit() {
        var rng = SystemRandomNumberGenerator()
        var cases: [Case] = [
            Case(c: 8, h: 14, w: 14, m: 19, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, bias: true, residual: true, relu: true, first: true),
            Case(c: 16, h: 7, w: 7, m: 64, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0, bias: true, residual: true, relu: true, first: true),
            Case(c: 16, h: 7, w: 7, m: 33, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0, bias: true, residual: false, relu: true, first: false),
            Case(c: 3, h: 23, w: 23, m: 9, kh: 7, kw: 7, sh: 2, sw: 2, pt: 3, pl: 3, pb: 3, pr: 3, bias: false, residual: false, relu: false, first: false),
            Case(c: 5, h: 9, w: 40, m: 17, kh: 3, kw: 3, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, bias: true, residual: true, relu: true, first: false),
            Case(c: 4, h: 4, w: 4, m: 1, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0, bias: false, residual: true, relu: false, first: false),
            Case(c: 9, h: 5, w: 11, m: 13, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0, bias: true, residual: true, relu: true, first: true),
            Case(c: 2, h: 2, w: 6, m: 5, kh: 5, kw: 3, sh: 1, sw: 1, pt: 6, pl: 1, pb: 6, pr: 1, bias: true, residual: false, relu: false, first: false),  // rows all padding
        ]
        for _ in 0..<15 {
            let kh = Int.random(in: 1...3, using: &rng), kw = Int.random(in: 1...3, using: &rng)
            cases.append(Case(c: Int.random(in: 1...6, using: &rng), h: Int.random(in: kh...12, using: &rng), w: Int.random(in: kw...40, using: &rng),
                              m: Int.random(in: 1...20, using: &rng), kh: kh, kw: kw, sh: Int.random(in: 1...2, using: &rng), sw: Int.random(in: 1...2, using: &rng),
                              pt: Int.random(in: 0...1, using: &rng), pl: Int.random(in: 0...1, using: &rng), pb: Int.random(in: 0...1, using: &rng),
                              pr: Int.random(in: 0...1, using: &rng), bias: Bool.random(using: &rng), residual: Bool.random(using: &rng),
                              relu: Bool.random(using: &rng), first: Bool.random(using: &rng)))
        }
        var ran: Set<String> = []
        for cs in cases {
            let oh = (cs.h + cs.pt + cs.pb - cs.kh) / cs.sh + 1, ow = (cs.w + cs.pl + cs.pr - cs.kw) / cs.sw + 1, n = oh * ow
            let k = cs.c * cs.kh * cs.kw
            let x = (0..<(cs.c * cs.h * cs.w)).map { _ in Float.random(in: -2...2, using: &rng) }
            let wt = (0..<(cs.m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
            let bias = (0..<cs.m).map { _ in Float.random(in: -1...1, using: &rng) }
            let res = (0..<(cs.m * n)).map { _ in Float.random(in: -3...3, using: &rng) }
            var panels = [Float](repeating: .nan, count: pse_sconv_packed_floats(Int32(k), Int32(n)))
            var row = [Float](repeating: 0, count: n)
            // Packed in two parts, as the pool does.
            for (k0, k1) in [(0, k / 2), (k / 2, k)] {
                pse_sconv_pack(x, Int32(cs.c), Int32(cs.h), Int32(cs.w), Int32(cs.kh), Int32(cs.kw), Int32(cs.pt), Int32(cs.pl), Int32(cs.sh), Int32(cs.sw),
                               1, 1, Int32(oh), Int32(ow), &panels, Int32(k0), Int32(k1), &row)
            }
            XCTAssertFalse(panels.contains { $0.isNaN }, "\(cs): panels not fully written")
            func run() -> [Float] {
                var y = [Float](repeating: .nan, count: cs.m * n)
                bias.withUnsafeBufferPointer { b in
                    res.withUnsafeBufferPointer { r in
                        pse_sconv_gemm(Int32(cs.m), Int32(n), Int32(k), wt, Int32(k), panels, 16, k * 16, cs.bias ? b.baseAddress : nil,
                                       cs.residual ? r.baseAddress : nil, Int32(n), cs.relu ? 1 : 0, cs.first ? 1 : 0, &y, Int32(n))
                    }
                }
                return y
            }
            XCTAssertEqual(pse_sconv_kernel_select("scalar"), 1)
            let reference = run()
            // The reference against a double-precision direct convolution with the same epilogue.
            for r in 0..<cs.m {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var acc = cs.bias ? Double(bias[r]) : 0
                        for ci in 0..<cs.c {
                            for ky in 0..<cs.kh {
                                for kx in 0..<cs.kw {
                                    let iy = oy * cs.sh - cs.pt + ky, ix = ox * cs.sw - cs.pl + kx
                                    if iy >= 0 && iy < cs.h && ix >= 0 && ix < cs.w {
                                        acc += Double(wt[r * k + (ci * cs.kh + ky) * cs.kw + kx]) * Double(x[(ci * cs.h + iy) * cs.w + ix])
                                    }
                                }
                            }
                        }
                        let j = oy * ow + ox
                        if cs.residual && cs.first { acc += Double(res[r * n + j]) }
                        if cs.relu { acc = max(acc, 0) }
                        if cs.residual && !cs.first { acc += Double(res[r * n + j]) }
                        XCTAssertEqual(Double(reference[r * n + j]), acc, accuracy: 1e-5 * Double(k + 2), "\(cs) at \(r), \(j)")
                    }
                }
            }
            // A 1×1 stride-1 input read in place (ldb = its row length) gives the packed result exactly.
            let pointwise = cs.kh == 1 && cs.kw == 1 && cs.sh == 1 && cs.sw == 1 && cs.pt + cs.pl + cs.pb + cs.pr == 0
            func runDirect() -> [Float] {
                var y = [Float](repeating: .nan, count: cs.m * n)
                bias.withUnsafeBufferPointer { b in
                    res.withUnsafeBufferPointer { r in
                        pse_sconv_gemm(Int32(cs.m), Int32(n), Int32(k), wt, Int32(k), x, Int32(n), 16, cs.bias ? b.baseAddress : nil,
                                       cs.residual ? r.baseAddress : nil, Int32(n), cs.relu ? 1 : 0, cs.first ? 1 : 0, &y, Int32(n))
                    }
                }
                return y
            }
            // The rows form (weights in 16-row panels) gives the same bits.
            var rowPanels = [Float](repeating: .nan, count: pse_sconv_row_panels_floats(Int32(cs.m), Int32(k)))
            pse_sconv_pack_row_panels(wt, Int32(cs.m), Int32(k), &rowPanels)
            func runRows() -> [Float] {
                var y = [Float](repeating: .nan, count: cs.m * n)
                bias.withUnsafeBufferPointer { b in
                    res.withUnsafeBufferPointer { r in
                        pse_sconv_rows(Int32(cs.m), Int32(n), Int32(k), rowPanels, k * 16, panels, 16, k * 16, cs.bias ? b.baseAddress : nil,
                                       cs.residual ? r.baseAddress : nil, Int32(n), cs.relu ? 1 : 0, cs.first ? 1 : 0, &y, Int32(n))
                    }
                }
                return y
            }
            XCTAssertEqual(runRows().map(\.bitPattern), reference.map(\.bitPattern), "scalar rows form on \(cs)")
            if pointwise { XCTAssertEqual(runDirect().map(\.bitPattern), reference.map(\.bitPattern), "scalar in place on \(cs)") }
            for path in ["avx2", "avx512"] where pse_sconv_kernel_select(path) != 0 {
                ran.insert(path)
                XCTAssertEqual(run().map(\.bitPattern), reference.map(\.bitPattern), "\(path) differs from scalar on \(cs)")
                XCTAssertEqual(runRows().map(\.bitPattern), reference.map(\.bitPattern), "\(path) rows form differs from scalar on \(cs)")
                if pointwise { XCTAssertEqual(runDirect().map(\.bitPattern), reference.map(\.bitPattern), "\(path) in place on \(cs)") }
            }
        }
        print("panel conv paths checked against scalar: \(ran.sorted())")
    }
}
