"""DiffPS (Kim et al., ICCV 2025) heads on top of Stable-Diffusion UNet features.

PyTorch reference for the PSEdge runtime, written from the DiffPS project page and the
architecture brief (shared/reference/person-search-models.md §1). The UNet itself is
diffusers' UNet2DConditionModel, used as is; this module starts from the hooked UNet
activations ("taps", §1.3) and ends with boxes, scores and 1024-d re-ID embeddings.

Module and parameter names follow the public DiffPS code (PerceptualAI-Lab/DiffPS HEAD
a09861a, which reuses SEAS modules), so `DiffPS(DiffPSConfig()).state_dict()` has exactly
the keys listed in §1.9 and a checkpoint's `model` dict loads with strict=True.

Inference only (eval mode): no samplers, no losses. The OIM look-up table and queue are
kept as buffers (`reid_roi_heads.reid_loss.{lut,cq}`) only so that checkpoints load.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead, concat_box_prediction_layers
from torchvision.models.resnet import Bottleneck
from torchvision.ops import roi_align
from torchvision.ops import boxes as box_ops

from .boxops import TORCHVISION_BBOX_XFORM_CLIP, clip_boxes, decode_deltas

# --------------------------------------------------------------------------------------
# Tap names (generic-diffusion-feature ids, §1.3)
# --------------------------------------------------------------------------------------


def tap_name(level: int, repeat: int, kind: str) -> str:
    """`up-level{i}-repeat{j}-vit-block0-{self-q|self-k|self-v|cross-map}`."""
    return f"up-level{level}-repeat{repeat}-vit-block0-{kind}"


DET_TAP = tap_name(3, 0, "self-k")
CROSS_MAP_TAP = tap_name(3, 0, "cross-map")
# Order used by Frq_AggregationNetwork (the concat order matters).
REID_L1_TAP = tap_name(1, 2, "self-q")
REID_L2_TAPS = (tap_name(2, 1, "self-v"), tap_name(2, 2, "self-q"))
REID_L3_TAPS = (tap_name(3, 0, "self-q"), tap_name(3, 0, "self-k"), tap_name(3, 0, "self-v"),
                tap_name(3, 1, "self-k"))
REID_TAPS = (REID_L1_TAP,) + REID_L2_TAPS + REID_L3_TAPS
ALL_TAPS = (DET_TAP, CROSS_MAP_TAP) + tuple(t for t in REID_TAPS if t != DET_TAP)


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass
class DiffPSConfig:
    # channels of the taps: up_blocks[1] (level1), up_blocks[2] (level2), up_blocks[3] (level3)
    tap_channels: tuple[int, int, int] = (1280, 640, 320)
    proj_dim: int = 1024                       # AGGNET_OUTPUT_CHANNELS (D); = text dim; = layer4 input
    head_width: int = 512                      # layer4 bottleneck width; output = 4 * width
    text_dim: int = 1024                       # text_embeds [4, text_dim]; SFAN needs text_dim == proj_dim
    image_size: tuple[int, int] = (1280, 1280)  # (H, W) after GeneralizedRCNNTransform(fixed_size)
    # RPN (torchvision)
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_top_n: int = 6000
    rpn_post_nms_top_n: int = 300
    rpn_nms_thresh: float = 0.7
    rpn_score_thresh: float = 0.0
    rpn_min_size: float = 1e-3
    # DGRPN (models/dgrpn.py defaults used by DiffPS)
    dgrpn_tau: float = 0.7
    dgrpn_delta: float = 5.0
    dgrpn_peak_window: int = 7
    dgrpn_neigh_window: int = 9
    dgrpn_topk: int = 50
    dgrpn_init_beta: float = 1.0
    dgrpn_init_gamma: float = 0.0
    attn_head: int = 1                         # head index of the cross-attention probabilities
    attn_token: int = 1                        # token index ("person")
    # Faster R-CNN box head
    det_roi_size: tuple[int, int] = (14, 14)
    det_score_thresh: float = 0.5
    det_nms_thresh: float = 0.4
    det_per_img: int = 300
    det_min_size: float = 1e-2
    det_bbox_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    # re-ID
    reid_roi_size: tuple[int, int] = (24, 12)
    dim_identity: int = 1024
    mge_branches: int = 3
    drop_path: float = 0.1
    cbam_reduction: int = 16
    num_parts: int = 4
    roi_sampling_ratio: int = 2
    # OIM buffers (only so checkpoints load): CUHK-SYSU 5532/5000, PRW 483/500
    oim_num_pids: int = 5532
    oim_cq_size: int = 5000

    @classmethod
    def small(cls, **overrides: Any) -> "DiffPSConfig":
        """Scaled-down instance for tests and fixtures (~0.55 M params, 128x128 image, 16x16 level3)."""
        cfg = cls(
            tap_channels=(64, 32, 16), proj_dim=64, head_width=32, text_dim=64,
            image_size=(128, 128), anchor_sizes=(8, 16, 32, 64, 128),
            rpn_pre_nms_top_n=1000, rpn_post_nms_top_n=100, dgrpn_topk=12, det_per_img=50,
            dim_identity=64, oim_num_pids=8, oim_cq_size=8,
        )
        return replace(cfg, **overrides)

    @classmethod
    def prw(cls, **overrides: Any) -> "DiffPSConfig":
        return replace(cls(oim_num_pids=483, oim_cq_size=500), **overrides)

    @property
    def head_out(self) -> int:
        return 4 * self.head_width

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiffPSConfig":
        kw = {}
        for k, v in d.items():
            kw[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)


# --------------------------------------------------------------------------------------
# Aggregation networks (models/aggregation_network.py)
# --------------------------------------------------------------------------------------


class DetectionAggregationNetwork(nn.Module):
    """proj 1x1 (no bias) -> BN -> ReLU -> depthwise 3x3 (no bias) -> BN (no final ReLU)."""

    def __init__(self, in_channels: int, proj_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, proj_dim, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(proj_dim)
        self.dw_conv = nn.Conv2d(proj_dim, proj_dim, 3, padding=1, groups=proj_dim, bias=False)
        self.bn2 = nn.BatchNorm2d(proj_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn2(self.dw_conv(F.relu(self.bn1(self.proj(x)))))


class LPM(nn.Module):
    """Lightweight processing module: 1x1 -> BN -> ReLU -> dw3x3 -> BN -> ReLU -> 1x1 -> BN."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, dim, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.dw_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.dw_conv(x)))
        return self.bn3(self.conv2(x))


