"""PSDiff (Jia et al., TCSVT 2025): person search as dual denoising of boxes and re-ID embeddings.

PyTorch reference written from the PSDiff paper (shared/seeds/001_…) on top of the
DiffusionDet structure (reference notes §2.1). No PSDiff code or weights are public, so the
parts the paper leaves open are decisions of this reference; each is marked "CHOICE" below
and summarised in tools/psref/README.md. Names follow DiffusionDet wherever a part is
analogous (`head.time_mlp.{1,3}`, `head.head_series.{k}.{self_attn, inst_interact.*, linear1,
linear2, norm1..3, block_time_mlp.1, cls_module, reg_module, class_logits, bboxes_delta}`,
the diffusion buffers), so DiffusionDet checkpoints load partially (backbone, time_mlp,
attention, dynamic conv, FFN, cls/reg towers).

Collaborative Denoising Layer (one `head_series` entry), for N noisy boxes b_t and
embeddings e_t of one image:
  F_d  = RoIAlignV2_7x7(p2..p5, boxes)                           [N, S*S, C]
  pro  = mean_{S*S}(F_d);  pro = norm1(pro + SelfAttn(pro))      attention among the N proposals
  F_r  = clamp(e_t, -s2, s2) / s2                                [N, C]  (CHOICE: as boxes are)
  dyn  = DynamicConv(kernels = dynamic_layer(F_r), F_d)          kernels from the re-ID side
  Fd'  = norm2(pro + dyn);  Fd' = norm3(Fd' + FFN(Fd'))
  Fr'  = norm4(F_r + CrossAttn(q = F_r, k = v = F_d tokens of the same box))
  F_c  = [Fd', Fr'] * (scale + 1) + shift,  (scale, shift) = block_time_mlp(time_mlp(t))
  ê0   = reid_embed(reid_module(F_c))                            cascaded: embeddings first,
  F_o  = ê0 ; logits = class_logits(cls_module(F_o)); b̂0 = apply_deltas(bboxes_delta(reg_module(F_o)), boxes)
A second series head (if any) gets (b̂0.detach(), normalize(ê0)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from .backbones import ResNetFPN
from .boxops import DIFFUSIONDET_SCALE_CLAMP, box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, clip_boxes, decode_deltas, nms


@dataclass
class PSDiffConfig:
    hidden_dim: int = 256          # C (RoI feature channels = re-ID embedding dim, paper F_r(N, C))
    dim_feedforward: int = 2048
    nheads: int = 8                # attention heads
    num_heads: int = 1             # CHOICE: CDLs in head_series (paper: "a single denoising layer")
    num_cls: int = 1
    num_reg: int = 3
    num_reid: int = 1              # [Linear, LN, ReLU] blocks before reid_embed (first maps 2C -> C)
    num_dynamic: int = 2
    dim_dynamic: int = 64
    num_classes: int = 1           # person (sigmoid / focal)
    prior_prob: float = 0.01
    pooler_resolution: int = 7
    pooler_sampling_ratio: int = 2
    pooler_canonical_size: float = 224.0
    pooler_canonical_level: int = 4
    fpn_strides: tuple[int, int, int, int] = (4, 8, 16, 32)
    num_proposals: int = 300       # N_test
    timesteps: int = 1000
    box_scale: float = 2.0         # s1
    emb_scale: float = 3.0         # s2
    ddim_eta: float = 1.0
    box_renewal: bool = True
    renewal_threshold: float = 0.5
    use_ensemble: bool = True
    ensemble_include_last: bool = True   # CHOICE: DiffusionDet's snapshot drops the last step
    use_nms: bool = True
    nms_thresh: float = 0.5
    backbone: str | None = "resnet50"
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    @classmethod
    def small(cls, **overrides: Any) -> "PSDiffConfig":
        """Head-only test instance: hidden 64, 2 attention heads, 1 CDL, N = 50, canonical box 32 px
        (so a 128 px image uses all of p2..p5). ~0.5 M parameters."""
        cfg = cls(hidden_dim=64, dim_feedforward=128, nheads=2, num_heads=1, dim_dynamic=8,
                  num_proposals=50, pooler_canonical_size=32.0, backbone=None)
        return replace(cfg, **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PSDiffConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# --------------------------------------------------------------------------------------
# Diffusion schedule (DiffusionDet detector.py)
# --------------------------------------------------------------------------------------


def cosine_beta_schedule(timesteps: int, s: float = 0.008) -> Tensor:
    steps = timesteps + 1
    x = torch.linspace(0, timesteps, steps, dtype=torch.float64)
    ac = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    ac = ac / ac[0]
    betas = 1 - (ac[1:] / ac[:-1])
    return torch.clip(betas, 0, 0.999)


SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
                    "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2")


def schedule_tensors(timesteps: int = 1000) -> dict[str, Tensor]:
    """float64 computation, stored float32 (as DiffusionDet's register_buffer)."""
    betas = cosine_beta_schedule(timesteps)
    alphas = 1.0 - betas
    ac = torch.cumprod(alphas, dim=0)
    ac_prev = F.pad(ac[:-1], (1, 0), value=1.0)
    pv = betas * (1.0 - ac_prev) / (1.0 - ac)
    d = {
        "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": torch.sqrt(ac), "sqrt_one_minus_alphas_cumprod": torch.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": torch.log(1.0 - ac), "sqrt_recip_alphas_cumprod": torch.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": torch.sqrt(1.0 / ac - 1), "posterior_variance": pv,
        "posterior_log_variance_clipped": torch.log(pv.clamp(min=1e-20)),
        "posterior_mean_coef1": betas * torch.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * torch.sqrt(alphas) / (1.0 - ac),
    }
    return {k: v.to(torch.float32) for k, v in d.items()}


def ddim_coefficients(abar: float, abar_next: float, eta: float = 1.0) -> tuple[float, float, float]:
    """(sqrt(a'), c, sigma) of x' = x0 sqrt(a') + c eps + sigma z, rounded to float32.

    sigma = eta sqrt((1 - a/a')(1 - a')/(1 - a)),  c = sqrt(max(1 - a' - sigma^2, 0)), evaluated in
    float64 from the float32 buffer values a = alphas_cumprod[t], a' = alphas_cumprod[t'].
    CHOICE: DiffusionDet evaluates this in float32, where 1 - a' - sigma^2 cancels to +-6e-8 for
    (999 -> 499) (a = 2.4e-9): c becomes NaN or 0 or 2.4e-4 depending on rounding (exact 3.6e-5).
    """
    sigma = eta * math.sqrt((1.0 - abar / abar_next) * (1.0 - abar_next) / (1.0 - abar))
    c = math.sqrt(max(1.0 - abar_next - sigma * sigma, 0.0))
    f = lambda v: float(torch.tensor(v, dtype=torch.float32))  # noqa: E731
    return f(math.sqrt(abar_next)), f(c), f(sigma)


def ddim_time_pairs(steps: int, timesteps: int = 1000) -> list[tuple[int, int]]:
    """reversed(int(linspace(-1, T-1, steps+1))) paired: 1 -> [(999,-1)], 4 -> (999,749),(749,499),(499,249),(249,-1)."""
    times = torch.linspace(-1, timesteps - 1, steps=steps + 1)
    times = list(reversed(times.int().tolist()))
    return list(zip(times[:-1], times[1:]))


# --------------------------------------------------------------------------------------
# Head
# --------------------------------------------------------------------------------------


class SinusoidalPositionEmbeddings(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, time: Tensor) -> Tensor:
        half = self.dim // 2
        f = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=time.device, dtype=torch.float32) * -f)
        e = time.float()[:, None] * freqs[None, :]
        return torch.cat((e.sin(), e.cos()), dim=-1)


