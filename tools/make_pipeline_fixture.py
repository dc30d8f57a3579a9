#!/usr/bin/env python3
"""A tiny PSDiff-style model package for the pipeline/CLI tests: Tests/Fixtures/models/psdiff_package/.

    python3 tools/make_pipeline_fixture.py [--out Tests/Fixtures/models/psdiff_package]

backbone.onnx: seeded random strided convolutions, image [1,3,128,128] -> p2..p5 (64 channels, strides 4..32),
the feature shapes of the psdiff_small fixture, whose CDL head (cdl_head.onnx, random weights) and diffusion
buffers the package reuses through relative paths. Its detections are meaningless; it exercises the machinery
(letterbox, backbone, DDIM loop, CLI commands, conversion, int8) quickly. Needs numpy and onnx only.
"""

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(seed: int = 5) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def conv(name, x, cin, cout, k):
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"{name}.weight"))
        inits.append(numpy_helper.from_array(b, f"{name}.bias"))
        nodes.append(helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [f"{name}_conv"],
                                      kernel_shape=[k, k], strides=[k, k]))
        nodes.append(helper.make_node("Relu", [f"{name}_conv"], [name]))
        return name

    x = conv("p2", "image", 3, 64, 4)
    x = conv("p3", x, 64, 64, 2)
    x = conv("p4", x, 64, 64, 2)
    conv("p5", x, 64, 64, 2)
    outputs = [helper.make_tensor_value_info(f"p{i}", TensorProto.FLOAT, [1, 64, 128 >> i, 128 >> i]) for i in (2, 3, 4, 5)]
    graph = helper.make_graph(nodes, "tiny_backbone", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 128, 128])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_pipeline_fixture")
    onnx.checker.check_model(model)
    return model


PIPELINE = {
    "format": "psedge-pipeline", "version": 1, "kind": "psdiff", "name": "psdiff-tiny-test",
    "input": {"height": 128, "width": 128, "resize": "letterbox-topleft",
              "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]},
    "backbone": {"onnx": "backbone.onnx", "input": "image", "outputs": ["p2", "p3", "p4", "p5"]},
    "head": {"onnx": "../psdiff_small/cdl_head.onnx", "features": ["p2", "p3", "p4", "p5"], "boxes": "boxes",
             "embeddings": "emb_in", "timestep": "t",
             "outputs": {"logits": "logits", "boxes": "pred_boxes", "embeddings": "pred_emb"}},
    "weights": "../psdiff_small/weights.safetensors",
    "diffusion": {"timesteps": 1000, "num_proposals": 50, "box_scale": 2.0, "emb_scale": 3.0, "eta": 1.0,
                  "renewal_threshold": 0.5, "nms_thresh": 0.5, "score_thresh": 0.05, "max_detections": 30},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "models", "psdiff_package"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    onnx.save(build(), os.path.join(a.out, "backbone.onnx"))
    with open(os.path.join(a.out, "pipeline.json"), "w") as f:
        json.dump(PIPELINE, f, indent=2)
        f.write("\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
