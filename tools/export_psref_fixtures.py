#!/usr/bin/env python3
"""Parity fixtures for the Swift DiffPS / PSDiff pipelines (developer tool, needs torch).

Builds SMALL seeded random-weight instances of the tools/psref references and writes

  Tests/Fixtures/models/diffps_small/
    weights.safetensors      DiffPS(DiffPSConfig.small()) state dict (keys as the public code)
    config.json              config, file list, tolerances, formulas of the non-neural steps
    inputs/<tap>.npy         the 8 UNet taps (B=1), e.g. up-level3-repeat0-vit-block0-self-k.npy,
                             and query_boxes.npy (boxes for the query/embedding-only mode)
    outputs/*.npy            boxes, scores, embeddings, query_embeddings and intermediates
                             (aggregation outputs, attention map, DGRPN peaks/G, RPN head outputs,
                             anchors, proposals, box-head outputs)
    <part>.onnx              opset 17 graphs of the purely tensor parts (aggregation, rpn_head,
                             box_head, reid_head); their initializers are external data pointing
                             into weights.safetensors (no duplicated weights)
    parts/<part>/{inputs,outputs}/*.npy   ONNX Runtime I/O for each part

  Tests/Fixtures/models/psdiff_small/
    weights.safetensors      PSDiff(PSDiffConfig.small()) head + diffusion buffers (no backbone)
    config.json
    features/p{2..5}.npy     FPN features of one 128x128 image (B=1)
    noise/<key>.npy          pre-drawn DDIM noise (psdiff.noise_keys(4) order, torch.Generator seed)
    outputs_steps{1,2,4}/    boxes, scores, labels, embeddings + per-step trace
                             (step{k}_{x_box,x_emb,boxes_in,emb_in,logits,pred_boxes,pred_emb,keep}.npy)
    cdl_head.onnx            one denoising evaluation: (p2..p5, boxes, emb_in, t) -> (logits, boxes, emb)
                             with RoiAlign inside; parts/cdl_head/{inputs,outputs}

Run:  tools/.venv/bin/pip install -r tools/requirements-export.txt
      tools/.venv/bin/python tools/export_psref_fixtures.py [--out Tests/Fixtures/models] [--check]
--check recomputes everything and compares with the files on disk instead of writing.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from psref import diffps as D  # noqa: E402
from psref import psdiff as P  # noqa: E402

OPSET = 17
DIFFPS_SEED = 20250
PSDIFF_SEED = 20251
NOISE_SEED = 7
STEPS = (1, 2, 4)


# ----------------------------------------------------------------------------- helpers

def safe_name(name: str) -> str:
    return "".join(c if (c.isalnum() or c in "._-") else "_" for c in name)


def npy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype == torch.bool:
            return t.numpy().astype(np.bool_)
        return t.numpy()
    return np.asarray(t)


class Writer:
    """Collects files; writes them or compares them with what is on disk (--check)."""

    def __init__(self, root: str, check: bool):
        self.root, self.check = root, check
        self.problems: list[str] = []
        self.sizes: dict[str, int] = {}

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def array(self, rel: str, a: np.ndarray, rtol=1e-5, atol=1e-6):
        a = np.ascontiguousarray(a)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        p = self.path(rel)
        if self.check:
            if not os.path.exists(p):
                self.problems.append(f"missing {rel}")
                return
            b = np.load(p)
            if b.shape != a.shape or b.dtype != a.dtype:
                self.problems.append(f"{rel}: {b.shape}/{b.dtype} on disk vs {a.shape}/{a.dtype}")
            elif a.dtype.kind in "fc" and not np.allclose(a, b, rtol=rtol, atol=atol):
                self.problems.append(f"{rel}: max |diff| {np.abs(a - b).max():.3g}")
            elif a.dtype.kind not in "fc" and not np.array_equal(a, b):
                self.problems.append(f"{rel}: values differ")
            return
        os.makedirs(os.path.dirname(p), exist_ok=True)
        np.save(p, a)
        self.sizes[rel] = os.path.getsize(p)

    def blob(self, rel: str, data: bytes, compare: bool = True):
        p = self.path(rel)
        if self.check:
            if compare and (not os.path.exists(p) or open(p, "rb").read() != data):
                self.problems.append(f"{rel} differs")
            return
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        self.sizes[rel] = len(data)


def state_dict_bytes(sd: dict[str, torch.Tensor], metadata: dict) -> bytes:
    """safetensors bytes. Keep `metadata` to one key: safetensors writes the metadata map in
    hash order, which changes between processes."""
    assert len(metadata) <= 1
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "w.safetensors")
        save_file({k: v.contiguous() for k, v in sd.items()}, p, metadata=metadata)
        return open(p, "rb").read()


def safetensors_index(data: bytes) -> dict[str, tuple[int, int, str, list[int]]]:
    """name -> (absolute offset, length, dtype, shape) of each tensor in a safetensors blob."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = (base + s, e - s, v["dtype"], v["shape"])
    return out


