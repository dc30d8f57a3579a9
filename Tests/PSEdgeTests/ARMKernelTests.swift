import Foundation
import XCTest

/// The ARM kernels (int8 GEMM: NEON, dotprod, i8mm; depthwise convolution and attention: NEON) cannot run natively here: tools/arm/check.sh cross-compiles them
/// (gcc-aarch64-linux-gnu) and runs them under qemu-aarch64 against the scalar reference, bit for bit.
final class ARMKernelTests: XCTestCase {
    func testARMKernelsEqualScalarReferenceUnderQEMU() throws {
        for tool in ["aarch64-linux-gnu-gcc", "qemu-aarch64"] {
            let found = ["/usr/bin", "/usr/local/bin"].contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
            XCTAssertTrue(found, "\(tool) is missing (tools/install_deps.sh installs gcc-aarch64-linux-gnu and qemu-user)")
            if !found { return }
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Fixtures.repo.appendingPathComponent("tools/arm/check.sh").path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        print(text)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("1800 kernel runs (neon, dotprod, i8mm) compared with the scalar reference: 0 mismatches"), text)
        XCTAssertTrue(text.contains("600 kernel runs (neon) compared with the scalar reference: 0 mismatches"), text)
        XCTAssertTrue(text.contains("400 depthwise runs (neon) compared with the scalar reference: 0 mismatches"), text)
        XCTAssertTrue(text.contains("300 attention runs (neon) compared with the scalar reference: 0 mismatches"), text)
    }
}
