import ArgumentParser
import Foundation
import PSEdgeIR
import PSEdgePipeline
import PSEdgeGallery

@main
struct PSEdgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "psedge",
        abstract: "Convert person-search models to the compact .psm format and run them on the CPU.",
        version: PSEdgeVersion.string,
        subcommands: [DemoCommand.self, ConvertCommand.self, DetectCommand.self, IndexCommand.self, SearchCommand.self, EvalCommand.self,
                      InspectCommand.self, RunCommand.self, BenchCommand.self, OpsCommand.self]
    )
}

enum PSEdgeVersion {
    static let string = "0.1.0"
}

/// Runs a command body; user-caused errors become one clear line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as PSEdgeError {
        FileHandle.standardError.write(Data("psedge: error: \(e.message)\n".utf8))
        throw ExitCode(1)
    } catch let e as PipelineError {
        FileHandle.standardError.write(Data("psedge: error: \(e.description)\n".utf8))
        throw ExitCode(1)
    } catch let e as GalleryError {
        FileHandle.standardError.write(Data("psedge: error: \(e.description)\n".utf8))
        throw ExitCode(1)
    } catch let e as ExitCode {
        throw e
    } catch {
        // Anything else (a Foundation file error, say) is still the user's problem to fix: one line, status 1.
        FileHandle.standardError.write(Data("psedge: error: \(error.localizedDescription)\n".utf8))
        throw ExitCode(1)
    }
}

/// Parses "1x3x224x224" (or "1,3,224,224").
func parseDims(_ s: String) -> [Int]? {
    let parts = s.split(whereSeparator: { $0 == "x" || $0 == "," }).map { Int($0) }
    guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
    return parts.map { $0! }
}

/// Splits "name=value", naming the option when malformed.
func splitAssignment(_ s: String, option: String) throws -> (String, String) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex, s.index(after: eq) != s.endIndex else {
        throw PSEdgeError.invalid("\(option) expects NAME=VALUE, got '\(s)'")
    }
    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
}
