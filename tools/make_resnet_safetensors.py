"""Torchvision-named ResNet state dicts and their ONNX Runtime references (numpy + onnx + onnxruntime + safetensors).

For each model (ResNet-50 with 1000 classes, ResNet-18 with 10 classes) this writes

    <out>/<model>/weights.safetensors   torchvision state-dict names (conv1.weight, bn1.*,
                                         layer{1-4}.{i}.{conv1,bn1,...,downsample.{0,1}}.*, fc.*),
                                         float32, plus int64 num_batches_tracked as torchvision has
    <out>/<model>/config.json           {"depth": D, "num_classes": K} for the Swift builder
    <out>/<model>/inputs/input.npy      [1,3,224,224] float32 N(0,1)
    <out>/<model>/outputs/logits.npy    ONNX Runtime (CPU) logits of the same network written here
                                         with onnx.helper, op by op from the torchvision architecture
                                         (Conv -> BatchNormalization -> Relu, MaxPool, residual Add,
                                         GlobalAveragePool, Flatten, Gemm): an implementation
                                         independent of the Swift builder (the graph is not kept)
    <out>/<model>/outputs/layer3.npy    ONNX Runtime value of layer3 (a backbone feature map)

Weights are a deterministic function of (SEED, tensor name): numpy.random.default_rng([SEED,
crc32(name)]) with standard_normal / random in float32 (streams numpy keeps stable):

    conv weights       He normal N(0, 2 / fan_in)
    bn weight          U(0.5, 1.5); U(0.1, 0.3) for the last BN of each block (keeps the
                       residual stream O(1) over 16 blocks, like zero_init_residual in spirit)
    bn bias, mean      N(0, 0.1)
    bn running_var     U(0.5, 1.5)
    fc weight, bias    N(0, 1 / fan_in), N(0, 0.01)

With --torchvision-logits DIR (developer check, needs torch + torchvision): loads each state dict
into torchvision.models.resnet{18,50} (strict), compares its logits with ONNX Runtime's on the
Python graph, and writes DIR/<model>_tv_logits.npy, which is committed so the Swift builder is
also anchored to torchvision itself.

Run:  tools/.venv/bin/python tools/make_resnet_safetensors.py --out Tests/Fixtures/generated/resnet_tv
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

SEED = 2024
MODELS = {"resnet50": (50, 1000), "resnet18": (18, 10)}
LAYOUTS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3]),
           101: ("bottleneck", [3, 4, 23, 3]), 152: ("bottleneck", [3, 8, 36, 3])}
BN_EPS = 1e-5


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


class Net:
    """Collects the state dict and the ONNX nodes while walking the torchvision architecture."""

    def __init__(self) -> None:
        self.state: dict[str, np.ndarray] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.counter = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}__{self.counter}"

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, stride: int) -> str:
        shape = (cout, cin, k, k)
        w = rng_for(name + ".weight").standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / (cin * k * k)))
        self.state[name + ".weight"] = w.astype(np.float32)
        y = self.fresh(name)
        self.nodes.append(helper.make_node("Conv", [x, name + ".weight"], [y], name=name, kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[k // 2] * 4))
        return y

    def bn(self, x: str, name: str, c: int, last_in_block: bool = False) -> str:
        u = rng_for(name + ".weight").random(c, dtype=np.float32)
        self.state[name + ".weight"] = (0.1 + 0.2 * u) if last_in_block else (0.5 + u)
        self.state[name + ".bias"] = rng_for(name + ".bias").standard_normal(c, dtype=np.float32) * np.float32(0.1)
        self.state[name + ".running_mean"] = rng_for(name + ".running_mean").standard_normal(c, dtype=np.float32) * np.float32(0.1)
        self.state[name + ".running_var"] = np.float32(0.5) + rng_for(name + ".running_var").random(c, dtype=np.float32)
        self.state[name + ".num_batches_tracked"] = np.array(0, dtype=np.int64)
        y = self.fresh(name)
        self.nodes.append(helper.make_node(
            "BatchNormalization",
            [x] + [name + s for s in (".weight", ".bias", ".running_mean", ".running_var")], [y], name=name, epsilon=BN_EPS))
        return y

    def op(self, op: str, inputs: list[str], hint: str, **attrs) -> str:
        y = self.fresh(hint)
        self.nodes.append(helper.make_node(op, inputs, [y], name=y, **attrs))
        return y


def build(depth: int, num_classes: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    kind, blocks = LAYOUTS[depth]
    expansion = 4 if kind == "bottleneck" else 1
    net = Net()
    x = net.conv("input", "conv1", 3, 64, 7, 2)
    x = net.op("Relu", [net.bn(x, "bn1", 64)], "relu")
    x = net.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    inplanes = 64
    layer3 = None
    for stage, count in enumerate(blocks):
        planes = 64 * 2 ** stage
        for i in range(count):
            p = f"layer{stage + 1}.{i}"
            stride = 2 if (i == 0 and stage > 0) else 1
            if kind == "bottleneck":
                width = planes  # width_per_group 64, groups 1
                y = net.op("Relu", [net.bn(net.conv(x, p + ".conv1", inplanes, width, 1, 1), p + ".bn1", width)], p + ".relu")
                y = net.op("Relu", [net.bn(net.conv(y, p + ".conv2", width, width, 3, stride), p + ".bn2", width)], p + ".relu")
                y = net.bn(net.conv(y, p + ".conv3", width, planes * 4, 1, 1), p + ".bn3", planes * 4, last_in_block=True)
            else:
                y = net.op("Relu", [net.bn(net.conv(x, p + ".conv1", inplanes, planes, 3, stride), p + ".bn1", planes)], p + ".relu")
                y = net.bn(net.conv(y, p + ".conv2", planes, planes, 3, 1), p + ".bn2", planes, last_in_block=True)
            identity = x
            if stride != 1 or inplanes != planes * expansion:
                identity = net.bn(net.conv(x, p + ".downsample.0", inplanes, planes * expansion, 1, stride),
                                  p + ".downsample.1", planes * expansion)
            x = net.op("Relu", [net.op("Add", [y, identity], p + ".add")], p + ".relu")
            inplanes = planes * expansion
        if stage == 2:
            layer3 = x
    x = net.op("GlobalAveragePool", [x], "avgpool")
    x = net.op("Flatten", [x], "flatten", axis=1)
    fan_in = 512 * expansion
    net.state["fc.weight"] = rng_for("fc.weight").standard_normal((num_classes, fan_in), dtype=np.float32) * np.float32(np.sqrt(1.0 / fan_in))
    net.state["fc.bias"] = rng_for("fc.bias").standard_normal(num_classes, dtype=np.float32) * np.float32(0.01)
    net.nodes.append(helper.make_node("Gemm", [x, "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1))
    net.nodes.append(helper.make_node("Identity", [layer3], ["layer3"], name="layer3"))

    inits = [numpy_helper.from_array(v, k) for k, v in net.state.items() if v.dtype == np.float32]
    graph = helper.make_graph(
        net.nodes, f"resnet{depth}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, num_classes]),
         helper.make_tensor_value_info("layer3", TensorProto.FLOAT, [1, 256 * expansion, 14, 14])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_resnet_safetensors",
                              ir_version=8)
    onnx.checker.check_model(model)
    return model, net.state


def make_input() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((1, 3, 224, 224), dtype=np.float32)


def torchvision_logits(name: str, state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    import torch
    import torchvision

    depth, classes = MODELS[name]
    net = getattr(torchvision.models, name)(weights=None, num_classes=classes).eval()
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--torchvision-logits", metavar="DIR", help="also check against torchvision and write DIR/<model>_tv_logits.npy")
    args = ap.parse_args()

    x = make_input()
    for name, (depth, classes) in MODELS.items():
        d = os.path.join(args.out, name)
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(os.path.join(d, "inputs"))
        os.makedirs(os.path.join(d, "outputs"))
        model, state = build(depth, classes)
        save_file(state, os.path.join(d, "weights.safetensors"))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"depth": depth, "num_classes": classes}, f)
        np.save(os.path.join(d, "inputs", "input.npy"), x)
        # The graph itself is not kept: it would repeat the ~100 MB of weights.
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        logits, layer3 = sess.run(["logits", "layer3"], {"input": x})
        np.save(os.path.join(d, "outputs", "logits.npy"), logits)
        np.save(os.path.join(d, "outputs", "layer3.npy"), layer3)
        print(f"{name}: {sum(v.size for v in state.values())} params; logits std {logits.std():.3f} "
              f"max|.| {np.abs(logits).max():.3f} argmax {int(logits.argmax())}; layer3 {list(layer3.shape)} std {layer3.std():.3f}")
        if not np.all(np.isfinite(logits)) or not 0.05 < logits.std() < 1000:
            print("degenerate logits", file=sys.stderr)
            return 1
        if args.torchvision_logits:
            tv = torchvision_logits(name, state, x)
            err = np.abs(tv - logits).max() / np.abs(tv).max()
            print(f"{name}: torchvision vs ONNX graph: max abs {np.abs(tv - logits).max():.3g}, relative {err:.3g}")
            if err > 1e-4:
                print("the Python ONNX graph does not match torchvision", file=sys.stderr)
                return 1
            np.save(os.path.join(args.torchvision_logits, f"{name}_tv_logits.npy"), tv.astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
