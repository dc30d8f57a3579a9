#!/usr/bin/env python3
"""A tiny torchvision ShuffleNetV2 (PretrainPS's light backbone family) for the Swift builder test.

    tools/.venv/bin/python tools/make_shufflenet_fixture.py   (needs torch, torchvision, safetensors)

Writes Tests/Fixtures/models/shufflenet_tiny/: weights.safetensors (torchvision names, seeded random weights and
BatchNorm statistics), config.json (stages_repeats, stages_out_channels, num_classes, input size), input.npy and
the torch outputs stage3.npy, stage4.npy, logits.npy (eval mode). About 0.2 MB.
"""

import json
import os

import numpy as np
import torch
from safetensors.torch import save_file
from torchvision.models.shufflenetv2 import ShuffleNetV2

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "models", "shufflenet_tiny")
REPEATS, CHANNELS, CLASSES, SIZE = [2, 3, 2], [8, 16, 32, 64, 96], 10, 64


def main() -> None:
    torch.manual_seed(11)
    m = ShuffleNetV2(REPEATS, CHANNELS, num_classes=CLASSES).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.6, 1.4)
                mod.bias.uniform_(-0.2, 0.2)
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, os.path.join(OUT, "weights.safetensors"))
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    feats = {}
    with torch.no_grad():
        h = m.maxpool(m.conv1(x))
        feats["stage2"] = h = m.stage2(h)
        feats["stage3"] = h = m.stage3(h)
        feats["stage4"] = h = m.stage4(h)
        logits = m(x)
    np.save(os.path.join(OUT, "input.npy"), x.numpy())
    for k in ("stage3", "stage4"):
        np.save(os.path.join(OUT, f"{k}.npy"), feats[k].numpy())
    np.save(os.path.join(OUT, "logits.npy"), logits.numpy())
    json.dump({"stages_repeats": REPEATS, "stages_out_channels": CHANNELS, "num_classes": CLASSES, "input_size": [SIZE, SIZE]},
              open(os.path.join(OUT, "config.json"), "w"), indent=2)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
