import PSEdgeIR

/// Rules both the writer (before writing) and the reader (after decoding) enforce, so a file the
/// writer produces is always one the reader accepts.
enum PSMValidation {
    static let alignment = 64

    /// Bytes of `count(shape) * dtype.byteSize`, or nil when that overflows `Int`.
    static func byteLength(dtype: DType, shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = m
        }
        let (b, o) = n.multipliedReportingOverflow(by: dtype.byteSize)
        return o ? nil : b
    }

    /// The first problem found, as a sentence fragment naming the offending item; nil when valid.
    static func problem(in h: PSMHeader, dataLength: Int) -> String? {
        // Tensor table.
        var tableNames = Set<String>()
        for t in h.tensors {
            let label = "tensor '\(t.name)'"
            guard tableNames.insert(t.name).inserted else { return "the tensor table lists '\(t.name)' more than once" }
            guard let want = byteLength(dtype: t.dtype, shape: t.shape) else {
                return "\(label) has shape \(Shapes.describe(t.shape)), whose byte size overflows"
            }
            guard t.length == want else {
                return "\(label) is \(t.dtype.name)\(Shapes.describe(t.shape)), which needs \(want) bytes, but its length is \(t.length)"
            }
            guard t.offset % alignment == 0 else { return "\(label) starts at data offset \(t.offset), which is not a multiple of \(alignment)" }
            let (end, o) = t.offset.addingReportingOverflow(t.length)
            guard !o, end <= dataLength else {
                return "\(label) occupies data bytes [\(t.offset), \(t.offset)+\(t.length)), outside the data section (\(dataLength) bytes)"
            }
            if let q = t.quantization {
                guard t.role == .initializer else { return "\(label) has quantization parameters but is not an initializer" }
                if let why = q.problem(dtype: t.dtype, shape: t.shape) { return "\(label): \(why)" }
            }
        }
        let byOffset = h.tensors.filter { $0.length > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where b.offset < a.offset + a.length {
            return "tensors '\(a.name)' and '\(b.name)' overlap in the data section"
        }

        // Values.
        let initializers = Set(h.tensors.filter { $0.role == .initializer }.map(\.name))
        var inputNames = Set<String>()
        for v in h.inputs {
            if v.name.isEmpty { return "a graph input has an empty name" }
            guard inputNames.insert(v.name).inserted else { return "graph input '\(v.name)' is listed more than once" }
        }
        var produced = Set<String>()
        for (i, n) in h.nodes.enumerated() {
            let label = n.name.isEmpty ? "node #\(i) (\(n.opType))" : "\(n.opType) node '\(n.name)'"
            if n.opType.isEmpty { return "node #\(i) has an empty op_type" }
            for o in n.outputs where !o.isEmpty {
                if inputNames.contains(o) { return "\(label) produces '\(o)', which is also a graph input" }
                if initializers.contains(o) { return "\(label) produces '\(o)', which is also an initializer" }
                guard produced.insert(o).inserted else { return "value '\(o)' is produced more than once (again by \(label))" }
            }
        }
        let known = inputNames.union(initializers).union(produced)
        for (i, n) in h.nodes.enumerated() {
            let label = n.name.isEmpty ? "node #\(i) (\(n.opType))" : "\(n.opType) node '\(n.name)'"
            for inp in n.inputs where !inp.isEmpty && !known.contains(inp) {
                return "\(label) uses '\(inp)', which is not a graph input, an initializer or any node's output"
            }
            for (attr, a) in n.attributes {
                if case .tensorRef(let ref) = a, !tableNames.contains(ref) {
                    return "\(label) attribute '\(attr)' refers to tensor '\(ref)', which is not in the tensor table"
                }
            }
        }
        var outputNames = Set<String>()
        for v in h.outputs {
            if v.name.isEmpty { return "a graph output has an empty name" }
            guard outputNames.insert(v.name).inserted else { return "graph output '\(v.name)' is listed more than once" }
            if !known.contains(v.name) { return "graph output '\(v.name)' is not a graph input, an initializer or any node's output" }
        }
        return nil
    }
}
