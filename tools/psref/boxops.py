"""Box helpers shared by the DiffPS and PSDiff references.

Everything here is plain tensor arithmetic whose exact formula the Swift port has to
reproduce; `tools/psref/reference_np.py` restates the same formulas in numpy and the
tests check the two against each other.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchvision.ops import boxes as box_ops

# torchvision BoxCoder default: log(1000 / 16)
TORCHVISION_BBOX_XFORM_CLIP = math.log(1000.0 / 16)
# DiffusionDet RCNNHead default: log(100000 / 16)
DIFFUSIONDET_SCALE_CLAMP = math.log(100000.0 / 16)


def box_cxcywh_to_xyxy(x: Tensor) -> Tensor:
    cx, cy, w, h = x.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(x: Tensor) -> Tensor:
    x0, y0, x1, y1 = x.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def decode_deltas(deltas: Tensor, boxes: Tensor, weights: tuple[float, float, float, float],
                  clamp: float) -> Tensor:
    """(dx, dy, dw, dh) deltas applied to xyxy boxes, the torchvision/Detectron2 way.

    w = x2 - x1, cx = x1 + 0.5 w; dx' = dx / wx, ...; dw' = min(dw / ww, clamp);
    pcx = dx' w + cx; pw = exp(dw') w; out = (pcx - 0.5 pw, pcy - 0.5 ph, pcx + 0.5 pw, pcy + 0.5 ph).
    deltas [..., 4], boxes [..., 4] (broadcastable).
    """
    boxes = boxes.to(deltas.dtype)
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    ctr_x = boxes[..., 0] + 0.5 * widths
    ctr_y = boxes[..., 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[..., 0] / wx
    dy = deltas[..., 1] / wy
    dw = torch.clamp(deltas[..., 2] / ww, max=clamp)
    dh = torch.clamp(deltas[..., 3] / wh, max=clamp)
    pcx = dx * widths + ctr_x
    pcy = dy * heights + ctr_y
    pw = torch.exp(dw) * widths
    ph = torch.exp(dh) * heights
    return torch.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], dim=-1)


def clip_boxes(boxes: Tensor, size_hw: tuple[int, int]) -> Tensor:
    """torchvision clip_boxes_to_image: x to [0, W], y to [0, H]."""
    h, w = size_hw
    x = boxes[..., 0::2].clamp(min=0, max=w)
    y = boxes[..., 1::2].clamp(min=0, max=h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """torchvision.ops.nms: greedy in descending score, drop IoU > threshold (strict)."""
    return box_ops.nms(boxes, scores, iou_threshold)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    return box_ops.remove_small_boxes(boxes, min_size)
