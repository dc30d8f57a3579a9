"""Reference values of UNet feature taps from PyTorch forward hooks (developer tool, needs torch + diffusers).

Loads the fixture UNet (diffusers.UNet2DConditionModel from <dir>/config.json and
<dir>/weights.safetensors), runs it on <dir>/inputs/*.npy and records, for each tap:

    <module path>              e.g. up_blocks.3.attentions.0.transformer_blocks.0.attn1.to_k
                               the module's output (forward hook), here the raw key
                               projection [B, HW, C]
    <attention path>.probs     e.g. up_blocks.1.attentions.0.transformer_blocks.0.attn2.probs
                               the softmax attention probabilities [B, heads, HW, keys], as
                               diffusers' own Attention.get_attention_scores computes them
                               (that attention is switched to the classic AttnProcessor,
                               which calls it; the model output is checked unchanged)

and writes <dir>/taps/<tap>.npy (float32). These are what the Swift UNet builder's taps
must reproduce (Tests/PSEdgeTests/ModelBuilderTests.swift).

Run:  tools/.venv/bin/python tools/export_unet_taps.py --dir Tests/Fixtures/models/unet_sd21_mini
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

DEFAULT_TAPS = [
    "up_blocks.3.attentions.0.transformer_blocks.0.attn1.to_k",
    "up_blocks.1.attentions.0.transformer_blocks.0.attn2.probs",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--taps", default=",".join(DEFAULT_TAPS))
    args = ap.parse_args()

    config = UNet2DConditionModel.load_config(args.dir)
    unet = UNet2DConditionModel.from_config(config).eval()
    missing, unexpected = unet.load_state_dict(load_file(os.path.join(args.dir, "weights.safetensors")), strict=True)
    assert not missing and not unexpected
    modules = dict(unet.named_modules())

    captured: dict[str, torch.Tensor] = {}
    for tap in args.taps.split(","):
        if tap.endswith(".probs"):
            attn = modules[tap[: -len(".probs")]]
            attn.set_processor(AttnProcessor())
            original = attn.get_attention_scores

            def scores(query, key, attention_mask=None, _tap=tap, _attn=attn, _orig=original):
                probs = _orig(query, key, attention_mask)  # [B*heads, HW, keys]
                heads = _attn.heads
                captured[_tap] = probs.reshape(-1, heads, *probs.shape[1:]).detach().clone()
                return probs

            attn.get_attention_scores = scores
        else:
            def hook(_module, _inputs, output, _tap=tap):
                captured[_tap] = output.detach().clone()

            modules[tap].register_forward_hook(hook)

    inputs = {k: torch.from_numpy(np.load(os.path.join(args.dir, "inputs", k + ".npy")))
              for k in ("sample", "timestep", "encoder_hidden_states")}
    with torch.no_grad():
        out = unet(inputs["sample"], inputs["timestep"], inputs["encoder_hidden_states"], return_dict=False)[0].numpy()
    ref = np.load(os.path.join(args.dir, "outputs", "out_sample.npy"))
    print(f"model output vs ORT reference: max abs diff {np.abs(out - ref).max():.3g} (max |ref| {np.abs(ref).max():.3g})")

    os.makedirs(os.path.join(args.dir, "taps"), exist_ok=True)
    for tap, value in captured.items():
        arr = value.numpy().astype(np.float32)
        path = os.path.join(args.dir, "taps", tap + ".npy")
        np.save(path, arr)
        print(f"{tap}: {list(arr.shape)}, max |.| {np.abs(arr).max():.4f}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
