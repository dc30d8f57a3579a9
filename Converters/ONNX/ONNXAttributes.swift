import CONNXProto
import PSEdgeIR

/// ONNX AttributeProto.AttributeType codes.
enum ONNXAttributeType: Int {
    case undefined = 0, float = 1, int = 2, string = 3, tensor = 4, graph = 5
    case floats = 6, ints = 7, strings = 8, tensors = 9, graphs = 10
    case sparseTensor = 11, sparseTensors = 12, typeProto = 13, typeProtos = 14
}

extension ONNXImportContext {
    /// Decodes one node attribute. `owner` names the node ("Conv node 'conv1'").
    func attribute(_ ap: UnsafeMutablePointer<Onnx__AttributeProto>, owner: String) throws -> (name: String, value: Attribute) {
        let a = ap.pointee
        let name = string(a.name)
        guard !name.isEmpty else { throw error(.malformed, "\(owner) has an attribute without a name") }
        let what = "\(owner): attribute '\(name)'"
        let ref = string(a.ref_attr_name)
        if !ref.isEmpty {
            throw error(.malformed, "\(what) refers to function attribute '\(ref)', which is only valid inside a function body")
        }

        let code = a.has_type != 0 ? Int(a.type.rawValue) : inferredType(a).rawValue
        guard let kind = ONNXAttributeType(rawValue: code) else {
            throw error(.malformed, "\(what) has unknown attribute type code \(code)")
        }
        switch kind {
        case .float:
            return (name, .float(a.f))
        case .int:
            return (name, .int(Int(a.i)))
        case .string:
            return (name, .string(try text(a.s, what)))
        case .tensor:
            guard let t = a.t else { throw error(.malformed, "\(what) is a tensor attribute without a tensor") }
            return (name, .tensor(try tensor(t, what: what)))
        case .floats:
            return (name, .floats(Array(try array(a.floats, a.n_floats, what))))
        case .ints:
            return (name, .ints(try array(a.ints, a.n_ints, what).map { Int($0) }))
        case .strings:
            let list = try array(a.strings, a.n_strings, what)
            return (name, .strings(try list.map { try text($0, what) }))
        case .graph, .graphs:
            throw error(.unsupported, "\(what) is a graph (the body of an If/Loop/Scan); subgraphs are not supported")
        case .sparseTensor, .sparseTensors:
            throw error(.unsupported, "\(what) is a sparse tensor; sparse tensors are not supported")
        case .tensors:
            throw error(.unsupported, "\(what) is a list of tensors; tensor-list attributes are not supported")
        case .typeProto, .typeProtos:
            throw error(.unsupported, "\(what) is a type; type attributes are not supported")
        case .undefined:
            throw error(.malformed, "\(what) has neither a type nor a value")
        }
    }

    /// Models from before AttributeProto.type existed: the type is whichever value field is set.
    private func inferredType(_ a: Onnx__AttributeProto) -> ONNXAttributeType {
        if a.has_f != 0 { return .float }
        if a.has_i != 0 { return .int }
        if a.has_s != 0 { return .string }
        if a.t != nil { return .tensor }
        if a.g != nil { return .graph }
        if a.sparse_tensor != nil { return .sparseTensor }
        if a.tp != nil { return .typeProto }
        if a.n_floats > 0 { return .floats }
        if a.n_ints > 0 { return .ints }
        if a.n_strings > 0 { return .strings }
        if a.n_tensors > 0 { return .tensors }
        if a.n_graphs > 0 { return .graphs }
        if a.n_sparse_tensors > 0 { return .sparseTensors }
        if a.n_type_protos > 0 { return .typeProtos }
        return .undefined
    }
}
