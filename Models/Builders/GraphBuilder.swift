import PSEdgeIR

/// A value being built: its name in the graph and its static type. Builders know every shape up front
/// (inputs are fixed when the graph is built), so each helper checks its operands and computes its result type.
public struct Value: Sendable, CustomStringConvertible {
    public let name: String
    public let dtype: DType
    public let shape: [Int]

    public init(name: String, dtype: DType = .float32, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var rank: Int { shape.count }
    public var description: String { "'\(name)' \(dtype.name)\(Shapes.describe(shape))" }
}

/// Emits standard ONNX operators into a `Graph`, the way an exporter would, so the result goes through the same
/// passes and runtime as an imported model.
///
/// Nodes are named after the module they implement (`down_blocks.0.resnets.1.conv1/Conv`); a node's single output
/// has the node's name. Those names contain '/', so the plain module paths stay free for graph outputs
/// (`output(_:as:)` renames a value to such a path).
///
/// Opset 21: GroupNormalization takes per-channel scale and bias (the opset-18 version took them per group), and
/// Gelu (opset 20) exists.
public final class GraphBuilder {
    public static let opset = 21

    public private(set) var graph: Graph
    private var usedNames: Set<String> = []
    private var int64Constants: [[Int]: Value] = [:]
    /// Values renamed by `output(_:as:)`, old name → new name.
    private var renamed: [String: String] = [:]

    public init(name: String) {
        graph = Graph(name: name, opsets: ["": GraphBuilder.opset])
    }

    // MARK: names

    /// `base`, or `base_1`, `base_2`… if taken.
    public func uniqueName(_ base: String) -> String {
        if usedNames.insert(base).inserted { return base }
        var i = 1
        while !usedNames.insert("\(base)_\(i)").inserted { i += 1 }
        return "\(base)_\(i)"
    }

    // MARK: inputs, constants, outputs

    public func input(_ name: String, _ dtype: DType = .float32, shape: [Int]) -> Value {
        precondition(usedNames.insert(name).inserted, "input name '\(name)' used twice")
        graph.inputs.append(ValueInfo(name: name, type: TensorType(dtype, static: shape)))
        return Value(name: name, dtype: dtype, shape: shape)
    }

    /// A weight or other constant. The tensor is stored as given (no copy: it may borrow a mapped file).
    public func constant(_ t: Tensor, name: String) -> Value {
        let n = uniqueName(name)
        graph.initializers[n] = t
        return Value(name: n, dtype: t.dtype, shape: t.shape)
    }

    public func constant(floats: [Float], shape: [Int], name: String) -> Value {
        constant(Tensor(floats, shape: shape), name: name)
    }

    /// An int64 vector (shapes, axes, split sizes); identical vectors share one initializer.
    public func int64s(_ values: [Int]) -> Value {
        if let v = int64Constants[values] { return v }
        let name = "const/i64[" + values.map(String.init).joined(separator: ",") + "]"
        let v = constant(Tensor(int64: values.map(Int64.init), shape: [values.count]), name: name)
        int64Constants[values] = v
        return v
    }

    /// Makes `v` a graph output called `name`. The value is renamed when a node of this graph produces it and no
    /// other output uses it; otherwise an Identity node gives the new name.
    @discardableResult
    public func output(_ value: Value, as name: String) throws -> Value {
        var current = value.name
        while let r = renamed[current] { current = r }
        let producedHere = graph.nodes.contains { $0.outputs.contains(current) }
        let alreadyOutput = graph.outputs.contains { $0.name == current }
        let type = TensorType(value.dtype, static: value.shape)
        if current == name {
            if !alreadyOutput { graph.outputs.append(ValueInfo(name: name, type: type)) }
            return Value(name: name, dtype: value.dtype, shape: value.shape)
        }
        guard usedNames.insert(name).inserted else {
            throw PSEdgeError.invalid("output name '\(name)' is already the name of another value")
        }
        if producedHere && !alreadyOutput {
            for i in graph.nodes.indices {
                for (j, o) in graph.nodes[i].outputs.enumerated() where o == current { graph.nodes[i].outputs[j] = name }
                for (j, o) in graph.nodes[i].inputs.enumerated() where o == current { graph.nodes[i].inputs[j] = name }
            }
            if let t = graph.valueTypes.removeValue(forKey: current) { graph.valueTypes[name] = t }
            renamed[current] = name
        } else {
            graph.nodes.append(Node(name: name + "/Identity", opType: "Identity", inputs: [current], outputs: [name]))
            graph.valueTypes[name] = type
        }
        graph.outputs.append(ValueInfo(name: name, type: type))
        return Value(name: name, dtype: value.dtype, shape: value.shape)
    }

