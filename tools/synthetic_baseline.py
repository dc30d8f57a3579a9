"""A model-free baseline detections file for a person-search manifest (e.g. the synthetic set).

    tools/.venv/bin/python tools/synthetic_baseline.py --manifest DIR/test.json -o dets.json [--jitter 0.1 --drop 0.1 --fp 0.5]
    tools/.venv/bin/python tools/ps_eval.py --manifest DIR/test.json --detections dets.json

"Detections" are the GT boxes (optionally jittered by up to `jitter` x box size, with a fraction `drop` of
persons missed and on average `fp` random false positives per image, scores from a fixed rule), and each
embedding is a colour histogram of the box (4 x 4 x 4 RGB bins, upper and lower half, square-rooted): a
re-identification "model" that only sees colours. It shows how hard a set is for appearance by colour
alone and gives `psedge eval` a realistic detections file. Deterministic (numpy seed 0).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from PIL import Image


def colour_histogram(img: Image.Image, box) -> list[float]:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    c = np.asarray(img.crop((x1, y1, x2, y2)).convert("RGB").resize((16, 32), Image.Resampling.BILINEAR))
    q = (c // 64).astype(np.int64)
    parts = []
    for half in (q[:16], q[16:]):
        idx = half[..., 0] * 16 + half[..., 1] * 4 + half[..., 2]
        parts.append(np.bincount(idx.ravel(), minlength=64))
    return [round(float(v), 4) for v in np.sqrt(np.concatenate(parts))]


def make_detections(manifest_path: str, jitter=0.0, drop=0.0, fp=0.0, seed=0) -> dict:
    m = json.load(open(manifest_path))
    root = os.path.dirname(os.path.abspath(manifest_path))
    rng = np.random.default_rng(seed)
    images, cache = {}, {}
    for im in m["images"]:
        img = Image.open(os.path.join(root, im["path"]))
        img.load()
        cache[im["name"]] = img
        W, H = img.size
        boxes, scores, embs = [], [], []
        for p in im["persons"]:
            if rng.random() < drop:
                continue
            b = np.asarray(p["box"], dtype=np.float64)
            w, h = b[2] - b[0], b[3] - b[1]
            b = b + rng.uniform(-jitter, jitter, 4) * np.array([w, h, w, h])
            b = np.clip(np.round(b), 0, [W, H, W, H])
            if b[2] - b[0] < 2 or b[3] - b[1] < 2:
                continue
            boxes.append(b.tolist())
            scores.append(round(float(rng.uniform(0.6, 1.0)), 3))
            embs.append(colour_histogram(img, b))
        for _ in range(int(rng.poisson(fp))):
            h = float(rng.uniform(0.1, 0.4)) * H
            w = 0.4 * h
            x, y = float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h))
            b = [round(x), round(y), round(x + w), round(y + h)]
            boxes.append(b)
            scores.append(round(float(rng.uniform(0.05, 0.8)), 3))
            embs.append(colour_histogram(img, b))
        images[im["name"]] = {"boxes": boxes, "scores": scores, "embeddings": embs}
    queries = [{"embedding": colour_histogram(cache[q["image"]], q["box"])} for q in m["queries"]]
    return {"images": images, "queries": queries}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="colour-histogram baseline detections for a manifest")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--jitter", type=float, default=0.0, help="box jitter, fraction of the box size")
    ap.add_argument("--drop", type=float, default=0.0, help="fraction of persons missed")
    ap.add_argument("--fp", type=float, default=0.0, help="mean false positives per image")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    d = make_detections(args.manifest, args.jitter, args.drop, args.fp, args.seed)
    with open(args.output, "w") as f:
        json.dump(d, f, separators=(",", ":"))
        f.write("\n")
    n = sum(len(v["boxes"]) for v in d["images"].values())
    print(f"{args.output}: {n} detections in {len(d['images'])} images, {len(d['queries'])} queries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
