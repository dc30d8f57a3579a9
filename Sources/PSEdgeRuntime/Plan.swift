import PSEdgeIR
import PSEdgeKernels

/// A static execution plan: kernels in order, every activation at a fixed place in one reused arena.
public final class Plan {
    struct Step {
        let node: Node
        let kernel: Kernel
        let inputs: [Tensor?]
        let outputs: [Tensor]
    }

    public let graph: Graph
    public let pool: ThreadPool
    private var steps: [Step] = []
    private var values: [String: Tensor] = [:]
    private let arena: Storage
    public let arenaBytes: Int
    /// Sum of all activation sizes: what a plan without buffer reuse would need.
    public let unplannedBytes: Int

    public var stepCount: Int { steps.count }

    public convenience init(graph: Graph, threads: Int = 1, inPlace: Bool = true) throws {
        try self.init(graph: graph, pool: ThreadPool(threads: threads), inPlace: inPlace)
    }

    /// A plan that runs on a shared pool (several plans of one pipeline, run one after another). `inPlace: false`
    /// gives every output its own buffer (kernels that could overwrite a dying input do not; for tests).
    public init(graph: Graph, pool: ThreadPool, inPlace: Bool = true) throws {
        self.graph = graph
        self.pool = pool
        let order = try graph.topologicallySorted()
        let opset = graph.opset

        // 1. Build kernels; every value's type must be static.
        var types: [String: TensorType] = [:]
        var bytes: [String: Int] = [:]
        for i in graph.inputs {
            guard let t = i.type, t.staticShape != nil else {
                throw PSEdgeError.shape("graph input '\(i.name)' has no static shape (\(i.type.map { "\($0)" } ?? "untyped")); convert with --shape")
            }
            bytes[i.name] = try t.checkedByteCount(what: "graph input '\(i.name)'")
            types[i.name] = t
        }
        var kernels: [Kernel] = []
        for node in order {
            let inTypes: [TensorType?] = node.inputs.map { $0.isEmpty ? nil : (graph.initializers[$0].map { TensorType($0.dtype, static: $0.shape) } ?? types[$0]) }
            let consts: [Tensor?] = node.inputs.map { $0.isEmpty ? nil : graph.initializers[$0] }
            let k = try OpRegistry.makeKernel(KernelContext(node: node, opset: opset, inputTypes: inTypes, constants: consts))
            let outTypes = k.outputTypes
            for (j, o) in node.outputs.enumerated() where !o.isEmpty {
                guard j < outTypes.count, outTypes[j].staticShape != nil else {
                    throw PSEdgeError.shape("\(node.label): output '\(o)' has no static shape")
                }
                types[o] = outTypes[j]
            }
            // Every output, named or not, gets a buffer: each size is checked once, here.
            for (j, t) in outTypes.enumerated() {
                let size = try t.checkedByteCount(what: "\(node.label): output \(j < node.outputs.count ? "'\(node.outputs[j])'" : "\(j)")")
                if j < node.outputs.count, !node.outputs[j].isEmpty { bytes[node.outputs[j]] = size }
            }
            kernels.append(k)
        }

        // 2. Lifetimes. Aliasing outputs share their input's buffer ("root"), which lives as long as any alias.
        var root: [String: String] = [:]
        func rootOf(_ v: String) -> String { var r = v; while let p = root[r] { r = p }; return r }
        var first: [String: Int] = [:]
        var last: [String: Int] = [:]
        for i in graph.inputs { first[i.name] = -1; last[i.name] = -1 }
        for (s, node) in order.enumerated() {
            for inp in node.inputs where !inp.isEmpty && graph.initializers[inp] == nil {
                let r = rootOf(inp)
                last[r] = max(last[r] ?? s, s)
            }
            for (j, o) in node.outputs.enumerated() where !o.isEmpty {
                if let a = kernels[s].aliasesInput, j == 0, a < node.inputs.count,
                   !node.inputs[a].isEmpty, graph.initializers[node.inputs[a]] == nil {
                    root[o] = rootOf(node.inputs[a])
                } else {
                    first[o] = s
                    last[o] = s
                }
            }
        }
        for o in graph.outputs where graph.initializers[o.name] == nil { last[rootOf(o.name)] = order.count }
        // In place: an output written over an input that dies at its node takes over the input's buffer.
        for (s, node) in order.enumerated() where inPlace {
            guard let i = kernels[s].overwritesInput, i < node.inputs.count, let o = node.outputs.first, !o.isEmpty,
                  first[o] == s else { continue }
            let input = node.inputs[i]
            guard !input.isEmpty, graph.initializers[input] == nil else { continue }
            let r = rootOf(input)
            guard let f = first[r], f >= 0, last[r] == s, bytes[r] == bytes[o], types[r]?.dtype == types[o]?.dtype else { continue }
            root[o] = r
            last[r] = last[o]
            first[o] = nil
            last[o] = nil
        }

        // 3. Place root buffers in the arena.
        let roots = first.keys.sorted()
        let requests = roots.map { r in
            MemoryPlanner.Request(bytes: bytes[r] ?? 0, firstStep: first[r]!, lastStep: last[r] ?? first[r]!)
        }
        let (offsets, arenaBytes) = MemoryPlanner.plan(requests)
        if arenaBytes > ResourceLimits.maxPlanBytes {
            throw PSEdgeError.shape("the model's activations need \(arenaBytes >> 20) MiB at once, more than the "
                + "\(ResourceLimits.maxPlanBytes >> 20) MiB limit (this machine's memory; check the input shapes)")
        }
        self.arenaBytes = arenaBytes
        self.unplannedBytes = requests.reduce(0) { $0 + $1.bytes }
        let arena = Storage(byteCount: arenaBytes)
        self.arena = arena
        var rootOffset: [String: Int] = [:]
        for (i, r) in roots.enumerated() { rootOffset[r] = offsets[i] }

        // 4. Fixed tensors for every value; steps bind them once.
        for (name, t) in graph.initializers { values[name] = t }
        for (name, t) in types where values[name] == nil {
            guard let off = rootOffset[rootOf(name)] else { continue }
            values[name] = Tensor(dtype: t.dtype, shape: t.staticShape!, storage: arena, offset: off)
        }
        for (s, node) in order.enumerated() {
            let ins = node.inputs.map { $0.isEmpty ? nil : values[$0] }
            let outs = node.outputs.map { o in o.isEmpty ? Tensor(zeros: .float32, shape: [0]) : values[o]! }
            // Outputs left unnamed still need somewhere to go.
            let fixedOuts = outs.enumerated().map { j, t in
                node.outputs[j].isEmpty && j < kernels[s].outputTypes.count
                    ? Tensor(zeros: kernels[s].outputTypes[j].dtype, shape: kernels[s].outputTypes[j].staticShape ?? [0]) : t
            }
            steps.append(Step(node: node, kernel: kernels[s], inputs: ins, outputs: fixedOuts))
        }
    }