class MultiLevelRoIPooler(nn.Module):
    """Detectron2 ROIPooler(ROIAlignV2) over p2..p5: level = clamp(floor(4 + log2(sqrt(area)/224 + 1e-8)), 2, 5),
    RoIAlign(aligned=True, sampling_ratio=2, spatial_scale=1/stride). Every level is pooled for
    every box and the assigned one selected with Where, which keeps the graph static for ONNX;
    results equal the per-level gather."""

    def __init__(self, resolution: int, strides: tuple[int, ...], sampling_ratio: int, canonical_size: float,
                 canonical_level: int):
        super().__init__()
        self.resolution, self.strides, self.sampling_ratio = resolution, tuple(strides), sampling_ratio
        self.canonical_size, self.canonical_level = canonical_size, canonical_level
        self.min_level = int(round(math.log2(strides[0])))
        self.max_level = int(round(math.log2(strides[-1])))

    def levels(self, boxes: Tensor) -> Tensor:
        area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
        lvl = torch.floor(self.canonical_level + torch.log2(torch.sqrt(area) / self.canonical_size + 1e-8))
        return torch.clamp(lvl, min=self.min_level, max=self.max_level) - self.min_level

    def forward(self, features: list[Tensor], boxes: Tensor) -> Tensor:
        """features: len-4 list [B,C,H_l,W_l]; boxes [B,N,4] xyxy in image pixels -> [B*N, C, S, S]."""
        b, n = boxes.shape[:2]
        flat = boxes.reshape(b * n, 4)
        bidx = torch.arange(b, device=boxes.device, dtype=boxes.dtype).repeat_interleave(n).unsqueeze(1)
        rois = torch.cat([bidx, flat], dim=1)
        lvl = self.levels(flat)
        out = None
        for i, (feat, stride) in enumerate(zip(features, self.strides)):
            pooled = roi_align(feat, rois, (self.resolution, self.resolution), 1.0 / stride,
                               self.sampling_ratio, True)
            out = pooled if out is None else torch.where((lvl == i)[:, None, None, None], pooled, out)
        return out


