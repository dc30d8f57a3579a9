import Foundation
import PSEdgeFormat
import PSEdgeIR
import PSEdgePasses
import PSEdgePipeline

/// `psedge convert PACKAGE_DIR -o OUT_DIR [--quantize int8 --calibration IMAGES]`: converts every neural part of a
/// person-search package to .psm (and int8 .psm, calibrated by running the fp32 pipeline on sample images), writes the
/// diffusion schedule as .npy, and replaces OUT_DIR atomically.
extension ConvertCommand {
    static func isPackage(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("pipeline.json"))
    }

    func convertPackage() throws {
        var spec = try PipelineSpec.load(directory: model)
        guard builder == nil, outputs == nil, shapes.isEmpty, fixes.isEmpty, config == nil else {
            throw PSEdgeError.invalid("a model package is converted as a whole: --builder, --outputs, --shape and --fix do not apply")
        }
        if let q = quantize, q != "int8" { throw PSEdgeError.invalid("--quantize \(q): a package is quantized with int8") }
        if quantize != nil && calibration == nil {
            throw PSEdgeError.invalid("--quantize int8 on a package needs --calibration DIR (a folder of sample images)")
        }
        let fm = FileManager.default
        if fm.fileExists(atPath: output) && !Self.isPackage(output) {
            throw PSEdgeError.io("'\(output)' exists and is not a model package; refusing to replace it")
        }
        let tmp = output + ".tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        do {
            try convertPackage(spec: &spec, into: tmp)
            try replaceDirectory(output, with: tmp)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        print("converted \(model) → \(output): precisions \(spec.precisions!.joined(separator: ", "))")
    }

    private func convertPackage(spec: inout PipelineSpec, into dir: String) throws {
        var passReport = PassReport()
        func path(_ f: String) -> String { (dir as NSString).appendingPathComponent(f) }
        func graph(_ files: PipelineSpec.PartFiles, _ part: String) throws -> Graph {
            var g = try files.graph(in: model, part: part, precision: .fp32, source: fromWeights ? .builder : .onnx, weights: spec.weights)
            g.metadata["converter"] = "psedge \(PSEdgeVersion.string)"
            return g
        }
        let backbone = try graph(spec.backbone!.files, "backbone"), head = try graph(spec.head!.files, "head")
        try PSMWriter.write(layoutPasses(backbone, report: &passReport), to: path("backbone.psm"))
        try PSMWriter.write(layoutPasses(head, report: &passReport), to: path("head.psm"))
        let schedule = try PersonSearchModel.loadSchedule(spec: spec, directory: model)
        try NPY.write(Tensor(schedule.alphasCumprod + schedule.sqrtRecipAlphasCumprod + schedule.sqrtRecipm1AlphasCumprod,
                             shape: [3, schedule.timesteps]), to: path("schedule.npy"))
        spec.backbone!.onnx = nil
        spec.backbone!.psm = "backbone.psm"
        spec.head!.onnx = nil
        spec.head!.psm = "head.psm"
        spec.weights = nil
        spec.schedule = "schedule.npy"
        spec.precisions = ["fp32"]
        try spec.write(directory: dir)
        if quantize != nil {
            let (bSamples, hSamples) = try calibrationSamples(packageDir: dir)
            let (qb, rb) = try quantizeGraph(backbone, scheme: "int8", samples: bSamples, report: &passReport)
            let (qh, rh) = try quantizeGraph(head, scheme: "int8", samples: hSamples, report: &passReport)
            try PSMWriter.write(qb, quantization: quantizationTable(rb), to: path("backbone.int8.psm"))
            try PSMWriter.write(qh, quantization: quantizationTable(rh), to: path("head.int8.psm"))
            if report { for line in rb.lines + rh.lines { print(line) } }
            spec.backbone!.psmInt8 = "backbone.int8.psm"
            spec.head!.psmInt8 = "head.int8.psm"
            spec.precisions = ["fp32", "int8"]
            try spec.write(directory: dir)
        }
        if report { for line in passReport.lines { print(line) } }
    }

    /// Backbone inputs of the calibration images, and head inputs of every DDIM step (4 steps) on them.
    private func calibrationSamples(packageDir: String) throws -> ([[String: Tensor]], [[String: Tensor]]) {
        let files = try galleryImages(in: calibration!).prefix(16)
        let m = try PersonSearchModel(directory: packageDir, precision: .fp32, threads: max(1, threads))
        let spec = m.spec.backbone!, head = m.spec.head!
        let n = m.sampler.settings.numProposals, c = m.sampler.settings.embeddingDim
        var bs: [[String: Tensor]] = [], hs: [[String: Tensor]] = []
        for (i, f) in files.enumerated() {
            let image = try readImage((calibration! as NSString).appendingPathComponent(f))
            let (input, _) = m.letterbox.tensor(image)
            bs.append([spec.input: input])
            let features = try m.features(input)
            var noise = SeededNoise(seed: UInt64(i))
            _ = try m.sample(features: features, steps: 4, noise: &noise) { step in
                var s = features
                s[head.boxes] = Tensor(step.boxesIn, shape: [1, n, 4])
                s[head.embeddings] = Tensor(step.embIn, shape: [1, n, c])
                s[head.timestep] = Tensor([Float(step.t)], shape: [1])
                hs.append(s)
            }
        }
        return (bs, hs)
    }

    private func quantizationTable(_ r: QuantizationReport) -> [String: QuantParams] {
        var q: [String: QuantParams] = [:]
        for (name, s) in r.weightScales {
            q[name] = QuantParams(scheme: .perChannel, axis: s.axis, scales: s.scales, zeroPoints: [Int](repeating: 0, count: s.scales.count))
        }
        return q
    }

    private func replaceDirectory(_ target: String, with tmp: String) throws {
        let fm = FileManager.default
        let old = target + ".old-\(getpid())"
        if fm.fileExists(atPath: target) { try fm.moveItem(atPath: target, toPath: old) }
        do { try fm.moveItem(atPath: tmp, toPath: target) } catch {
            if fm.fileExists(atPath: old) { try? fm.moveItem(atPath: old, toPath: target) }
            throw PSEdgeError.io("cannot move the converted package to '\(target)': \(error.localizedDescription)")
        }
        try? fm.removeItem(atPath: old)
    }
}
