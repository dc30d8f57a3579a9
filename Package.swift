// swift-tools-version:6.0
import PackageDescription

// Layering (one way): importers → IR → passes → format → runtime → kernels; CLI on top.
let package = Package(
    name: "PSEdge",
    products: [
        .executable(name: "psedge", targets: ["psedge"]),
        .library(name: "PSEdge", targets: ["PSEdgeIR", "PSEdgeFormat", "PSEdgeRuntime", "PSEdgePasses", "PSEdgeONNX", "PSEdgeSafetensors", "PSEdgeModels"]),
        // The readers as fuzz targets; tools/fuzz (a separate package built with -sanitize=fuzzer) links this.
        .library(name: "PSEdgeFuzzTargets", targets: ["PSEdgeFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libprotobuf-c-dev).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CProtobufC", path: "Converters/CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        // Image codecs (Debian: libpng-dev, libjpeg62-turbo-dev); decoded in C (CImageCodecs) so libpng's longjmp and
        // libjpeg's error_exit never cross Swift frames.
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CImageCodecs", dependencies: ["CPNG", "CJPEG"], path: "Sources/CImageCodecs"),

        // Generated ONNX protobuf-c code (see Converters/CONNXProto/README.md to regenerate).
        .target(name: "CONNXProto", dependencies: ["CProtobufC"], path: "Converters/CONNXProto"),

        // C kernels: one file per ISA, runtime CPU dispatch.
        .target(name: "PSEdgeKernels", dependencies: ["COpenBLAS"], path: "Sources/PSEdgeKernels",
                cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),

        .target(name: "PSEdgeIR", path: "Sources/PSEdgeIR"),
        .target(name: "PSEdgeFormat", dependencies: ["PSEdgeIR"], path: "Sources/PSEdgeFormat"),
        .target(name: "PSEdgeRuntime", dependencies: ["PSEdgeIR", "PSEdgeKernels"], path: "Sources/PSEdgeRuntime",
                swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "PSEdgePasses", dependencies: ["PSEdgeIR", "PSEdgeRuntime", "PSEdgeKernels"], path: "Sources/PSEdgePasses"),
        .target(name: "PSEdgeONNX", dependencies: ["PSEdgeIR", "CONNXProto"], path: "Converters/ONNX"),
        .target(name: "PSEdgeSafetensors", dependencies: ["PSEdgeIR"], path: "Converters/Safetensors"),
        // Person-search evaluation (docs/EVALUATION.md) and image files; independent of the runtime.
        .target(name: "PSEdgeEval", dependencies: ["PSEdgeIR"], path: "Sources/PSEdgeEval",
                swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "PSEdgeImage", dependencies: ["PSEdgeIR", "CImageCodecs"], path: "Sources/PSEdgeImage"),

        // Model builders: safetensors + config -> graph of standard ONNX ops (diffusers UNet, torchvision ResNet).
        .target(name: "PSEdgeModels", dependencies: ["PSEdgeIR", "PSEdgeSafetensors"], path: "Models/Builders"),

        // The person-search pipeline: letterbox, backbone, DDIM over boxes and embeddings, DiffPS post-processing.
        .target(name: "PSEdgePipeline", dependencies: [
            "PSEdgeIR", "PSEdgeFormat", "PSEdgeRuntime", "PSEdgePasses", "PSEdgeONNX", "PSEdgeSafetensors", "PSEdgeImage", "PSEdgeModels",
        ], path: "Sources/PSEdgePipeline"),

        // The gallery index (SQLite): images, detections, embeddings.
        .target(name: "PSEdgeGallery", dependencies: ["CSQLite"], path: "Sources/PSEdgeGallery"),

        // Every file reader as a fuzz target (tools/fuzz.sh, docs/FUZZING.md).
        .target(name: "PSEdgeFuzzTargets", dependencies: [
            "PSEdgeIR", "PSEdgeFormat", "PSEdgeRuntime", "PSEdgeONNX", "PSEdgeSafetensors", "PSEdgeImage", "PSEdgeEval", "PSEdgePipeline",
        ], path: "Sources/PSEdgeFuzzTargets"),

        .executableTarget(name: "psedge", dependencies: [
            "PSEdgeIR", "PSEdgeFormat", "PSEdgeRuntime", "PSEdgePasses", "PSEdgeONNX", "PSEdgeSafetensors", "PSEdgeModels",
            "PSEdgeEval", "PSEdgeImage", "PSEdgePipeline", "PSEdgeGallery",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/psedge"),

        .testTarget(name: "PSEdgeTests", dependencies: [
            "PSEdgeIR", "PSEdgeKernels", "PSEdgeFormat", "PSEdgeRuntime", "PSEdgePasses", "PSEdgeONNX", "PSEdgeSafetensors",
            "PSEdgeModels", "PSEdgeEval", "PSEdgeImage", "PSEdgePipeline", "PSEdgeGallery", "PSEdgeFuzzTargets",
        ], path: "Tests/PSEdgeTests"),
    ],
    swiftLanguageModes: [.v5]
)
