import PSEdgeIR

/// Fixed facts of the .psm container (docs/FORMAT.md).
public enum PSMFormat {
    /// "PSEDGE" followed by two NUL bytes.
    public static let magic: [UInt8] = Array("PSEDGE".utf8) + [0, 0]
    /// The version this build writes and the newest it reads.
    public static let version: UInt32 = 1
    /// magic(8) + version(4) + header length(8) + header CRC(4) + data offset(8) + data length(8).
    public static let preambleSize = 40
    /// Alignment of the data section (absolute) and of every tensor in it (relative).
    public static let alignment = 64

    static func align(_ n: Int) -> Int? {
        let (s, o) = n.addingReportingOverflow(alignment - 1)
        return o ? nil : s / alignment * alignment
    }
}
