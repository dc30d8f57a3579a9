"""The shipped default model: a small DiffPS + PSDiff-family person-search model (docs/DEFAULT_MODEL.md).

    image [1,3,192,256] ─letterbox/normalise─▶ pixel_unshuffle(4) "latent" [48,48,64]
      ─▶ diffusers UNet2DConditionModel at a fixed timestep with a learned constant context (DiffPS: frozen SD
         UNet at fixed t with a "person" prompt) ─ taps of the up path at image strides 16, 8, 4
      ─▶ neck (3x3 conv, ReLU, 1x1 conv per level) ─▶ p2, p3, p4 (64 channels)
      ─▶ PSDiff head (tools/psref/psdiff.py: one Collaborative Denoising Layer) + DDIM over boxes and embeddings.

The "latent encoder" is a fixed, lossless pixel_unshuffle instead of SD's VAE encoder (too costly to train or
run at this size).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import UNet2DConditionModel

from . import psdiff as P

INPUT_H, INPUT_W = 192, 256
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
UNSHUFFLE = 4
FEATURE_T = 50            # fixed timestep of the feature pass (no noise added), as DiffPS's single pass
CONTEXT_TOKENS = 4
CONTEXT_DIM = 64

UNET_CONFIG = dict(
    sample_size=(INPUT_H // UNSHUFFLE, INPUT_W // UNSHUFFLE), in_channels=3 * UNSHUFFLE ** 2, out_channels=3 * UNSHUFFLE ** 2,
    block_out_channels=(32, 64, 64), layers_per_block=1, norm_num_groups=16, cross_attention_dim=CONTEXT_DIM,
    attention_head_dim=4, use_linear_projection=True,
    # no attention at the full latent resolution (3072 tokens): it would dominate the cost
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
)
# Up-path module outputs tapped (names as the Swift UNet builder offers them) -> feature level.
TAPS = {"up_blocks.0.attentions.1": "p4", "up_blocks.1.attentions.1": "p3", "up_blocks.2.resnets.1": "p2"}
TAP_CHANNELS = {"p4": 64, "p3": 64, "p2": 32}
HEAD_CONFIG = dict(hidden_dim=64, dim_feedforward=256, nheads=4, num_heads=1, dim_dynamic=16, num_proposals=100,
                   pooler_canonical_size=64.0, fpn_strides=(4, 8, 16), backbone=None)


def head_config() -> P.PSDiffConfig:
    return P.PSDiffConfig(**HEAD_CONFIG)


def letterbox(rgb: np.ndarray) -> tuple[torch.Tensor, float]:
    """uint8 [h,w,3] -> normalised [3,H,W] float32 and the scale: s = min(W/w, H/h), size round(w·s) x round(h·s)
    (half away from zero, as Swift's rounded()), bilinear (align_corners=False, no antialias), top-left, zero pad."""
    h, w = rgb.shape[:2]
    s = min(INPUT_W / w, INPUT_H / h)
    nw, nh = min(INPUT_W, max(1, math.floor(w * s + 0.5))), min(INPUT_H, max(1, math.floor(h * s + 0.5)))
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None]
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)[0]
    x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    out = torch.zeros(3, INPUT_H, INPUT_W)
    out[:, :nh, :nw] = x
    return out, s


def make_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(**UNET_CONFIG)


def unet_taps(unet: UNet2DConditionModel, latent: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> dict[str, torch.Tensor]:
    """Runs the UNet up to its last tap and returns the tapped module outputs (before any upsampler)."""
    emb = unet.time_embedding(unet.time_proj(t).to(latent.dtype))
    h = unet.conv_in(latent)
    skips = (h,)
    for block in unet.down_blocks:
        if getattr(block, "has_cross_attention", False):
            h, res = block(hidden_states=h, temb=emb, encoder_hidden_states=context)
        else:
            h, res = block(hidden_states=h, temb=emb)
        skips += res
    h = unet.mid_block(h, emb, encoder_hidden_states=context)
    taps = {}
    for i, block in enumerate(unet.up_blocks):
        attns = getattr(block, "attentions", None)
        for j, resnet in enumerate(block.resnets):
            h = torch.cat([h, skips[-1]], dim=1)
            skips = skips[:-1]
            h = resnet(h, emb)
            name = f"up_blocks.{i}.resnets.{j}"
            if attns is not None:
                h = attns[j](h, encoder_hidden_states=context, return_dict=False)[0]
                name = f"up_blocks.{i}.attentions.{j}"
            if name in TAPS:
                taps[TAPS[name]] = h
        if len(taps) == len(TAPS):
            break
        if block.upsamplers is not None:
            for up in block.upsamplers:
                h = up(h, output_size=skips[-1].shape[2:])
    return taps


class Neck(nn.Module):
    """Per level: 3x3 conv (tap channels -> 64), ReLU, 1x1 conv (64 -> 64)."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.levels = nn.ModuleDict({k: nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 1))
                                     for k, c in TAP_CHANNELS.items()})

    def forward(self, taps: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [self.levels[k](taps[k]) for k in ("p2", "p3", "p4")]


class DefaultModel(nn.Module):
    """State-dict layout: unet.*, context, neck.levels.{p2,p3,p4}.{0,2}.*, psdiff.head.* + psdiff diffusion buffers."""

    def __init__(self):
        super().__init__()
        self.unet = make_unet()
        self.context = nn.Parameter(torch.randn(1, CONTEXT_TOKENS, CONTEXT_DIM) * 0.02)
        self.neck = Neck()
        self.psdiff = P.PSDiff(head_config())

    def taps(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        latent = F.pixel_unshuffle(image, UNSHUFFLE)
        t = torch.full((image.shape[0],), FEATURE_T, dtype=torch.long)
        return unet_taps(self.unet, latent, t, self.context.expand(image.shape[0], -1, -1))

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.taps(image))


class BackboneExport(nn.Module):
    """image -> p2, p3, p4 (what backbone.onnx computes)."""

    def __init__(self, m: DefaultModel):
        super().__init__()
        self.m = m

    def forward(self, image):
        p2, p3, p4 = self.m.features(image)
        return p2, p3, p4


class HeadExport(nn.Module):
    """(p2, p3, p4, boxes, emb_in, t) -> logits, pred_boxes, pred_emb (what head.onnx computes)."""

    def __init__(self, m: DefaultModel):
        super().__init__()
        self.head = m.psdiff.head

    def forward(self, p2, p3, p4, boxes, emb_in, t):
        return self.head([p2, p3, p4], boxes, emb_in, t)[-1]
