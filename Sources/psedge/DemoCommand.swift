import ArgumentParser
import Foundation
import PSEdgeGallery
import PSEdgeImage
import PSEdgeIR
import PSEdgePipeline

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Convert the shipped default model, index its sample gallery and answer its sample query.",
        discussion: "Writes everything under --work: model.psedge (converted package), gallery.sqlite, results/ (annotated PNGs)."
    )

    @Option(help: "The model package to demonstrate (with samples/gallery and samples/query.json).")
    var model: String = "Models/default"

    @Option(help: "Working directory for the converted model, the database and the result images.")
    var work: String = "psedge-demo"

    @Option(help: "DDIM steps.")
    var steps: Int = 2

    @Option(help: "Threads.")
    var threads: Int = 2

    struct SampleQuery: Decodable { var image: String; var box: [Float] }

    func run() throws {
        try reportingErrors {
            let fm = FileManager.default
            func inModel(_ f: String) -> String { (model as NSString).appendingPathComponent(f) }
            func inWork(_ f: String) -> String { (work as NSString).appendingPathComponent(f) }
            let queryFile = inModel("samples/query.json")
            guard fm.fileExists(atPath: queryFile) else { throw PSEdgeError.io("'\(model)' has no samples/query.json (is it the default model?)") }
            let sample = try JSONDecoder().decode(SampleQuery.self, from: Data(contentsOf: URL(fileURLWithPath: queryFile)))
            guard sample.box.count == 4 else { throw PSEdgeError.invalid("'\(queryFile)': box must have 4 numbers") }
            try fm.createDirectory(atPath: work, withIntermediateDirectories: true)

            let package = inWork("model.psedge")
            print("1. convert \(model) → \(package)")
            var convert = try ConvertCommand.parse([model, "-o", package, "--quantize", "int8", "--calibration", inModel("samples/gallery"), "--threads", "\(threads)"])
            try convert.run()

            let db = inWork("gallery.sqlite")
            try? fm.removeItem(atPath: db)
            print("2. index \(inModel("samples/gallery")) → \(db)")
            // Only confident detections go into the demo gallery (the shipped model's scores are low; docs/DEFAULT_MODEL.md).
            var index = try IndexCommand.parse(["--model", package, "--steps", "\(steps)", "--threads", "\(threads)", inModel("samples/gallery"),
                                                "--db", db, "--min-score", "0.2"])
            try index.run()

            let box = sample.box.map { String($0) }.joined(separator: ",")
            print("3. search for the person at [\(box)] in \(sample.image)")
            var search = try SearchCommand.parse(["--model", package, "--steps", "\(steps)", "--threads", "\(threads)", "--db", db,
                                                  "--query", inModel(sample.image), "--box", box, "--top", "5", "--annotate", inWork("results")])
            try search.run()
            print("annotated query and hits: \(inWork("results"))/")
        }
    }
}
