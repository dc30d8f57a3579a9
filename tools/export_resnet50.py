"""Export torchvision ResNet-50 as a weight-less ONNX graph (developer tool, needs torch).

Exports torchvision.models.resnet50(weights=None) in eval mode with the
TorchScript exporter (opset 17; BatchNorm is folded into Conv), input `input`
[1,3,224,224], output `logits` [1,1000]. Every initializer is then replaced by
the numpy fill rule of tools/materialize_resnet50.py and stored as external
data in `resnet50.weights`; only `<out>/model.onnx` (graph + external-data
references, a few tens of KB) is kept. `materialize_resnet50.py` regenerates
the ~100 MB weights file, an input and the expected logits without torch.

Run:  tools/.venv/bin/pip install -r tools/requirements-export.txt
      tools/.venv/bin/python tools/export_resnet50.py --out Tests/Fixtures/models/resnet50
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision

from materialize_resnet50 import WEIGHTS_FILE, fill_and_save, make_input


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval()
    # Fresh BatchNorms are identity (weight 1, bias 0, mean 0, var 1): after folding,
    # all conv biases would be equal and the exporter would dedupe them into Identity
    # nodes. Random BN statistics give every folded tensor its own initializer.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    with tempfile.TemporaryDirectory() as tmp:
        raw_path = os.path.join(tmp, "raw.onnx")
        x = torch.from_numpy(make_input())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), raw_path, input_names=["input"], output_names=["logits"],
                              opset_version=17, dynamo=False, do_constant_folding=True)
        # Sanity check of the export itself, with the torch weights.
        with torch.no_grad():
            ref = net(x).numpy()
        (got,) = ort.InferenceSession(raw_path, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
        print(f"export check, torch weights: max|ORT - torch| = {np.abs(got - ref).max():.3g} (max|torch| {np.abs(ref).max():.3g})")

        model = onnx.load(raw_path)
        onnx.checker.check_model(model)
        model = fill_and_save(model, tmp)
        (logits,) = ort.InferenceSession(os.path.join(tmp, "model.onnx"),
                                         providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
        print(f"numpy weights: logits std {logits.std():.3f}, max|.| {np.abs(logits).max():.3f}")
        os.makedirs(args.out, exist_ok=True)
        shutil.copy(os.path.join(tmp, "model.onnx"), os.path.join(args.out, "model.onnx"))
        print(f"{WEIGHTS_FILE}: {os.path.getsize(os.path.join(tmp, WEIGHTS_FILE)) / 1e6:.1f} MB (not kept)")

    ops = collections.Counter(n.op_type for n in model.graph.node)
    print(f"model.onnx: {os.path.getsize(os.path.join(args.out, 'model.onnx'))} bytes, "
          f"{len(model.graph.initializer)} initializers")
    print("ops:", ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))


if __name__ == "__main__":
    main()
