#!/usr/bin/env python3
"""Writes the shipped default model package Models/default/ from a checkpoint of tools/train_default.py.

    tools/.venv/bin/python tools/export_default_model.py --checkpoint CKPT/model.pt [--out Models/default]
        [--samples Tests/Fixtures/synthetic_small]

Models/default/
  weights.safetensors   every weight (unet.*, context, neck.*, psdiff.head.*) and the diffusion buffers
  backbone.onnx         image [1,3,192,256] -> p2, p3, p4 (UNet at the fixed timestep, constant context, neck)
  head.onnx             (p2, p3, p4, boxes, emb_in, t) -> logits, pred_boxes, pred_emb (one CDL evaluation)
                        both ONNX graphs keep their initializers as external data inside weights.safetensors
  unet_config.json      the diffusers UNet2DConditionModel config (for the Swift UNet builder)
  config.json           PSDiff head config, input/letterbox spec, feature timestep, taps, neck layout
  pipeline.json         what `psedge` reads (docs/PIPELINE.md)
  reference/            parity data: a sample image, its letterboxed input, p2..p4, DDIM noise for up to 8 steps,
                        outputs for 1, 2, 4, 8 steps (network and image pixels) and the 2-step trace
  samples/              the demo: gallery/ (the synthetic small preset's test images) and query.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export_psref_fixtures import export_onnx, run_onnx, state_dict_bytes  # noqa: E402
from psref import default_model as D  # noqa: E402
from psref import psdiff as P  # noqa: E402

NOISE_SEED = 1234
STEPS = (1, 2, 4, 8)


def npy(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32) if torch.is_tensor(t) else np.asarray(t, dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "Models", "default"))
    ap.add_argument("--samples", default=os.path.join(HERE, "..", "Tests", "Fixtures", "synthetic_small"))
    ap.add_argument("--score-thresh", type=float, default=0.05)
    a = ap.parse_args()
    torch.set_num_threads(2)
    model = D.DefaultModel()
    model.load_state_dict(torch.load(a.checkpoint, weights_only=True))
    model.eval()
    cfg = model.psdiff.cfg
    out = a.out
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "reference"))
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith(("unet.conv_norm_out", "unet.conv_out"))}
    weights = state_dict_bytes(sd, {"psedge": json.dumps({"model": "psedge default (tools/train_default.py)"})})
    open(os.path.join(out, "weights.safetensors"), "wb").write(weights)

    # Reference image: the first query image of the small preset's test split.
    test = json.load(open(os.path.join(a.samples, "test.json")))
    q = test["queries"][0]
    qimg = next(im for im in test["images"] if im["name"] == q["image"])
    rgb = np.asarray(Image.open(os.path.join(a.samples, qimg["path"])).convert("RGB"))
    x, scale = D.letterbox(rgb)
    image = x[None]
    with torch.no_grad():
        p2, p3, p4 = model.features(image)

    bb = export_onnx(D.BackboneExport(model), (image,), ["image"], ["p2", "p3", "p4"], None, weights, sd)
    open(os.path.join(out, "backbone.onnx"), "wb").write(bb)
    got = run_onnx(out, bb, weights, {"image": npy(image)})
    for n, ref in zip(("p2", "p3", "p4"), (p2, p3, p4)):
        err = float(np.abs(got[n] - npy(ref)).max() / max(np.abs(npy(ref)).max(), 1e-12))
        print(f"backbone.onnx {n}: ORT vs torch relative {err:.2e}")
        assert err < 1e-4, n

    noise = P.draw_noise(1, cfg.num_proposals, cfg.hidden_dim, max(STEPS), torch.Generator().manual_seed(NOISE_SEED))
    ref = os.path.join(out, "reference")
    os.makedirs(os.path.join(ref, "noise"))
    for k, v in noise.items():
        np.save(os.path.join(ref, "noise", f"{k}.npy"), npy(v))
    Image.fromarray(rgb).save(os.path.join(ref, "image.png"))
    np.save(os.path.join(ref, "image.npy"), npy(image))
    for n, t in (("p2", p2), ("p3", p3), ("p4", p4)):
        np.save(os.path.join(ref, f"{n}.npy"), npy(t))
    summary = {}
    trace2 = None
    for steps in STEPS:
        r = model.psdiff.sample([p2, p3, p4], [(D.INPUT_H, D.INPUT_W)], steps=steps, noise=noise, return_trace=True)[0]
        d = os.path.join(ref, f"steps{steps}")
        os.makedirs(d)
        for k in ("boxes", "scores", "embeddings"):
            np.save(os.path.join(d, f"{k}.npy"), npy(r[k]))
        keep = r["scores"] >= a.score_thresh
        img_boxes = r["boxes"][keep] / scale
        img_boxes[:, 0::2] = img_boxes[:, 0::2].clamp(0, rgb.shape[1])
        img_boxes[:, 1::2] = img_boxes[:, 1::2].clamp(0, rgb.shape[0])
        np.save(os.path.join(d, "image_boxes.npy"), npy(img_boxes))
        summary[steps] = {"detections": int(len(r["boxes"])), "above_score_thresh": int(keep.sum()),
                          "kept_per_step": [int(t["keep"].sum()) for t in r["trace"]]}
        if steps == 2:
            trace2 = r["trace"]
            for i, rec in enumerate(r["trace"]):
                for k in ("x_box", "x_emb", "boxes_in", "emb_in", "logits", "pred_boxes", "pred_emb", "keep"):
                    np.save(os.path.join(d, f"step{i}_{k}.npy"), npy(rec[k]))

    rec = trace2[1]
    args = (p2, p3, p4, rec["boxes_in"], rec["emb_in"], torch.tensor([float(rec["t"])]))
    names = ["p2", "p3", "p4", "boxes", "emb_in", "t"]
    hb = export_onnx(D.HeadExport(model), args, names, ["logits", "pred_boxes", "pred_emb"], None, weights, sd)
    open(os.path.join(out, "head.onnx"), "wb").write(hb)
    got = run_onnx(out, hb, weights, {n: npy(v) for n, v in zip(names, args)})
    for n, refv in zip(("logits", "pred_boxes", "pred_emb"), (rec["logits"], rec["pred_boxes"], rec["pred_emb"])):
        err = float(np.abs(got[n] - npy(refv)).max() / max(np.abs(npy(refv)).max(), 1e-12))
        print(f"head.onnx {n}: ORT vs torch relative {err:.2e}")
        assert err < 1e-3, n

    unet_cfg = dict(model.unet.config)
    json.dump({k: (list(v) if isinstance(v, tuple) else v) for k, v in unet_cfg.items() if not k.startswith("_")} | {"_class_name": "UNet2DConditionModel"},
              open(os.path.join(out, "unet_config.json"), "w"), indent=2, sort_keys=True)
    config = {
        "model": "psedge default: tiny diffusion UNet backbone (frozen) + PSDiff head, trained on the synthetic set",
        "head_config": cfg.to_dict(),
        "input": {"height": D.INPUT_H, "width": D.INPUT_W, "resize": "letterbox-topleft", "mean": list(D.MEAN), "std": list(D.STD)},
        "latent": {"pixel_unshuffle": D.UNSHUFFLE},
        "feature_timestep": D.FEATURE_T,
        "context": {"tensor": "context", "shape": [1, D.CONTEXT_TOKENS, D.CONTEXT_DIM]},
        "taps": D.TAPS,
        "neck": {"prefix": "neck.levels", "layout": "per level: 0 = Conv3x3 (pad 1), ReLU, 2 = Conv1x1"},
        "reference": {"image": qimg["path"], "scale": scale, "noise_seed": NOISE_SEED, "runs": summary,
                      "noise_keys": P.noise_keys(max(STEPS))},
    }
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    pipeline = {
        "format": "psedge-pipeline", "version": 1, "kind": "psdiff", "name": "psedge-default",
        "input": config["input"],
        "backbone": {"onnx": "backbone.onnx", "input": "image", "outputs": ["p2", "p3", "p4"],
                     "builder": {"kind": "diffusion-unet", "config": "config.json", "unet_config": "unet_config.json"}},
        "head": {"onnx": "head.onnx", "features": ["p2", "p3", "p4"], "boxes": "boxes", "embeddings": "emb_in", "timestep": "t",
                 "outputs": {"logits": "logits", "boxes": "pred_boxes", "embeddings": "pred_emb"},
                 "builder": {"kind": "psdiff-head", "config": "config.json"}},
        "weights": "weights.safetensors",
        "diffusion": {"timesteps": cfg.timesteps, "num_proposals": cfg.num_proposals, "box_scale": cfg.box_scale,
                      "emb_scale": cfg.emb_scale, "eta": cfg.ddim_eta, "renewal_threshold": cfg.renewal_threshold,
                      "nms_thresh": cfg.nms_thresh, "score_thresh": a.score_thresh, "max_detections": cfg.num_proposals,
                      "buffer_prefix": "psdiff."},
    }
    json.dump(pipeline, open(os.path.join(out, "pipeline.json"), "w"), indent=2)

    # Demo samples: the small preset's test images as the gallery, its first query.
    g = os.path.join(out, "samples", "gallery")
    os.makedirs(g)
    for im in test["images"]:
        shutil.copy(os.path.join(a.samples, im["path"]), os.path.join(g, os.path.basename(im["path"])))
    json.dump({"image": "samples/gallery/" + os.path.basename(qimg["path"]), "box": q["box"], "pid": q["pid"]},
              open(os.path.join(out, "samples", "query.json"), "w"), indent=2)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out}: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
