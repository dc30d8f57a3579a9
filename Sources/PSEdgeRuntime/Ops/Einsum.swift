import PSEdgeIR
import PSEdgeKernels

/// Einsum (float32). Two operands whose labels map onto a (batched) matrix product run as transposes +
/// sgemm; everything else (one or 3+ operands, diagonals, broadcasting, single-operand sums) runs as an
/// explicit loop over output and summed labels.
enum EinsumOp {
    /// A parsed equation: per operand and for the output, a list of labels (ints; letters 0..<52,
    /// ellipsis dims 52...).
    struct Equation {
        var inputs: [[Int]]
        var output: [Int]
        var sizes: [Int: Int]
    }

    static func letterLabel(_ c: Character) -> Int? {
        guard let a = c.asciiValue else { return nil }
        if a >= 97 && a <= 122 { return Int(a - 97) }
        if a >= 65 && a <= 90 { return Int(a - 65) + 26 }
        return nil
    }

    static func parse(_ equation: String, shapes: [[Int]], _ ctx: KernelContext) throws -> Equation {
        let eq = equation.filter { !$0.isWhitespace }
        let parts = eq.split(separator: "->", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else { throw OpsKit.invalid(ctx, "equation '\(equation)' has more than one '->'") }
        let lhs = parts[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard lhs.count == shapes.count else {
            throw OpsKit.invalid(ctx, "equation '\(equation)' names \(lhs.count) operands but the node has \(shapes.count) inputs")
        }
        var ellipsisRank = 0
        var terms: [(labels: [Int?], ellipsisAt: Int?)] = []
        func parseTerm(_ s: String) throws -> (labels: [Int?], ellipsisAt: Int?) {
            var labels: [Int?] = []
            var at: Int? = nil
            var rest = Substring(s)
            while let c = rest.first {
                if rest.hasPrefix("...") {
                    guard at == nil else { throw OpsKit.invalid(ctx, "term '\(s)' has two ellipses") }
                    at = labels.count
                    rest = rest.dropFirst(3)
                    continue
                }
                guard let l = letterLabel(c) else { throw OpsKit.invalid(ctx, "equation '\(equation)' has an invalid character '\(c)'") }
                labels.append(l)
                rest = rest.dropFirst()
            }
            return (labels, at)
        }
        for (i, t) in lhs.enumerated() {
            let term = try parseTerm(t)
            let explicit = term.labels.count
            if term.ellipsisAt == nil {
                guard explicit == shapes[i].count else {
                    throw OpsKit.invalid(ctx, "term '\(t)' has \(explicit) labels but input \(i) has rank \(shapes[i].count)")
                }
            } else {
                guard explicit <= shapes[i].count else {
                    throw OpsKit.invalid(ctx, "term '\(t)' has more labels than input \(i) has dims (\(shapes[i].count))")
                }
                ellipsisRank = max(ellipsisRank, shapes[i].count - explicit)
            }
            terms.append(term)
        }
        // Expand ellipses: the last k of the ellipsisRank broadcast dims.
        var inputs: [[Int]] = []
        for (i, term) in terms.enumerated() {
            var labels = term.labels.map { $0! }
            if let at = term.ellipsisAt {
                let k = shapes[i].count - labels.count
                let ell = (0..<k).map { 52 + ellipsisRank - k + $0 }
                labels.insert(contentsOf: ell, at: at)
            }
            inputs.append(labels)
        }
        var sizes: [Int: Int] = [:]
        for (i, labels) in inputs.enumerated() {
            for (d, l) in labels.enumerated() {
                let s = shapes[i][d]
                if let have = sizes[l], have != s {
                    if have == 1 { sizes[l] = s } else if s != 1 {
                        throw PSEdgeError.shape("\(ctx.label): label of operand \(i) axis \(d) has size \(s) but \(have) elsewhere")
                    }
                } else if sizes[l] == nil {
                    sizes[l] = s
                }
            }
        }
        var output: [Int]
        let ellLabels = (0..<ellipsisRank).map { 52 + $0 }
        if parts.count == 2 {
            let term = try parseTerm(parts[1])
            output = term.labels.map { $0! }
            if let at = term.ellipsisAt { output.insert(contentsOf: ellLabels, at: at) }
            for l in output where sizes[l] == nil {
                throw OpsKit.invalid(ctx, "output label in '\(equation)' does not appear in any input")
            }
            guard Set(output).count == output.count else { throw OpsKit.invalid(ctx, "output of '\(equation)' repeats a label") }
        } else {
            // Implicit output: ellipsis dims, then labels that appear exactly once, alphabetically.
            var count: [Int: Int] = [:]
            for labels in inputs { for l in labels where l < 52 { count[l, default: 0] += 1 } }
            output = ellLabels + count.filter { $0.value == 1 }.keys.sorted()
        }
        return Equation(inputs: inputs, output: output, sizes: sizes)
    }

    static func make(_ ctx: KernelContext) throws -> Kernel {
        guard let equation = try ctx.attrs.string("equation") else {
            throw PSEdgeError.malformed("\(ctx.label): attribute 'equation' is required")
        }
        let nIn = ctx.node.inputs.count
        guard nIn >= 1 else { throw PSEdgeError.malformed("\(ctx.label): needs at least one input") }
        var shapes: [[Int]] = []
        for i in 0..<nIn {
            try ctx.requireDType(i, in: [.float32])
            shapes.append(try ctx.shape(i))
        }
        let eq = try parse(equation, shapes: shapes, ctx)
        let outShape = eq.output.map { eq.sizes[$0]! }
        let outType = TensorType(.float32, static: outShape)
        if let k = try gemmPlan(eq, shapes: shapes, outShape: outShape) { return k }
        return loopKernel(eq, shapes: shapes, outType: outType)
    }

    // MARK: explicit loops

    static func loopKernel(_ eq: Equation, shapes: [[Int]], outType: TensorType) -> Kernel {
        let outLabels = eq.output
        var summed: [Int] = []
        for labels in eq.inputs { for l in labels where !outLabels.contains(l) && !summed.contains(l) { summed.append(l) } }
        let all = outLabels + summed
        let sizes = all.map { eq.sizes[$0]! }
        // strides[k][j]: operand k's element stride for label all[j] (0 when absent or broadcast;
        // repeated labels add up, which walks a diagonal).
        var strides: [[Int]] = []
        for (k, labels) in eq.inputs.enumerated() {
            let st = Shapes.strides(shapes[k])
            var s = [Int](repeating: 0, count: all.count)
            for (d, l) in labels.enumerated() where shapes[k][d] != 1 {
                s[all.firstIndex(of: l)!] += st[d]
            }
            strides.append(s)
        }
        let nOut = outLabels.count
        let outCount = OpsKit.product(sizes[..<nOut])
        let sumCount = OpsKit.product(sizes[nOut...])
        let nOps = eq.inputs.count
        return OpsKit.Fn([outType]) { ins, outs, pool in
            let y = outs[0].pointer(Float.self)
            let xs = (0..<nOps).map { UnsafePointer(ins[$0]!.pointer(Float.self)) }
            if outCount == 0 { return }
            pool.parallelChunks(outCount, minChunk: max(1, 4096 / max(sumCount, 1))) { range in
                var idx = [Int](repeating: 0, count: all.count)
                var rem = range.lowerBound
                for d in stride(from: nOut - 1, through: 0, by: -1) { idx[d] = rem % sizes[d]; rem /= sizes[d] }
                var base = [Int](repeating: 0, count: nOps)
                for o in range {
                    for k in 0..<nOps {
                        var b = 0
                        for d in 0..<nOut { b += idx[d] * strides[k][d] }
                        base[k] = b
                    }
                    var acc: Float = 0
                    if sumCount > 0 {
                        for d in nOut..<all.count { idx[d] = 0 }
                        for _ in 0..<sumCount {
                            var p: Float = 1
                            for k in 0..<nOps {
                                var b = base[k]
                                for d in nOut..<all.count { b += idx[d] * strides[k][d] }
                                p *= xs[k][b]
                            }
                            acc += p
                            var d = all.count - 1
                            while d >= nOut {
                                idx[d] += 1
                                if idx[d] < sizes[d] { break }
                                idx[d] = 0
                                d -= 1
                            }
                        }
                    }
                    y[o] = acc
                    var d = nOut - 1
                    while d >= 0 {
                        idx[d] += 1
                        if idx[d] < sizes[d] { break }
                        idx[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }

    // MARK: two operands as batched GEMM

    static func gemmPlan(_ eq: Equation, shapes: [[Int]], outShape: [Int]) throws -> Kernel? {
        guard eq.inputs.count == 2 else { return nil }
        let A = eq.inputs[0], B = eq.inputs[1], O = eq.output
        // No diagonals, no broadcasting, no labels summed within one operand.
        guard Set(A).count == A.count, Set(B).count == B.count else { return nil }
        for (k, labels) in eq.inputs.enumerated() {
            for (d, l) in labels.enumerated() where shapes[k][d] != eq.sizes[l]! { return nil }
        }
        for l in A where !B.contains(l) && !O.contains(l) { return nil }
        for l in B where !A.contains(l) && !O.contains(l) { return nil }
        let batch = O.filter { A.contains($0) && B.contains($0) }
        let mL = O.filter { A.contains($0) && !B.contains($0) }
        let nL = O.filter { B.contains($0) && !A.contains($0) }
        let kL = A.filter { B.contains($0) && !O.contains($0) }
        let size = { (ls: [Int]) in ls.reduce(1) { $0 * eq.sizes[$1]! } }
        let nb = size(batch), m = size(mL), n = size(nL), k = size(kL)
        if nb * m * n == 0 { return nil }
        let permA = (batch + mL + kL).map { A.firstIndex(of: $0)! }
        let permB = (batch + kL + nL).map { B.firstIndex(of: $0)! }
        let cLabels = batch + mL + nL
        let permOut = O.map { cLabels.firstIndex(of: $0)! }
        let cShape = cLabels.map { eq.sizes[$0]! }
        let idA = permA == Array(0..<A.count), idB = permB == Array(0..<B.count), idC = permOut == Array(0..<O.count)
        let sa = OpsKit.Scratch(floats: idA ? 0 : nb * m * k)
        let sb = OpsKit.Scratch(floats: idB ? 0 : nb * k * n)
        let sc = OpsKit.Scratch(floats: idC ? 0 : nb * m * n)
        let shapeA = shapes[0], shapeB = shapes[1]
        return OpsKit.Fn([TensorType(.float32, static: outShape)]) { ins, outs, pool in
            var a = UnsafePointer(ins[0]!.pointer(Float.self))
            var b = UnsafePointer(ins[1]!.pointer(Float.self))
            if !idA { permute(a, shapeA, permA, sa.floats, pool); a = UnsafePointer(sa.floats) }
            if !idB { permute(b, shapeB, permB, sb.floats, pool); b = UnsafePointer(sb.floats) }
            let c = idC ? outs[0].pointer(Float.self) : sc.floats
            if k == 0 {
                c.update(repeating: 0, count: nb * m * n)
            } else if nb == 1 {
                pse_sgemm_pool(pool.pool, 0, 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, c, Int32(n))
            } else {
                // Side by side over the batch (BLAS is single-threaded in a plan).
                pool.parallelChunks(nb) { range in
                    for i in range {
                        pse_sgemm(0, 0, Int32(m), Int32(n), Int32(k), 1, a + i * m * k, Int32(k), b + i * k * n, Int32(n), 0,
                                  c + i * m * n, Int32(n))
                    }
                }
            }
            if !idC { permute(UnsafePointer(c), cShape, permOut, outs[0].pointer(Float.self), pool) }
        }
    }

    /// dst = transpose(src, perm): dst axis i is src axis perm[i].
    static func permute(_ src: UnsafePointer<Float>, _ shape: [Int], _ perm: [Int], _ dst: UnsafeMutablePointer<Float>,
                        _ pool: ThreadPool) {
        let r = shape.count
        let outShape = perm.map { shape[$0] }
        let srcStrides = Shapes.strides(shape)
        let st = perm.map { srcStrides[$0] }
        let total = OpsKit.product(outShape)
        if total == 0 { return }
        if r == 0 { dst[0] = src[0]; return }
        let w = outShape[r - 1], ws = st[r - 1]
        let rows = total / w
        pool.parallelChunks(rows, minChunk: max(1, 4096 / w)) { range in
            var idx = [Int](repeating: 0, count: r)
            var rem = range.lowerBound
            for d in stride(from: r - 2, through: 0, by: -1) { idx[d] = rem % outShape[d]; rem /= outShape[d] }
            for row in range {
                var off = 0
                for d in 0..<(r - 1) { off += idx[d] * st[d] }
                let o = dst + row * w
                let s = src + off
                for j in 0..<w { o[j] = s[j * ws] }
                var d = r - 2
                while d >= 0 {
                    idx[d] += 1
                    if idx[d] < outShape[d] { break }
                    idx[d] = 0
                    d -= 1
                }
            }
        }
    }
}