class DynamicConv(nn.Module):
    """Sparse R-CNN / DiffusionDet instance interaction: kernels from one [N, C] input,
    applied to the S*S RoI tokens: bmm(C->dd) LN ReLU bmm(dd->C) LN ReLU, flatten (token-major),
    out_layer Linear(S*S*C, C), LN, ReLU."""

    def __init__(self, hidden_dim: int, dim_dynamic: int, num_dynamic: int, resolution: int):
        super().__init__()
        self.hidden_dim, self.dim_dynamic = hidden_dim, dim_dynamic
        self.num_params = hidden_dim * dim_dynamic
        self.dynamic_layer = nn.Linear(hidden_dim, num_dynamic * self.num_params)
        self.norm1 = nn.LayerNorm(dim_dynamic)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.out_layer = nn.Linear(hidden_dim * resolution ** 2, hidden_dim)
        self.norm3 = nn.LayerNorm(hidden_dim)

    def forward(self, kernel_src: Tensor, roi_tokens: Tensor) -> Tensor:
        """kernel_src [1, K, C]; roi_tokens [S*S, K, C] -> [K, C]."""
        feats = roi_tokens.permute(1, 0, 2)
        params = self.dynamic_layer(kernel_src).permute(1, 0, 2)
        p1 = params[:, :, : self.num_params].reshape(-1, self.hidden_dim, self.dim_dynamic)
        p2 = params[:, :, self.num_params: 2 * self.num_params].reshape(-1, self.dim_dynamic, self.hidden_dim)
        feats = F.relu(self.norm1(torch.bmm(feats, p1)))
        feats = F.relu(self.norm2(torch.bmm(feats, p2)))
        return F.relu(self.norm3(self.out_layer(feats.flatten(1))))


def _tower(num: int, in_dim: int, dim: int) -> nn.ModuleList:
    layers: list[nn.Module] = []
    for i in range(num):
        layers += [nn.Linear(in_dim if i == 0 else dim, dim, bias=False), nn.LayerNorm(dim), nn.ReLU()]
    return nn.ModuleList(layers)


