/// Static type of a value: dtype and shape. A nil dimension is unknown (symbolic) until shapes are fixed.
public struct TensorType: Equatable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var shape: [Int?]

    public init(_ dtype: DType, _ shape: [Int?]) {
        self.dtype = dtype
        self.shape = shape
    }

    public init(_ dtype: DType, static shape: [Int]) { self.init(dtype, shape.map { $0 }) }

    public var staticShape: [Int]? {
        shape.allSatisfy { $0 != nil } ? shape.map { $0! } : nil
    }

    public var description: String {
        "\(dtype.name)[" + shape.map { $0.map(String.init) ?? "?" }.joined(separator: ",") + "]"
    }

    /// Largest single value a plan accepts (1 TiB): far above any real activation, small enough that sums of
    /// many such values cannot overflow.
    public static let maxValueBytes = 1 << 40

    /// The byte size of a static shape, with every dimension checked to be non-negative and the product
    /// checked for overflow and against `maxValueBytes`. Shapes can come from untrusted files (and from shape
    /// arithmetic on them), so this is how a plan refuses them instead of allocating or wrapping around.
    public func checkedByteCount(what: String) throws -> Int {
        guard let dims = staticShape else { throw PSEdgeError.shape("\(what): shape \(self) is not static") }
        var n = dtype.byteSize
        for d in dims {
            guard d >= 0 else { throw PSEdgeError.shape("\(what): shape \(self) has a negative dimension") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= Self.maxValueBytes else {
                throw PSEdgeError.shape("\(what): shape \(self) needs more than \(Self.maxValueBytes >> 30) GiB")
            }
            n = p
        }
        return n
    }
}

/// A named graph input or output.
public struct ValueInfo: Sendable {
    public var name: String
    public var type: TensorType?
    /// Names of symbolic dimensions as the source model called them (e.g. "batch"), by axis.
    public var dimNames: [Int: String]

    public init(name: String, type: TensorType?, dimNames: [Int: String] = [:]) {
        self.name = name
        self.type = type
        self.dimNames = dimNames
    }
}

/// One operator application. Inputs and outputs are value names; "" marks an omitted optional input.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: Attribute] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// "Conv 'conv1'" — how errors refer to a node.
    public var label: String { name.isEmpty ? "\(opType) node producing '\(outputs.first ?? "?")'" : "\(opType) node '\(name)'" }

    public var attrs: Attributes { Attributes(attributes, owner: label) }
}

/// The graph IR every importer produces and every later stage consumes.
public struct Graph: Sendable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Constant tensors (weights and folded values) by value name.
    public var initializers: [String: Tensor]
    /// Known static types of intermediate values (filled by shape inference).
    public var valueTypes: [String: TensorType]
    /// Operator set version per domain ("" = ai.onnx).
    public var opsets: [String: Int]
    /// Free-form provenance: source file, converter version, options.
    public var metadata: [String: String]

    public init(name: String = "graph", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
                initializers: [String: Tensor] = [:], valueTypes: [String: TensorType] = [:],
                opsets: [String: Int] = ["": 17], metadata: [String: String] = [:]) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.valueTypes = valueTypes
        self.opsets = opsets
        self.metadata = metadata
    }

    public var opset: Int { opsets[""] ?? opsets["ai.onnx"] ?? 17 }

    /// Type of a value if known: graph input, initializer or inferred.
    public func type(of name: String) -> TensorType? {
        if let t = initializers[name] { return TensorType(t.dtype, static: t.shape) }
        if let t = valueTypes[name] { return t }
        return inputs.first(where: { $0.name == name })?.type
    }

    /// Nodes in an order where every value is produced before it is used.
    /// Throws on a cycle, a value produced twice, or a use of a value nothing produces.
    public func topologicallySorted() throws -> [Node] {
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for o in n.outputs where !o.isEmpty {
                if producer[o] != nil || initializers[o] != nil || inputs.contains(where: { $0.name == o }) {
                    throw PSEdgeError.malformed("value '\(o)' is produced more than once (again by \(n.label))")
                }
                producer[o] = i
            }
        }
        let available = Set(inputs.map(\.name)).union(initializers.keys)
        var indegree = [Int](repeating: 0, count: nodes.count)
        var users = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for inp in Set(n.inputs) where !inp.isEmpty {
                if let p = producer[inp] {
                    indegree[i] += 1
                    users[p].append(i)
                } else if !available.contains(inp) {
                    throw PSEdgeError.malformed("\(n.label) uses '\(inp)', which is not a graph input, an initializer or any node's output")
                }
            }
        }
        var ready = (0..<nodes.count).filter { indegree[$0] == 0 }.reversed() as [Int]
        var order: [Node] = []
        order.reserveCapacity(nodes.count)
        while let i = ready.popLast() {
            order.append(nodes[i])
            for u in users[i].reversed() {
                indegree[u] -= 1
                if indegree[u] == 0 { ready.append(u) }
            }
        }
        if order.count != nodes.count {
            let stuck = (0..<nodes.count).filter { indegree[$0] > 0 }.prefix(3).map { nodes[$0].label }
            throw PSEdgeError.malformed("the graph has a cycle (involving \(stuck.joined(separator: ", ")))")
        }
        for o in outputs where producer[o.name] == nil && !available.contains(o.name) {
            throw PSEdgeError.malformed("graph output '\(o.name)' is not produced by any node")
        }
        return order
    }

    /// Keeps only the nodes needed to compute `outputNames` (and the initializers they use).
    public func pruned(to outputNames: [String]) throws -> Graph {
        var producer: [String: Node] = [:]
        for n in nodes { for o in n.outputs where !o.isEmpty { producer[o] = n } }
        let inputNames = Set(inputs.map(\.name))
        for o in outputNames where producer[o] == nil && initializers[o] == nil && !inputNames.contains(o) {
            throw PSEdgeError.invalid("requested output '\(o)' is not a value in the graph")
        }
        var needed = Set<String>()
        var stack = outputNames
        while let v = stack.popLast() {
            guard needed.insert(v).inserted, let n = producer[v] else { continue }
            stack.append(contentsOf: n.inputs.filter { !$0.isEmpty })
        }
        var g = self
        g.nodes = nodes.filter { n in n.outputs.contains(where: { needed.contains($0) }) }
        g.initializers = initializers.filter { needed.contains($0.key) }
        g.inputs = inputs.filter { needed.contains($0.name) }
        g.outputs = outputNames.map { name in
            outputs.first(where: { $0.name == name }) ?? ValueInfo(name: name, type: type(of: name))
        }
        g.valueTypes = valueTypes.filter { needed.contains($0.key) }
        return g
    }
}