class SRB(nn.Module):
    """Sub-band refinement: dw3x3 -> pw1x1 -> BN -> ReLU, then x * sigmoid(conv1x1(GAP(x)) + b)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dw_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False)
        self.pw_conv = nn.Conv2d(dim, dim, 1, bias=False)
        self.bn = nn.BatchNorm2d(dim)
        self.attention = nn.Conv2d(dim, dim, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn(self.pw_conv(self.dw_conv(x))))
        att = torch.sigmoid(self.attention(out.mean(dim=(2, 3), keepdim=True)))
        return out * att


_HAAR = 1.0 / math.sqrt(2.0)


class HaarDWT(nn.Module):
    """One-level 2-D Haar DWT, pytorch_wavelets DWTForward(J=1, wave='haar', mode='zero') semantics.

    For even H, W and a=x[2i,2j], b=x[2i,2j+1], c=x[2i+1,2j], d=x[2i+1,2j+1]:
        LL = (a+b+c+d)/2, band0 = (a+b-c-d)/2, band1 = (a-b+c-d)/2, band2 = (a-b-c+d)/2
    (band0 = high-pass along H, band1 = high-pass along W). Computed with reshape/slice
    ops and the exact constant 1/2; the buffers carry pytorch_wavelets' names and values
    (flipped analysis filters, shapes (1,1,2,1)/(1,1,1,2)) only so checkpoints load.
    """

    def __init__(self):
        super().__init__()
        lo = torch.tensor([_HAAR, _HAAR], dtype=torch.float32)
        hi = torch.tensor([_HAAR, -_HAAR], dtype=torch.float32)  # flip(pywt dec_hi = [-s, s])
        self.register_buffer("h0_col", lo.reshape(1, 1, 2, 1).clone())
        self.register_buffer("h1_col", hi.reshape(1, 1, 2, 1).clone())
        self.register_buffer("h0_row", lo.reshape(1, 1, 1, 2).clone())
        self.register_buffer("h1_row", hi.reshape(1, 1, 1, 2).clone())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b_, c_, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"HaarDWT needs even H and W, got {h}x{w} (the DiffPS FRM adds the "
                             "IDWT output back to its input, so odd sizes fail there too)")
        x6 = x.reshape(b_, c_, h // 2, 2, w // 2, 2)
        a = x6[:, :, :, 0, :, 0]
        b = x6[:, :, :, 0, :, 1]
        c = x6[:, :, :, 1, :, 0]
        d = x6[:, :, :, 1, :, 1]
        ll = (a + b + c + d) * 0.5
        b0 = (a + b - c - d) * 0.5
        b1 = (a - b + c - d) * 0.5
        b2 = (a - b - c + d) * 0.5
        return ll, torch.stack([b0, b1, b2], dim=2)  # [B,C,H/2,W/2], [B,C,3,H/2,W/2]


class HaarIDWT(nn.Module):
    """Inverse of HaarDWT (exact): a=(LL+B0+B1+B2)/2, b=(LL+B0-B1-B2)/2, c=(LL-B0+B1-B2)/2,
    d=(LL-B0-B1+B2)/2. Buffers `g{0,1}_{col,row}` as in pytorch_wavelets DWTInverse."""

    def __init__(self):
        super().__init__()
        lo = torch.tensor([_HAAR, _HAAR], dtype=torch.float32)
        hi = torch.tensor([_HAAR, -_HAAR], dtype=torch.float32)  # pywt rec_hi
        self.register_buffer("g0_col", lo.reshape(1, 1, 2, 1).clone())
        self.register_buffer("g1_col", hi.reshape(1, 1, 2, 1).clone())
        self.register_buffer("g0_row", lo.reshape(1, 1, 1, 2).clone())
        self.register_buffer("g1_row", hi.reshape(1, 1, 1, 2).clone())

    def forward(self, ll: Tensor, high: Tensor) -> Tensor:
        b0, b1, b2 = high[:, :, 0], high[:, :, 1], high[:, :, 2]
        a = (ll + b0 + b1 + b2) * 0.5
        b = (ll + b0 - b1 - b2) * 0.5
        c = (ll - b0 + b1 - b2) * 0.5
        d = (ll - b0 - b1 + b2) * 0.5
        top = torch.stack([a, b], dim=-1)     # [B,C,h,w,2]
        bottom = torch.stack([c, d], dim=-1)
        x6 = torch.stack([top, bottom], dim=3)  # [B,C,h,2,w,2]
        n, ch, h, _, w, _ = x6.shape
        return x6.reshape(n, ch, 2 * h, 2 * w)


def haar_buffers_ok(module: nn.Module, atol: float = 1e-6) -> bool:
    """True if every DWT/IDWT buffer in `module` still holds the Haar values this code assumes."""
    ref_d, ref_i = HaarDWT(), HaarIDWT()
    ok = True
    for m in module.modules():
        if isinstance(m, (HaarDWT, HaarIDWT)):
            ref = ref_d if isinstance(m, HaarDWT) else ref_i
            for name, buf in m.named_buffers():
                ok &= torch.allclose(buf.float().cpu(), getattr(ref, name), atol=atol)
    return bool(ok)


class FRM(nn.Module):
    """Frequency refinement: DWT -> SRB on LH/HL/HH scaled by learnable gammas -> IDWT, + x.
    (The paper figure also refines LL; the public code passes LL through unchanged.)"""

    def __init__(self, dim: int):
        super().__init__()
        self.srb_lh = SRB(dim)
        self.srb_hl = SRB(dim)
        self.srb_hh = SRB(dim)
        self.gamma_lh = nn.Parameter(torch.tensor(1.0))
        self.gamma_hl = nn.Parameter(torch.tensor(1.0))
        self.gamma_hh = nn.Parameter(torch.tensor(1.0))
        self.DWT = HaarDWT()
        self.IDWT = HaarIDWT()

    def forward(self, x: Tensor) -> Tensor:
        ll, yh = self.DWT(x)
        lh = self.gamma_lh * self.srb_lh(yh[:, :, 0])
        hl = self.gamma_hl * self.srb_hl(yh[:, :, 1])
        hh = self.gamma_hh * self.srb_hh(yh[:, :, 2])
        return self.IDWT(ll, torch.stack([lh, hl, hh], dim=2)) + x


class FrqAggregationNetwork(nn.Module):
    """MSFRN (`Frq_AggregationNetwork`): multi-scale fusion of the 7 re-ID taps + FRM.

    L1 = up(lpm_1280(level1 q), size of level2)
    L2 = frm_level2(LN_C(conv_level2(cat(lpm_640(l2r1 v), lpm_640(l2r2 q))) + L1))
    out = final_conv(frm_level3(conv_level3(cat(lpm_320(q), lpm_320(k), lpm_320(v), lpm_320(l3r1 k)))
                                + up(L2, size of level3)))
    `up` = bilinear, align_corners=False. The LPMs are shared across the taps of a level.
    """

    def __init__(self, tap_channels: tuple[int, int, int], dim: int):
        super().__init__()
        c1, c2, c3 = tap_channels
        # Attribute names are fixed by the checkpoint (they spell the SD-2.1 channel counts).
        self.lpm_1280 = LPM(c1, dim)
        self.lpm_640 = LPM(c2, dim)
        self.lpm_320 = LPM(c3, dim)
        self.conv_level2 = nn.Conv2d(2 * dim, dim, 1, bias=False)
        self.conv_level3 = nn.Conv2d(4 * dim, dim, 1, bias=False)
        self.layer_norm = nn.LayerNorm(dim)
        self.frm_level2 = FRM(dim)
        self.frm_level3 = FRM(dim)
        self.final_conv = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, taps: dict[str, Tensor]) -> Tensor:
        l1 = self.lpm_1280(taps[REID_L1_TAP])
        l2a, l2b = (taps[k] for k in REID_L2_TAPS)
        l1_up = F.interpolate(l1, size=l2a.shape[-2:], mode="bilinear", align_corners=False)
        l2 = self.conv_level2(torch.cat([self.lpm_640(l2a), self.lpm_640(l2b)], dim=1)) + l1_up
        l2 = self.layer_norm(l2.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        l2 = self.frm_level2(l2)
        l3_in = [taps[k] for k in REID_L3_TAPS]
        l2_up = F.interpolate(l2, size=l3_in[0].shape[-2:], mode="bilinear", align_corners=False)
        l3 = self.conv_level3(torch.cat([self.lpm_320(t) for t in l3_in], dim=1)) + l2_up
        return self.final_conv(self.frm_level3(l3))


Frq_AggregationNetwork = FrqAggregationNetwork  # public-code spelling


# --------------------------------------------------------------------------------------
# DGRPN (models/dgrpn.py)
# --------------------------------------------------------------------------------------


def get_attention_map(cross_map: Tensor, head: int, token: int, hw: tuple[int, int]) -> Tensor:
    """Per-image min-max normalised A[b, head, :, token] reshaped to [B, H, W] (zeros if flat).

    `cross_map` is either the full attention-probability tap [B, heads, HW, T] or an
    already sliced [B, HW] / [B, H, W] map.
    """
    if cross_map.dim() == 4:
        attn = cross_map[:, head, :, token]
    else:
        attn = cross_map.reshape(cross_map.shape[0], -1)
    attn = attn.float()
    lo = attn.min(dim=1, keepdim=True).values
    hi = attn.max(dim=1, keepdim=True).values
    rng = hi - lo
    norm = torch.where(rng > 0, (attn - lo) / torch.where(rng > 0, rng, torch.ones_like(rng)),
                       torch.zeros_like(attn))
    return norm.reshape(attn.shape[0], *hw)


class DGRPNModulator(nn.Module):
    """F_det = F + gamma * (G ⊙ F), G = max over K peaks of anisotropic Gaussians (Eq. 1-4).

    M = clamp(map, 0) / (max over the whole batch + 1e-8) if that max > 0;  M_th = M where M > tau.
    Peaks: M_th == maxpool_{w x w, stride 1, pad w//2}(M_th) and M_th > 0; per image the top-K
    peak scores (non-peaks score 0). Ties (in practice the zero scores when an image has fewer
    than K peaks) are broken by the lower flattened index (stable sort); the public code's
    torch.topk leaves this order unspecified.
    s_w = max(delta, sqrt(max(sum_{9x9 window, zero padded} (x - cx)^2 M_th, 1e-8))), same for s_h.
    G_k = exp(-(X-cx)^2 / (b s_w^2) - (Y-cy)^2 / (b s_h^2)), b = |beta| + 1e-6.
    """

    def __init__(self, tau: float = 0.7, delta: float = 5.0, peak_window: int = 7, neigh_window: int = 9,
                 topk: int = 50, init_beta: float = 1.0, init_gamma: float = 0.0):
        super().__init__()
        self.tau, self.delta = tau, delta
        self.peak_window, self.neigh_window, self.topk = peak_window, neigh_window, topk
        self.beta = nn.Parameter(torch.tensor(float(init_beta)))
        self.gamma = nn.Parameter(torch.tensor(float(init_gamma)))

    def peaks(self, attn_map: Tensor) -> dict[str, Tensor]:
        """attn_map [B,H,W] -> thresholded map, peak coordinates/scores and spreads."""
        m = attn_map.unsqueeze(1).clamp(min=0).float()
        mx = m.max()
        if mx > 0:
            m = m / (mx + 1e-8)
        m_th = torch.where(m > self.tau, m, torch.zeros_like(m))
        b, _, h, w = m_th.shape
        k = self.peak_window
        pooled = F.max_pool2d(m_th, kernel_size=k, stride=1, padding=k // 2)
        is_peak = (m_th == pooled) & (m_th > 0)
        scores = m_th.masked_fill(~is_peak, 0.0).reshape(b, -1)
        kk = min(self.topk, h * w)
        vals, idx = torch.sort(scores, dim=1, descending=True, stable=True)
        vals, idx = vals[:, :kk], idx[:, :kk]
        cy = torch.div(idx, w, rounding_mode="floor")
        cx = idx - cy * w
        # Weighted second moments over the neighbourhood window as fixed convolutions:
        # Sx[y,x] = sum_{dy,dx} M_th[y+dy, x+dx] * dx^2 (zero outside the map).
        n = self.neigh_window
        r = torch.arange(n, dtype=m_th.dtype, device=m_th.device) - n // 2
        kx = (r[None, :] ** 2).expand(n, n).reshape(1, 1, n, n)
        ky = (r[:, None] ** 2).expand(n, n).reshape(1, 1, n, n)
        sx = F.conv2d(m_th, kx.contiguous(), padding=n // 2).reshape(b, -1)
        sy = F.conv2d(m_th, ky.contiguous(), padding=n // 2).reshape(b, -1)
        sum_x = torch.gather(sx, 1, idx)
        sum_y = torch.gather(sy, 1, idx)
        s_w = torch.sqrt(sum_x.clamp_min(1e-8)).clamp_min(self.delta)
        s_h = torch.sqrt(sum_y.clamp_min(1e-8)).clamp_min(self.delta)
        return {"m_th": m_th[:, 0], "cx": cx, "cy": cy, "peak_scores": vals, "s_w": s_w, "s_h": s_h}

    def gaussian_map(self, p: dict[str, Tensor], hw: tuple[int, int]) -> Tensor:
        h, w = hw
        dev = p["s_w"].device
        xs = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, 1, w)
        ys = torch.arange(h, device=dev, dtype=torch.float32).view(1, 1, h, 1)
        cx = p["cx"].float()[..., None, None]
        cy = p["cy"].float()[..., None, None]
        beta = self.beta.abs() + 1e-6
        g = torch.exp(-((xs - cx) ** 2) / (beta * p["s_w"][..., None, None] ** 2)
                      - ((ys - cy) ** 2) / (beta * p["s_h"][..., None, None] ** 2))
        return g.max(dim=1).values  # [B,H,W]

    def forward(self, feats: Tensor, attn_map: Tensor, return_aux: bool = False):
        p = self.peaks(attn_map)
        g = self.gaussian_map(p, feats.shape[-2:])
        out = feats + self.gamma * (g.unsqueeze(1) * feats)
        if return_aux:
            p["G"] = g
            return out, p
        return out


DGPRNModulator = DGRPNModulator  # public-code spelling


# --------------------------------------------------------------------------------------
# ROI heads (SEAS modules)
# --------------------------------------------------------------------------------------


class ResNetHead(nn.Module):
    """torchvision ResNet-50 `layer4` (stride-2 first block): D -> 4*width, H/2 x W/2."""

    def __init__(self, in_channels: int = 1024, width: int = 512, down_sampling: bool = True):
        super().__init__()
        out = width * Bottleneck.expansion
        stride = 2 if down_sampling else 1
        self.layer4 = nn.Sequential(
            Bottleneck(in_channels, width, stride=stride, downsample=nn.Sequential(
                nn.Conv2d(in_channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))),
            Bottleneck(out, width),
            Bottleneck(out, width),
        )
        self.in_channels, self.out_channels = in_channels, out

    def forward(self, x: Tensor) -> Tensor:
        return self.layer4(x)


class Pack(nn.Module):
    """`Pack(body, output_both_ends=True)`: returns {'head_input': x, 'head_output': body(x)}."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        self.out_feat_names = ["head_input", "head_output"]
        self.out_channels_list = [body.in_channels, body.out_channels]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return OrderedDict([("head_input", x), ("head_output", self.body(x))])


class BoxPredictor(nn.Module):
    """mean over H,W -> classifier Linear(C,2); regressor fc Linear(C,4,no bias) + BatchNorm1d(4)."""

    def __init__(self, in_channels: int, num_classes: int = 2):
        super().__init__()
        self.classifier = nn.Linear(in_channels, num_classes)
        self.regressor = nn.Sequential(OrderedDict([
            ("fc", nn.Linear(in_channels, 4, bias=False)),
            ("bn", nn.BatchNorm1d(4)),
        ]))

    def forward(self, feat_map: Tensor) -> tuple[Tensor, Tensor]:
        v = feat_map.mean(dim=(2, 3))
        return self.classifier(v), self.regressor(v)


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, bias: bool = True):
        super().__init__()
        neck = channels // reduction
        self.body = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(channels, neck, bias=bias)),
            ("relu", nn.ReLU()),
            ("fc2", nn.Linear(neck, channels, bias=bias)),
        ]))

    def forward(self, x: Tensor) -> Tensor:
        a = torch.sigmoid(self.body(x.mean(dim=(2, 3))) + self.body(x.amax(dim=(2, 3))))
        return x * a[..., None, None]


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 7, bias: bool = True):
        super().__init__()
        self.body = nn.Conv2d(2, 1, kernel_size, 1, kernel_size // 2, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        a = torch.sigmoid(self.body(torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], 1)))
        return x * a


class RobustCBAM(nn.Sequential):
    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7, bias: bool = True):
        super().__init__(OrderedDict([
            ("channel_attention", ChannelAttention(channels, reduction, bias)),
            ("spatial_attention", SpatialAttention(kernel_size, bias)),
        ]))


