import CONNXProto
import PSEdgeIR

/// Turns an unpacked ModelProto into a PSEdge `Graph`.
extension ONNXImportContext {
    func graph(from mp: UnsafeMutablePointer<Onnx__ModelProto>, opsetRange: ClosedRange<Int>) throws -> Graph {
        let model = mp.pointee
        guard let gp = model.graph else {
            throw notValid("ONNX model", "it has no graph")
        }
        guard model.has_ir_version != 0, model.ir_version > 0 else {
            throw notValid("ONNX model", "it has no ir_version")
        }
        let g = gp.pointee
        var graph = Graph(name: string(g.name))

        graph.opsets = try opsets(model, opsetRange: opsetRange)

        // Initializers first: graph inputs that name one are constants, not inputs.
        for (i, tp) in try messages(g.initializer, g.n_initializer, "graph initializers").enumerated() {
            let name = string(tp.pointee.name)
            guard !name.isEmpty else { throw error(.malformed, "initializer #\(i) has no name") }
            if graph.initializers[name] != nil {
                throw error(.malformed, "initializer '\(name)' appears more than once")
            }
            graph.initializers[name] = try tensor(tp, what: "initializer '\(name)'")
        }
        if g.n_sparse_initializer > 0 {
            throw error(.unsupported, "the graph has \(g.n_sparse_initializer) sparse initializer(s); sparse tensors are not supported")
        }

        // Before IR version 4 every initializer had to be listed among the inputs too; either way an
        // input with an initializer of the same name is a constant.
        var inputNames = Set<String>()
        for vp in try messages(g.input, g.n_input, "graph inputs") {
            let info = try valueInfo(vp, role: "graph input")
            if graph.initializers[info.name] != nil { continue }
            guard inputNames.insert(info.name).inserted else {
                throw error(.malformed, "graph input '\(info.name)' is listed more than once")
            }
            graph.inputs.append(info)
        }
        for vp in try messages(g.output, g.n_output, "graph outputs") {
            graph.outputs.append(try valueInfo(vp, role: "graph output"))
        }
        for vp in try messages(g.value_info, g.n_value_info, "graph value_info") {
            let name = string(vp.pointee.name)
            // Only fully static, supported types are kept; anything else is left to shape inference.
            guard !name.isEmpty, let (type, _) = try? tensorType(vp.pointee.type, what: "value '\(name)'"),
                  let type, type.staticShape != nil else { continue }
            graph.valueTypes[name] = type
        }

        for (i, np) in try messages(g.node, g.n_node, "graph nodes").enumerated() {
            graph.nodes.append(try node(np, index: i))
        }
        if graph.opsets[""] == nil, let n = graph.nodes.first(where: { $0.domain.isEmpty }) {
            throw error(.unsupported, "the model imports no ai.onnx operator set but uses ai.onnx operators "
                + "(\(n.label)); models this old are not supported")
        }

        graph.metadata = try metadata(model)
        return graph
    }

