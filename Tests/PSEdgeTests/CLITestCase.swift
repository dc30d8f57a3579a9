import Foundation
import XCTest

/// Runs the psedge binary as a user does; subclasses hold the tests.
class CLITestCase: XCTestCase {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    var binary: URL {
        Bundle.main.bundleURL.appendingPathComponent("psedge")
    }

    lazy var tmp: URL = {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("psedge-cli-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }()

    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    func psedge(_ args: String...) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("psedge binary not found at \(binary.path) (swift build first)")
            throw XCTSkip("no binary")
        }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        // A crash shows up as an uncaught signal: never acceptable.
        XCTAssertEqual(p.terminationReason, .exit, "psedge \(args.joined(separator: " ")) crashed: \(String(decoding: e, as: UTF8.self))")
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func err(_ name: String) -> String { Fixtures.path("errors/\(name)") }

    /// Asserts a clean failure: exit 1, one error line on stderr containing every fragment.
    func assertFails(_ r: Result, mentioning fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, "expected exit 1; stderr: \(r.stderr)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(r.stderr.contains(f), "stderr should mention '\(f)': \(r.stderr)", file: file, line: line)
        }
    }
}
