import PSEdgeIR

/// PyTorch modules read from a state dict by module path and emitted as ONNX ops: `nn.Linear`, `nn.LayerNorm`,
/// `nn.Conv2d`, `nn.BatchNorm1d/2d` (inference), scalar parameters. Errors name the missing or misshapen tensor.
/// Used by the person-search head builders, whose modules are plain torch layers.
struct TorchModules {
    let b: GraphBuilder
    let weights: StateDict

    /// nn.Linear `name` with `out` features over the last axis of `x`.
    func linear(_ x: Value, _ name: String, out: Int, bias: Bool = true) throws -> Value {
        let k = x.shape.last ?? 0
        return try b.linear(x, weight: try weights.tensor("\(name).weight", [out, k]),
                            bias: bias ? try weights.tensor("\(name).bias", [out]) : nil, scope: name)
    }

    /// nn.LayerNorm over the last axis (eps 1e-5, torch's default).
    func layerNorm(_ x: Value, _ name: String, eps: Float = 1e-5) throws -> Value {
        let d = x.shape.last ?? 0
        return try b.layerNorm(x, scale: try weights.tensor("\(name).weight", [d]), bias: try weights.tensor("\(name).bias", [d]),
                               epsilon: eps, scope: name)
    }

    /// nn.Conv2d `name` (square kernel `k`, padding `pad` on every side, default k/2).
    func conv(_ x: Value, _ name: String, out: Int, k: Int, stride: Int = 1, pad: Int? = nil, groups: Int = 1,
              bias: Bool = false) throws -> Value {
        let cin = x.rank == 4 ? x.shape[1] : 0
        guard groups > 0, cin % groups == 0 else {
            throw PSEdgeError.shape("\(name): \(groups) groups do not divide the \(cin) input channels of \(x)")
        }
        let w = try weights.tensor("\(name).weight", [out, cin / groups, k, k])
        let p = pad ?? k / 2
        return try b.conv2d(x, weight: w, bias: bias ? try weights.tensor("\(name).bias", [out]) : nil, stride: stride,
                            pads: [p, p, p, p], groups: groups, scope: name)
    }

    /// nn.BatchNorm1d/2d with running statistics over axis 1 (eps 1e-5); `num_batches_tracked` is ignored.
    func batchNorm(_ x: Value, _ name: String, eps: Float = 1e-5) throws -> Value {
        let c = x.rank >= 2 ? x.shape[1] : 0
        weights.ignore("\(name).num_batches_tracked")
        return b.batchNorm(x, scale: try weights.tensor("\(name).weight", [c]), bias: try weights.tensor("\(name).bias", [c]),
                           mean: try weights.tensor("\(name).running_mean", [c]),
                           variance: try weights.tensor("\(name).running_var", [c]), epsilon: eps, scope: name)
    }

    /// A 0-d parameter (a learnt scale such as `frm_level2.gamma_lh`) as a scalar constant.
    func scalar(_ name: String) throws -> Value {
        b.constant(try weights.tensor(name, []), name: name)
    }

    /// A parameter or buffer used as a graph constant, with its expected shape.
    func parameter(_ name: String, _ shape: [Int]) throws -> Value {
        b.constant(try weights.tensor(name, shape), name: name)
    }
}

extension GraphBuilder {
    /// torch.nn.functional.normalize(x, dim: axis): x / max(‖x‖₂, eps) along `axis`.
    func l2Normalize(_ x: Value, axis: Int, eps: Float = 1e-12, scope: String) throws -> Value {
        let norm = reduce("ReduceL2", x, axes: [axis], keepDims: true, scope: scope)
        return try div(x, node("Clip", [norm, scalar(eps, name: "\(scope)/eps")], scope: scope,
                                outputs: [TensorType(.float32, static: norm.shape)])[0], scope: scope)
    }

    /// Mean over `axes`, as torch's `x.mean(dim=axes, keepdim=keep)`.
    func reduceMean(_ x: Value, axes: [Int], keepDims: Bool, scope: String) -> Value {
        reduce("ReduceMean", x, axes: axes, keepDims: keepDims, scope: scope)
    }

    /// ReduceMean / ReduceMax / ReduceL2… over `axes` (opset 18+: the axes are an input).
    func reduce(_ op: String, _ x: Value, axes: [Int], keepDims: Bool, scope: String) -> Value {
        let norm = Set(axes.map { $0 < 0 ? $0 + x.rank : $0 })
        var shape: [Int] = []
        for (i, d) in x.shape.enumerated() {
            if !norm.contains(i) { shape.append(d) } else if keepDims { shape.append(1) }
        }
        return node(op, [x, int64s(norm.sorted())], ["keepdims": .int(keepDims ? 1 : 0)], scope: scope,
                    outputs: [TensorType(x.dtype, static: shape)])[0]
    }

    /// Elements of `x` at `index` along `axis`, that axis removed (a Gather with a scalar index).
    func select(_ x: Value, axis: Int, index: Int, scope: String) -> Value {
        let a = axis < 0 ? axis + x.rank : axis
        let i = constant(Tensor(int64: [Int64(index)], shape: []), name: "const/i64(\(index))")
        var shape = x.shape
        shape.remove(at: a)
        return node("Gather", [x, i], ["axis": .int(a)], scope: scope, outputs: [TensorType(x.dtype, static: shape)])[0]
    }

    /// Scalar float constant (shared per value and name).
    func scalar(_ v: Float, name: String) -> Value {
        constant(floats: [v], shape: [], name: name)
    }
}
