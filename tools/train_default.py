#!/usr/bin/env python3
"""Trains the shipped default model (tools/psref/default_model.py) on the synthetic person-search set.

    tools/.venv/bin/python tools/make_synthetic.py --preset benchmark --seed 0 --out DATA --jobs 2
    tools/.venv/bin/python tools/train_default.py --data DATA --out CKPT_DIR [--unet-minutes 12] [--head-minutes 30]
        [--finetune-minutes 0] [--threads 2] [--seed 0]

Stage 1 — diffusion pre-training: the UNet learns epsilon prediction (DDPM, linear betas, 1000 steps) on the
"latents" (pixel_unshuffle(4) of the letterboxed train images, random horizontal flips), conditioned on a learned
constant context. Stage 2 — person search: the UNet is frozen (as DiffPS freezes SD); its up-path taps at the
fixed feature timestep are computed once per train image (and its mirror image) and cached; the neck and the
PSDiff head are trained as DiffusionDet / PSDiff train: ground-truth boxes padded with random boxes to N, noised
with the cosine schedule at a random t (signal scale 2), embeddings noised likewise (scale 3) around the identity's
lookup-table vector, set matching with dynamic k (DiffusionDet's OTA-style matcher), focal + L1 + GIoU box losses
and an OIM re-ID loss on matched predictions of labelled persons. With --finetune-minutes > 0 a second head run
trains the UNet too (no cache) for comparison. Writes CKPT_DIR/model.pt (+ train_log.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.optimize import linear_sum_assignment
from torchvision.ops import generalized_box_iou, sigmoid_focal_loss, box_iou, roi_align

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from psref import default_model as D  # noqa: E402
from psref import psdiff as P  # noqa: E402


def load_split(data: str, split: str):
    m = json.load(open(os.path.join(data, f"{split}.json")))
    images, boxes, pids = [], [], []
    for im in m["images"]:
        rgb = np.asarray(Image.open(os.path.join(data, im["path"])).convert("RGB"))
        x, s = D.letterbox(rgb)
        images.append(x)
        boxes.append(torch.tensor([p["box"] for p in im["persons"]], dtype=torch.float32).reshape(-1, 4) * s)
        pids.append(torch.tensor([p["pid"] for p in im["persons"]], dtype=torch.long))
    return torch.stack(images), boxes, pids


def flip_boxes(b: torch.Tensor, width: float) -> torch.Tensor:
    return torch.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], 1)


# ----------------------------------------------------------------------------- stage 1

def pretrain_unet(model: D.DefaultModel, images: torch.Tensor, minutes: float, batch: int, log: list) -> None:
    betas = torch.linspace(1e-4, 0.02, 1000)
    abar = torch.cumprod(1 - betas, 0)
    params = list(model.unet.parameters()) + [model.context]
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-4)
    model.unet.train()
    end, step = time.time() + minutes * 60, 0
    while time.time() < end:
        idx = torch.randint(0, len(images), (batch,))
        x = images[idx]
        flip = torch.rand(batch) < 0.5
        x[flip] = x[flip].flip(-1)
        lat = F.pixel_unshuffle(x, D.UNSHUFFLE)
        t = torch.randint(0, 1000, (batch,))
        noise = torch.randn_like(lat)
        a = abar[t][:, None, None, None]
        noisy = a.sqrt() * lat + (1 - a).sqrt() * noise
        pred = model.unet(noisy, t, model.context.expand(batch, -1, -1)).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 25 == 0:
            log.append({"stage": "unet", "step": step, "loss": float(loss.detach())})
            print(f"unet step {step} loss {float(loss):.4f}", flush=True)
    model.unet.eval()


# ----------------------------------------------------------------------------- stage 2

def pool_assigned_levels(self: P.MultiLevelRoIPooler, features, boxes):
    """Training-time MultiLevelRoIPooler.forward: pools each box only at its assigned level (the exported graph
    pools every level and selects with Where; the values are the same, this is 3x less work forward and back)."""
    b, n = boxes.shape[:2]
    flat = boxes.reshape(b * n, 4)
    bidx = torch.arange(b, dtype=boxes.dtype).repeat_interleave(n).unsqueeze(1)
    rois = torch.cat([bidx, flat], dim=1)
    lvl = self.levels(flat)
    c = features[0].shape[1]
    out = features[0].new_zeros(b * n, c, self.resolution, self.resolution)
    for i, (feat, stride) in enumerate(zip(features, self.strides)):
        sel = (lvl == i).nonzero(as_tuple=True)[0]
        if len(sel):
            out = out.index_copy(0, sel, roi_align(feat, rois[sel], (self.resolution, self.resolution), 1.0 / stride,
                                                   self.sampling_ratio, True))
    return out


def match(logits, pboxes, gt, whwh, k_max=5):
    """DiffusionDet-style dynamic-k matching of one image: cost = 2·focal + 5·L1(normalised) + 2·(-GIoU); each GT
    takes the k lowest-cost predictions, k = clamp(int(sum of its top-5 IoUs), 1); a prediction claimed twice goes to
    its cheapest GT. Returns (pred indices, gt indices)."""
    if len(gt) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    with torch.no_grad():
        p = logits.sigmoid()[:, 0]
        alpha, gamma = 0.25, 2.0
        neg = (1 - alpha) * p ** gamma * (-(1 - p + 1e-8).log())
        pos = alpha * (1 - p) ** gamma * (-(p + 1e-8).log())
        c_cls = (pos - neg)[:, None]
        c_l1 = torch.cdist(pboxes / whwh, gt / whwh, p=1)
        giou = generalized_box_iou(pboxes, gt)
        cost = 2 * c_cls + 5 * c_l1 - 2 * giou
        iou = box_iou(pboxes, gt)
        k = torch.clamp(iou.topk(min(k_max, len(iou)), dim=0).values.sum(0).int(), min=1)
        assign = torch.zeros_like(cost)
        for g in range(len(gt)):
            sel = cost[:, g].topk(int(k[g]), largest=False).indices
            assign[sel, g] = 1
        multi = assign.sum(1) > 1
        if multi.any():
            best = cost[multi].argmin(1)
            assign[multi] = 0
            assign[multi, best] = 1
        pi, gi = assign.nonzero(as_tuple=True)
    return pi, gi


class HeadTrainer:
    def __init__(self, model: D.DefaultModel, num_ids: int, t_min: int = 0):
        self.m = model
        self.t_min = t_min
        cfg = model.psdiff.cfg
        self.n, self.c = cfg.num_proposals, cfg.hidden_dim
        self.s1, self.s2 = cfg.box_scale, cfg.emb_scale
        self.abar = model.psdiff.alphas_cumprod.float()
        self.lut = F.normalize(torch.randn(num_ids, self.c), dim=1)
        self.whwh = torch.tensor([D.INPUT_W, D.INPUT_H, D.INPUT_W, D.INPUT_H], dtype=torch.float32)

    def noisy_inputs(self, gt: torch.Tensor, ids: torch.Tensor):
        """GT boxes padded with random boxes to N, noised at a random t; embeddings around the LUT vectors."""
        n = self.n
        g = gt[:n]
        cxcywh = torch.stack([(g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2, g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]], 1) / self.whwh
        pad = torch.randn(n - len(g), 4) / 6.0 + 0.5
        pad[:, 2:] = pad[:, 2:].clamp(min=1e-4)
        x0 = (torch.cat([cxcywh, pad]) * 2 - 1) * self.s1
        e0 = F.normalize(torch.randn(n, self.c), dim=1)
        lab = ids[:n] >= 0
        e0[: len(g)][lab] = self.lut[ids[:n][lab]]
        e0 = e0 * self.s2
        t = int(torch.randint(self.t_min, 1000, (1,)))
        a = self.abar[t]
        xb = (a.sqrt() * x0 + (1 - a).sqrt() * torch.randn_like(x0)).clamp(-self.s1, self.s1)
        xe = (a.sqrt() * e0 + (1 - a).sqrt() * torch.randn_like(e0)).clamp(-self.s2, self.s2)
        b = (xb / self.s1 + 1) / 2
        boxes = torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1) * self.whwh
        return boxes, xe / self.s2, t

    def loss(self, feats: list[torch.Tensor], gts: list[torch.Tensor], ids: list[torch.Tensor]):
        bsz = feats[0].shape[0]
        boxes, embs, ts = zip(*(self.noisy_inputs(g, i) for g, i in zip(gts, ids)))
        boxes, embs = torch.stack(boxes), torch.stack(embs)
        logits, pboxes, pemb = self.m.psdiff.head(feats, boxes, embs, torch.tensor(ts, dtype=torch.float32))[-1]
        lut = self.lut.clone()  # the updates below must not touch the tensor the loss graph holds
        target = torch.zeros_like(logits)
        l1, giou, reid, npos = 0.0, 0.0, 0.0, 0
        reid_terms = 0
        for b in range(bsz):
            gt, pid = gts[b], ids[b]
            pi, gi = match(logits[b], pboxes[b], gt, self.whwh)
            if len(pi) == 0:
                continue
            target[b, pi, 0] = 1
            npos += len(pi)
            l1 = l1 + F.l1_loss(pboxes[b, pi] / self.whwh, gt[gi] / self.whwh, reduction="sum")
            giou = giou + (1 - torch.diag(generalized_box_iou(pboxes[b, pi], gt[gi]))).sum()
            lab = pid[gi] >= 0
            if lab.any():
                e = F.normalize(pemb[b, pi][lab], dim=1)
                y = pid[gi][lab]
                reid = reid + F.cross_entropy(30.0 * e @ lut.t(), y, reduction="sum")
                reid_terms += int(lab.sum())
                with torch.no_grad():
                    for v, p in zip(e.detach(), y):
                        self.lut[p] = F.normalize(0.5 * self.lut[p] + 0.5 * v, dim=0)
        npos = max(npos, 1)
        cls = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="sum") / npos
        total = 2 * cls + 5 * l1 / npos + 2 * giou / npos + reid / max(reid_terms, 1)
        return total, {"cls": float(cls.detach()), "l1": float(l1.detach() if torch.is_tensor(l1) else l1) / npos,
                       "giou": float(giou.detach() if torch.is_tensor(giou) else giou) / npos,
                       "reid": float(reid.detach() if torch.is_tensor(reid) else reid) / max(reid_terms, 1)}


def train_head(model, data, minutes, batch, log, finetune_unet=False, tag="head", snapshot=None, lut=None, t_min=0):
    """snapshot: (minutes, path) — also save the model after that much training (equal-time comparisons).
    lut: the OIM lookup table to continue from. Returns (steps, lut)."""
    images, boxes, pids, id_map = data
    ids = [torch.tensor([id_map.get(int(p), -1) for p in pp], dtype=torch.long) for pp in pids]
    trainer = HeadTrainer(model, len(id_map), t_min)
    if lut is not None:
        trainer.lut = lut.clone()
    params = list(model.neck.parameters()) + list(model.psdiff.head.parameters())
    if finetune_unet:
        params += list(model.unet.parameters()) + [model.context]
    opt = torch.optim.AdamW(params, lr=2.5e-4, weight_decay=1e-4)
    cache = None
    if not finetune_unet:
        # Frozen backbone: taps of every image and of its mirror image, once.
        t0 = time.time()
        cache = {}
        with torch.no_grad():
            for flip in (False, True):
                outs = []
                for i in range(0, len(images), 16):
                    x = images[i:i + 16]
                    outs.append(model.taps(x.flip(-1) if flip else x))
                cache[flip] = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
        print(f"cached taps of {len(images)} images x2 in {time.time() - t0:.0f} s", flush=True)
    model.neck.train()
    model.psdiff.head.train()
    pooler = model.psdiff.head.box_pooler
    pooler.forward = pool_assigned_levels.__get__(pooler)
    start = time.time()
    end, step = start + minutes * 60, 0
    while time.time() < end:
        if snapshot and time.time() - start >= snapshot[0] * 60:
            torch.save(model.state_dict(), snapshot[1])
            print(f"{tag}: snapshot after {snapshot[0]} min, step {step} -> {snapshot[1]}", flush=True)
            snapshot = None
        idx = torch.randint(0, len(images), (batch,)).tolist()
        flips = (torch.rand(batch) < 0.5).tolist()
        gts = [flip_boxes(boxes[i], D.INPUT_W) if f else boxes[i] for i, f in zip(idx, flips)]
        # A flipped letterboxed image has its padding on the left: mirror boxes in the full input width and
        # mirror the features too, which is exactly what flipping the input does.
        if cache is not None:
            taps = {k: torch.stack([cache[f][k][i] for i, f in zip(idx, flips)]) for k in cache[False]}
            feats = model.neck(taps)
        else:
            x = torch.stack([images[i].flip(-1) if f else images[i] for i, f in zip(idx, flips)])
            model.unet.train()
            feats = model.features(x)
        loss, parts = trainer.loss(feats, gts, [ids[i] for i in idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 25 == 0:
            log.append({"stage": tag, "step": step, "loss": float(loss), **parts})
            print(f"{tag} step {step} loss {float(loss):.3f} " + " ".join(f"{k} {v:.3f}" for k, v in parts.items()), flush=True)
    del pooler.forward  # back to the class's (exported) form
    model.eval()
    return step, trainer.lut


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--unet-minutes", type=float, default=12)
    ap.add_argument("--head-minutes", type=float, default=30)
    ap.add_argument("--finetune-minutes", type=float, default=0)
    ap.add_argument("--unet-batch", type=int, default=8)
    ap.add_argument("--head-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="start from this state dict (e.g. unet_pretrained.pt); stages with 0 minutes are skipped")
    ap.add_argument("--t-min", type=int, default=0,
                    help="head stages draw the noise level t from [t_min, 1000): > 0 weights training toward the noisy "
                         "inputs the sampler starts from")
    ap.add_argument("--init-lut", help="continue from this OIM lookup table (lut.pt of an earlier run)")
    ap.add_argument("--snapshot-minutes", type=float, help="also save the head stage's model after this many minutes")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    images, boxes, pids = load_split(a.data, "train")
    train_ids = sorted({int(p) for pp in pids for p in pp if p >= 0})
    id_map = {p: i for i, p in enumerate(train_ids)}
    print(f"{len(images)} train images, {sum(len(b) for b in boxes)} persons, {len(id_map)} identities "
          f"({time.time() - t0:.0f} s)", flush=True)
    model = D.DefaultModel()
    if a.init:
        model.load_state_dict(torch.load(a.init, weights_only=True))
    log: list = []
    times = {}
    lut = torch.load(a.init_lut, weights_only=True) if a.init_lut else None
    if a.unet_minutes > 0:
        s = time.time()
        pretrain_unet(model, images, a.unet_minutes, a.unet_batch, log)
        times["unet_pretraining_s"] = time.time() - s
        torch.save(model.state_dict(), os.path.join(a.out, "unet_pretrained.pt"))
    if a.head_minutes > 0:
        s = time.time()
        snap = (a.snapshot_minutes, os.path.join(a.out, f"model_{a.snapshot_minutes:g}min.pt")) if a.snapshot_minutes else None
        times["head_steps"], lut = train_head(model, (images, boxes, pids, id_map), a.head_minutes, a.head_batch, log, snapshot=snap, lut=lut, t_min=a.t_min)
        torch.save(lut, os.path.join(a.out, "lut.pt"))
        times["head_training_s"] = time.time() - s
    torch.save(model.state_dict(), os.path.join(a.out, "model.pt"))
    if a.finetune_minutes > 0:
        s = time.time()
        snap = (a.snapshot_minutes, os.path.join(a.out, f"model_finetuned_{a.snapshot_minutes:g}min.pt")) if a.snapshot_minutes else None
        times["finetune_steps"], lut = train_head(model, (images, boxes, pids, id_map), a.finetune_minutes, a.head_batch, log,
                                                  finetune_unet=True, tag="finetune", snapshot=snap, lut=lut, t_min=a.t_min)
        torch.save(lut, os.path.join(a.out, "lut_finetuned.pt"))
        times["finetune_s"] = time.time() - s
        torch.save(model.state_dict(), os.path.join(a.out, "model_finetuned.pt"))
    times["total_s"] = time.time() - t0
    json.dump({"args": vars(a), "times": times, "log": log}, open(os.path.join(a.out, "train_log.json"), "w"), indent=1)
    print("done", times, flush=True)


if __name__ == "__main__":
    main()
