// swift-tools-version:6.0
import PackageDescription

// The libFuzzer driver for PSEdge's readers. Built only by tools/fuzz.sh, with
// -sanitize=fuzzer,address (libFuzzer supplies main), so it lives outside the main package.
let package = Package(
    name: "PSEdgeFuzz",
    dependencies: [.package(name: "PSEdge", path: "../..")],
    targets: [
        .executableTarget(name: "psedge-fuzz", dependencies: [.product(name: "PSEdgeFuzzTargets", package: "PSEdge")],
                          path: "Sources/psedge-fuzz", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ],
    swiftLanguageModes: [.v5]
)
