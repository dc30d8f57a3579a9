"""The non-neural parts of DiffPS and PSDiff restated in numpy (float32 unless noted).

These are the steps a runtime has to implement outside the ONNX/neural graphs. Each
function states its formula; tests/test_psref.py checks them against the torch /
torchvision code paths in diffps.py and psdiff.py. Plain loops where order matters
(NMS), no torch.
"""

from __future__ import annotations

import math

import numpy as np

f32 = np.float32


# ----------------------------------------------------------------------------- boxes

def decode(deltas: np.ndarray, boxes: np.ndarray, weights, clamp: float) -> np.ndarray:
    """w = x2-x1, h = y2-y1, cx = x1 + 0.5w, cy = y1 + 0.5h;
    dx = d0/wx, dy = d1/wy, dw = min(d2/ww, clamp), dh = min(d3/wh, clamp);
    pcx = dx*w + cx, pcy = dy*h + cy, pw = exp(dw)*w, ph = exp(dh)*h;
    -> (pcx - 0.5pw, pcy - 0.5ph, pcx + 0.5pw, pcy + 0.5ph)."""
    deltas = deltas.astype(f32)
    boxes = boxes.astype(f32)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    cx = boxes[:, 0] + f32(0.5) * w
    cy = boxes[:, 1] + f32(0.5) * h
    wx, wy, ww, wh = (f32(v) for v in weights)
    dx = deltas[:, 0] / wx
    dy = deltas[:, 1] / wy
    dw = np.minimum(deltas[:, 2] / ww, f32(clamp))
    dh = np.minimum(deltas[:, 3] / wh, f32(clamp))
    pcx = dx * w + cx
    pcy = dy * h + cy
    pw = np.exp(dw) * w
    ph = np.exp(dh) * h
    return np.stack([pcx - f32(0.5) * pw, pcy - f32(0.5) * ph, pcx + f32(0.5) * pw, pcy + f32(0.5) * ph], 1)


def clip(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    out = boxes.copy()
    out[:, 0::2] = np.clip(out[:, 0::2], 0, w)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, h)
    return out


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Areas (x2-x1)(y2-y1), no +1; inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    xx1 = np.maximum(box[0], boxes[:, 0])
    yy1 = np.maximum(box[1], boxes[:, 1])
    xx2 = np.minimum(box[2], boxes[:, 2])
    yy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area + areas - inter)  # 0/0 = NaN for two empty boxes: never suppresses


def nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """Greedy NMS: visit boxes in descending score (ties: lower index first); keep a box if no
    kept box has IoU > thr (strictly greater) with it. Returns kept indices in visit order."""
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        if len(rest):
            suppressed[rest[iou_one_to_many(boxes[i], boxes[rest]) > thr]] = True
    return np.array(keep, dtype=np.int64)


# ----------------------------------------------------------------------------- DiffPS

def anchors(image_hw, feat_hw, sizes, ratios) -> np.ndarray:
    """torchvision AnchorGenerator, one level. Base anchors (ratio-major, then size):
    hr = sqrt(r), wr = 1/hr, ws = wr*s, hs = hr*s, base = round([-ws, -hs, ws, hs] / 2)
    (round half to even). Stride = image // feature (integer division, per axis).
    Anchors for cell (y, x) = base + (x*sw, y*sh, x*sw, y*sh); order: y, then x, then base anchor."""
    ratios = np.asarray(ratios, f32)
    sizes = np.asarray(sizes, f32)
    hr = np.sqrt(ratios)
    wr = f32(1) / hr
    ws = (wr[:, None] * sizes[None, :]).reshape(-1)
    hs = (hr[:, None] * sizes[None, :]).reshape(-1)
    base = np.round(np.stack([-ws, -hs, ws, hs], 1) / f32(2))
    sh, sw = image_hw[0] // feat_hw[0], image_hw[1] // feat_hw[1]
    ys, xs = np.meshgrid(np.arange(feat_hw[0]) * sh, np.arange(feat_hw[1]) * sw, indexing="ij")
    shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], 1).astype(f32)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def rpn_flatten(objectness: np.ndarray, deltas: np.ndarray):
    """RPN head outputs of one image, objectness [A,H,W], deltas [4A,H,W] -> ([H*W*A], [H*W*A, 4])
    in anchor order (y, x, a): objectness.transpose(1,2,0); deltas.reshape(A,4,H,W).transpose(2,3,0,1)."""
    a, h, w = objectness.shape
    obj = objectness.transpose(1, 2, 0).reshape(-1)
    d = deltas.reshape(a, 4, h, w).transpose(2, 3, 0, 1).reshape(-1, 4)
    return obj, d