class CDL(nn.Module):
    """Collaborative Denoising Layer (one `head.head_series.{k}`); see the module docstring."""

    def __init__(self, cfg: PSDiffConfig):
        super().__init__()
        c = cfg.hidden_dim
        self.d_model = c
        self.self_attn = nn.MultiheadAttention(c, cfg.nheads, dropout=0.0)
        self.inst_interact = DynamicConv(c, cfg.dim_dynamic, cfg.num_dynamic, cfg.pooler_resolution)
        self.linear1 = nn.Linear(c, cfg.dim_feedforward)
        self.linear2 = nn.Linear(cfg.dim_feedforward, c)
        self.norm1 = nn.LayerNorm(c)
        self.norm2 = nn.LayerNorm(c)
        self.norm3 = nn.LayerNorm(c)
        # PSDiff additions: cross-attention with the re-ID features as queries
        self.cross_attn = nn.MultiheadAttention(c, cfg.nheads, dropout=0.0)
        self.norm4 = nn.LayerNorm(c)
        # time conditioning of F_c (2C): SiLU + Linear(4C, 2 * 2C)
        self.block_time_mlp = nn.Sequential(nn.SiLU(), nn.Linear(4 * c, 4 * c))
        # cascaded prediction: F_c -> ê0 -> (cls, boxes)
        self.reid_module = _tower(cfg.num_reid, 2 * c, c)
        self.reid_embed = nn.Linear(c, c)
        self.cls_module = _tower(cfg.num_cls, c, c)
        self.reg_module = _tower(cfg.num_reg, c, c)
        self.class_logits = nn.Linear(c, cfg.num_classes)
        self.bboxes_delta = nn.Linear(c, 4)
        self.bbox_weights = (2.0, 2.0, 1.0, 1.0)
        self.scale_clamp = DIFFUSIONDET_SCALE_CLAMP

    def forward_rois(self, rois: Tensor, boxes: Tensor, emb_in: Tensor, time_emb: Tensor):
        """rois [B*N, C, S, S] (pooled at `boxes`), boxes [B,N,4], emb_in [B,N,C], time_emb [B,4C]
        -> class logits [B,N,K], boxes [B,N,4], ê0 [B,N,C]."""
        b, n = boxes.shape[:2]
        c = self.d_model
        roi_tokens = rois.reshape(b * n, c, -1).permute(2, 0, 1)               # [S*S, B*N, C]
        pro = rois.reshape(b, n, c, -1).mean(-1).permute(1, 0, 2)               # [N, B, C]
        pro = self.norm1(pro + self.self_attn(pro, pro, pro, need_weights=False)[0])
        pro = pro.permute(1, 0, 2).reshape(1, b * n, c)
        f_r = emb_in.reshape(1, b * n, c)
        f_d = self.norm2(pro + self.inst_interact(f_r, roi_tokens))
        f_d = self.norm3(f_d + self.linear2(F.relu(self.linear1(f_d))))
        f_r = self.norm4(f_r + self.cross_attn(f_r, roi_tokens, roi_tokens, need_weights=False)[0])
        f_c = torch.cat([f_d, f_r], dim=-1).reshape(b * n, 2 * c)
        scale, shift = torch.repeat_interleave(self.block_time_mlp(time_emb), n, dim=0).chunk(2, dim=1)
        f_c = f_c * (scale + 1) + shift
        x = f_c
        for layer in self.reid_module:
            x = layer(x)
        emb = self.reid_embed(x)
        cls, reg = emb, emb
        for layer in self.cls_module:
            cls = layer(cls)
        for layer in self.reg_module:
            reg = layer(reg)
        logits = self.class_logits(cls)
        deltas = self.bboxes_delta(reg)
        pred = decode_deltas(deltas, boxes.reshape(b * n, 4), self.bbox_weights, self.scale_clamp)
        return logits.reshape(b, n, -1), pred.reshape(b, n, 4), emb.reshape(b, n, c)


