"""A tiny diffusers UNet exercising the configuration options the SD-2.1 fixture does not (needs torch + diffusers).

The SD-2.1-shaped fixture (export_unet.py) covers linear projections, one head count and
the default time embedding. This one covers the SD-1.x style and the other config paths the
Swift builder (Models/Builders/DiffusersUNet2DCondition.swift) supports:

    use_linear_projection false      proj_in / proj_out are 1x1 convolutions
    attention_head_dim [2, 4, 4]     heads per block (mid block: the last)
    layers_per_block [1, 2, 1]       per block; up blocks reversed, + 1
    transformer_layers_per_block     [1, 2, 2]: two BasicTransformerBlocks in block 1 and the mid block
    flip_sin_to_cos false, freq_shift 1, time_embedding_dim 48
    downsample_padding 0             F.pad (0, 1, 0, 1) before the stride-2 conv
    mid_block_scale_factor 2         mid-block resnets divide their output
    conv_in_kernel 5, conv_out_kernel 1, in_channels 3, out_channels 5, norm_eps 1e-6
    latent 10x14                     odd sizes after downsampling: upsampling goes to the skip's size
    batch 2 with timesteps [2]       one timestep per sample; 7 text tokens of width 24

Writes <out>/config.json, weights.safetensors, inputs/{sample,timestep,encoder_hidden_states}.npy
and outputs/out_sample.npy (the PyTorch forward pass, float32 CPU).

Run:  tools/.venv/bin/python tools/export_unet_variant.py --out Tests/Fixtures/models/unet_variant
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

CONFIG = dict(
    sample_size=16,
    in_channels=3,
    out_channels=5,
    flip_sin_to_cos=False,
    freq_shift=1,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(8, 16, 16),
    layers_per_block=(1, 2, 1),
    transformer_layers_per_block=(1, 2, 2),
    downsample_padding=0,
    mid_block_scale_factor=2.0,
    act_fn="silu",
    norm_num_groups=4,
    norm_eps=1e-6,
    cross_attention_dim=24,
    attention_head_dim=(2, 4, 4),
    use_linear_projection=False,
    time_embedding_dim=48,
    conv_in_kernel=5,
    conv_out_kernel=1,
    upcast_attention=True,
)
BATCH, HEIGHT, WIDTH, SEQ_LEN = 2, 10, 14, 7


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "outputs"), exist_ok=True)

    torch.manual_seed(1)
    unet = UNet2DConditionModel(**CONFIG).eval()
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm)) and module.weight is not None:
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, os.path.join(args.out, "weights.safetensors"))
    unet.save_config(args.out)

    rng = np.random.default_rng(1)
    inputs = {
        "sample": rng.standard_normal((BATCH, CONFIG["in_channels"], HEIGHT, WIDTH), dtype=np.float32),
        "timestep": np.array([17.0, 803.5], dtype=np.float32),
        "encoder_hidden_states": rng.standard_normal((BATCH, SEQ_LEN, CONFIG["cross_attention_dim"]), dtype=np.float32),
    }
    for name, arr in inputs.items():
        np.save(os.path.join(args.out, "inputs", name + ".npy"), arr)
    with torch.no_grad():
        out = unet(*(torch.from_numpy(inputs[k]) for k in ("sample", "timestep", "encoder_hidden_states")),
                   return_dict=False)[0].numpy()
    np.save(os.path.join(args.out, "outputs", "out_sample.npy"), out)
    params = sum(p.numel() for p in unet.parameters())
    print(f"{params} params, out_sample {list(out.shape)}: std {out.std():.4f} max|.| {np.abs(out).max():.4f}")


if __name__ == "__main__":
    main()
