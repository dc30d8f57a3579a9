import PSEdgeIR

// Shared machinery of the fusion passes: looking at values and nodes, and applying a pass's rewrites at once.

extension Node {
    /// An ONNX (default-domain) node of this type.
    func isOnnx(_ op: String) -> Bool { opType == op && (domain.isEmpty || domain == "ai.onnx") }

    /// A psedge-domain node of this type.
    func isPSEdge(_ op: String) -> Bool { opType == op && domain == "psedge" }

    /// For a two-input node reading `v`: the other input (nil when `v` is not an input).
    func other(than v: String) -> String? {
        guard inputs.count == 2 else { return nil }
        if inputs[0] == v { return inputs[1] }
        if inputs[1] == v { return inputs[0] }
        return nil
    }

    /// The outputs a graph could still be reading (named ones).
    var namedOutputs: [String] { outputs.filter { !$0.isEmpty } }
}

extension GraphIndex {
    func shape(_ v: String) -> [Int]? { graph.type(of: v)?.staticShape }
    func dtype(_ v: String) -> DType? { graph.type(of: v)?.dtype }
    func isConstant(_ v: String) -> Bool { graph.initializers[v] != nil }

    /// Index and node producing v.
    func producing(_ v: String) -> (Int, Node)? { producer[v].map { ($0, graph.nodes[$0]) } }

    /// The node that is v's only reader (v not a graph output).
    func soleUser(of v: String) -> (Int, Node)? { soleConsumer(of: v).map { ($0, graph.nodes[$0]) } }

    /// Every node reading v, once each.
    func users(of v: String) -> [Int] {
        var seen = Set<Int>()
        return (consumers[v] ?? []).filter { seen.insert($0).inserted }
    }

    /// True when v may disappear once the nodes in `nodes` are gone: only they read it and it is no graph output.
    func onlyUsed(_ v: String, by nodes: Set<Int>) -> Bool {
        !graphOutputs.contains(v) && (consumers[v] ?? []).allSatisfy { nodes.contains($0) }
    }

    /// A float constant all of whose elements equal `value` (within `tolerance`, relative).
    func isConstant(_ v: String, allEqualTo value: Double, tolerance: Double = 0) -> Bool {
        guard let t = graph.initializers[v], t.dtype.isFloat || t.dtype.isInteger, t.count > 0 else { return false }
        for i in 0..<t.count {
            let x = t.double(at: i)
            if tolerance == 0 ? x != value : abs(x - value) > tolerance * abs(value) { return false }
        }
        return true
    }

    /// A constant float scalar (any shape with a single element).
    func floatScalar(_ v: String) -> Double? {
        guard let t = graph.initializers[v], t.dtype.isFloat, t.count == 1 else { return nil }
        return t.double(at: 0)
    }
}

/// A pass's rewrites, collected while matching on an unchanged graph and applied together.
/// Each match claims the nodes it covers (a node belongs to at most one match), and replaces the node producing
/// its final value by new nodes that produce that same value. Matched nodes that nothing reads any more are
/// dropped by pruning, so a match never has to delete nodes itself, and a value still read elsewhere stays.
struct Rewrite {
    let graph: Graph
    let index: GraphIndex
    private(set) var claimed = Set<Int>()
    private var replacements: [Int: [Node]] = [:]
    private var constants: [String: Tensor] = [:]
    private var renames: [String: String] = [:]
    private var used: Set<String>

    init(_ graph: Graph) {
        self.graph = graph
        index = GraphIndex(graph)
        used = Set(graph.initializers.keys).union(graph.inputs.map(\.name))
        for n in graph.nodes { used.formUnion(n.outputs) }
    }

    /// Claims the nodes of a match; false (claiming nothing) when one of them belongs to an earlier match.
    mutating func claim(_ nodes: [Int]) -> Bool {
        if nodes.contains(where: { claimed.contains($0) }) { return false }
        claimed.formUnion(nodes)
        return true
    }

    func isClaimed(_ node: Int) -> Bool { claimed.contains(node) }

    /// Node `at` is replaced by `nodes` (placed where it was).
    mutating func replace(_ at: Int, with nodes: [Node]) { replacements[at] = nodes }

    /// Adds a constant under a fresh name derived from `base` and returns the name.
    mutating func addConstant(_ base: String, _ t: Tensor) -> String {
        var name = base, k = 1
        while used.contains(name) { name = "\(base)_\(k)"; k += 1 }
        used.insert(name)
        constants[name] = t
        return name
    }

    /// A fresh value name derived from `base`.
    mutating func freshValue(_ base: String) -> String {
        var name = base, k = 1
        while used.contains(name) { name = "\(base)_\(k)"; k += 1 }
        used.insert(name)
        return name
    }

    /// Readers of `old` read `new` instead (applied to every node input after the replacements).
    mutating func rename(_ old: String, to new: String) { renames[old] = new }