    // MARK: generic node

    /// Appends a node named `scope/op` with one output per entry of `outputs` (their types), and returns them.
    @discardableResult
    public func node(_ op: String, _ inputs: [Value?], _ attributes: [String: Attribute] = [:], scope: String,
                     outputs: [TensorType]) -> [Value] {
        let nodeName = uniqueName(scope.isEmpty ? op : "\(scope)/\(op)")
        let names = outputs.count == 1 ? [nodeName] : outputs.indices.map { i -> String in
            let n = "\(nodeName):\(i)"
            usedNames.insert(n)
            return n
        }
        graph.nodes.append(Node(name: nodeName, opType: op, inputs: inputs.map { $0?.name ?? "" }, outputs: names,
                                attributes: attributes))
        var values: [Value] = []
        for (n, t) in zip(names, outputs) {
            graph.valueTypes[n] = t
            values.append(Value(name: n, dtype: t.dtype, shape: t.staticShape!))
        }
        return values
    }

    private func one(_ op: String, _ inputs: [Value?], _ attributes: [String: Attribute] = [:], scope: String,
                     shape: [Int], dtype: DType = .float32) -> Value {
        node(op, inputs, attributes, scope: scope, outputs: [TensorType(dtype, static: shape)])[0]
    }

    // MARK: linear layers

    /// 2-D convolution. `weight` is [M, C/groups, kh, kw]; `pads` is [top, left, bottom, right].
    public func conv2d(_ x: Value, weight: Tensor, bias: Tensor?, stride: Int = 1, pads: [Int], dilation: Int = 1,
                       groups: Int = 1, scope: String) throws -> Value {
        let ws = weight.shape
        guard x.rank == 4, ws.count == 4, x.shape[1] == ws[1] * groups, pads.count == 4 else {
            throw PSEdgeError.shape("\(scope): convolution weight \(Shapes.describe(ws)) (\(groups) groups) does not fit input \(x)")
        }
        if let b = bias, b.shape != [ws[0]] {
            throw PSEdgeError.shape("\(scope): bias \(Shapes.describe(b.shape)) does not fit \(ws[0]) output channels")
        }
        let oh = (x.shape[2] + pads[0] + pads[2] - dilation * (ws[2] - 1) - 1) / stride + 1
        let ow = (x.shape[3] + pads[1] + pads[3] - dilation * (ws[3] - 1) - 1) / stride + 1
        guard oh > 0, ow > 0 else { throw PSEdgeError.shape("\(scope): kernel \(ws[2])x\(ws[3]) is larger than the padded input \(x)") }
        let w = constant(weight, name: "\(scope).weight")
        let b = bias.map { constant($0, name: "\(scope).bias") }
        var attrs: [String: Attribute] = [
            "kernel_shape": .ints([ws[2], ws[3]]), "strides": .ints([stride, stride]), "pads": .ints(pads),
            "dilations": .ints([dilation, dilation]),
        ]
        if groups != 1 { attrs["group"] = .int(groups) }
        return one("Conv", [x, w] + (b.map { [$0] } ?? []), attrs, scope: scope, shape: [x.shape[0], ws[0], oh, ow])
    }

