/// A pre-pass over the protobuf wire format of a ModelProto that bounds how deeply messages nest.
///
/// protobuf-c unpacks nested messages recursively without a depth limit, so a few kilobytes of
/// crafted input (a TypeProto sequence of a sequence of …, or subgraphs inside subgraphs) could
/// overflow the stack. This walk is iterative; it follows only the fields through which the ONNX
/// schema can recurse and skips everything else (weights included) by length, so it is cheap.
enum ProtoNestingCheck {
    enum Outcome: Equatable {
        case ok
        /// The wire format is broken (truncated varint, length past the end, group or invalid wire type).
        case malformed(offset: Int)
        case tooDeep(limit: Int)
    }

    /// Message kinds on the recursive paths of the schema.
    private enum Kind {
        case model, graph, node, attribute, valueInfo, typeProto, typeContainer
    }

    /// The message kind of a length-delimited field, when it lies on a recursive path.
    private static func child(of kind: Kind, field: UInt64) -> Kind? {
        switch (kind, field) {
        case (.model, 7): return .graph                              // ModelProto.graph
        case (.graph, 1): return .node                               // GraphProto.node
        case (.graph, 11), (.graph, 12), (.graph, 13): return .valueInfo // input, output, value_info
        case (.node, 5): return .attribute                           // NodeProto.attribute
        case (.attribute, 6), (.attribute, 11): return .graph        // g, graphs
        case (.attribute, 14), (.attribute, 15): return .typeProto   // tp, type_protos
        case (.valueInfo, 2): return .typeProto                      // ValueInfoProto.type
        case (.typeProto, 4), (.typeProto, 5), (.typeProto, 9): return .typeContainer // sequence, map, optional
        case (.typeContainer, 1), (.typeContainer, 2): return .typeProto // elem_type / value_type
        default: return nil
        }
    }

    /// Checks a serialized ModelProto. Depth counts the model itself as 1.
    static func checkModel(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) -> Outcome {
        let n = bytes.count
        var pos = 0
        var stack: [(kind: Kind, end: Int)] = [(.model, n)]

        func varint() -> UInt64? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while pos < n, shift < 64 {
                let b = bytes[pos]
                pos += 1
                result |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return result }
                shift += 7
            }
            return nil
        }

        while let top = stack.last {
            if pos == top.end { stack.removeLast(); continue }
            let fieldStart = pos
            guard let tag = varint(), pos <= top.end else { return .malformed(offset: fieldStart) }
            switch tag & 7 {
            case 0:
                guard varint() != nil, pos <= top.end else { return .malformed(offset: fieldStart) }
            case 1:
                guard top.end - pos >= 8 else { return .malformed(offset: fieldStart) }
                pos += 8
            case 5:
                guard top.end - pos >= 4 else { return .malformed(offset: fieldStart) }
                pos += 4
            case 2:
                guard let len = varint(), pos <= top.end, len <= UInt64(top.end - pos) else {
                    return .malformed(offset: fieldStart)
                }
                let end = pos + Int(len)
                if let k = child(of: top.kind, field: tag >> 3) {
                    if stack.count >= maxDepth { return .tooDeep(limit: maxDepth) }
                    stack.append((k, end))
                } else {
                    pos = end
                }
            default:
                // Groups (3, 4) are not used by ONNX and protobuf-c rejects them; 6 and 7 do not exist.
                return .malformed(offset: fieldStart)
            }
        }
        return .ok
    }
}