def randomize_(model: torch.nn.Module, gen: torch.Generator):
    """He-normal conv/linear weights, small random biases, random BatchNorm statistics and
    affine parameters, random LayerNorm affine: every parameter matters in the fixtures."""
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
            if mod.bias is not None:
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)
        elif isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = mod.num_features
            mod.weight.copy_(0.5 + torch.rand(c, generator=gen))
            mod.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            mod.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            mod.running_var.copy_(0.5 + torch.rand(c, generator=gen))
        elif isinstance(mod, torch.nn.LayerNorm):
            mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=gen))
            mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)
        elif isinstance(mod, torch.nn.MultiheadAttention):
            fan_in = mod.embed_dim
            mod.in_proj_weight.copy_(torch.randn(mod.in_proj_weight.shape, generator=gen) / math.sqrt(fan_in))
            mod.in_proj_bias.copy_(torch.randn(mod.in_proj_bias.shape, generator=gen) * 0.1)


def shorten_names(model: onnx.ModelProto) -> None:
    """Exporter value names spell the module path (~40% of a small graph's bytes): rename
    intermediate values to v<i> and drop node names; graph inputs, outputs and initializer
    names are kept."""
    g = model.graph
    keep = {i.name for i in g.input} | {o.name for o in g.output} | {t.name for t in g.initializer}
    ren: dict[str, str] = {}
    for node in g.node:
        node.name = ""
        for i, o in enumerate(node.output):
            if o and o not in keep:
                ren.setdefault(o, f"v{len(ren)}")
                node.output[i] = ren[o]
        for i, x in enumerate(node.input):
            if x in ren:
                node.input[i] = ren[x]
    for vi in g.value_info:
        if vi.name in ren:
            vi.name = ren[vi.name]


def export_onnx(module: torch.nn.Module, args: tuple, input_names: list[str], output_names: list[str],
                dynamic_axes: dict | None, weights_blob: bytes, sd: dict[str, torch.Tensor]) -> bytes:
    """TorchScript export (opset 17, no constant folding so initializers stay byte-identical to
    state-dict tensors); every initializer found in weights.safetensors becomes external data."""
    # torch.onnx.export restores the module's train/eval mode recursively afterwards: a wrapper
    # left in training mode would switch the whole model (BatchNorm!) to training.
    module.eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, f, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=False)
    model = onnx.load_from_string(f.getvalue())
    shorten_names(model)
    index = safetensors_index(weights_blob)
    by_bytes: dict[tuple, list[str]] = {}
    for k, v in sd.items():
        a = v.detach().cpu().contiguous().numpy()
        by_bytes.setdefault((a.dtype.str, a.shape, a.tobytes()), []).append(k)
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        names = by_bytes.get((a.dtype.str, a.shape, a.tobytes()))
        if not names or a.nbytes < 64:
            continue
        # prefer the state-dict key the exporter named it after (module wrappers add a prefix)
        key = next((n for n in names if init.name.endswith(n)), names[0])
        off, length, _, _ = index[key]
        init.ClearField("raw_data")
        del init.float_data[:]
        del init.int64_data[:]
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        for k, v in (("location", "weights.safetensors"), ("offset", str(off)), ("length", str(length))):
            e = init.external_data.add()
            e.key, e.value = k, v
    return model.SerializeToString()


def run_onnx(path_dir: str, onnx_bytes: bytes, weights_blob: bytes, feeds: dict[str, np.ndarray]):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(onnx_bytes)
        with open(os.path.join(d, "weights.safetensors"), "wb") as f:
            f.write(weights_blob)
        onnx.checker.check_model(os.path.join(d, "model.onnx"), full_check=True)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(os.path.join(d, "model.onnx"), so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(None, feeds)))


