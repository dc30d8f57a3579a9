/// Errors of the person-search pipeline. Each message names the thing at fault (file, box, part, output).
public enum PipelineError: Error, CustomStringConvertible, Equatable {
    /// The model package is incomplete or inconsistent (missing part, output, buffer, bad pipeline.json).
    case invalidModel(String)
    /// An input the user gave is unusable (image, query box, gallery).
    case invalidInput(String)
    /// The gallery database cannot be used.
    case database(String)

    public var description: String {
        switch self {
        case .invalidModel(let m): return "model: \(m)"
        case .invalidInput(let m): return m
        case .database(let m): return "database: \(m)"
        }
    }
}
