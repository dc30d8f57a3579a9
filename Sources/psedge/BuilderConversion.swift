import Foundation
import PSEdgeIR
import PSEdgeModels
import PSEdgePasses

/// `psedge convert WEIGHTS.safetensors --builder unet|resnet [--config CONFIG.json]`: the graph comes from a model
/// builder (Models/Builders) instead of an ONNX file, then goes through the same passes.
///
/// `--outputs` names module outputs (taps, e.g. `up_blocks.3.attentions.0.transformer_blocks.0.attn1.to_k` or
/// `layer3`): the graph ends there. `--shape` sets the input sizes the graph is built for (UNet: `sample`,
/// `encoder_hidden_states`, `timestep`; ResNet: `input`); `--fix` works as for ONNX models.
func convertWithBuilder(_ builder: String, weightsPath: String, configPath: String?, settings: ConversionSettings,
                        report: inout PassReport) throws -> Graph {
    guard try ModelFileKind(path: weightsPath) == .safetensors else {
        throw PSEdgeError.invalid("--builder \(builder) takes the weights as a .safetensors file, got '\(weightsPath)'")
    }
    var graph: Graph
    switch builder {
    case "unet":
        guard let configPath else { throw PSEdgeError.invalid("--builder unet needs --config (the model's diffusers config.json)") }
        let config = try DiffusersUNet2DCondition.Config.load(path: configPath)
        let shapes = try unetInputShapes(settings.inputShapes, config: config)
        graph = try DiffusersUNet2DCondition.build(config: config, weights: try StateDict(path: weightsPath),
                                                   taps: settings.outputs, inputs: shapes)
    case "resnet":
        let weights = try StateDict(path: weightsPath)
        var config = try configPath.map { try TorchvisionResNet.Config.load(path: $0) } ?? TorchvisionResNet.Config.infer(from: weights)
        for (name, dims) in settings.inputShapes {
            guard name == "input", dims.count == 4, dims[1] == 3 else {
                throw PSEdgeError.invalid("--shape \(name)=\(dims.map(String.init).joined(separator: "x")): the ResNet's only input is input=Nx3xHxW")
            }
            (config.batch, config.height, config.width) = (dims[0], dims[2], dims[3])
        }
        graph = try TorchvisionResNet.build(config: config, weights: weights, outputs: settings.outputs)
    case "shufflenet":
        let weights = try StateDict(path: weightsPath)
        var config = try configPath.map { try TorchvisionShuffleNetV2.Config.load(path: $0) } ?? TorchvisionShuffleNetV2.Config.infer(from: weights)
        for (name, dims) in settings.inputShapes {
            guard name == "input", dims.count == 4, dims[1] == 3 else {
                throw PSEdgeError.invalid("--shape \(name)=\(dims.map(String.init).joined(separator: "x")): the ShuffleNet's only input is input=Nx3xHxW")
            }
            (config.batch, config.height, config.width) = (dims[0], dims[2], dims[3])
        }
        graph = try TorchvisionShuffleNetV2.build(config: config, weights: weights, outputs: settings.outputs)
    case let part where PersonSearchHeads.parts.contains(part):
        guard let configPath else { throw PSEdgeError.invalid("--builder \(part) needs --config (the model's config.json)") }
        graph = try PersonSearchHeads.build(part: part, configPath: configPath, weightsPath: weightsPath, inputShapes: settings.inputShapes)
    default:
        throw PSEdgeError.invalid("--builder \(builder): expected unet (diffusers UNet2DConditionModel), resnet (torchvision ResNet) shufflenet (torchvision ShuffleNetV2), or a person-search head: \(PersonSearchHeads.parts.joined(separator: ", "))")
    }
    report.add("build", "\(builder): \(graph.nodes.count) nodes, \(graph.initializers.count) initializers, outputs \(graph.outputs.map(\.name).joined(separator: ","))")
    if let unused = graph.metadata["unused_weights"] {
        report.add("build", "weights the configuration does not use: \(unused)")
    }
    var options = StaticShapes.Options()
    options.fixedInputs = settings.fixedInputs
    options.foldConstants = settings.foldConstants
    graph = try StaticShapes.run(graph, options: options, report: &report)
    graph.metadata["source"] = (weightsPath as NSString).lastPathComponent
    if let configPath { graph.metadata["config"] = (configPath as NSString).lastPathComponent }
    graph.metadata["converter"] = "psedge \(PSEdgeVersion.string)"
    return graph
}

/// --shape for the UNet's inputs: sample=BxCxHxW, encoder_hidden_states=BxSxD, timestep=T.
private func unetInputShapes(_ given: [String: [Int]], config: DiffusersUNet2DCondition.Config) throws -> DiffusersUNet2DCondition.InputShapes {
    var s = DiffusersUNet2DCondition.InputShapes()
    var batch: Int?
    func describe(_ d: [Int]) -> String { d.map(String.init).joined(separator: "x") }
    func setBatch(_ b: Int, _ option: String) throws {
        if let batch, batch != b { throw PSEdgeError.invalid("--shape \(option): batch \(b) differs from the batch \(batch) given for another input") }
        batch = b
    }
    for (name, d) in given.sorted(by: { $0.key < $1.key }) {
        let option = "\(name)=\(describe(d))"
        switch name {
        case "sample":
            guard d.count == 4, d[1] == config.inChannels else {
                throw PSEdgeError.invalid("--shape \(option): sample is Bx\(config.inChannels)xHxW")
            }
            try setBatch(d[0], option)
            (s.height, s.width) = (d[2], d[3])
        case "encoder_hidden_states":
            guard d.count == 3, d[2] == config.crossAttentionDim else {
                throw PSEdgeError.invalid("--shape \(option): encoder_hidden_states is BxSx\(config.crossAttentionDim)")
            }
            try setBatch(d[0], option)
            s.sequenceLength = d[1]
        case "timestep":
            guard d.count == 1 else { throw PSEdgeError.invalid("--shape \(option): timestep is a vector of 1 or B values") }
            s.timesteps = d[0]
        default:
            throw PSEdgeError.invalid("--shape \(option): the UNet has no input '\(name)' (inputs: sample, timestep, encoder_hidden_states)")
        }
    }
    s.batch = batch ?? 1
    return s
}