def rpn_proposals(objectness, deltas, anchors_, image_hw, pre_nms_top_n, post_nms_top_n, nms_thresh,
                  min_size=1e-3, score_thresh=0.0):
    """Test-time RPN (torchvision filter_proposals, one level): top-k of the logits
    (k = min(pre_nms_top_n, #anchors), descending), decode with weights (1,1,1,1) and clip
    log(1000/16), p = sigmoid(logit), clip to image, drop w < min_size or h < min_size,
    drop p < score_thresh, NMS(nms_thresh), keep the first post_nms_top_n."""
    obj, d = rpn_flatten(objectness, deltas)
    k = min(pre_nms_top_n, obj.size)
    top = np.argsort(-obj, kind="stable")[:k]
    boxes = decode(d[top], anchors_[top], (1, 1, 1, 1), math.log(1000.0 / 16))
    scores = f32(1) / (f32(1) + np.exp(-obj[top]))
    boxes = clip(boxes, *image_hw)
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (ws >= min_size) & (hs >= min_size) & (scores >= score_thresh)
    boxes, scores = boxes[keep], scores[keep]
    keep = nms(boxes, scores, nms_thresh)[:post_nms_top_n]
    return boxes[keep], scores[keep]


def fastrcnn_postprocess(cls_logits, box_regression, proposals, image_hw, score_thresh=0.5, nms_thresh=0.4,
                         per_img=300, min_size=1e-2, weights=(10.0, 10.0, 5.0, 5.0)):
    """DiffPS FastRCNNRoIHeads.postprocess (one image): decode (weights 10,10,5,5, clip
    log(1000/16)), clip to image, drop w or h < 1e-2, p = softmax(logits)[1], keep p > 0.5
    (strict), NMS 0.4, first 300."""
    boxes = clip(decode(box_regression, proposals, weights, math.log(1000.0 / 16)), *image_hw)
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (ws >= min_size) & (hs >= min_size)
    boxes, logits = boxes[keep], cls_logits[keep].astype(f32)
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = (e / e.sum(1, keepdims=True))[:, 1]
    keep = p > score_thresh
    boxes, p = boxes[keep], p[keep]
    keep = nms(boxes, p, nms_thresh)[:per_img]
    return boxes[keep], p[keep]


def attention_map(cross_map: np.ndarray, head: int, token: int, hw) -> np.ndarray:
    """a = A[b, head, :, token]; (a - min) / (max - min) per image (all zeros if max == min)."""
    a = cross_map[:, head, :, token].astype(f32)
    lo, hi = a.min(1, keepdims=True), a.max(1, keepdims=True)
    rng = hi - lo
    out = np.where(rng > 0, (a - lo) / np.where(rng > 0, rng, 1), 0).astype(f32)
    return out.reshape(a.shape[0], *hw)