class DropPath(nn.Module):
    """Identity at inference; `keep_prob` is a persistent buffer in the checkpoint."""

    def __init__(self, drop_probability: float):
        super().__init__()
        self.register_buffer("keep_prob", torch.tensor(1.0 - drop_probability))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or float(self.keep_prob) == 1.0:
            return x
        mask = torch.bernoulli(self.keep_prob.expand((len(x),) + (1,) * (x.ndim - 1)))
        return x / self.keep_prob * mask


class StripProjector(nn.Sequential):
    """RobustCBAM -> AdaptiveMaxPool2d(1) -> flatten -> Linear(C, d, no bias) -> BatchNorm1d(d) -> DropPath."""

    def __init__(self, in_channels: int, dim_out: int, drop_path: float = 0.1, reduction: int = 16):
        super().__init__(OrderedDict([
            ("cbam", RobustCBAM(in_channels, reduction, bias=True)),
            ("gmp", nn.AdaptiveMaxPool2d(1)),
            ("flatten", nn.Flatten(1)),
            ("linear", nn.Linear(in_channels, dim_out, bias=False)),
            ("norm", nn.BatchNorm1d(dim_out)),
            ("drop_path", DropPath(drop_path)),
        ]))


def num_split(num: int, parts: int) -> list[int]:
    """SEAS split: floor(num/parts) each, the remainder added to the first ones (171,171,170)."""
    out = [num // parts] * parts
    for i in range(num % parts):
        out[i] += 1
    return out


class Branch(nn.Module):
    def __init__(self, in_channels: int, dim_out: int, num_strips: int, drop_path: float, reduction: int):
        super().__init__()
        self.strip_projectors = nn.ModuleList(
            StripProjector(in_channels, d, drop_path, reduction) for d in num_split(dim_out, num_strips))

    def forward(self, x: Tensor) -> Tensor:
        strips = x.split(num_split(x.shape[2], len(self.strip_projectors)), dim=2)
        return torch.cat([p(s) for p, s in zip(self.strip_projectors, strips)], dim=1)


class MultiGranularityEmbedding(nn.Module):
    """Branch b (b = 1..n) splits H into b horizontal strips; dims num_split(dim_out, n)."""

    def __init__(self, in_channels: int, dim_out: int, num_branches: int = 3, drop_path: float = 0.1,
                 reduction: int = 16):
        super().__init__()
        self.branches = nn.ModuleList(
            Branch(in_channels, d, n, drop_path, reduction)
            for n, d in enumerate(num_split(dim_out, num_branches), 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class Embedder(nn.Module):
    def __init__(self, in_feat_names: list[str], in_channels_list: list[int], dim_out: int,
                 num_branches: int, drop_path: float, reduction: int):
        super().__init__()
        self.in_feat_names = list(in_feat_names)
        self.encoders = nn.ModuleList(
            MultiGranularityEmbedding(c, d, num_branches, drop_path, reduction)
            for c, d in zip(in_channels_list, num_split(dim_out, len(in_channels_list))))

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        return torch.cat([e(feats[n]) for e, n in zip(self.encoders, self.in_feat_names)], dim=1)


class SFAN(nn.Module):
    """Semantic feature alignment: F + alpha * (sum_c softmax(w)_c S_c ⊙ F - F),
    S = softmax over parts of cos(F[:, :, y, x], text_c)."""

    def __init__(self, num_parts: int = 4):
        super().__init__()
        self.part_weights = nn.Parameter(torch.ones(num_parts))
        self.alpha = nn.Parameter(torch.tensor(0.0))
        self.num_parts = num_parts

    def forward(self, x: Tensor, text_embeds: Tensor) -> Tensor:
        n, c, h, w = x.shape
        f = F.normalize(x, dim=1).reshape(n, c, h * w).transpose(1, 2)       # [N,HW,C]
        t = F.normalize(text_embeds.to(x.dtype), dim=1)                      # [P,C]
        s = torch.softmax(torch.matmul(f, t.t()), dim=-1)                    # [N,HW,P]
        wts = torch.softmax(self.part_weights, dim=0)                        # [P]
        # sum_c w_c S_c ⊙ F == (S @ w) ⊙ F
        gate = torch.matmul(s, wts.to(x.dtype)).reshape(n, 1, h, w)
        return x + self.alpha * (gate * x - x)


class OIMBuffers(nn.Module):
    """The OIM loss' persistent state (`lut`, `cq`); unused at inference."""

    def __init__(self, num_features: int, num_pids: int, cq_size: int):
        super().__init__()
        self.register_buffer("lut", torch.zeros(num_pids, num_features))
        self.register_buffer("cq", torch.zeros(cq_size, num_features))


def _roi_scale(feature_hw: tuple[int, int], image_hw: tuple[int, int]) -> float:
    """MultiScaleRoIAlign._infer_scale: 2 ** round(log2(feature / image)), equal for H and W."""
    scales = [2.0 ** round(math.log2(f / i)) for f, i in zip(feature_hw, image_hw)]
    if scales[0] != scales[1]:
        raise ValueError(f"unequal RoI scales {scales}")
    return scales[0]


class FastRCNNRoIHeads(nn.Module):
    def __init__(self, cfg: DiffPSConfig):
        super().__init__()
        self.cfg = cfg
        self.box_head = ResNetHead(cfg.proj_dim, cfg.head_width, down_sampling=True)
        self.box_predictor = BoxPredictor(self.box_head.out_channels, 2)

    def predict(self, feat: Tensor, proposals: list[Tensor], image_hw: tuple[int, int]):
        scale = _roi_scale(feat.shape[-2:], image_hw)
        rois = roi_align(feat, proposals, self.cfg.det_roi_size, scale, self.cfg.roi_sampling_ratio, False)
        return self.box_predictor(self.box_head(rois))

    def postprocess(self, cls_logits: Tensor, box_regression: Tensor, proposals: list[Tensor],
                    image_hw: tuple[int, int]) -> tuple[list[Tensor], list[Tensor]]:
        cfg = self.cfg
        boxes_out, scores_out = [], []
        counts = [len(p) for p in proposals]
        for logits, regs, props in zip(cls_logits.split(counts), box_regression.split(counts), proposals):
            boxes = decode_deltas(regs, props, cfg.det_bbox_weights, TORCHVISION_BBOX_XFORM_CLIP)
            boxes = clip_boxes(boxes, image_hw)
            keep = box_ops.remove_small_boxes(boxes, cfg.det_min_size)
            boxes, logits = boxes[keep], logits[keep]
            fg = torch.softmax(logits, dim=-1)[:, 1]
            keep = torch.nonzero(fg > cfg.det_score_thresh).view(-1)
            boxes, fg = boxes[keep], fg[keep]
            keep = box_ops.nms(boxes, fg, cfg.det_nms_thresh)[: cfg.det_per_img]
            boxes_out.append(boxes[keep])
            scores_out.append(fg[keep])
        return boxes_out, scores_out


class ReIdRoIHeads(nn.Module):
    def __init__(self, cfg: DiffPSConfig):
        super().__init__()
        self.cfg = cfg
        head = ResNetHead(cfg.proj_dim, cfg.head_width, down_sampling=True)
        self.enhancer = Pack(head)
        self.embedder = Embedder(self.enhancer.out_feat_names, self.enhancer.out_channels_list,
                                 cfg.dim_identity, cfg.mge_branches, cfg.drop_path, cfg.cbam_reduction)
        self.reid_loss = OIMBuffers(cfg.dim_identity, cfg.oim_num_pids, cfg.oim_cq_size)
        self.sfan = SFAN(cfg.num_parts)

    def roi_features(self, feat: Tensor, boxes: list[Tensor], image_hw: tuple[int, int]) -> Tensor:
        scale = _roi_scale(feat.shape[-2:], image_hw)
        return roi_align(feat, boxes, self.cfg.reid_roi_size, scale, self.cfg.roi_sampling_ratio, False)

    def embed_rois(self, rois: Tensor, text_embeds: Tensor) -> Tensor:
        """RoI features [N, D, 24, 12] -> L2-normalised embeddings [N, dim_identity]."""
        x = self.sfan(rois, text_embeds)
        return F.normalize(self.embedder(self.enhancer(x)), dim=-1)


# --------------------------------------------------------------------------------------
# Top level
# --------------------------------------------------------------------------------------


class DiffPS(nn.Module):
    """DiffPS heads. `forward_features(taps)` = the eval-mode DiffPS.forward after the UNet.

    Boxes are in the coordinates of the fixed-size network input (cfg.image_size, 1280x1280);
    pass `original_sizes` to rescale them like GeneralizedRCNNTransform.postprocess.
    """

    def __init__(self, cfg: DiffPSConfig | None = None, small: bool = False):
        super().__init__()
        if cfg is None:
            cfg = DiffPSConfig.small() if small else DiffPSConfig()
        if cfg.text_dim != cfg.proj_dim:
            raise ValueError("SFAN needs text_dim == proj_dim")
        self.cfg = cfg
        # [head, shirts, pants, shoes] token-1 CLIP embeddings (precomputed; zeros until loaded)
        self.register_buffer("text_embeds", torch.zeros(cfg.num_parts, cfg.text_dim))
        self.detection_aggregation_network = DetectionAggregationNetwork(cfg.tap_channels[2], cfg.proj_dim)
        self.reid_frq_aggregation_network = FrqAggregationNetwork(cfg.tap_channels, cfg.proj_dim)
        self.dgrpn = DGRPNModulator(cfg.dgrpn_tau, cfg.dgrpn_delta, cfg.dgrpn_peak_window,
                                    cfg.dgrpn_neigh_window, cfg.dgrpn_topk, cfg.dgrpn_init_beta,
                                    cfg.dgrpn_init_gamma)
        anchor_generator = AnchorGenerator(sizes=(tuple(cfg.anchor_sizes),),
                                           aspect_ratios=(tuple(cfg.aspect_ratios),))
        rpn_head = RPNHead(cfg.proj_dim, anchor_generator.num_anchors_per_location()[0])
        self.rpn = RegionProposalNetwork(
            anchor_generator, rpn_head, fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256,
            positive_fraction=0.5,
            pre_nms_top_n=dict(training=12000, testing=cfg.rpn_pre_nms_top_n),
            post_nms_top_n=dict(training=2000, testing=cfg.rpn_post_nms_top_n),
            nms_thresh=cfg.rpn_nms_thresh, score_thresh=cfg.rpn_score_thresh)
        self.rpn.min_size = cfg.rpn_min_size
        self.detection_roi_heads = FastRCNNRoIHeads(cfg)
        self.reid_roi_heads = ReIdRoIHeads(cfg)
        self.eval()

    # --- pieces (also used by the ONNX exports) ---

    def aggregate(self, taps: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Taps -> (detection features before DGRPN, re-ID features)."""
        det = self.detection_aggregation_network(taps[DET_TAP].float())
        reid = self.reid_frq_aggregation_network({k: taps[k].float() for k in REID_TAPS})
        return det, reid

    def rpn_proposals(self, feat_det: Tensor, image_hw: tuple[int, int]):
        """torchvision RegionProposalNetwork.forward (eval), keeping the head outputs."""
        b = feat_det.shape[0]
        dummy = feat_det.new_zeros(()).expand(b, 3, *image_hw)
        images = ImageList(dummy, [tuple(image_hw)] * b)
        feats = [feat_det]
        objectness, deltas = self.rpn.head(feats)
        anchors = self.rpn.anchor_generator(images, feats)
        num_anchors_per_level = [o[0].numel() for o in objectness]
        obj_flat, deltas_flat = concat_box_prediction_layers(objectness, deltas)
        proposals = self.rpn.box_coder.decode(deltas_flat.detach(), anchors).view(b, -1, 4)
        boxes, scores = self.rpn.filter_proposals(proposals, obj_flat, images.image_sizes,
                                                  num_anchors_per_level)
        return {"objectness": objectness[0], "deltas": deltas[0], "anchors": anchors[0],
                "proposals": boxes, "proposal_scores": scores}

    @torch.no_grad()
    def forward_features(self, taps: dict[str, Tensor], original_sizes: list[tuple[int, int]] | None = None,
                         return_intermediates: bool = False) -> dict[str, Any]:
        if self.training:
            raise RuntimeError("DiffPS reference is inference-only; call .eval()")
        cfg = self.cfg
        image_hw = tuple(cfg.image_size)
        det_agg, feat_reid = self.aggregate(taps)
        hw = tuple(det_agg.shape[-2:])
        attn = get_attention_map(taps[CROSS_MAP_TAP], cfg.attn_head, cfg.attn_token, hw)
        feat_det, dg = self.dgrpn(det_agg, attn, return_aux=True)
        rpn = self.rpn_proposals(feat_det, image_hw)
        cls_logits, box_reg = self.detection_roi_heads.predict(feat_det, rpn["proposals"], image_hw)
        boxes, scores = self.detection_roi_heads.postprocess(cls_logits, box_reg, rpn["proposals"], image_hw)
        reid_rois = self.reid_roi_heads.roi_features(feat_reid, boxes, image_hw)
        emb = self.reid_roi_heads.embed_rois(reid_rois, self.text_embeds)
        embeddings = list(emb.split([len(bx) for bx in boxes]))
        if original_sizes is not None:
            boxes = [resize_boxes(bx, image_hw, o) for bx, o in zip(boxes, original_sizes)]
        out: dict[str, Any] = {"boxes": boxes, "scores": scores, "embeddings": embeddings}
        if return_intermediates:
            out.update({
                "det_agg": det_agg, "feat_reid": feat_reid, "attn_map": attn, "feat_det": feat_det,
                "dgrpn": dg, "rpn": rpn, "det_cls_logits": cls_logits, "det_box_regression": box_reg,
                "reid_rois": reid_rois,
            })
        return out

    @torch.no_grad()
    def embed_boxes(self, taps: dict[str, Tensor], boxes: list[Tensor]) -> list[Tensor]:
        """Query mode (`use_gt_as_det=True`): embeddings of given boxes (network-input coordinates)."""
        _, feat_reid = self.aggregate(taps)
        rois = self.reid_roi_heads.roi_features(feat_reid, boxes, tuple(self.cfg.image_size))
        return list(self.reid_roi_heads.embed_rois(rois, self.text_embeds).split([len(b) for b in boxes]))


def resize_boxes(boxes: Tensor, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> Tensor:
    """torchvision transform.resize_boxes: x * (W_to / W_from), y * (H_to / H_from)."""
    rh = torch.tensor(to_hw[0], dtype=torch.float32) / torch.tensor(from_hw[0], dtype=torch.float32)
    rw = torch.tensor(to_hw[1], dtype=torch.float32) / torch.tensor(from_hw[1], dtype=torch.float32)
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack([x1 * rw, y1 * rh, x2 * rw, y2 * rh], dim=1)


def load_diffps_checkpoint(path: str, cfg: DiffPSConfig | None = None, strict: bool = True) -> DiffPS:
    """Load a DiffPS training checkpoint (`{'model': state_dict, ...}`) or a plain state dict /
    safetensors file. OIM buffer sizes are taken from the file."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file
        sd = load_file(path)
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        sd = obj["model"] if isinstance(obj, dict) and "model" in obj else obj
    cfg = cfg or DiffPSConfig()
    lut, cq = sd.get("reid_roi_heads.reid_loss.lut"), sd.get("reid_roi_heads.reid_loss.cq")
    if lut is not None and cq is not None:
        cfg = replace(cfg, oim_num_pids=lut.shape[0], oim_cq_size=cq.shape[0])
    model = DiffPS(cfg)
    model.load_state_dict(sd, strict=strict)
    if not haar_buffers_ok(model):
        raise ValueError("DWT/IDWT buffers in the checkpoint are not Haar filters")
    return model.eval()


# --------------------------------------------------------------------------------------
# Hooking a diffusers UNet (generic-diffusion-feature's FeatureGatherer semantics)
# --------------------------------------------------------------------------------------


class _StopUNet(Exception):
    pass


class _ProbsAttnProcessor:
    """Non-fused attention (baddbmm + softmax, like diffusers AttnProcessor) that also stores
    the probabilities reshaped to [B, heads, HW, T]. Used for the one attn2 whose map is tapped."""

    def __init__(self, store: dict, name: str):
        self.store, self.name = store, name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        if hidden_states.dim() != 3 or attn.group_norm is not None or attn.spatial_norm is not None \
                or attn.residual_connection or attention_mask is not None:
            raise NotImplementedError("tap processor supports the plain SD transformer attn2 only")
        b, n, _ = hidden_states.shape
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if attn.norm_cross:
            ctx = attn.norm_encoder_hidden_states(ctx)
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(ctx))
        v = attn.head_to_batch_dim(attn.to_v(ctx))
        probs = attn.get_attention_scores(q, k, None)          # [B*heads, HW, T]
        self.store[self.name] = probs.reshape(b, attn.heads, n, -1)
        out = attn.batch_to_head_dim(torch.bmm(probs, v))
        out = attn.to_out[1](attn.to_out[0](out))
        return out / attn.rescale_output_factor


def _parse_tap(name: str) -> tuple[int, int, str]:
    parts = name.split("-")
    # up-level{i}-repeat{j}-vit-block0-{self-q|cross-map}
    if len(parts) != 7 or parts[0] != "up" or parts[3] != "vit" or parts[4] != "block0":
        raise ValueError(f"unsupported tap name {name!r}")
    return int(parts[1][5:]), int(parts[2][6:]), parts[5] + "-" + parts[6]


@torch.no_grad()
def unet_taps(unet: nn.Module, sample: Tensor, timestep: Tensor | float, encoder_hidden_states: Tensor,
              names: tuple[str, ...] = ALL_TAPS, early_exit: bool = True,
              dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Run a diffusers UNet2DConditionModel and return the requested DiffPS taps.

    `up-level{i}-repeat{j}-vit-block0-self-{q,k,v}` = unet.up_blocks[i].attentions[j]
    .transformer_blocks[0].attn1.to_{q,k,v}(norm1(h)) rearranged [B,HW,C] -> [B,C,H,W];
    `...-cross-map` = that block's attn2 softmax probabilities [B, heads, HW, 77].
    With early_exit the UNet stops as soon as every tap is captured (DiffPS needs nothing
    after up_blocks[3].attentions[1].attn1.to_k). `dtype` casts the taps (DiffPS stores fp16).
    """
    store: dict[str, Tensor] = {}
    hw: dict[tuple[int, int], tuple[int, int]] = {}
    handles = []
    saved_processors = {}
    wanted = set(names)

    def check_done():
        if early_exit and wanted.issubset(store.keys()):
            raise _StopUNet

    for name in names:
        level, rep, kind = _parse_tap(name)
        tr = unet.up_blocks[level].attentions[rep]
        block = tr.transformer_blocks[0]
        if (level, rep) not in hw:
            def pre_hook(mod, args, kwargs, key=(level, rep)):
                x = args[0] if args else kwargs["hidden_states"]
                hw[key] = tuple(x.shape[-2:])
            handles.append(tr.register_forward_pre_hook(pre_hook, with_kwargs=True))
        if kind.startswith("self-"):
            lin = getattr(block.attn1, "to_" + kind[-1])

            def hook(mod, inp, out, key=(level, rep), nm=name):
                h, w = hw[key]
                store[nm] = out.reshape(out.shape[0], h, w, out.shape[-1]).permute(0, 3, 1, 2).contiguous()
                check_done()
            handles.append(lin.register_forward_hook(hook))
        elif kind == "cross-map":
            saved_processors[name] = block.attn2.processor
            block.attn2.set_processor(_ProbsAttnProcessor(store, name))

            def hook2(mod, inp, out):
                check_done()
            handles.append(block.attn2.register_forward_hook(hook2))
        else:
            raise ValueError(f"unsupported tap kind {kind!r}")
    try:
        unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)
    except _StopUNet:
        pass
    finally:
        for h in handles:
            h.remove()
        for name, proc in saved_processors.items():
            level, rep, _ = _parse_tap(name)
            unet.up_blocks[level].attentions[rep].transformer_blocks[0].attn2.set_processor(proc)
    missing = wanted - store.keys()
    if missing:
        raise RuntimeError(f"taps not produced: {sorted(missing)}")
    out = {k: store[k] for k in names}
    if dtype is not None:
        out = {k: v.to(dtype) for k, v in out.items()}
    return out