    /// The tensor holding a value: an arena view (valid while the value is live during `run`) or a constant.
    public func value(named name: String) -> Tensor? { values[name] }

    /// Type of each graph output.
    public func outputType(_ name: String) -> TensorType? {
        values[name].map { TensorType($0.dtype, static: $0.shape) }
    }

    /// Runs the graph. Inputs are checked against the graph's input types; outputs are fresh tensors.
    /// `observe` (for calibration and debugging) sees each node's output tensors right after the node ran;
    /// they are views into the arena, valid only during the call.
    public func run(_ inputs: [String: Tensor], observe: ((Node, [Tensor]) -> Void)? = nil) throws -> [String: Tensor] {
        for name in inputs.keys where !graph.inputs.contains(where: { $0.name == name }) {
            throw PSEdgeError.invalid("the model has no input named '\(name)' (inputs: \(graph.inputs.map(\.name).joined(separator: ", ")))")
        }
        for gi in graph.inputs {
            guard let given = inputs[gi.name] else {
                throw PSEdgeError.invalid("missing input '\(gi.name)' (expected \(gi.type.map { "\($0)" } ?? "?"))")
            }
            let dst = values[gi.name]!
            guard given.dtype == dst.dtype else {
                throw PSEdgeError.invalid("input '\(gi.name)' has type \(given.dtype.name), the model expects \(dst.dtype.name)")
            }
            guard given.shape == dst.shape else {
                throw PSEdgeError.invalid("input '\(gi.name)' has shape \(Shapes.describe(given.shape)), the model expects \(Shapes.describe(dst.shape))")
            }
            if dst.byteCount > 0 { dst.raw.copyMemory(from: given.raw, byteCount: dst.byteCount) }
        }
        // One set of threads: the pool's. BLAS calls run single-threaded; the kernels split large products over the
        // pool (pse_sgemm_pool), so OpenBLAS's threads never spin beside ours.
        pse_blas_set_threads(1)
        for step in steps {
            if step.kernel.aliasesInput != nil, step.inputs.first??.raw == step.outputs.first?.raw {
                observe?(step.node, step.outputs)
                continue
            }
            step.kernel.run(inputs: step.inputs, outputs: step.outputs, pool: pool)
            observe?(step.node, step.outputs)
        }
        var result: [String: Tensor] = [:]
        for o in graph.outputs {
            let t = values[o.name]!
            result[o.name] = Tensor(bytes: t.rawBuffer, dtype: t.dtype, shape: t.shape)
        }
        return result
    }
}