def dgrpn(feat: np.ndarray, attn: np.ndarray, beta: float, gamma: float, tau=0.7, delta=5.0, peak_window=7,
          neigh_window=9, topk=50):
    """DGRPN (batch-global normalisation!):
    M = max(map, 0); if max(M over all images) > 0: M /= (that max + 1e-8); M_th = M if M > tau else 0.
    peak(y,x) iff M_th(y,x) > 0 and M_th(y,x) == max of M_th over the peak_window^2 window centred
    at (y,x) (cells outside the map ignored). Per image: score = M_th at peaks, 0 elsewhere;
    take the first topk of a stable descending sort of the flattened (row-major) scores.
    For each selected (cx, cy): Sx = sum over the neigh_window^2 window (cells outside = 0) of
    (x - cx)^2 M_th(y, x); s_w = max(delta, sqrt(max(Sx, 1e-8))); same for s_h with (y - cy)^2.
    G(y,x) = max_k exp(-(x-cx_k)^2 / (b s_w,k^2) - (y-cy_k)^2 / (b s_h,k^2)), b = |beta| + 1e-6.
    F_det = F + gamma * G * F (G broadcast over channels)."""
    m = np.maximum(attn.astype(f32), 0)
    mx = m.max()
    if mx > 0:
        m = m / (mx + f32(1e-8))
    m_th = np.where(m > tau, m, 0).astype(f32)
    bsz, h, w = m_th.shape
    r = peak_window // 2
    padded = np.pad(m_th, ((0, 0), (r, r), (r, r)), constant_values=-np.inf)
    pooled = np.full_like(m_th, -np.inf)
    for dy in range(peak_window):
        for dx in range(peak_window):
            pooled = np.maximum(pooled, padded[:, dy:dy + h, dx:dx + w])
    is_peak = (m_th == pooled) & (m_th > 0)
    scores = np.where(is_peak, m_th, 0).reshape(bsz, -1)
    k = min(topk, h * w)
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    cy, cx = idx // w, idx % w
    n = neigh_window // 2
    pm = np.pad(m_th, ((0, 0), (n, n), (n, n)))
    s_w = np.zeros((bsz, k), f32)
    s_h = np.zeros((bsz, k), f32)
    d = np.arange(-n, n + 1, dtype=f32)
    for b in range(bsz):
        for j in range(k):
            win = pm[b, cy[b, j]:cy[b, j] + 2 * n + 1, cx[b, j]:cx[b, j] + 2 * n + 1]
            sx = (win * (d[None, :] ** 2)).sum()
            sy = (win * (d[:, None] ** 2)).sum()
            s_w[b, j] = max(delta, math.sqrt(max(float(sx), 1e-8)))
            s_h[b, j] = max(delta, math.sqrt(max(float(sy), 1e-8)))
    bb = f32(abs(beta) + 1e-6)
    xs = np.arange(w, dtype=f32)[None, None, None, :]
    ys = np.arange(h, dtype=f32)[None, None, :, None]
    g = np.exp(-((xs - cx[..., None, None]) ** 2) / (bb * s_w[..., None, None] ** 2)
               - ((ys - cy[..., None, None]) ** 2) / (bb * s_h[..., None, None] ** 2)).max(1).astype(f32)
    return feat + f32(gamma) * (g[:, None] * feat), {"cx": cx, "cy": cy, "s_w": s_w, "s_h": s_h, "G": g,
                                                     "peak_scores": np.take_along_axis(scores, idx, 1)}


def haar_dwt(x: np.ndarray):
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a + b + c + d) * f32(0.5), np.stack([(a + b - c - d) * f32(0.5), (a - b + c - d) * f32(0.5),
                                                 (a - b - c + d) * f32(0.5)], axis=-3)


def haar_idwt(ll: np.ndarray, high: np.ndarray):
    b0, b1, b2 = high[..., 0, :, :], high[..., 1, :, :], high[..., 2, :, :]
    out = np.empty(ll.shape[:-2] + (2 * ll.shape[-2], 2 * ll.shape[-1]), dtype=ll.dtype)
    out[..., 0::2, 0::2] = (ll + b0 + b1 + b2) * f32(0.5)
    out[..., 0::2, 1::2] = (ll + b0 - b1 - b2) * f32(0.5)
    out[..., 1::2, 0::2] = (ll - b0 + b1 - b2) * f32(0.5)
    out[..., 1::2, 1::2] = (ll - b0 - b1 + b2) * f32(0.5)
    return out


# ----------------------------------------------------------------------------- PSDiff / DDIM

