import Foundation
import PSEdgeFuzzTargets
import PSEdgeIR
import XCTest

/// Replays what fuzzing found (docs/FUZZING.md): every committed corpus input through its reader, and every
/// crash or hostile input in Tests/Fixtures/fuzz/regressions, which must be rejected with the expected message.
final class FuzzRegressionTests: XCTestCase {
    static let fuzzRoot = Fixtures.path("fuzz")
    private var savedLimits = (plan: 0, constant: 0)

    // The limits the fuzzers ran with, so an input that made them allocate too much is refused here too.
    override func setUp() {
        savedLimits = (ResourceLimits.maxPlanBytes, ResourceLimits.maxConstantBytes)
        FuzzTarget.applyFuzzingLimits()
    }

    override func tearDown() {
        (ResourceLimits.maxPlanBytes, ResourceLimits.maxConstantBytes) = savedLimits
        FuzzTarget.cleanUp()
    }

    private func files(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    private func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The minimized corpora of the last fuzz runs: each holds valid seeds (accepted) and mutants (rejected),
    /// and none of them may crash.
    func testCommittedCorporaReplayWithoutCrashing() throws {
        for target in FuzzTarget.allCases {
            let inputs = files(in: "\(Self.fuzzRoot)/corpus/\(target.rawValue)")
            XCTAssertGreaterThan(inputs.count, 0, "no committed corpus for \(target.rawValue): run tools/fuzz.sh --save-corpus")
            var accepted = 0, rejected = 0
            for path in inputs {
                switch target.run(try bytes(path)) {
                case .accepted: accepted += 1
                case .rejected(let message):
                    rejected += 1
                    XCTAssertFalse(message.isEmpty, "\(path): rejected without a message")
                }
            }
            XCTAssertGreaterThan(accepted, 0, "\(target.rawValue): no corpus input is accepted; the seeds are gone")
            XCTAssertGreaterThan(rejected, 0, "\(target.rawValue): no corpus input is rejected; the corpus has no mutants")
        }
        FuzzTarget.cleanUp()
    }

    /// Crash inputs and hostile headers: each is refused with a message, never a crash or a huge allocation.
    func testRegressionInputsAreRejectedWithTheirMessage() throws {
        let dir = "\(Self.fuzzRoot)/regressions"
        let expected = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json")))
        XCTAssertGreaterThan(expected.count, 10)
        for target in FuzzTarget.allCases {
            for path in files(in: "\(dir)/\(target.rawValue)") {
                let key = "\(target.rawValue)/\((path as NSString).lastPathComponent)"
                guard let fragment = expected[key] else {
                    XCTFail("\(key) is not listed in regressions/expected.json"); continue
                }
                switch target.run(try bytes(path)) {
                case .accepted:
                    XCTFail("\(key) was accepted; expected an error containing '\(fragment)'")
                case .rejected(let message):
                    XCTAssertTrue(message.contains(fragment), "\(key): message '\(message)' lacks '\(fragment)'")
                }
            }
        }
        FuzzTarget.cleanUp()
    }
}