    var isEmpty: Bool { replacements.isEmpty && renames.isEmpty }

    /// The rewritten graph, without nodes and constants nothing reads any more (graph inputs are kept).
    func apply() throws -> Graph {
        if isEmpty { return graph }
        var g = graph
        var nodes: [Node] = []
        nodes.reserveCapacity(graph.nodes.count)
        for (i, n) in graph.nodes.enumerated() {
            if let r = replacements[i] { nodes.append(contentsOf: r) } else { nodes.append(n) }
        }
        if !renames.isEmpty {
            func resolve(_ v: String) -> String {
                var r = v, steps = 0
                while let next = renames[r], steps < renames.count { r = next; steps += 1 }
                return r
            }
            for i in nodes.indices { nodes[i].inputs = nodes[i].inputs.map { $0.isEmpty ? $0 : resolve($0) } }
        }
        g.nodes = nodes
        for (k, t) in constants { g.initializers[k] = t }
        var pruned = try g.pruned(to: g.outputs.map(\.name))
        pruned.inputs = graph.inputs
        pruned.outputs = graph.outputs
        return pruned
    }
}

/// Counts by label, printed "Cast 34, Div 54" (largest first).
struct Tally {
    private(set) var counts: [String: Int] = [:]
    mutating func add(_ key: String, _ n: Int = 1) { counts[key, default: 0] += n }
    var total: Int { counts.values.reduce(0, +) }
    var description: String {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            .joined(separator: ", ")
    }
}

/// Small tensor helpers for passes that rewrite weights.
enum ConstantMath {
    /// Values of a float constant as Double (any float dtype).
    static func doubles(_ t: Tensor) -> [Double] { (0..<t.count).map { t.double(at: $0) } }

    /// A float32 tensor from values.
    static func tensor(_ values: [Double], shape: [Int]) -> Tensor { Tensor(values.map { Float($0) }, shape: shape) }

    /// When a constant of shape `s` broadcast against a tensor of shape `target` varies only along `axis`
    /// (it has size 1 or target[axis] there and 1 elsewhere), its values expanded to target[axis] entries.
    static func perAxis(_ t: Tensor, target: [Int], axis: Int) -> [Double]? {
        let s = t.shape
        guard s.count <= target.count else { return nil }
        let pad = [Int](repeating: 1, count: target.count - s.count) + s
        for (i, d) in pad.enumerated() where d != 1 && (i != axis || d != target[axis]) { return nil }
        let v = doubles(t)
        return pad[axis] == 1 ? [Double](repeating: v[0], count: target[axis]) : v
    }

    /// 2-D transpose of a float tensor, times `scale` (blocked, on raw pointers: FC weights reach 10⁸ values).
    static func transpose2D(_ t: Tensor, scale: Float = 1) -> Tensor {
        let r = t.shape[0], c = t.shape[1]
        let f = t.toFloat32()
        let out = Tensor(zeros: .float32, shape: [c, r])
        let src = f.pointer(Float.self), dst = out.pointer(Float.self)
        let block = 64
        for i0 in stride(from: 0, to: r, by: block) {
            let i1 = min(r, i0 + block)
            for j0 in stride(from: 0, to: c, by: block) {
                let j1 = min(c, j0 + block)
                for i in i0..<i1 { for j in j0..<j1 { dst[j * r + i] = src[i * c + j] * scale } }
            }
        }
        return out
    }

    /// A float32 copy of a tensor times `scale`.
    static func scaled(_ t: Tensor, _ scale: Float) -> Tensor {
        let f = t.toFloat32()
        let out = Tensor(zeros: .float32, shape: t.shape)
        let src = f.pointer(Float.self), dst = out.pointer(Float.self)
        for i in 0..<t.count { dst[i] = src[i] * scale }
        return out
    }
}

extension GraphIndex {
    /// y · Sigmoid(y) applied to y (exporters' SiLU): the Sigmoid and Mul nodes and the Mul's output, when they
    /// are y's only readers (so y itself may disappear) and the Sigmoid's output feeds only the Mul.
    func siluAfter(_ y: String) -> (sigmoid: Int, mul: Int, output: String)? {
        guard !graphOutputs.contains(y) else { return nil }
        let readers = users(of: y)
        guard readers.count == 2 else { return nil }
        for (si, mi) in [(readers[0], readers[1]), (readers[1], readers[0])] {
            let sig = graph.nodes[si], mul = graph.nodes[mi]
            guard sig.isOnnx("Sigmoid"), sig.inputs.count == 1, let s = sig.outputs.first, mul.isOnnx("Mul"),
                  mul.other(than: y) == s, soleConsumer(of: s) == mi, let out = mul.outputs.first else { continue }
            return (si, mi, out)
        }
        return nil
    }
}
