import PSEdgeIR

/// A loaded .psm model. Tensors borrow the file mapping (no weight is copied); the mapping lives as
/// long as any tensor or this value does.
public struct PSMModel: Sendable {
    public let graph: Graph
    /// Quantization parameters by initializer name (empty for float models).
    public let quantization: [String: QuantParams]
    public let path: String
    public let fileSize: Int
    public let formatVersion: UInt32
    /// The tensor table as stored (initializers and tensor-valued attributes).
    public let tensorTable: [PSMTensorEntry]
    /// Absolute file offset of the data section.
    public let dataOffset: Int
    private let file: MappedFile

    /// The whole mapped file.
    public var mappedBytes: UnsafeRawBufferPointer { file.bytes }

    /// Recomputes every tensor's CRC-32 and throws on the first mismatch.
    public func verify() throws {
        for e in tensorTable {
            let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[(dataOffset + e.offset)..<(dataOffset + e.offset + e.length)])
            let crc = CRC32.checksum(bytes)
            if crc != e.crc32 {
                throw PSEdgeError.malformed("'\(path)': tensor '\(e.name)' fails its checksum (stored \(e.crc32.hex8), computed \(crc.hex8)); the file is corrupt")
            }
        }
    }

    /// Maps and validates a .psm file. Every structural rule of docs/FORMAT.md is checked; with
    /// `verifyTensorChecksums` the tensor bytes are checksummed too (that reads all weights once).
    public static func load(path: String, verifyTensorChecksums: Bool = false) throws -> PSMModel {
        let file = try MappedFile(path: path)
        let model = try PSMModel(file: file)
        if verifyTensorChecksums { try model.verify() }
        return model
    }

    private init(file: MappedFile) throws {
        let path = file.path
        let bytes = file.bytes
        let size = file.size
        func bad(_ why: String) -> PSEdgeError { .malformed("'\(path)' \(why)") }

        // Preamble.
        let magic = PSMFormat.magic
        let n = min(size, magic.count)
        guard bytes.prefix(n).elementsEqual(magic.prefix(n)) else { throw bad("is not a PSEdge model (bad magic)") }
        guard size >= PSMFormat.preambleSize else {
            throw bad(size == 0 ? "is empty" : "is truncated: \(size) bytes, shorter than the \(PSMFormat.preambleSize)-byte preamble")
        }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        let version = u32(8)
        if version == 0 { throw bad("has invalid format version 0") }
        if version > PSMFormat.version {
            throw bad("was made by a newer PSEdge (format version \(version); this build reads up to version \(PSMFormat.version))")
        }
        let storedHeaderCRC = u32(20)
        guard let headerLength = Int(exactly: u64(12)),
              let dataOffset = Int(exactly: u64(24)),
              let dataLength = Int(exactly: u64(32))
        else { throw bad("has a corrupt preamble (a length or offset exceeds 2^63)") }
        let (headerEnd, o1) = PSMFormat.preambleSize.addingReportingOverflow(headerLength)
        let (dataEnd, o2) = dataOffset.addingReportingOverflow(dataLength)
        if o1 || o2 { throw bad("has a corrupt preamble (header length \(headerLength), data \(dataOffset)+\(dataLength) overflow)") }
        let needed = max(headerEnd, dataEnd)
        if needed > size { throw bad("is truncated: \(size) bytes, but its preamble describes \(needed)") }
        if dataOffset % PSMFormat.alignment != 0 { throw bad("has a data section at offset \(dataOffset), which is not a multiple of \(PSMFormat.alignment)") }
        if dataOffset < headerEnd { throw bad("has a data section (offset \(dataOffset)) that overlaps the header (which ends at \(headerEnd))") }
        if dataEnd < size { throw bad("has \(size - dataEnd) unexpected bytes after the data section") }

        // Header.
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[PSMFormat.preambleSize..<headerEnd])
        let crc = CRC32.checksum(headerBytes)
        if crc != storedHeaderCRC {
            throw bad("has a corrupt header (checksum stored \(storedHeaderCRC.hex8), computed \(crc.hex8))")
        }
        if !bytes[headerEnd..<dataOffset].allSatisfy({ $0 == 0 }) { throw bad("has non-zero padding between header and data") }
        let json: JSON
        do { json = try JSON.parse(headerBytes) } catch let e as PSEdgeError { throw bad("header is not valid JSON (\(e.message))") }
        let header = try PSMHeader(json: JSONField(json, context: "'\(path)' header"))
        if let why = PSMValidation.problem(in: header, dataLength: dataLength) { throw bad("is invalid: \(why)") }

        // Data section: bytes outside every tensor must be zero (so any flipped byte is detectable).
        var cursor = 0
        for e in header.tensors.filter({ $0.length > 0 }).sorted(by: { $0.offset < $1.offset }) {
            if !bytes[(dataOffset + cursor)..<(dataOffset + e.offset)].allSatisfy({ $0 == 0 }) {
                throw bad("has non-zero padding in the data section before tensor '\(e.name)'")
            }
            cursor = e.offset + e.length
        }
        if !bytes[(dataOffset + cursor)..<dataEnd].allSatisfy({ $0 == 0 }) { throw bad("has non-zero bytes at the end of the data section") }

        // Tensors borrow the mapping.
        var table: [String: Tensor] = [:]
        var initializers: [String: Tensor] = [:]
        var quantization: [String: QuantParams] = [:]
        for e in header.tensors {
            let storage = try file.storage(offset: dataOffset + e.offset, count: e.length, what: "tensor '\(e.name)'")
            let t = Tensor(dtype: e.dtype, shape: e.shape, storage: storage)
            table[e.name] = t
            if e.role == .initializer {
                initializers[e.name] = t
                if let q = e.quantization { quantization[e.name] = q }
            }
        }
        var nodes: [Node] = []
        nodes.reserveCapacity(header.nodes.count)
        for r in header.nodes {
            var attrs: [String: Attribute] = [:]
            for (k, a) in r.attributes {
                switch a {
                case .value(let v): attrs[k] = v
                case .tensorRef(let ref):
                    guard let t = table[ref] else { throw bad("is invalid: attribute '\(k)' refers to missing tensor '\(ref)'") }
                    attrs[k] = .tensor(t)
                }
            }
            nodes.append(Node(name: r.name, opType: r.opType, domain: r.domain, inputs: r.inputs, outputs: r.outputs,
                              attributes: attrs))
        }

        self.graph = Graph(name: header.name, nodes: nodes, inputs: header.inputs, outputs: header.outputs,
                           initializers: initializers, valueTypes: header.valueTypes, opsets: header.opsets,
                           metadata: header.metadata)
        self.quantization = quantization
        self.path = path
        self.fileSize = size
        self.formatVersion = version
        self.tensorTable = header.tensors
        self.dataOffset = dataOffset
        self.file = file
    }
}