    /// y = x Wᵀ + b for a PyTorch Linear weight W [out, in]. A 2-D input becomes one Gemm (transB=1), which uses
    /// the weight as stored; higher ranks become MatMul with Wᵀ (transposed once, here) and an Add of the bias.
    public func linear(_ x: Value, weight: Tensor, bias: Tensor?, scope: String) throws -> Value {
        guard weight.rank == 2, let k = x.shape.last, weight.shape[1] == k else {
            throw PSEdgeError.shape("\(scope): linear weight \(Shapes.describe(weight.shape)) does not fit input \(x)")
        }
        let n = weight.shape[0]
        if let b = bias, b.shape != [n] {
            throw PSEdgeError.shape("\(scope): bias \(Shapes.describe(b.shape)) does not fit \(n) outputs")
        }
        let outShape = Array(x.shape.dropLast()) + [n]
        if x.rank == 2 {
            let w = constant(weight, name: "\(scope).weight")
            let b = bias.map { constant($0, name: "\(scope).bias") }
            return one("Gemm", [x, w] + (b.map { [$0] } ?? []), ["transB": .int(1)], scope: scope, shape: outShape)
        }
        let wt = constant(GraphBuilder.transposed2D(weight), name: "\(scope).weight^T")
        let y = one("MatMul", [x, wt], scope: scope, shape: outShape)
        guard let bias else { return y }
        return try add(y, constant(bias, name: "\(scope).bias"), scope: scope)
    }

    /// A float32 copy of a 2-D tensor, transposed.
    public static func transposed2D(_ t: Tensor) -> Tensor {
        let src = t.toFloat32()
        let (r, c) = (t.shape[0], t.shape[1])
        let out = Tensor(zeros: .float32, shape: [c, r])
        let s = src.pointer(Float.self), d = out.pointer(Float.self)
        for i in 0..<r { for j in 0..<c { d[j * r + i] = s[i * c + j] } }
        return out
    }

