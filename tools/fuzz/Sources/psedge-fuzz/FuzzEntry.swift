import Foundation
import PSEdgeFuzzTargets

// libFuzzer entry point. PSEDGE_FUZZ_TARGET names the reader (see FuzzTarget); tools/fuzz.sh sets it.
private let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["PSEDGE_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write("psedge-fuzz: set PSEDGE_FUZZ_TARGET to one of: \(names)\n".data(using: .utf8)!)
        exit(2)
    }
    atexit { FuzzTarget.cleanUp() }
    FuzzTarget.applyFuzzingLimits()
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    target.run(bytes)
    return 0
}

// SwiftPM links executables with main renamed to `<module>_main`; hand control to libFuzzer's driver from there.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("psedge_fuzz_main")
public func psedgeFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzOneInput(data, size) })
}