def cosine_schedule(T: int = 1000, s: float = 0.008) -> np.ndarray:
    """alphas_cumprod (computed in float64, returned float32):
    f(i) = cos(((i/T) + s)/(1+s) * pi/2)^2, i = 0..T; beta_t = clip(1 - f(t+1)/f(t), 0, 0.999);
    abar_t = prod_{i<=t} (1 - beta_i)."""
    x = np.linspace(0, T, T + 1, dtype=np.float64)
    f = np.cos(((x / T) + s) / (1 + s) * math.pi * 0.5) ** 2
    f = f / f[0]
    betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    return np.cumprod(1 - betas).astype(f32)


def time_pairs(steps: int, T: int = 1000):
    """times = trunc(linspace(-1, T-1, steps+1)) (float32 linspace, truncation toward 0), reversed,
    paired consecutively."""
    t = np.linspace(-1, T - 1, steps + 1, dtype=f32).astype(np.int32)[::-1]
    return list(zip(t[:-1].tolist(), t[1:].tolist()))


def level_assignment(boxes: np.ndarray, canonical=224.0, canonical_level=4, lo=2, hi=5) -> np.ndarray:
    """Detectron2: floor(4 + log2(sqrt((x2-x1)(y2-y1)) / 224 + 1e-8)) clamped to [2, 5], minus 2."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lvl = np.floor(canonical_level + np.log2(np.sqrt(area) / f32(canonical) + f32(1e-8)))
    return (np.clip(lvl, lo, hi) - lo).astype(np.int64)


def boxes_from_x(x_box: np.ndarray, s1: float, w: int, h: int) -> np.ndarray:
    """Diffusion space -> head input: b = (clamp(x, -s1, s1)/s1 + 1)/2 (cx,cy,w,h in [0,1]);
    xyxy = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) * (W, H, W, H)."""
    b = (np.clip(x_box, -s1, s1) / f32(s1) + 1) / 2
    cx, cy, bw, bh = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    xyxy = np.stack([cx - 0.5 * bw, cy - 0.5 * bh, cx + 0.5 * bw, cy + 0.5 * bh], 1)
    return (xyxy * np.array([w, h, w, h], f32)).astype(f32)


def x0_from_boxes(pred: np.ndarray, s1: float, w: int, h: int) -> np.ndarray:
    """Predicted xyxy pixels -> diffusion space: n = pred / (W,H,W,H); (cx,cy,w,h) = ((x1+x2)/2,
    (y1+y2)/2, x2-x1, y2-y1); x0 = clamp((c*2 - 1) * s1, -s1, s1)."""
    n = pred / np.array([w, h, w, h], f32)
    c = np.stack([(n[:, 0] + n[:, 2]) / 2, (n[:, 1] + n[:, 3]) / 2, n[:, 2] - n[:, 0], n[:, 3] - n[:, 1]], 1)
    return np.clip((c * 2 - 1) * f32(s1), -s1, s1).astype(f32)


def l2n(x: np.ndarray) -> np.ndarray:
    """x / max(||x||_2, 1e-12) per row (torch F.normalize)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), f32(1e-12))


def ddim_coefficients(abar, abar_next, eta: float = 1.0):
    """Scalars in float64 from the float32 buffer values, then rounded to float32:
    sigma = eta sqrt((1 - a/a')(1 - a')/(1 - a)); c = sqrt(max(1 - a' - sigma^2, 0)); sqrt(a')."""
    a, an = float(abar), float(abar_next)
    sigma = eta * math.sqrt((1.0 - a / an) * (1.0 - an) / (1.0 - a))
    c = math.sqrt(max(1.0 - an - sigma * sigma, 0.0))
    return f32(math.sqrt(an)), f32(c), f32(sigma)


def ddim_update(x0: np.ndarray, eps: np.ndarray, z: np.ndarray, abar, abar_next, eta: float = 1.0):
    """x_next = x0 * sqrt(a') + c * eps + sigma * z, float32 vectors, scalars from ddim_coefficients
    (evaluated left to right: ((x0*sa) + (c*eps)) + (sigma*z), no fused multiply-add)."""
    sa, c, sigma = ddim_coefficients(abar, abar_next, eta)
    return (x0 * sa + c * eps + sigma * z).astype(f32)
