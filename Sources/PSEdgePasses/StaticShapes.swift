import PSEdgeIR
import PSEdgeRuntime

/// Fixes the graph to static shapes and folds everything computable at convert time.
///
/// One walk in dependency order builds each node's kernel from its input types (which is shape inference);
/// a node whose inputs are all constants, or whose output never depends on input values (Shape, Constant,
/// ConstantOfShape, Range…), is evaluated right away and becomes an initializer. Exported diffusers and
/// torchvision graphs compute their reshape targets with Shape→Gather→Unsqueeze→Concat chains; those collapse here.
public enum StaticShapes {
    public struct Options: Sendable {
        /// Sizes for symbolic input dimensions, by input name. Unknown dimensions not given here become 1.
        public var inputShapes: [String: [Int]] = [:]
        /// Inputs turned into constants (`--fix NAME=FILE.npy`): a fixed prompt embedding, a fixed timestep,
        /// or a shape argument. Everything depending only on them folds.
        public var fixedInputs: [String: Tensor] = [:]
        public var foldConstants = true
        /// A folded result larger than this stays a node (e.g. an Expand of a constant to a huge shape).
        public var maxFoldedBytes = 64 << 20

        public init() {}
    }

    public static func run(_ graph: Graph, options: Options = Options(), report: inout PassReport) throws -> Graph {
        var g = graph
        // 0. Fixed inputs become initializers.
        for (name, value) in options.fixedInputs.sorted(by: { $0.key < $1.key }) {
            guard let i = g.inputs.firstIndex(where: { $0.name == name }) else {
                throw PSEdgeError.invalid("--fix \(name): the model has no input named '\(name)' (inputs: \(g.inputs.map(\.name).joined(separator: ", ")))")
            }
            if let t = g.inputs[i].type {
                guard t.dtype == value.dtype, t.shape.count == value.shape.count,
                      zip(t.shape, value.shape).allSatisfy({ $0 == nil || $0 == $1 }) else {
                    throw PSEdgeError.invalid("--fix \(name): value \(value.dtype.name)\(Shapes.describe(value.shape)) does not fit the input's type \(t)")
                }
            }
            g.inputs.remove(at: i)
            g.initializers[name] = value
            report.add("fix-inputs", "input '\(name)' fixed to a constant \(value.dtype.name)\(Shapes.describe(value.shape))")
        }
        // 1. Static graph inputs.
        for (i, input) in g.inputs.enumerated() {
            if let given = options.inputShapes[input.name] {
                guard let t = input.type else { throw PSEdgeError.invalid("input '\(input.name)' has no type") }
                guard given.count == t.shape.count, zip(given, t.shape).allSatisfy({ $1 == nil || $0 == $1 }),
                      given.allSatisfy({ $0 >= 0 }) else {
                    throw PSEdgeError.invalid("--shape \(input.name)=\(given.map(String.init).joined(separator: "x")) does not fit the model's input \(t)")
                }
                g.inputs[i].type = TensorType(t.dtype, static: given)
            } else if let t = input.type, t.staticShape == nil {
                let fixed = t.shape.map { $0 ?? 1 }
                let names = input.dimNames.sorted { $0.key < $1.key }.map { "'\($0.value)'" }.joined(separator: ", ")
                report.add("static-shapes", "input '\(input.name)' has symbolic dims \(names.isEmpty ? "" : names + " ")→ assumed \(Shapes.describe(fixed)) (use --shape to choose)")
                g.inputs[i].type = TensorType(t.dtype, static: fixed)
            } else if input.type == nil {
                throw PSEdgeError.invalid("input '\(input.name)' has no type information; give it with --shape")
            }
        }

        // 2. Infer and fold in dependency order.
        let order = try g.topologicallySorted()
        var types: [String: TensorType] = [:]
        for i in g.inputs { types[i.name] = i.type }
        var kept: [Node] = []
        var folded = 0
        for node in order {
            let inTypes: [TensorType?] = node.inputs.map { name in
                name.isEmpty ? nil : (g.initializers[name].map { TensorType($0.dtype, static: $0.shape) } ?? types[name])
            }
            for (j, t) in inTypes.enumerated() where t == nil && !node.inputs[j].isEmpty {
                throw PSEdgeError.malformed("\(node.label): input '\(node.inputs[j])' has no known type")
            }
            let consts: [Tensor?] = node.inputs.map { $0.isEmpty ? nil : g.initializers[$0] }
            let kernel = try OpRegistry.makeKernel(KernelContext(node: node, opset: g.opset, inputTypes: inTypes, constants: consts))
            let outTypes = kernel.outputTypes
            guard outTypes.count >= node.outputs.filter({ !$0.isEmpty }).count else {
                throw PSEdgeError.unsupported("\(node.label): \(node.outputs.count) outputs requested, the kernel produces \(outTypes.count)")
            }
            let allConstant = node.inputs.allSatisfy { $0.isEmpty || g.initializers[$0] != nil }
            let outBytes = outTypes.reduce(0) { $0 + ($1.staticShape?.reduce(1, *) ?? 0) * $1.dtype.byteSize }
            if options.foldConstants && (kernel.isConstant || allConstant) && outBytes <= options.maxFoldedBytes {
                let outs = outTypes.map { Tensor(zeros: $0.dtype, shape: $0.staticShape!) }
                let pool = ThreadPool.serial
                kernel.run(inputs: consts, outputs: outs, pool: pool)
                for (j, o) in node.outputs.enumerated() where !o.isEmpty { g.initializers[o] = outs[j] }
                folded += 1
                continue
            }
            for (j, o) in node.outputs.enumerated() where !o.isEmpty { types[o] = outTypes[j] }
            kept.append(node)
        }
        g.nodes = kept
        g.valueTypes = types.filter { name, _ in !g.inputs.contains { $0.name == name } }
        for (i, o) in g.outputs.enumerated() { g.outputs[i].type = g.type(of: o.name) }
        if folded > 0 { report.add("constant-folding", "folded \(folded) nodes into constants") }
        return try DeadCodeElimination.run(g, report: &report)
    }
}
