import PSEdgeIR

public enum PSMWriter {
    /// Serializes `graph` (and optional quantization parameters for some initializers, by name) to a
    /// .psm file at `path`, atomically. Tensor bytes are streamed from their storage, never copied
    /// into one big buffer. Throws without touching `path` if the graph is not storable.
    public static func write(_ graph: Graph, quantization: [String: QuantParams] = [:], to path: String) throws {
        func invalid(_ why: String) -> PSEdgeError { .invalid("cannot write '\(path)': \(why)") }

        for name in quantization.keys where graph.initializers[name] == nil {
            throw invalid("quantization parameters are given for '\(name)', which is not an initializer")
        }

        // Lay out the tensor table: initializers by name, then tensor attributes in node order.
        var entries: [PSMTensorEntry] = []
        var payload: [Tensor] = []
        var used = Set(graph.initializers.keys)
        var end = 0
        func add(_ name: String, _ role: PSMTensorEntry.Role, _ t: Tensor, _ q: QuantParams?) throws {
            guard let length = PSMValidation.byteLength(dtype: t.dtype, shape: t.shape) else {
                throw invalid("tensor '\(name)' has an invalid shape \(Shapes.describe(t.shape))")
            }
            guard t.offset >= 0, t.offset <= t.storage.byteCount, length <= t.storage.byteCount - t.offset else {
                throw invalid("tensor '\(name)' (\(length) bytes at offset \(t.offset)) does not fit its storage (\(t.storage.byteCount) bytes)")
            }
            guard let offset = PSMFormat.align(end) else { throw invalid("the data section is too large") }
            let bytes = UnsafeRawBufferPointer(start: length == 0 ? nil : t.raw, count: length)
            entries.append(PSMTensorEntry(name: name, role: role, dtype: t.dtype, shape: t.shape, offset: offset,
                                          length: length, crc32: CRC32.checksum(bytes), quantization: q))
            payload.append(t)
            let (e, o) = offset.addingReportingOverflow(length)
            if o { throw invalid("the data section is too large") }
            end = e
        }
        for (name, t) in byteOrdered(graph.initializers) { try add(name, .initializer, t, quantization[name]) }

        var nodes: [PSMNodeRecord] = []
        nodes.reserveCapacity(graph.nodes.count)
        for (i, n) in graph.nodes.enumerated() {
            var attrs: [(String, PSMNodeRecord.Attr)] = []
            for (key, a) in byteOrdered(n.attributes) {
                if case .tensor(let t) = a {
                    let stem = (n.name.isEmpty ? "node\(i)" : n.name) + "/" + key
                    var name = stem
                    var k = 1
                    while used.contains(name) { k += 1; name = "\(stem)#\(k)" }
                    used.insert(name)
                    try add(name, .attribute, t, nil)
                    attrs.append((key, .tensorRef(name)))
                } else {
                    attrs.append((key, .value(a)))
                }
            }
            nodes.append(PSMNodeRecord(name: n.name, opType: n.opType, domain: n.domain, inputs: n.inputs,
                                       outputs: n.outputs, attributes: attrs))
        }

        let header = PSMHeader(name: graph.name, opsets: graph.opsets, metadata: graph.metadata, inputs: graph.inputs,
                               outputs: graph.outputs, valueTypes: graph.valueTypes, nodes: nodes, tensors: entries)
        if let why = PSMValidation.problem(in: header, dataLength: end) { throw invalid(why) }

        let headerBytes = header.json.serialized
        let headerEnd = PSMFormat.preambleSize + headerBytes.count
        guard let dataOffset = PSMFormat.align(headerEnd) else { throw invalid("the header is too large") }
        let dataLength = end

        var preamble = PSMFormat.magic
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { preamble.append(contentsOf: $0) } }
        le(PSMFormat.version)
        le(UInt64(headerBytes.count))
        le(CRC32.checksum(headerBytes))
        le(UInt64(dataOffset))
        le(UInt64(dataLength))
        assert(preamble.count == PSMFormat.preambleSize)

        try AtomicFile.write(to: path) { out in
            try out.write(preamble)
            try out.write(headerBytes)
            try out.writeZeros(dataOffset - headerEnd)
            for (e, t) in zip(entries, payload) {
                try out.writeZeros(dataOffset + e.offset - out.bytesWritten)
                if e.length > 0 { try out.write(UnsafeRawBufferPointer(start: t.raw, count: e.length)) }
            }
            precondition(out.bytesWritten == dataOffset + dataLength)
        }
    }
}
