"""Regenerate the ResNet-50 fixture's weights, input and expected output (numpy + onnx + onnxruntime only).

Tests/Fixtures/models/resnet50/model.onnx (from tools/export_resnet50.py) is the
torchvision ResNet-50 graph with every weight stored as external data in
`resnet50.weights`, which is not committed. Every weight is a deterministic
function of (SEED, tensor name, shape, role), the role being read off the node
that consumes the tensor:

    Conv W, Gemm B / MatMul weight   He normal  N(0, gain^2 * 2 / fan_in)
        gain = RESIDUAL_GAIN for a Conv whose output feeds an Add (the last conv
        of each bottleneck and the downsample conv), else 1; this keeps the
        BN-free (BN folded into Conv) network's activations and logits O(1..100)
    Conv / Gemm bias                 N(0, 0.1)
    BatchNormalization scale, var    U(0.5, 1.5)
    BatchNormalization bias, mean    N(0, 0.1)

The per-tensor generator is numpy.random.default_rng([SEED, crc32(name)]).
This script writes

    <out>/model.onnx, <out>/resnet50.weights   (loadable model, external data)
    <out>/inputs/input.npy                     [1,3,224,224] float32 N(0,1), seed SEED
    <out>/outputs/logits.npy                   ONNX Runtime (CPU) output

Run:  tools/.venv/bin/python tools/materialize_resnet50.py \
          --dir Tests/Fixtures/models/resnet50 --out Tests/Fixtures/generated/resnet50
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

SEED = 50
RESIDUAL_GAIN = 0.5
WEIGHTS_FILE = "resnet50.weights"


def weight_role(model: onnx.ModelProto, name: str) -> tuple[str, float]:
    """Return (role, gain) of initializer `name` from the node that consumes it."""
    consumers = {}
    for node in model.graph.node:
        for i, x in enumerate(node.input):
            consumers.setdefault(x, []).append((node, i))
    node, i = consumers[name][0]
    if node.op_type in ("Conv", "Gemm", "MatMul") and i == 1:
        feeds_add = any(n.op_type == "Add" for out in node.output for n, _ in consumers.get(out, []))
        return "weight", RESIDUAL_GAIN if feeds_add else 1.0
    if node.op_type in ("Conv", "Gemm") and i == 2:
        return "bias", 1.0
    if node.op_type == "BatchNormalization":
        return ("bn_scale", "bn_bias", "bn_mean", "bn_var")[i - 1], 1.0
    raise ValueError(f"no fill rule for initializer {name!r} used by {node.op_type} input {i}")


def make_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The deterministic value of every float initializer of `model` (shapes from the graph)."""
    weights = {}
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        shape = tuple(init.dims)
        role, gain = weight_role(model, init.name)
        rng = np.random.default_rng([SEED, zlib.crc32(init.name.encode())])
        if role == "weight":
            # Conv W: [out, in/group, kh, kw]; Gemm B with transB=1: [out, in].
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * gain * np.sqrt(2.0 / fan_in)
        elif role in ("bias", "bn_bias", "bn_mean"):
            value = rng.normal(0.0, 0.1, shape)
        else:  # bn_scale, bn_var
            value = rng.uniform(0.5, 1.5, shape)
        weights[init.name] = value.astype(np.float32)
    return weights


def fill_and_save(model: onnx.ModelProto, out_dir: str) -> onnx.ModelProto:
    """Put make_weights() values in `model` and save it with all weights in WEIGHTS_FILE."""
    weights = make_weights(model)
    for i, init in enumerate(model.graph.initializer):
        if init.name in weights:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(weights[init.name], init.name))
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(os.path.join(out_dir, WEIGHTS_FILE)):
        os.remove(os.path.join(out_dir, WEIGHTS_FILE))  # onnx.save appends to an existing file
    onnx.save(
        model,
        os.path.join(out_dir, "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=0,
    )
    return model


def make_input() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((1, 3, 224, 224)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="folder holding the committed model.onnx")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    model = onnx.load(os.path.join(args.dir, "model.onnx"), load_external_data=False)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    fill_and_save(model, args.out)
    os.makedirs(os.path.join(args.out, "inputs"))
    os.makedirs(os.path.join(args.out, "outputs"))

    x = make_input()
    np.save(os.path.join(args.out, "inputs", "input.npy"), x)
    sess = ort.InferenceSession(os.path.join(args.out, "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = sess.run(["logits"], {"input": x})
    np.save(os.path.join(args.out, "outputs", "logits.npy"), logits)

    print(f"logits {logits.shape}: mean {logits.mean():.3f} std {logits.std():.3f} "
          f"min {logits.min():.3f} max {logits.max():.3f} argmax {int(logits.argmax())}")
    if not np.all(np.isfinite(logits)) or not 0.1 < logits.std() < 1000:
        print("degenerate logits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
