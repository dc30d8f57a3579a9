import PSEdgeKernels
import XCTest

/// Every small-head attention path this CPU can run equals the scalar reference bit for bit (the ARM path is
/// checked under qemu by tools/arm/check.sh), and the reference is a correct attention (checked against a
/// double-precision softmax).
final class AttentionKernelTests: XCTestCase {
    let paths = ["scalar", "avx2", "avx512", "neon"]

    override func tearDown() {
        for path in [ProcessInfo.processInfo.environment["PSEDGE_ATTENTION_KERNEL"] ?? "avx512", "avx2", "neon", "scalar"]
        where pse_attention_kernel_select(path) != 0 { break }
    }

    struct Case { let rows, d, dv, lk: Int; let scale: Float; let spread: Float }

    /// Q rows (stride d + 3, to check strides), Kᵀ and Vᵀ padded to a multiple of 16 keys.
    struct Data { let q, kt, vt: [Float]; let ldk: Int }

    func data(_ c: Case, _ rng: inout some RandomNumberGenerator) -> Data {
        let ldk = (c.lk + 15) / 16 * 16
        let q = (0..<(c.rows * (c.d + 3))).map { _ in Float.random(in: -c.spread...c.spread, using: &rng) }
        var kt = [Float](repeating: 0, count: c.d * ldk), vt = [Float](repeating: 0, count: c.dv * ldk)
        for e in 0..<c.d { for j in 0..<c.lk { kt[e * ldk + j] = Float.random(in: -c.spread...c.spread, using: &rng) } }
        for e in 0..<c.dv { for j in 0..<c.lk { vt[e * ldk + j] = Float.random(in: -2...2, using: &rng) } }
        return Data(q: q, kt: kt, vt: vt, ldk: ldk)
    }

    func run(_ c: Case, _ x: Data) -> [Float] {
        var o = [Float](repeating: .nan, count: c.rows * (c.dv + 1))
        var scratch = [Float](repeating: .nan, count: Int(PSE_ATTN_SCRATCH_ROWS) * x.ldk)
        pse_attention_rows_f32(x.q, c.d + 3, Int32(c.rows), Int32(c.d), Int32(c.dv), x.kt, x.vt, Int32(c.lk), Int32(x.ldk), c.scale,
                               &o, c.dv + 1, &scratch)
        return o
    }

    func testEveryPathEqualsTheScalarReferenceBitForBit() {
        var rng = SystemRandomNumberGenerator()
        var cases: [Case] = [
            Case(rows: 40, d: 4, dv: 4, lk: 1024, scale: 0.5, spread: 2),    // the mini UNet's self-attention
            Case(rows: 40, d: 8, dv: 8, lk: 256, scale: 0.35, spread: 2),
            Case(rows: 17, d: 4, dv: 4, lk: 77, scale: 0.5, spread: 2),      // cross-attention: a ragged last block
            Case(rows: 3, d: 1, dv: 1, lk: 1, scale: 1, spread: 1),          // one key: every weight is 1
            Case(rows: 5, d: 16, dv: 13, lk: 15, scale: 0.25, spread: 1),    // fewer keys than a vector; odd dv
            Case(rows: 9, d: 3, dv: 6, lk: 300, scale: 4, spread: 8),        // scores spanning far below the exp floor
        ]
        for _ in 0..<20 {
            cases.append(Case(rows: Int.random(in: 1...20, using: &rng), d: Int.random(in: 1...16, using: &rng),
                              dv: Int.random(in: 1...16, using: &rng), lk: Int.random(in: 1...200, using: &rng),
                              scale: Float.random(in: 0.1...2, using: &rng), spread: Float.random(in: 0.5...4, using: &rng)))
        }
        var ran: Set<String> = []
        for c in cases {
            let x = data(c, &rng)
            XCTAssertEqual(pse_attention_kernel_select("scalar"), 1)
            let reference = run(c, x)
            assertMatchesSoftmax(c, x, reference)
            for path in paths.dropFirst() where pse_attention_kernel_select(path) != 0 {
                ran.insert(path)
                XCTAssertEqual(String(cString: pse_attention_kernel_name()), path)
                let got = run(c, x)
                XCTAssertEqual(got.map(\.bitPattern), reference.map(\.bitPattern), "\(path) differs from scalar on \(c)")
            }
        }
        print("attention paths checked against scalar: \(ran.sorted())")
    }

    /// Independent check of the reference itself: softmax in double precision (|v| ≤ 2); the padding column of the
    /// output is left alone.
    func assertMatchesSoftmax(_ c: Case, _ x: Data, _ o: [Float]) {
        for i in 0..<c.rows {
            var s = [Double](repeating: 0, count: c.lk)
            for j in 0..<c.lk {
                var dot = 0.0
                for e in 0..<c.d { dot += Double(x.q[i * (c.d + 3) + e]) * Double(x.kt[e * x.ldk + j]) }
                s[j] = dot * Double(c.scale)
            }
            let m = s.max()!
            // fp32 scores carry a rounding error of about d ulps of their size; weights move by that, relatively.
            let tolerance = 2 * (2e-6 + 1.2e-7 * Double(c.d) * s.map(Swift.abs).max()!)
            let w = s.map { Foundation.exp($0 - m) }
            let sum = w.reduce(0, +)
            for e in 0..<c.dv {
                var acc = 0.0
                for j in 0..<c.lk { acc += w[j] * Double(x.vt[e * x.ldk + j]) }
                XCTAssertEqual(Double(o[i * (c.dv + 1) + e]), acc / sum, accuracy: tolerance, "\(c) row \(i) dim \(e)")
            }
            XCTAssertTrue(o[i * (c.dv + 1) + c.dv].isNaN, "\(c): wrote past row \(i)")
        }
    }
}