    /// opset_import by domain ("" for ai.onnx), checking the default domain's version.
    private func opsets(_ model: Onnx__ModelProto, opsetRange: ClosedRange<Int>) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for op in try messages(model.opset_import, model.n_opset_import, "opset_import") {
            let domain = normalizedONNXDomain(string(op.pointee.domain))
            let shown = domain.isEmpty ? "ai.onnx" : domain
            guard op.pointee.has_version != 0 else {
                throw error(.malformed, "opset_import for domain '\(shown)' has no version")
            }
            let version = Int(op.pointee.version)
            if let previous = result[domain], previous != version {
                throw error(.malformed, "opset_import lists domain '\(shown)' twice, with versions \(previous) and \(version)")
            }
            result[domain] = version
        }
        if let v = result[""], !opsetRange.contains(v) {
            throw error(.unsupported, "the model uses ai.onnx opset \(v); PSEdge supports opsets "
                + "\(opsetRange.lowerBound) to \(opsetRange.upperBound) (re-export or convert the model with "
                + "onnx.version_converter)")
        }
        return result
    }

    private func node(_ np: UnsafeMutablePointer<Onnx__NodeProto>, index: Int) throws -> Node {
        let p = np.pointee
        let name = string(p.name)
        let opType = string(p.op_type)
        let shown = name.isEmpty ? "node #\(index)" : "node '\(name)'"
        guard !opType.isEmpty else { throw error(.malformed, "\(shown) has no op_type") }
        var node = Node(name: name, opType: opType, domain: normalizedONNXDomain(string(p.domain)),
                        inputs: try strings(p.input, p.n_input, "\(shown): inputs"),
                        outputs: try strings(p.output, p.n_output, "\(shown): outputs"))
        let owner = name.isEmpty ? "\(node.label) (node #\(index))" : node.label
        for ap in try messages(p.attribute, p.n_attribute, "\(owner): attributes") {
            let (key, value) = try attribute(ap, owner: owner)
            guard node.attributes[key] == nil else {
                throw error(.malformed, "\(owner) has attribute '\(key)' more than once")
            }
            node.attributes[key] = value
        }
        return node
    }

    /// A graph input or output. Non-tensor types and unsupported element types are errors here,
    /// because the runtime would have to feed or return such values.
    private func valueInfo(_ vp: UnsafeMutablePointer<Onnx__ValueInfoProto>, role: String) throws -> ValueInfo {
        let name = string(vp.pointee.name)
        guard !name.isEmpty else { throw error(.malformed, "a \(role) has no name") }
        let (type, dimNames) = try tensorType(vp.pointee.type, what: "\(role) '\(name)'")
        return ValueInfo(name: name, type: type, dimNames: dimNames)
    }

    /// The tensor type a TypeProto describes: nil when it gives no element type or no shape (unknown rank).
    /// Dimensions without a value are nil; their dim_param names are returned by axis.
    func tensorType(_ tpp: UnsafeMutablePointer<Onnx__TypeProto>?, what: String) throws -> (TensorType?, [Int: String]) {
        guard let tp = tpp?.pointee else { return (nil, [:]) }
        let valueCase = tp.value_case.rawValue
        if valueCase == ONNX__TYPE_PROTO__VALUE__NOT_SET.rawValue { return (nil, [:]) }
        guard valueCase == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE.rawValue, let tt = tp.tensor_type?.pointee else {
            let kind: String
            switch valueCase {
            case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE.rawValue: kind = "a sequence"
            case ONNX__TYPE_PROTO__VALUE_MAP_TYPE.rawValue: kind = "a map"
            case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE.rawValue: kind = "an optional"
            case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE.rawValue: kind = "a sparse tensor"
            default: kind = "an unknown kind of value"
            }
            throw error(.unsupported, "\(what) is \(kind); only dense tensors are supported")
        }
        let code = tt.has_elem_type != 0 ? tt.elem_type : 0
        if code == 0 { return (nil, [:]) }
        guard let source = ONNXDataType(rawValue: code), let dtype = source.psedgeType else {
            throw error(.unsupported, "\(what) has element type \(ONNXDataType.describe(code: code)), which PSEdge does not support")
        }
        if source.isConverted { conversions.append("\(what): \(source.name)→\(dtype.name)") }
        guard let shapeProto = tt.shape?.pointee else { return (nil, [:]) }
        var shape: [Int?] = []
        var names: [Int: String] = [:]
        for (axis, dp) in try messages(shapeProto.dim, shapeProto.n_dim, "\(what): shape").enumerated() {
            let d = dp.pointee
            switch d.value_case.rawValue {
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE.rawValue where d.dim_value >= 0:
                shape.append(Int(d.dim_value))
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM.rawValue:
                shape.append(nil)
                let param = string(d.dim_param)
                if !param.isEmpty { names[axis] = param }
            default:
                shape.append(nil)   // no value, or a negative one some exporters write for "dynamic"
            }
        }
        return (TensorType(dtype, shape), names)
    }

    private func metadata(_ model: Onnx__ModelProto) throws -> [String: String] {
        var m: [String: String] = [
            "format": "onnx",
            "source": source,
            "ir_version": String(model.ir_version),
            "producer_name": string(model.producer_name),
            "producer_version": string(model.producer_version),
        ]
        if model.has_model_version != 0 { m["model_version"] = String(model.model_version) }
        let domain = string(model.domain)
        if !domain.isEmpty { m["model_domain"] = domain }
        for (key, value) in try entries(model.metadata_props, model.n_metadata_props, "metadata_props") where !key.isEmpty {
            m["onnx.metadata." + key] = value
        }
        if !conversions.isEmpty {
            let shown = conversions.prefix(20).joined(separator: "; ")
            m["onnx.dtype_conversions"] = conversions.count > 20 ? shown + "; … (\(conversions.count) in all)" : shown
        }
        return m
    }
}
