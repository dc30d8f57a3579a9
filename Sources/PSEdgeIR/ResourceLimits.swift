#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory a model file can make PSEdge allocate before anything runs. Files declare shapes; these bound what
/// those declarations may cost, so a hostile file gets an error instead of an out-of-memory kill.
public enum ResourceLimits {
    /// The activation arena of one plan (default: the machine's physical memory).
    nonisolated(unsafe) public static var maxPlanBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? min(Int(pages) * Int(size), TensorType.maxValueBytes) : TensorType.maxValueBytes
    }()
    /// A constant a kernel materializes from the file's attributes or constant inputs (ConstantOfShape, Range).
    nonisolated(unsafe) public static var maxConstantBytes: Int = 1 << 30

    /// The byte size of `type` (checked as `TensorType.checkedByteCount`) if it is within `maxConstantBytes`.
    public static func checkConstant(_ type: TensorType, what: String) throws -> Int {
        try check(type, what: what, limit: maxConstantBytes, name: "limit for constants")
    }

    /// The byte size of `type` if it is within `maxPlanBytes`.
    public static func checkPlanned(_ type: TensorType, what: String) throws -> Int {
        try check(type, what: what, limit: maxPlanBytes, name: "plan limit")
    }

    private static func check(_ type: TensorType, what: String, limit: Int, name: String) throws -> Int {
        let bytes = try type.checkedByteCount(what: what)
        guard bytes <= limit else {
            throw PSEdgeError.shape("\(what) \(Shapes.describe(type.staticShape ?? [])) needs \(bytes >> 20) MiB, "
                + "more than the \(limit >> 20) MiB \(name)")
        }
        return bytes
    }
}
