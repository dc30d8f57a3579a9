import PSEdgeIR
import PSEdgeKernels
import XCTest

/// Every max-pooling path this CPU runs equals the portable one bit for bit (NaN never wins, equal zeros keep the
/// first one's sign, all-padding windows give −∞), and the portable one is a correct max pool (checked against a
/// direct loop over each window).
final class MaxPoolKernelTests: XCTestCase {
    override func tearDown() {
        for path in [ProcessInfo.processInfo.environment["PSEDGE_MAXPOOL_KERNEL"] ?? "avx512", "portable"]
        where pse_maxpool_kernel_select(path) != 0 { break }
    }

    struct Case { let h, w, kh, kw, sh, sw, padT, padL, oh, ow: Int }

    func run(_ c: Case, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: 7, count: c.oh * c.ow)
        var t = [Float](repeating: 0, count: c.w)
        pse_maxpool2d_f32(x, Int32(c.h), Int32(c.w), Int32(c.kh), Int32(c.kw), Int32(c.sh), Int32(c.sw), Int32(c.padT), Int32(c.padL),
                          &y, Int32(c.oh), Int32(c.ow), &t)
        return y
    }

    /// The window's values compared one by one, rows then columns (as the contract orders them).
    func direct(_ c: Case, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: c.oh * c.ow)
        for oy in 0..<c.oh {
            for ox in 0..<c.ow {
                var col = [Float](repeating: -.infinity, count: c.kw)
                for ky in 0..<c.kh {
                    let iy = oy * c.sh - c.padT + ky
                    guard iy >= 0, iy < c.h else { continue }
                    for kx in 0..<c.kw {
                        let ix = ox * c.sw - c.padL + kx
                        if ix >= 0, ix < c.w, x[iy * c.w + ix] > col[kx] { col[kx] = x[iy * c.w + ix] }
                    }
                }
                var best = -Float.infinity
                for v in col where v > best { best = v }
                y[oy * c.ow + ox] = best
            }
        }
        return y
    }

    func testEveryPathEqualsThePortableOneBitForBit() {
        var rng = SeededRandom(seed: 2024)
        var cases = [
            Case(h: 112, w: 112, kh: 3, kw: 3, sh: 2, sw: 2, padT: 1, padL: 1, oh: 56, ow: 56),  // ResNet
            Case(h: 9, w: 9, kh: 2, kw: 2, sh: 1, sw: 1, padT: 0, padL: 0, oh: 8, ow: 8),
            Case(h: 5, w: 40, kh: 3, kw: 5, sh: 3, sw: 3, padT: 2, padL: 2, oh: 3, ow: 14),      // stride 3: portable loops
            Case(h: 3, w: 3, kh: 3, kw: 3, sh: 1, sw: 1, padT: 2, padL: 2, oh: 3, ow: 3),        // windows of padding only
        ]
        for _ in 0..<40 {
            let kh = 1 + Int(rng.next() % 4), kw = 1 + Int(rng.next() % 4), sh = 1 + Int(rng.next() % 2), sw = 1 + Int(rng.next() % 2)
            let h = kh + Int(rng.next() % 40), w = kw + Int(rng.next() % 70)
            let padT = Int(rng.next() % UInt64(kh)), padL = Int(rng.next() % UInt64(kw))
            cases.append(Case(h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, padT: padT, padL: padL,
                              oh: (h + 2 * padT - kh) / sh + 1, ow: (w + 2 * padL - kw) / sw + 1))
        }
        let paths = [String](["portable", "avx512"]).filter { pse_maxpool_kernel_select($0) != 0 }
        for c in cases {
            // Few distinct values, signed zeros and NaNs, so ties and NaN handling are exercised.
            let x: [Float] = (0..<(c.h * c.w)).map { _ in
                switch rng.next() % 10 { case 0: return .nan; case 1: return 0; case 2: return -0.0; default: return Float(Int(rng.next() % 7) - 3) }
            }
            var first: [Float]? = nil
            for path in paths {
                XCTAssertEqual(pse_maxpool_kernel_select(path), 1)
                let y = run(c, x)
                if let first {
                    XCTAssertEqual(y.map(\.bitPattern), first.map(\.bitPattern), "\(c): \(path) differs from portable")
                } else {
                    XCTAssertEqual(y.map(\.bitPattern), direct(c, x).map(\.bitPattern), "\(c): portable differs from the direct loop")
                    first = y
                }
            }
        }
    }
}
