import ArgumentParser
import PSEdgeRuntime

struct OpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ops", abstract: "List the supported ONNX operators and the CPU kernel family.")

    func run() throws {
        print("kernel family: \(CPUInfo.kernelFamily)")
        print(OpRegistry.supportedOps.joined(separator: " "))
    }
}