def compare(name: str, got: np.ndarray, ref: np.ndarray, rtol=1e-4, atol=1e-5):
    if got.shape != ref.shape or not np.allclose(got, ref, rtol=rtol, atol=atol):
        err = np.abs(got - ref).max() if got.shape == ref.shape else f"shape {got.shape} vs {ref.shape}"
        raise AssertionError(f"{name}: ONNX Runtime differs from torch (max |diff| {err})")
    return float(np.abs(got - ref).max()) if got.size else 0.0


# ----------------------------------------------------------------------------- DiffPS

def diffps_taps(cfg: D.DiffPSConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    c1, c2, c3 = cfg.tap_channels
    h3 = cfg.image_size[0] // 8
    w3 = cfg.image_size[1] // 8
    taps = {D.REID_L1_TAP: torch.randn(1, c1, h3 // 4, w3 // 4, generator=gen)}
    for k in D.REID_L2_TAPS:
        taps[k] = torch.randn(1, c2, h3 // 2, w3 // 2, generator=gen)
    for k in D.REID_L3_TAPS:
        taps[k] = torch.randn(1, c3, h3, w3, generator=gen)
    # cross-attention probabilities [1, heads=2, HW, 77]: token 1 of head 1 carries a few blobs
    heads, tokens = 2, 77
    logits = torch.randn(1, heads, h3 * w3, tokens, generator=gen)
    yy, xx = torch.meshgrid(torch.arange(h3, dtype=torch.float32), torch.arange(w3, dtype=torch.float32),
                            indexing="ij")
    blob = torch.zeros(h3, w3)
    for (cy, cx, s, a) in ((3.0, 4.0, 1.5, 4.0), (11.0, 10.0, 2.0, 3.5), (6.0, 13.0, 1.0, 3.0), (13.0, 2.0, 1.2, 2.5)):
        blob += a * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    logits[0, 1, :, 1] += blob.reshape(-1)
    logits[0, 0, :, 1] -= blob.reshape(-1)  # head 0 looks different: reading the wrong head shows
    taps[D.CROSS_MAP_TAP] = torch.softmax(logits, dim=-1)
    return {k: taps[k] for k in D.ALL_TAPS}


class _Aggregation(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, *taps):
        return self.m.aggregate(dict(zip(_Aggregation.names, taps)))


_Aggregation.names = [t for t in D.ALL_TAPS if t != D.CROSS_MAP_TAP]


class _RpnHead(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, feat):
        o, d = self.m.rpn.head([feat])
        return o[0], d[0]


class _BoxHead(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, rois):
        return self.m.detection_roi_heads.box_predictor(self.m.detection_roi_heads.box_head(rois))


class _ReidHead(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, rois):
        return self.m.reid_roi_heads.embed_rois(rois, self.m.text_embeds)


def build_diffps_small() -> tuple[D.DiffPS, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    cfg = D.DiffPSConfig.small()
    model = D.DiffPS(cfg)
    gen = torch.Generator().manual_seed(DIFFPS_SEED)
    with torch.no_grad():
        randomize_(model, gen)
        model.text_embeds.copy_(torch.randn(model.text_embeds.shape, generator=gen))
        model.dgrpn.beta.fill_(1.3)
        model.dgrpn.gamma.fill_(0.5)
        sf = model.reid_roi_heads.sfan
        sf.alpha.fill_(0.6)
        sf.part_weights.copy_(torch.randn(4, generator=gen))
        for frm in (model.reid_frq_aggregation_network.frm_level2, model.reid_frq_aggregation_network.frm_level3):
            for g in (frm.gamma_lh, frm.gamma_hl, frm.gamma_hh):
                g.fill_(float(0.5 + torch.rand(1, generator=gen)))
        lut = model.reid_roi_heads.reid_loss
        lut.lut.copy_(torch.nn.functional.normalize(torch.randn(lut.lut.shape, generator=gen), dim=1))
        lut.cq.copy_(torch.nn.functional.normalize(torch.randn(lut.cq.shape, generator=gen), dim=1))
    model.eval()
    taps = diffps_taps(cfg, gen)
    return model, taps


def export_diffps(w: Writer, out_root: str) -> dict:
    model, taps = build_diffps_small()
    cfg = model.cfg
    sd = model.state_dict()
    weights = state_dict_bytes(sd, {"psref": json.dumps({"model": "DiffPS heads (small, random weights)",
                                                         "config": cfg.to_dict()})})
    w.blob("weights.safetensors", weights)
    res = model.forward_features(taps, return_intermediates=True)
    query_boxes = torch.tensor([[10.0, 20.0, 40.0, 100.0], [60.5, 8.25, 90.0, 70.0], [0.0, 0.0, 128.0, 128.0]])
    query_emb = model.embed_boxes(taps, [query_boxes])[0]

    for k, v in taps.items():
        w.array(f"inputs/{safe_name(k)}.npy", npy(v))
    w.array("inputs/query_boxes.npy", npy(query_boxes))
    outs = {
        "boxes": res["boxes"][0], "scores": res["scores"][0], "embeddings": res["embeddings"][0],
        "query_embeddings": query_emb,
        "det_agg": res["det_agg"], "feat_reid": res["feat_reid"], "attn_map": res["attn_map"],
        "feat_det": res["feat_det"],
        "dgrpn_m_th": res["dgrpn"]["m_th"], "dgrpn_cx": res["dgrpn"]["cx"], "dgrpn_cy": res["dgrpn"]["cy"],
        "dgrpn_peak_scores": res["dgrpn"]["peak_scores"], "dgrpn_s_w": res["dgrpn"]["s_w"],
        "dgrpn_s_h": res["dgrpn"]["s_h"], "dgrpn_G": res["dgrpn"]["G"],
        "rpn_objectness": res["rpn"]["objectness"], "rpn_deltas": res["rpn"]["deltas"],
        "anchors": res["rpn"]["anchors"], "proposals": res["rpn"]["proposals"][0],
        "proposal_scores": res["rpn"]["proposal_scores"][0],
        "det_cls_logits": res["det_cls_logits"], "det_box_regression": res["det_box_regression"],
    }
    for k, v in outs.items():
        w.array(f"outputs/{k}.npy", npy(v))

    # ---- ONNX parts (I/O that already exists above is referenced, not duplicated)
    parts_report = {}
    agg_names = _Aggregation.names
    feat_det = res["feat_det"]
    image_hw = tuple(cfg.image_size)
    scale = D._roi_scale(feat_det.shape[-2:], image_hw)
    props2 = res["rpn"]["proposals"][0][:2]
    det_rois = torch.ops.torchvision.roi_align(feat_det, torch.cat([torch.zeros(2, 1), props2], 1), scale,
                                               *cfg.det_roi_size, cfg.roi_sampling_ratio, False)
    reid_rois = res["reid_rois"][:2]
    tapfile = {n: f"inputs/{safe_name(n)}.npy" for n in agg_names}
    parts = [
        ("aggregation", _Aggregation(model), tuple(taps[n] for n in agg_names), agg_names,
         ["det_agg", "feat_reid"], None, tapfile, {"det_agg": "outputs/det_agg.npy", "feat_reid": "outputs/feat_reid.npy"}),
        ("rpn_head", _RpnHead(model), (feat_det,), ["feat_det"], ["objectness", "deltas"], None,
         {"feat_det": "outputs/feat_det.npy"},
         {"objectness": "outputs/rpn_objectness.npy", "deltas": "outputs/rpn_deltas.npy"}),
        ("box_head", _BoxHead(model), (det_rois,), ["rois"], ["cls_logits", "box_regression"],
         {"rois": {0: "n"}, "cls_logits": {0: "n"}, "box_regression": {0: "n"}}, {}, {}),
        ("reid_head", _ReidHead(model), (reid_rois,), ["rois"], ["embeddings"],
         {"rois": {0: "n"}, "embeddings": {0: "n"}}, {}, {}),
    ]
    for name, mod, args, in_names, out_names, dyn, in_files, out_files in parts:
        ob = export_onnx(mod, args, in_names, out_names, dyn, weights, sd)
        w.blob(f"{name}.onnx", ob)
        assert not model.training
        with torch.no_grad():
            ref = mod(*args)
        ref = ref if isinstance(ref, tuple) else (ref,)
        feeds = {n: npy(a) for n, a in zip(in_names, args)}
        got = run_onnx(out_root, ob, weights, feeds)
        errs, ins, outs_ = {}, {}, {}
        for n, r in zip(out_names, ref):
            errs[n] = compare(f"diffps {name}.{n}", got[n], npy(r))
            outs_[n] = out_files.get(n) or f"parts/{name}/outputs/{safe_name(n)}.npy"
            if n not in out_files:
                w.array(outs_[n], npy(r))
        for n, a in feeds.items():
            ins[n] = in_files.get(n) or f"parts/{name}/inputs/{safe_name(n)}.npy"
            if n not in in_files:
                w.array(ins[n], a)
        parts_report[name] = {"model": f"{name}.onnx", "inputs": ins, "outputs": outs_,
                              "max_abs_diff_ort_vs_torch": errs}
    parts_report["box_head"]["note"] = "rois = RoIAlign(feat_det, proposals[:2], 14x14, 1/8, 2, aligned=False)"
    parts_report["reid_head"]["note"] = "rois = RoIAlign(feat_reid, boxes[:2], 24x12, 1/8, 2, aligned=False)"

    config = {
        "model": "DiffPS heads on UNet taps (tools/psref/diffps.py), SMALL random-weight instance",
        "config": cfg.to_dict(),
        "seed": DIFFPS_SEED,
        "batch": 1,
        "inputs": {safe_name(k): list(v.shape) for k, v in taps.items()},
        "input_notes": "taps as float32; cross-map = attention probabilities [B, heads, HW, 77]; "
                       "DiffPS uses head cfg.attn_head=1, token cfg.attn_token=1",
        "outputs": {k: list(npy(v).shape) for k, v in outs.items()},
        "onnx_parts_note": "each part lists the .npy files holding its inputs and torch reference outputs",
        "boxes_coordinates": "network input pixels (cfg.image_size, here 128x128), xyxy",
        "onnx_parts": parts_report,
        "onnx_external_data": "initializers reference weights.safetensors by byte offset (ONNX external data)",
        "tolerance": {"rtol": 1e-4, "atol": 1e-5},
        "pipeline": DIFFPS_PIPELINE,
    }
    w.blob("config.json", (json.dumps(config, indent=2) + "\n").encode())
    return {"detections": int(len(res["boxes"][0])), "proposals": int(len(res["rpn"]["proposals"][0]))}


DIFFPS_PIPELINE = [
    "det_agg, feat_reid = aggregation(taps)                       [aggregation.onnx]",
    "A = cross-map[:, 1, :, 1]; attn = (A - min) / (max - min) per image (0 if max == min), reshaped HxW",
    "feat_det = DGRPN(det_agg, attn)                              [psref.reference_np.dgrpn]",
    "objectness, deltas = rpn_head(feat_det)                      [rpn_head.onnx]",
    "proposals = RPN filter (anchors, decode w=(1,1,1,1), top-k pre NMS, sigmoid, clip, min size 1e-3, NMS 0.7)",
    "rois = RoIAlign(feat_det, proposals, 14x14, scale 1/8, sampling 2, aligned=False)",
    "cls_logits, box_regression = box_head(rois)                  [box_head.onnx]",
    "boxes, scores = decode w=(10,10,5,5), clip, min size 1e-2, softmax[:,1] > 0.5, NMS 0.4, top 300",
    "rois = RoIAlign(feat_reid, boxes, 24x12, scale 1/8, sampling 2, aligned=False)",
    "embeddings = reid_head(rois)                                 [reid_head.onnx]",
]


# ----------------------------------------------------------------------------- PSDiff

class _CDLHead(torch.nn.Module):
    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, p2, p3, p4, p5, boxes, emb_in, t):
        logits, pboxes, pemb = self.head([p2, p3, p4, p5], boxes, emb_in, t)[-1]
        return logits, pboxes, pemb


def build_psdiff_small() -> tuple[P.PSDiff, list[torch.Tensor]]:
    torch.manual_seed(0)
    cfg = P.PSDiffConfig.small()
    model = P.PSDiff(cfg)
    gen = torch.Generator().manual_seed(PSDIFF_SEED)
    with torch.no_grad():
        randomize_(model.head, gen)
    model.eval()
    c = cfg.hidden_dim
    feats = [torch.randn(1, c, 128 // s, 128 // s, generator=gen) for s in cfg.fpn_strides]
    # Class bias (instead of DiffusionDet's -log(99) prior): about 40% of the first step's
    # boxes score > 0.5, so box renewal both keeps and renews boxes.
    with torch.no_grad():
        probe = P.draw_noise(1, cfg.num_proposals, c, 1, torch.Generator().manual_seed(NOISE_SEED))
        whwh = torch.tensor([[128.0, 128.0, 128.0, 128.0]])
        for cdl in model.head.head_series:
            cdl.class_logits.bias.zero_()
        logits = model.model_predictions(feats, whwh, probe["box_T"], probe["emb_T"], 999)["logits"]
        for cdl in model.head.head_series:
            cdl.class_logits.bias.fill_(-float(torch.quantile(logits.flatten(), 0.6)))
    return model, feats


def export_psdiff(w: Writer, out_root: str) -> dict:
    model, feats = build_psdiff_small()
    cfg = model.cfg
    sd = model.state_dict()
    weights = state_dict_bytes(sd, {"psref": json.dumps({"model": "PSDiff head (small, random weights)",
                                                         "config": cfg.to_dict()})})
    w.blob("weights.safetensors", weights)
    for lvl, f in zip((2, 3, 4, 5), feats):
        w.array(f"features/p{lvl}.npy", npy(f))
    noise = P.draw_noise(1, cfg.num_proposals, cfg.hidden_dim, max(STEPS), torch.Generator().manual_seed(NOISE_SEED))
    for k, v in noise.items():
        w.array(f"noise/{k}.npy", npy(v))
    summary = {}
    trace4 = None
    for steps in STEPS:
        r = model.sample(feats, [(128, 128)], steps=steps, noise=noise, return_trace=True)[0]
        d = f"outputs_steps{steps}"
        for k in ("boxes", "scores", "labels", "embeddings"):
            w.array(f"{d}/{k}.npy", npy(r[k]))
        for i, rec in enumerate(r["trace"]):
            for k in ("x_box", "x_emb", "boxes_in", "emb_in", "logits", "pred_boxes", "pred_emb", "keep"):
                w.array(f"{d}/step{i}_{k}.npy", npy(rec[k]))
        summary[steps] = {"detections": int(len(r["boxes"])), "kept_per_step": [int(x["keep"].sum()) for x in r["trace"]],
                          "timesteps": [[x["t"], x["t_next"]] for x in r["trace"]]}
        if steps == 4:
            trace4 = r["trace"]

    # ONNX: one denoising evaluation (step 1 of the 4-step run: t = 749)
    rec = trace4[1]
    args = tuple(feats) + (rec["boxes_in"], rec["emb_in"], torch.tensor([float(rec["t"])]))
    in_names = ["p2", "p3", "p4", "p5", "boxes", "emb_in", "t"]
    out_names = ["logits", "pred_boxes", "pred_emb"]
    mod = _CDLHead(model.head)
    ob = export_onnx(mod, args, in_names, out_names, None, weights, sd)
    w.blob("cdl_head.onnx", ob)
    feeds = {n: npy(a) for n, a in zip(in_names, args)}
    got = run_onnx(out_root, ob, weights, feeds)
    errs = {}
    for n, ref in zip(out_names, (rec["logits"], rec["pred_boxes"], rec["pred_emb"])):
        errs[n] = compare(f"psdiff cdl_head.{n}", got[n], npy(ref))
    w.array("parts/cdl_head/inputs/t.npy", feeds["t"])
    cdl_inputs = {f"p{l}": f"features/p{l}.npy" for l in (2, 3, 4, 5)}
    cdl_inputs.update({"boxes": "outputs_steps4/step1_boxes_in.npy", "emb_in": "outputs_steps4/step1_emb_in.npy",
                       "t": "parts/cdl_head/inputs/t.npy"})
    cdl_outputs = {"logits": "outputs_steps4/step1_logits.npy", "pred_boxes": "outputs_steps4/step1_pred_boxes.npy",
                   "pred_emb": "outputs_steps4/step1_pred_emb.npy"}

    ac = model.alphas_cumprod
    config = {
        "model": "PSDiff (tools/psref/psdiff.py), SMALL random-weight head; features given (no backbone)",
        "config": cfg.to_dict(),
        "seed": PSDIFF_SEED,
        "noise_seed": NOISE_SEED,
        "image_size_hw": [128, 128],
        "features": {f"p{l}": list(f.shape) for l, f in zip((2, 3, 4, 5), feats)},
        "noise_keys_in_draw_order": P.noise_keys(max(STEPS)),
        "noise_use": "step k keeping r of N boxes uses rows [:r] of box/emb_ddim_k and rows [:N-r] of "
                     "box/emb_renew_k; steps=S uses box_T, emb_T and the sets k < S-1",
        "runs": {str(k): v for k, v in summary.items()},
        "ddim_scalars_columns": ["t", "t_next", "alphas_cumprod[t]", "alphas_cumprod[t_next]",
                                 "sqrt_recip_alphas_cumprod[t]", "sqrt_recipm1_alphas_cumprod[t]",
                                 "sqrt(abar_next)", "c", "sigma"],
        "ddim_scalars": {str(s): [[t, tn, float(ac[t]), float(ac[tn]) if tn >= 0 else None,
                                   float(model.sqrt_recip_alphas_cumprod[t]), float(model.sqrt_recipm1_alphas_cumprod[t]),
                                   *(P.ddim_coefficients(float(ac[t]), float(ac[tn]), cfg.ddim_eta) if tn >= 0
                                     else (None, None, None))]
                                  for t, tn in P.ddim_time_pairs(s)] for s in STEPS},
        "onnx_parts": {"cdl_head": {"model": "cdl_head.onnx", "inputs": cdl_inputs, "outputs": cdl_outputs,
                                    "note": "step 1 of the 4-step run (t = 749)",
                                    "max_abs_diff_ort_vs_torch": errs}},
        "onnx_external_data": "initializers reference weights.safetensors by byte offset (ONNX external data)",
        "tolerance": {"rtol": 1e-4, "atol": 1e-5},
        "pipeline": PSDIFF_PIPELINE,
    }
    w.blob("config.json", (json.dumps(config, indent=2) + "\n").encode())
    return summary


PSDIFF_PIPELINE = [
    "x_box = noise.box_T [1,N,4], x_emb = noise.emb_T [1,N,C]; pairs = psref.reference_np.time_pairs(steps)",
    "per (t, t_next): boxes_in = boxes_from_x(x_box, s1=2, W, H); emb_in = clamp(x_emb, -3, 3) / 3",
    "  logits, pred_boxes, pred_emb = cdl_head(p2..p5, boxes_in, emb_in, t)        [cdl_head.onnx]",
    "  x0_box = x0_from_boxes(pred_boxes); x0_emb = clamp(3 * l2n(pred_emb), -3, 3)",
    "  eps = (sqrt_recip_alphas_cumprod[t] * x - x0) / sqrt_recipm1_alphas_cumprod[t]  (buffers, float32)",
    "  keep = sigmoid(logits).max(-1) > 0.5; record (pred_boxes, sigmoid scores, l2n(pred_emb)) for the ensemble",
    "  if t_next >= 0: x = x0[keep]*sqrt(a') + c*eps[keep] + sigma*(ddim noise rows [:r]), scalars from "
    "ddim_coefficients (float64 from the float32 buffers, rounded to float32; see ddim_scalars); "
    "append renew noise rows [:N-r]",
    "ensemble (steps > 1): concat all recorded steps (incl. the last); NMS 0.5 (descending score); "
    "clip to image; drop boxes with w <= 0 or h <= 0",
]


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "Tests", "Fixtures", "models"))
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = os.path.abspath(args.out)
    total = 0
    problems = []
    for name, fn in (("diffps_small", export_diffps), ("psdiff_small", export_psdiff)):
        d = os.path.join(root, name)
        if not args.check and os.path.isdir(d):
            shutil.rmtree(d)
        w = Writer(d, args.check)
        info = fn(w, d)
        problems += [f"{name}/{p}" for p in w.problems]
        size = sum(w.sizes.values())
        total += size
        print(f"{name}: {info}" + ("" if args.check else f", {len(w.sizes)} files, {size / 1e6:.2f} MB"))
    if args.check:
        for p in problems:
            print("MISMATCH", p)
        print("check:", "ok" if not problems else f"{len(problems)} problems")
        return 1 if problems else 0
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