class PSDiffHead(nn.Module):
    """`head`: time_mlp + head_series of CDLs (+ the parameter-free RoI pooler)."""

    def __init__(self, cfg: PSDiffConfig):
        super().__init__()
        c = cfg.hidden_dim
        self.cfg = cfg
        self.box_pooler = MultiLevelRoIPooler(cfg.pooler_resolution, cfg.fpn_strides, cfg.pooler_sampling_ratio,
                                              cfg.pooler_canonical_size, cfg.pooler_canonical_level)
        self.head_series = nn.ModuleList(CDL(cfg) for _ in range(cfg.num_heads))
        self.time_mlp = nn.Sequential(SinusoidalPositionEmbeddings(c), nn.Linear(c, 4 * c), nn.GELU(),
                                      nn.Linear(4 * c, 4 * c))
        self._reset_parameters()

    def _reset_parameters(self):
        bias = -math.log((1 - self.cfg.prior_prob) / self.cfg.prior_prob)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for cdl in self.head_series:
            nn.init.constant_(cdl.class_logits.bias, bias)

    def forward(self, features: list[Tensor], boxes: Tensor, emb_in: Tensor, t: Tensor):
        """features p2..p5; boxes [B,N,4] (pixels, xyxy); emb_in [B,N,C]; t [B] (timestep).
        Returns the per-CDL lists (logits, boxes, ê0), last = final."""
        time_emb = self.time_mlp(t)
        outs = []
        for cdl in self.head_series:
            rois = self.box_pooler(features, boxes)
            logits, boxes_new, emb = cdl.forward_rois(rois, boxes, emb_in, time_emb)
            outs.append((logits, boxes_new, emb))
            boxes = boxes_new.detach()
            emb_in = F.normalize(emb, dim=-1)   # CHOICE: the next CDL sees normalize(ê0)
        return outs


# --------------------------------------------------------------------------------------
# Model + DDIM sampler
# --------------------------------------------------------------------------------------


def noise_keys(steps: int) -> list[str]:
    """Order in which `draw_noise` consumes the generator."""
    keys = ["box_T", "emb_T"]
    for k in range(steps - 1):
        keys += [f"box_ddim_{k}", f"emb_ddim_{k}", f"box_renew_{k}", f"emb_renew_{k}"]
    return keys