    /// Batched matrix product with NumPy broadcasting of the leading dimensions.
    public func matmul(_ a: Value, _ b: Value, scope: String) throws -> Value {
        guard a.rank >= 2, b.rank >= 2, a.shape[a.rank - 1] == b.shape[b.rank - 2],
              let batch = Shapes.broadcast(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2))) else {
            throw PSEdgeError.shape("\(scope): cannot multiply \(a) by \(b)")
        }
        return one("MatMul", [a, b], scope: scope, shape: batch + [a.shape[a.rank - 2], b.shape[b.rank - 1]])
    }

    // MARK: normalization

    /// GroupNormalization (opset 21: scale and bias per channel) over [N, C, ...].
    public func groupNorm(_ x: Value, groups: Int, scale: Tensor, bias: Tensor, epsilon: Float, scope: String) throws -> Value {
        let c = x.shape.count >= 2 ? x.shape[1] : 0
        guard c > 0, groups > 0, c % groups == 0 else {
            throw PSEdgeError.shape("\(scope): \(groups) groups do not divide the channels of \(x)")
        }
        let s = constant(scale, name: "\(scope).weight"), b = constant(bias, name: "\(scope).bias")
        return one("GroupNormalization", [x, s, b], ["num_groups": .int(groups), "epsilon": .float(epsilon)],
                   scope: scope, shape: x.shape)
    }

    /// LayerNormalization over the last axis.
    public func layerNorm(_ x: Value, scale: Tensor, bias: Tensor?, epsilon: Float, scope: String) throws -> Value {
        let s = constant(scale, name: "\(scope).weight")
        let b = bias.map { constant($0, name: "\(scope).bias") }
        return one("LayerNormalization", [x, s] + (b.map { [$0] } ?? []), ["axis": .int(-1), "epsilon": .float(epsilon)],
                   scope: scope, shape: x.shape)
    }

    /// Inference BatchNormalization with running statistics.
    public func batchNorm(_ x: Value, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float,
                          scope: String) -> Value {
        let ins = [constant(scale, name: "\(scope).weight"), constant(bias, name: "\(scope).bias"),
                   constant(mean, name: "\(scope).running_mean"), constant(variance, name: "\(scope).running_var")]
        return one("BatchNormalization", [x] + ins, ["epsilon": .float(epsilon)], scope: scope, shape: x.shape)
    }

    // MARK: element-wise

    public func unary(_ op: String, _ x: Value, _ attributes: [String: Attribute] = [:], scope: String) -> Value {
        one(op, [x], attributes, scope: scope, shape: x.shape, dtype: x.dtype)
    }

    public func relu(_ x: Value, scope: String) -> Value { unary("Relu", x, scope: scope) }
    public func sigmoid(_ x: Value, scope: String) -> Value { unary("Sigmoid", x, scope: scope) }
    /// Exact (erf) GELU, as torch.nn.functional.gelu.
    public func gelu(_ x: Value, scope: String) -> Value { unary("Gelu", x, scope: scope) }

    /// x · sigmoid(x).
    public func silu(_ x: Value, scope: String) throws -> Value {
        try mul(x, sigmoid(x, scope: scope), scope: scope)
    }

    public func binary(_ op: String, _ a: Value, _ b: Value, scope: String) throws -> Value {
        guard a.dtype == b.dtype, let s = Shapes.broadcast(a.shape, b.shape) else {
            throw PSEdgeError.shape("\(scope): \(op) of \(a) and \(b): shapes do not broadcast")
        }
        return one(op, [a, b], scope: scope, shape: s, dtype: a.dtype)
    }

    public func add(_ a: Value, _ b: Value, scope: String) throws -> Value { try binary("Add", a, b, scope: scope) }
    public func mul(_ a: Value, _ b: Value, scope: String) throws -> Value { try binary("Mul", a, b, scope: scope) }
    public func div(_ a: Value, _ b: Value, scope: String) throws -> Value { try binary("Div", a, b, scope: scope) }

    /// Multiplies by a scalar constant.
    public func scale(_ x: Value, by s: Float, scope: String) throws -> Value {
        try mul(x, constant(floats: [s], shape: [], name: "\(scope)/scale"), scope: scope)
    }

    public func softmax(_ x: Value, axis: Int = -1, scope: String) -> Value {
        one("Softmax", [x], ["axis": .int(axis)], scope: scope, shape: x.shape)
    }

    // MARK: shapes

    /// Reshape to a fully given static shape.
    public func reshape(_ x: Value, _ shape: [Int], scope: String) throws -> Value {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == x.shape.reduce(1, *) else {
            throw PSEdgeError.shape("\(scope): cannot reshape \(x) to \(Shapes.describe(shape))")
        }
        if shape == x.shape { return x }
        return one("Reshape", [x, int64s(shape)], scope: scope, shape: shape, dtype: x.dtype)
    }

    public func transpose(_ x: Value, _ perm: [Int], scope: String) -> Value {
        precondition(perm.count == x.rank && Set(perm) == Set(0..<x.rank))
        return one("Transpose", [x], ["perm": .ints(perm)], scope: scope, shape: perm.map { x.shape[$0] }, dtype: x.dtype)
    }

    public func concat(_ xs: [Value], axis: Int, scope: String) throws -> Value {
        guard let first = xs.first else { throw PSEdgeError.shape("\(scope): nothing to concatenate") }
        let a = axis < 0 ? axis + first.rank : axis
        var out = first.shape
        for x in xs.dropFirst() {
            guard x.rank == first.rank, (0..<x.rank).allSatisfy({ $0 == a || x.shape[$0] == first.shape[$0] }) else {
                throw PSEdgeError.shape("\(scope): cannot concatenate \(x) with \(first) along axis \(axis)")
            }
            out[a] += x.shape[a]
        }
        return one("Concat", xs, ["axis": .int(a)], scope: scope, shape: out, dtype: first.dtype)
    }

    public func split(_ x: Value, sizes: [Int], axis: Int, scope: String) throws -> [Value] {
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0, a < x.rank, sizes.reduce(0, +) == x.shape[a] else {
            throw PSEdgeError.shape("\(scope): cannot split \(x) into \(sizes) along axis \(axis)")
        }
        let types = sizes.map { s -> TensorType in
            var sh = x.shape
            sh[a] = s
            return TensorType(x.dtype, static: sh)
        }
        return node("Split", [x, int64s(sizes)], ["axis": .int(a)], scope: scope, outputs: types)
    }

    /// Nearest-neighbour resize of the two spatial axes of [N, C, H, W] to `size`, as torch's
    /// `F.interpolate(mode="nearest")`: source index floor(dst · in / out).
    public func resizeNearest(_ x: Value, to size: [Int], scope: String) -> Value {
        let sizes = int64s([x.shape[0], x.shape[1]] + size)
        return one("Resize", [x, nil, nil, sizes],
                   ["mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"),
                    "nearest_mode": .string("floor")],
                   scope: scope, shape: [x.shape[0], x.shape[1]] + size)
    }

    public func maxPool(_ x: Value, kernel: Int, stride: Int, pad: Int, scope: String) -> Value {
        let o = { (n: Int) in (n + 2 * pad - kernel) / stride + 1 }
        return one("MaxPool", [x], ["kernel_shape": .ints([kernel, kernel]), "strides": .ints([stride, stride]),
                                    "pads": .ints([pad, pad, pad, pad])],
                   scope: scope, shape: [x.shape[0], x.shape[1], o(x.shape[2]), o(x.shape[3])])
    }

    public func globalAveragePool(_ x: Value, scope: String) -> Value {
        one("GlobalAveragePool", [x], scope: scope, shape: Array(x.shape.prefix(2)) + [Int](repeating: 1, count: x.rank - 2))
    }

    /// Flattens to [prod(shape[..<axis]), prod(shape[axis...])].
    public func flatten(_ x: Value, axis: Int = 1, scope: String) -> Value {
        one("Flatten", [x], ["axis": .int(axis)], scope: scope,
            shape: [x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)], dtype: x.dtype)
    }
}

