import PSEdgeKernels
import XCTest

/// Every depthwise-convolution path this CPU can run equals the scalar reference bit for bit (the ARM path is
/// checked under qemu by tools/arm/check.sh), and the reference is a correct convolution (checked against a
/// double-precision direct loop).
final class DepthwiseKernelTests: XCTestCase {
    let paths = ["scalar", "avx2", "avx512", "neon"]

    override func tearDown() {
        for path in [ProcessInfo.processInfo.environment["PSEDGE_DWCONV_KERNEL"] ?? "avx2", "avx512", "neon", "scalar"]
        where pse_dwconv_kernel_select(path) != 0 { break }
    }

    struct Case { let h, w, kh, kw, padT, padL, padB, padR, sh, sw, dh, dw: Int }

    func outputSize(_ c: Case) -> (Int, Int) {
        ((c.h + c.padT + c.padB - c.dh * (c.kh - 1) - 1) / c.sh + 1, (c.w + c.padL + c.padR - c.dw * (c.kw - 1) - 1) / c.sw + 1)
    }

    func run(_ c: Case, _ x: [Float], _ f: [Float], bias: Float) -> [Float] {
        let (oh, ow) = outputSize(c)
        var y = [Float](repeating: .nan, count: oh * ow)
        pse_dwconv2d_f32(x, Int32(c.h), Int32(c.w), f, Int32(c.kh), Int32(c.kw), Int32(c.padT), Int32(c.padL), Int32(c.sh), Int32(c.sw),
                         Int32(c.dh), Int32(c.dw), bias, &y, Int32(oh), Int32(ow))
        return y
    }

    func testEveryPathEqualsTheScalarReferenceBitForBit() {
        var rng = SystemRandomNumberGenerator()
        var cases: [Case] = [
            Case(h: 56, w: 56, kh: 3, kw: 3, padT: 1, padL: 1, padB: 1, padR: 1, sh: 1, sw: 1, dh: 1, dw: 1),  // ShuffleNet stride 1
            Case(h: 56, w: 56, kh: 3, kw: 3, padT: 1, padL: 1, padB: 1, padR: 1, sh: 2, sw: 2, dh: 1, dw: 1),  // stride 2
            Case(h: 7, w: 7, kh: 3, kw: 3, padT: 1, padL: 1, padB: 1, padR: 1, sh: 1, sw: 1, dh: 1, dw: 1),    // narrower than a vector
            Case(h: 1, w: 1, kh: 1, kw: 1, padT: 0, padL: 0, padB: 0, padR: 0, sh: 1, sw: 1, dh: 1, dw: 1),
            Case(h: 40, w: 67, kh: 5, kw: 5, padT: 2, padL: 2, padB: 2, padR: 2, sh: 1, sw: 1, dh: 2, dw: 2),  // dilation
            Case(h: 33, w: 70, kh: 3, kw: 7, padT: 0, padL: 3, padB: 1, padR: 0, sh: 3, sw: 3, dh: 1, dw: 1),  // stride 3: per pixel
            Case(h: 20, w: 35, kh: 1, kw: 3, padT: 0, padL: 0, padB: 0, padR: 0, sh: 1, sw: 2, dh: 1, dw: 1),  // no padding
        ]
        for _ in 0..<20 {  // random geometry
            let kh = Int.random(in: 1...5, using: &rng), kw = Int.random(in: 1...5, using: &rng)
            let dh = Int.random(in: 1...2, using: &rng), dw = Int.random(in: 1...2, using: &rng)
            let h = Int.random(in: (dh * (kh - 1) + 1)...40, using: &rng), w = Int.random(in: (dw * (kw - 1) + 1)...80, using: &rng)
            cases.append(Case(h: h, w: w, kh: kh, kw: kw, padT: Int.random(in: 0...2, using: &rng), padL: Int.random(in: 0...2, using: &rng),
                              padB: Int.random(in: 0...2, using: &rng), padR: Int.random(in: 0...2, using: &rng),
                              sh: Int.random(in: 1...2, using: &rng), sw: Int.random(in: 1...2, using: &rng), dh: dh, dw: dw))
        }
        var ran: Set<String> = []
        for c in cases {
            let x = (0..<(c.h * c.w)).map { _ in Float.random(in: -2...2, using: &rng) }
            let f = (0..<(c.kh * c.kw)).map { _ in Float.random(in: -1...1, using: &rng) }
            let bias = Float.random(in: -1...1, using: &rng)
            XCTAssertEqual(pse_dwconv_kernel_select("scalar"), 1)
            let reference = run(c, x, f, bias: bias)
            assertMatchesDirectLoop(c, x, f, bias, reference)
            for path in paths.dropFirst() where pse_dwconv_kernel_select(path) != 0 {
                ran.insert(path)
                XCTAssertEqual(String(cString: pse_dwconv_kernel_name()), path)
                let got = run(c, x, f, bias: bias)
                XCTAssertEqual(got.map(\.bitPattern), reference.map(\.bitPattern), "\(path) differs from scalar on \(c)")
            }
        }
        print("depthwise paths checked against scalar: \(ran.sorted())")
    }

    /// Independent check of the reference itself: a double-precision loop over the same taps.
    func assertMatchesDirectLoop(_ c: Case, _ x: [Float], _ f: [Float], _ bias: Float, _ y: [Float]) {
        let (oh, ow) = outputSize(c)
        for oy in 0..<oh {
            for ox in 0..<ow {
                var acc = Double(bias)
                for ky in 0..<c.kh {
                    for kx in 0..<c.kw {
                        let iy = oy * c.sh - c.padT + ky * c.dh, ix = ox * c.sw - c.padL + kx * c.dw
                        if iy >= 0 && iy < c.h && ix >= 0 && ix < c.w { acc += Double(x[iy * c.w + ix]) * Double(f[ky * c.kw + kx]) }
                    }
                }
                XCTAssertEqual(Double(y[oy * ow + ox]), acc, accuracy: 1e-5 * Double(c.kh * c.kw), "\(c) at (\(oy), \(ox))")
            }
        }
    }
}
