"""Randomized person-search evaluation cases for `psedge eval`, scored by tools/ps_eval.py.

    tools/.venv/bin/python tools/gen_eval_cases.py --out Tests/Fixtures/generated/eval --seeds 40

writes, per case (even seeds CUHK-SYSU style, odd seeds PRW style):

    <out>/<case>/manifest.json     dataset manifest (protocol, images, persons, queries)
    <out>/<case>/detections.json   detections file (boxes, scores, embeddings; query embeddings)
    <out>/<case>/expected.json     {"runs": [{"flags": {"gallery_size", "cross_camera", "iou_fixed"},
                                              "result": {"mAP", "top1", "top5", "top10", "det_ap", "det_recall"}}]}
    <out>/index.txt                case<TAB>protocol<TAB>#images<TAB>#queries

Runs: CUHK cases gallery_size null (whole listed gallery), -1 (full set), 3 and 8 (first N names), each with
iou_fixed false/true; PRW cases cross_camera false/true x iou_fixed false/true.

What the cases contain: 2-4 cameras, 8-21 images, 0-5 persons per image (some images without persons),
unlabeled persons (pid -1), tiny persons (w < 18 px, where min(0.5, w*h/((w+10)(h+10))) < 0.5 matters, with
detections whose IoU lies between that threshold and 0.5), images without detections (key missing or empty
lists), duplicated detection boxes, tied scores (a few fixed values, 0.5 exactly among them), scores below 0.5
and below 0.01, detections exactly at IoU 0.5, embeddings copied between detections and into queries (tied
similarities), "missed" identities whose every detection misses the IoU threshold (queries with no true
positive), identities seen once (queries whose gallery holds no GT), listed galleries in shuffled order so
that "first N" drops positives.

So that an implementation computing in float32 agrees with this float64 reference, all boxes have integer
coordinates and the generator keeps every decision away from rounding: an IoU is never within 1e-5 of a
threshold it is compared with unless exactly equal to 0.5, the argmax of an IoU row/column is never within 1e-5
of another value unless exactly equal (first index wins), distinct embeddings never give similarities within
1e-5 of each other for any query, scores have at most 3 decimals and avoid 0.01.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ps_eval  # noqa: E402

MARGIN = 1e-5
TIE_SCORES = [0.5, 0.5, 0.7, 0.9, 0.3, 0.05, 0.005]


def frac_iou(a, b) -> Fraction:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return Fraction(inter, union)


def frac_thr(gt) -> Fraction:
    w, h = gt[2] - gt[0], gt[3] - gt[1]
    return min(Fraction(1, 2), Fraction(w * h, (w + 10) * (h + 10)))


def near(a: Fraction, b: Fraction, allow_equal: bool) -> bool:
    if a == b:
        return not allow_equal
    return abs(float(a - b)) < MARGIN


def box_safe(box, gts) -> bool:
    """No IoU of `box` with a GT box sits on (or within 1e-5 of) a threshold it is compared with."""
    for g in gts:
        v = frac_iou(box, g)
        if near(v, Fraction(1, 2), allow_equal=True):
            return False
        t = frac_thr(g)
        if t < Fraction(1, 2) and near(v, t, allow_equal=False):
            return False
    return True


def argmax_unsafe(gts, boxes) -> int | None:
    """Index of a detection that makes a row/column argmax fragile, or None."""
    if not gts or not boxes:
        return None
    m = [[frac_iou(g, b) for b in boxes] for g in gts]
    for i in range(len(gts)):
        row = m[i]
        top = max(row)
        if float(top) < 0.5 - MARGIN:
            continue
        for j, v in enumerate(row):
            if v != top and float(top - v) < MARGIN:
                return j
    for j in range(len(boxes)):
        col = [m[i][j] for i in range(len(gts))]
        top = max(col)
        if float(top) < 0.5 - MARGIN:
            continue
        for v in col:
            if v != top and float(top - v) < MARGIN:
                return j
    return None


def clip_box(b, W, H):
    x1, y1, x2, y2 = (int(v) for v in b)
    x1 = min(max(x1, 0), W - 1)
    y1 = min(max(y1, 0), H - 1)
    x2 = min(max(x2, x1 + 1), W)
    y2 = min(max(y2, y1 + 1), H)
    return [x1, y1, x2, y2]


class CaseGen:
    def __init__(self, seed: int):
        self.seed = seed
        self.rng = np.random.default_rng([20260, seed])
        self.protocol = "cuhk-sysu" if seed % 2 == 0 else "prw"

    # ----------------------------------------------------------------- manifest
    def person_box(self, W, H, tiny: bool):
        r = self.rng
        if tiny:
            h = int(r.integers(8, 31))
            w = int(max(3, min(17, round(h * r.uniform(0.3, 0.6)))))
        else:
            h = int(r.integers(30, max(31, int(0.6 * H))))
            w = int(max(12, round(h * r.uniform(0.3, 0.5))))
        x1 = int(r.integers(0, max(1, W - w)))
        y1 = int(r.integers(0, max(1, H - h)))
        return [x1, y1, x1 + w, y1 + h]

    def make_manifest(self):
        r = self.rng
        n_cams = int(r.integers(2, 5))
        sizes = {c: (int(r.integers(24, 65)) * 10, int(r.integers(18, 49)) * 10) for c in range(1, n_cams + 1)}
        n_images = int(r.integers(8, 22))
        n_ids = int(r.integers(3, 9))
        pids = sorted(r.choice(np.arange(1, 60), size=n_ids, replace=False).tolist())
        p_tiny = float(r.choice([0.0, 0.25, 0.5]))
        allow_empty = r.random() < 0.4
        images = []
        for i in range(n_images):
            cam = int(r.integers(1, n_cams + 1))
            W, H = sizes[cam]
            if self.protocol == "prw":
                name = f"c{cam}s{int(r.integers(1, 7))}_{100 + 25 * i:06d}.jpg"
            else:
                name = f"s{1000 + 7 * i}.jpg"
            k = int(r.integers(0 if allow_empty else 1, 6))
            chosen = r.choice(pids, size=min(k, len(pids)), replace=False).tolist()
            persons = []
            for p in chosen:
                pid = int(p) if r.random() < 0.75 else -1
                persons.append({"box": self.person_box(W, H, r.random() < p_tiny), "pid": pid})
            images.append({"name": name, "path": f"frames/{name}", "width": W, "height": H, "camera": cam,
                           "persons": persons})
        # queries: 1-2 per identity that occurs
        occ = {}
        for im in images:
            for p in im["persons"]:
                if p["pid"] >= 0:
                    occ.setdefault(p["pid"], []).append((im["name"], p["box"]))
        queries = []
        names = [im["name"] for im in images]
        for pid in sorted(occ):
            for _ in range(int(r.integers(1, 3))):
                qname, qbox = occ[pid][int(r.integers(len(occ[pid])))]
                q = {"image": qname, "box": list(qbox), "pid": pid}
                if self.protocol == "cuhk-sysu":
                    pos = sorted({n for n, _ in occ[pid] if n != qname})
                    neg = [n for n in names if n != qname and n not in pos]
                    n_neg = min(len(neg), int(r.integers(2, 10)))
                    neg = r.choice(neg, size=n_neg, replace=False).tolist() if n_neg else []
                    gallery = pos + neg
                    if r.random() < 0.6:
                        gallery = r.permutation(gallery).tolist()
                    q["gallery"] = [str(n) for n in gallery]
                queries.append(q)
        self.missed = {pid for pid in occ if r.random() < 0.15}
        return {"protocol": self.protocol, "images": images, "queries": queries}

    # ----------------------------------------------------------------- detections
    def score(self, good: bool):
        r = self.rng
        if r.random() < 0.3:
            return float(r.choice(TIE_SCORES))
        s = r.uniform(0.35, 1.0) if good else r.uniform(0.0, 0.8)
        s = round(float(s), 3)
        return 0.011 if s == 0.01 else s

    def jitter_box(self, gt, W, H, mode):
        """A detection around gt; mode 'good' (high IoU), 'mid' (thr..0.5 for tiny GT), 'poor', 'miss'."""
        r = self.rng
        thr = frac_thr(gt)
        w, h = gt[2] - gt[0], gt[3] - gt[1]
        for _ in range(200):
            if mode == "good":
                s = 0.12
            elif mode == "mid":
                s = 0.45
            else:
                s = 0.6
            d = [int(round(v)) for v in r.normal(0.0, s, 4) * np.array([w, h, w, h])]
            b = clip_box([gt[0] + d[0], gt[1] + d[1], gt[2] + d[2], gt[3] + d[3]], W, H)
            v = frac_iou(b, gt)
            if mode == "good" and v < Fraction(1, 2):
                continue
            if mode == "mid" and not (thr <= v < Fraction(1, 2)):
                continue
            if mode == "poor" and v >= Fraction(1, 2):
                continue
            if mode == "miss" and v >= thr:
                continue
            return b
        return None

    def make_detections(self, manifest):
        r = self.rng
        dim = int(r.integers(4, 17))
        noise = float(r.uniform(0.3, 1.2))
        protos = {}

        def proto(pid):
            if pid not in protos:
                protos[pid] = r.normal(0.0, 1.0, dim)
            return protos[pid]

        def emb_for(pid):
            base = proto(pid) if pid >= 0 else r.normal(0.0, 1.0, dim)
            return np.round(base + r.normal(0.0, noise, dim), 4)

        per_image = {}
        all_embs = []  # (image, index) of every detection, for copying
        for im in manifest["images"]:
            W, H = im["width"], im["height"]
            gts = [p["box"] for p in im["persons"]]
            boxes, scores, embs = [], [], []
            if r.random() < 0.15:
                per_image[im["name"]] = None if r.random() < 0.5 else {"boxes": [], "scores": [], "embeddings": []}
                continue

            def add(b, s, e):
                if b is None or not box_safe(b, gts):
                    return
                boxes.append(b)
                scores.append(s)
                embs.append(e)

            for p in im["persons"]:
                gt, pid = p["box"], p["pid"]
                if pid in self.missed:
                    if r.random() < 0.7:
                        add(self.jitter_box(gt, W, H, "miss"), self.score(True), emb_for(pid))
                    continue
                if r.random() < 0.15:
                    continue  # missed by the detector
                tiny_mid = frac_thr(gt) < Fraction(1, 2) and r.random() < 0.5
                mode = "mid" if tiny_mid else ("good" if r.random() < 0.8 else "poor")
                b = list(gt) if (mode == "good" and r.random() < 0.2) else self.jitter_box(gt, W, H, mode)
                add(b, self.score(True), emb_for(pid))
                if mode == "good" and r.random() < 0.1:
                    # exactly IoU 0.5: keep the top half of a box twice as tall (height even)
                    x1, y1, x2, y2 = gt
                    if (y2 - y1) % 2 == 0:
                        add([x1, y1, x2, y1 + (y2 - y1) // 2], self.score(True), emb_for(pid))
                if boxes and r.random() < 0.12:  # duplicate box, own score/embedding or copies
                    k = int(r.integers(len(boxes)))
                    add(list(boxes[k]), scores[k] if r.random() < 0.5 else self.score(True),
                        embs[k].copy() if r.random() < 0.5 else emb_for(pid))
            for _ in range(int(r.integers(0, 4))):  # false positives
                h = int(r.integers(8, max(9, H // 2)))
                w = int(max(3, h * r.uniform(0.25, 0.6)))
                x1, y1 = int(r.integers(0, max(1, W - w))), int(r.integers(0, max(1, H - h)))
                pid = int(r.choice(list(protos))) if protos and r.random() < 0.4 else -1
                add([x1, y1, x1 + w, y1 + h], self.score(False), emb_for(pid))
            # fragile argmax: drop detections until every row/column argmax is clear
            while True:
                j = argmax_unsafe(gts, boxes)
                if j is None:
                    break
                del boxes[j], scores[j], embs[j]
            order = r.permutation(len(boxes))
            boxes = [boxes[i] for i in order]
            scores = [scores[i] for i in order]
            embs = [embs[i] for i in order]
            per_image[im["name"]] = {"boxes": boxes, "scores": scores, "embeddings": embs}
            all_embs += [(im["name"], i) for i in range(len(boxes))]

        # copied embeddings across images: exact ties in similarity
        for _ in range(int(r.integers(0, 4))):
            if len(all_embs) < 2:
                break
            a, b = r.choice(len(all_embs), size=2, replace=False)
            (na, ia), (nb, ib) = all_embs[a], all_embs[b]
            per_image[nb]["embeddings"][ib] = per_image[na]["embeddings"][ia].copy()

        qembs = []
        for q in manifest["queries"]:
            if all_embs and r.random() < 0.1:
                n, i = all_embs[int(r.integers(len(all_embs)))]
                qembs.append(per_image[n]["embeddings"][i].copy())
            else:
                qembs.append(emb_for(q["pid"]))
            if r.random() < 0.05:
                qembs[-1] = np.round(qembs[-1] * 2.0, 4)  # un-normalised: the scorer normalises
        self.separate_similarities(per_image, qembs, emb_for)
        images = {}
        for name, d in per_image.items():
            if d is None:
                continue
            images[name] = {"boxes": d["boxes"], "scores": d["scores"],
                            "embeddings": [[float(v) for v in e] for e in d["embeddings"]]}
        return {"images": images, "queries": [{"embedding": [float(v) for v in e]} for e in qembs]}

    def separate_similarities(self, per_image, qembs, emb_for):
        """Redraw embeddings until, for every query, distinct vectors differ in similarity by > MARGIN."""
        for _ in range(1000):
            refs = []
            for name, d in per_image.items():
                if d is None:
                    continue
                for i, (e, s) in enumerate(zip(d["embeddings"], d["scores"])):
                    if s >= 0.5:
                        refs.append((name, i))
            if not refs:
                return
            G = np.array([per_image[n]["embeddings"][i] for n, i in refs], dtype=np.float64)
            Gn = ps_eval.l2_normalize(G)
            bad = None
            for qe in qembs:
                sims = Gn @ ps_eval.l2_normalize(np.asarray(qe, dtype=np.float64))
                order = np.argsort(sims, kind="stable")
                for a, b in zip(order[:-1], order[1:]):
                    if sims[b] - sims[a] < MARGIN and not np.array_equal(G[a], G[b]):
                        bad = refs[b]
                        break
                if bad:
                    break
            if bad is None:
                return
            n, i = bad
            per_image[n]["embeddings"][i] = emb_for(-1)
        raise RuntimeError("could not separate similarities")


FLAG_SETS = {
    "cuhk-sysu": [{"gallery_size": g, "cross_camera": False, "iou_fixed": f}
                  for g in (None, -1, 3, 8) for f in (False, True)],
    "prw": [{"gallery_size": None, "cross_camera": c, "iou_fixed": f} for c in (False, True) for f in (False, True)],
}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="randomized person-search evaluation cases")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, default=40)
    args = ap.parse_args(argv)
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    index = []
    for seed in range(args.seeds):
        g = CaseGen(seed)
        manifest = g.make_manifest()
        detections = g.make_detections(manifest)
        case = f"{'cuhk' if g.protocol == 'cuhk-sysu' else 'prw'}_{seed:03d}"
        d = os.path.join(args.out, case)
        os.makedirs(d)
        write_json(os.path.join(d, "manifest.json"), manifest)
        write_json(os.path.join(d, "detections.json"), detections)
        runs = []
        for flags in FLAG_SETS[g.protocol]:
            res = ps_eval.evaluate(manifest, detections, **flags)
            runs.append({"flags": flags, "result": res})
        write_json(os.path.join(d, "expected.json"), {"runs": runs})
        index.append(f"{case}\t{g.protocol}\t{len(manifest['images'])}\t{len(manifest['queries'])}")
    with open(os.path.join(args.out, "index.txt"), "w") as f:
        f.write("\n".join(index) + "\n")
    print(f"{len(index)} cases -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