def draw_noise(batch: int, num_proposals: int, dim: int, steps: int,
               generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """All Gaussian noise a `steps`-step sampling may use, drawn up front in `noise_keys` order,
    each [B, N, 4] (box) or [B, N, C] (embedding), float32 on CPU. A step that keeps r boxes uses
    rows [:r] of box/emb_ddim_k and rows [:N-r] of box/emb_renew_k. Prefix property: the draws for
    `steps` are a prefix of those for more steps with the same seed."""
    out = {}
    for k in noise_keys(steps):
        shape = (batch, num_proposals, 4 if k.startswith("box") else dim)
        out[k] = torch.randn(shape, generator=generator, dtype=torch.float32)
    return out


class PSDiff(nn.Module):
    def __init__(self, cfg: PSDiffConfig | None = None, small: bool = False):
        super().__init__()
        if cfg is None:
            cfg = PSDiffConfig.small() if small else PSDiffConfig()
        self.cfg = cfg
        if cfg.backbone is not None:
            if cfg.backbone not in ("resnet50", "resnet18"):
                raise ValueError("PSDiff backbone: resnet50 | resnet18 | None (features given)")
            self.backbone = ResNetFPN(50 if cfg.backbone == "resnet50" else 18, cfg.hidden_dim)
        for k, v in schedule_tensors(cfg.timesteps).items():
            self.register_buffer(k, v)
        self.head = PSDiffHead(cfg)
        self.eval()

    # --- input side ---

    def preprocess(self, images: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """RGB float [3,H,W] in 0..255 -> (x - mean) / std, zero-padded to a multiple of 32 (ImageList)."""
        mean = torch.tensor(self.cfg.pixel_mean).view(3, 1, 1)
        std = torch.tensor(self.cfg.pixel_std).view(3, 1, 1)
        sizes = [tuple(im.shape[-2:]) for im in images]
        hmax = max(s[0] for s in sizes)
        wmax = max(s[1] for s in sizes)
        hp, wp = -(-hmax // 32) * 32, -(-wmax // 32) * 32
        batch = torch.zeros(len(images), 3, hp, wp)
        for i, im in enumerate(images):
            batch[i, :, : im.shape[-2], : im.shape[-1]] = (im - mean) / std
        return batch, sizes

    def features(self, x: Tensor) -> list[Tensor]:
        f = self.backbone(x)
        return [f["p2"], f["p3"], f["p4"], f["p5"]]

    # --- one denoising evaluation ---

    def model_predictions(self, features: list[Tensor], whwh: Tensor, x_box: Tensor, x_emb: Tensor, t: int):
        """x_box [B,N,4], x_emb [B,N,C] in diffusion space; returns the head outputs and the
        re-encoded x0 / implied noise for both."""
        cfg = self.cfg
        s1, s2 = cfg.box_scale, cfg.emb_scale
        boxes = torch.clamp(x_box, -s1, s1)
        boxes = box_cxcywh_to_xyxy(((boxes / s1) + 1) / 2) * whwh[:, None, :]
        emb_in = torch.clamp(x_emb, -s2, s2) / s2
        tt = torch.full((x_box.shape[0],), t, dtype=torch.long)
        outs = self.head(features, boxes, emb_in, tt)
        logits, pboxes, pemb = outs[-1]
        x0_box = box_xyxy_to_cxcywh(pboxes / whwh[:, None, :])
        x0_box = torch.clamp((x0_box * 2 - 1.0) * s1, -s1, s1)
        x0_emb = torch.clamp(F.normalize(pemb, dim=-1) * s2, -s2, s2)
        eps_box = (self.sqrt_recip_alphas_cumprod[t] * x_box - x0_box) / self.sqrt_recipm1_alphas_cumprod[t]
        eps_emb = (self.sqrt_recip_alphas_cumprod[t] * x_emb - x0_emb) / self.sqrt_recipm1_alphas_cumprod[t]
        return {"boxes_in": boxes, "emb_in": emb_in, "logits": logits, "pred_boxes": pboxes, "pred_emb": pemb,
                "x0_box": x0_box, "x0_emb": x0_emb, "eps_box": eps_box, "eps_emb": eps_emb, "series": outs}

    def _final(self, logits: Tensor, boxes: Tensor, emb: Tensor):
        """DiffusionDet `inference` (focal): top-N of sigmoid scores over (box, class)."""
        k = logits.shape[-1]
        scores = torch.sigmoid(logits).flatten()
        scores, idx = scores.topk(min(self.cfg.num_proposals, scores.numel()), sorted=True)
        box_idx = torch.div(idx, k, rounding_mode="floor")
        return boxes[box_idx], scores, idx % k, emb[box_idx]

    @torch.no_grad()
    def sample(self, features: list[Tensor], image_sizes: list[tuple[int, int]], steps: int = 1,
               generator: torch.Generator | None = None, noise: dict[str, Tensor] | None = None,
               return_noise: bool = False, return_trace: bool = False) -> list[dict[str, Tensor]]:
        """DDIM over boxes and embeddings. features: p2..p5 [B,C,H_l,W_l]; image_sizes (h, w) per image.

        Noise: `noise` (see draw_noise) or drawn from `generator` (torch.Generator, CPU).
        Returns per image {'boxes' [M,4] xyxy pixels, 'scores' [M], 'labels' [M], 'embeddings' [M,C]
        (L2-normalised)} (+ 'noise' / 'trace')."""
        if self.training:
            raise RuntimeError("call .eval()")
        cfg = self.cfg
        b = features[0].shape[0]
        n, c = cfg.num_proposals, cfg.hidden_dim
        if noise is None:
            noise = draw_noise(b, n, c, steps, generator)
        missing = set(noise_keys(steps)) - noise.keys()
        if missing:
            raise ValueError(f"noise is missing {sorted(missing)}")
        pairs = ddim_time_pairs(steps, cfg.timesteps)
        results = []
        for i in range(b):
            h, w = image_sizes[i]
            whwh = torch.tensor([[w, h, w, h]], dtype=torch.float32)
            feats = [f[i: i + 1] for f in features]
            x_box = noise["box_T"][i: i + 1].clone()
            x_emb = noise["emb_T"][i: i + 1].clone()
            ens, trace = [], []
            for k, (t, t_next) in enumerate(pairs):
                p = self.model_predictions(feats, whwh, x_box, x_emb, t)
                score = torch.sigmoid(p["logits"][0]).max(-1).values
                step_out = self._final(p["logits"][0], p["pred_boxes"][0], F.normalize(p["pred_emb"][0], dim=-1))
                last = t_next < 0
                if cfg.use_ensemble and steps > 1 and (not last or cfg.ensemble_include_last):
                    ens.append(step_out)
                eps_box, x0_box, eps_emb, x0_emb = p["eps_box"], p["x0_box"], p["eps_emb"], p["x0_emb"]
                keep = torch.ones(n, dtype=torch.bool)
                if cfg.box_renewal:
                    keep = score > cfg.renewal_threshold
                    eps_box, x0_box = eps_box[:, keep], x0_box[:, keep]
                    eps_emb, x0_emb = eps_emb[:, keep], x0_emb[:, keep]
                rec = {"t": t, "t_next": t_next, "x_box": x_box, "x_emb": x_emb, "keep": keep,
                       **{kk: p[kk] for kk in ("boxes_in", "emb_in", "logits", "pred_boxes", "pred_emb")}}
                if not last:
                    r = int(keep.sum())
                    sa, cc, sigma = ddim_coefficients(float(self.alphas_cumprod[t]),
                                                      float(self.alphas_cumprod[t_next]), cfg.ddim_eta)
                    x_box = x0_box * sa + cc * eps_box + sigma * noise[f"box_ddim_{k}"][i: i + 1, :r]
                    x_emb = x0_emb * sa + cc * eps_emb + sigma * noise[f"emb_ddim_{k}"][i: i + 1, :r]
                    if cfg.box_renewal:
                        x_box = torch.cat([x_box, noise[f"box_renew_{k}"][i: i + 1, : n - r]], dim=1)
                        x_emb = torch.cat([x_emb, noise[f"emb_renew_{k}"][i: i + 1, : n - r]], dim=1)
                    rec.update(sqrt_alpha_next=sa, sigma=sigma, c=cc)
                trace.append(rec)
            if ens:
                boxes, scores, labels, emb = (torch.cat(z, dim=0) for z in zip(*ens))
            else:
                boxes, scores, labels, emb = step_out
            if cfg.use_nms:
                # batched_nms over labels (one class here): offset boxes per label, then NMS
                offs = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1) if labels.numel() else 0
                keep_idx = nms(boxes + offs, scores, cfg.nms_thresh)
                boxes, scores, labels, emb = boxes[keep_idx], scores[keep_idx], labels[keep_idx], emb[keep_idx]
            # detector_postprocess: clip to the image, drop empty boxes
            boxes = clip_boxes(boxes, (h, w))
            ne = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
            res = {"boxes": boxes[ne], "scores": scores[ne], "labels": labels[ne], "embeddings": emb[ne]}
            if return_trace:
                res["trace"] = trace
            results.append(res)
        if return_noise:
            for r in results:
                r["noise"] = noise
        return results

    @torch.no_grad()
    def forward(self, images: list[Tensor], steps: int = 1, generator: torch.Generator | None = None):
        x, sizes = self.preprocess(images)
        return self.sample(self.features(x), sizes, steps=steps, generator=generator)


def diffusiondet_head_key_map(num_heads: int) -> dict[str, str]:
    """DiffusionDet -> PSDiff key prefixes that carry over unchanged (same shapes when hidden
    dims agree): time_mlp, self_attn, inst_interact, linear1/2, norm1..3, cls/reg towers,
    class_logits, bboxes_delta. block_time_mlp differs (Linear(4C, 2C) vs Linear(4C, 4C))."""
    same = ["self_attn", "inst_interact", "linear1", "linear2", "norm1", "norm2", "norm3", "cls_module",
            "reg_module", "class_logits", "bboxes_delta"]
    m = {"head.time_mlp.": "head.time_mlp."}
    for k in range(num_heads):
        for s in same:
            m[f"head.head_series.{k}.{s}."] = f"head.head_series.{k}.{s}."
    return m