/// Graph outputs chosen by module path ("layer3", "up_blocks.3.attentions.0.transformer_blocks.0.attn1.to_k").
/// Builders offer each module's output as they go; once every requested one has been seen the build stops,
/// so nothing after the last needed layer is built (nor are its weights read).
struct Taps {
    let requested: [String]
    private(set) var found: [String: Value] = [:]
    /// Every name offered, for the error message about an unknown tap.
    private(set) var offered: [String] = []

    struct Complete: Error {}

    init(_ requested: [String]) throws {
        var seen = Set<String>()
        for r in requested where !seen.insert(r).inserted {
            throw PSEdgeError.invalid("output '\(r)' is requested twice")
        }
        self.requested = requested
    }

    var wanted: Set<String> { Set(requested).subtracting(found.keys) }

    /// Records `v` under `name` if requested; throws `Complete` once all requested names are found.
    mutating func offer(_ name: String, _ v: Value) throws {
        offered.append(name)
        if found[name] == nil, requested.contains(name) {
            found[name] = v
            if found.count == requested.count { throw Complete() }
        }
    }

    /// The error for requested names the whole build never offered.
    func unknownError(model: String) -> PSEdgeError {
        let missing = requested.filter { found[$0] == nil }
        var hints: [String] = []
        for m in missing {
            // Suggest the offered names at the same depth sharing the longest prefix with the request.
            let depth = m.split(separator: ".", omittingEmptySubsequences: false).count
            let all = offered.map { o in (o, zip(o, m).prefix { $0 == $1 }.count) }
            let same = all.filter { $0.0.split(separator: ".", omittingEmptySubsequences: false).count == depth }
            let scored = (same.map(\.1).max() ?? -1) == (all.map(\.1).max() ?? 0) ? same : all
            if let best = scored.map(\.1).max(), best > 0 {
                var seen = Set<String>()
                let close = scored.filter { $0.1 == best && seen.insert($0.0).inserted }.prefix(8).map(\.0)
                hints.append("for '\(m)', close names are: \(close.joined(separator: ", "))")
            }
        }
        return PSEdgeError.invalid("\(model) has no module output named \(missing.map { "'\($0)'" }.joined(separator: ", "))"
            + (hints.isEmpty ? "" : " (\(hints.joined(separator: "; ")))"))
    }
}

extension GraphBuilder {
    /// Builds with `body`, which offers module outputs to `taps`; then makes the found values the graph outputs
    /// (named by `outputNames` where given, else by the tap name) and drops whatever they do not need.
    func finish(taps: inout Taps, model: String, outputNames: [String: String] = [:],
                _ body: (inout Taps) throws -> Void) throws -> Graph {
        do {
            try body(&taps)
        } catch is Taps.Complete {}
        guard taps.found.count == taps.requested.count else { throw taps.unknownError(model: model) }
        var names: [String] = []
        for r in taps.requested {
            let name = outputNames[r] ?? r
            try output(taps.found[r]!, as: name)
            names.append(name)
        }
        var g = try graph.pruned(to: names)
        g.valueTypes = g.valueTypes.filter { k, _ in g.nodes.contains { $0.outputs.contains(k) } }
        return g
    }
}
