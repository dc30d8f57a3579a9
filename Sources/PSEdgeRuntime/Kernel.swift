import PSEdgeIR

/// What a kernel knows at plan time: its node, the opset, the static types of its inputs, and the inputs
/// whose values are already known (initializers and folded constants).
public struct KernelContext {
    public let node: Node
    public let opset: Int
    /// nil for an omitted optional input.
    public let inputTypes: [TensorType?]
    /// Value of each input when known at plan time.
    public let constants: [Tensor?]

    public init(node: Node, opset: Int, inputTypes: [TensorType?], constants: [Tensor?]) {
        self.node = node
        self.opset = opset
        self.inputTypes = inputTypes
        self.constants = constants
    }

    public var attrs: Attributes { node.attrs }
    public var label: String { node.label }

    public func has(_ i: Int) -> Bool { i < inputTypes.count && inputTypes[i] != nil }

    /// Static shape of input i, or an error naming the node.
    public func shape(_ i: Int) throws -> [Int] {
        guard i < inputTypes.count, let t = inputTypes[i] else {
            throw PSEdgeError.malformed("\(label): required input \(i) is missing")
        }
        guard let s = t.staticShape else {
            throw PSEdgeError.shape("\(label): input '\(node.inputs[i])' has an unknown shape \(t); give static input shapes")
        }
        return s
    }

    public func dtype(_ i: Int) throws -> DType {
        guard i < inputTypes.count, let t = inputTypes[i] else {
            throw PSEdgeError.malformed("\(label): required input \(i) is missing")
        }
        return t.dtype
    }

    /// The value of input i, which must be known at plan time (e.g. a Reshape's shape).
    public func constant(_ i: Int, _ what: String) throws -> Tensor {
        guard i < constants.count, let c = constants[i] else {
            throw PSEdgeError.unsupported("\(label): input '\(what)' must be a constant (known at convert time) but is computed at run time")
        }
        return c
    }

    public func optionalConstant(_ i: Int) -> Tensor? { i < constants.count ? constants[i] : nil }

    public func requireInputs(_ range: ClosedRange<Int>) throws {
        let n = node.inputs.count
        guard range.contains(n) else {
            throw PSEdgeError.malformed("\(label): expects \(range.lowerBound)...\(range.upperBound) inputs, has \(n)")
        }
    }

    public func requireDType(_ i: Int, in allowed: [DType]) throws {
        let t = try dtype(i)
        guard allowed.contains(t) else {
            throw PSEdgeError.unsupported("\(label): input '\(node.inputs[i])' has type \(t.name); supported: \(allowed.map(\.name).joined(separator: ", "))")
        }
    }
}

/// A planned operator: built once per node with static shapes (XNNPACK's create/setup), run many times.
public protocol Kernel {
    /// Static output types, decided at plan time.
    var outputTypes: [TensorType] { get }
    /// Computes outputs into preallocated, contiguous tensors. Inputs are nil where omitted.
    func run(inputs: [Tensor?], outputs: [Tensor], pool: ThreadPool)
    /// When the output is input i's bytes viewed with another shape (Reshape & co.), the planner aliases them.
    var aliasesInput: Int? { get }
    /// When the output may be written over input i (same size; every output element is computed from the input
    /// element at the same position, read first): the planner reuses that buffer if the input dies at this node.
    var overwritesInput: Int? { get }
    /// True when the outputs are known at plan time whatever the inputs hold (Shape, Constant, …).
    var isConstant: Bool { get }
}

extension Kernel {
    public var aliasesInput: Int? { nil }
    public var overwritesInput: Int? { nil }
    public var isConstant: Bool { false }
}

public typealias KernelFactory = (KernelContext) throws -> Kernel
