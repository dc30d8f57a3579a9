"""Hand-worked cases for tools/ps_eval.py (numbers derived by hand in the comments)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import ps_eval  # noqa: E402


def unit(sim):
    """A 2-d embedding whose dot product with the query [1, 0] is `sim`."""
    return [sim, math.sqrt(max(0.0, 1.0 - sim * sim))]


Q = [1.0, 0.0]


def image(name, persons, camera=1):
    return {"name": name, "path": name, "width": 200, "height": 200, "camera": camera,
            "persons": [{"box": b, "pid": p} for b, p in persons]}


def dets(boxes, scores, sims):
    return {"boxes": boxes, "scores": scores, "embeddings": [unit(s) for s in sims]}


def approx(res, **want):
    for k, v in want.items():
        assert res[k] == pytest.approx(v, abs=1e-12), (k, res[k], v)


# --------------------------------------------------------------------------- search


def cuhk_basic():
    manifest = {
        "protocol": "cuhk-sysu",
        "images": [
            image("q", [([0, 0, 50, 100], 1)]),
            image("g1", [([0, 0, 50, 100], 1)]),
            image("g2", [([10, 10, 60, 110], 1)]),
            image("g3", [([100, 100, 140, 190], -1)]),
        ],
        "queries": [{"image": "q", "box": [0, 0, 50, 100], "pid": 1, "gallery": ["g1", "g2", "g3"]}],
    }
    detections = {
        "images": {
            "g1": dets([[0, 0, 50, 100], [120, 0, 170, 100]], [0.9, 0.8], [0.8, 0.9]),
            "g3": dets([[100, 100, 140, 190]], [0.7], [0.95]),
        },
        "queries": [{"embedding": Q}],
    }
    return manifest, detections


def test_recall_penalty_and_topk():
    # ranking: g3 0.95 (neg), g1 0.9 (neg), g1 0.8 (TP). sklearn AP = 1/3 (one positive at rank 3).
    # count_gt = 2 (g1, g2 — g2 has no detections), count_tp = 1 -> AP = 1/3 * 1/2.
    m, d = cuhk_basic()
    r = ps_eval.evaluate(m, d)
    approx(r, mAP=1 / 6, top1=0, top5=1, top10=1)


def test_detection_metrics_basic():
    # GT boxes: q 1, g1 1, g2 1, g3 1 = 4. g1: det0 = GT (match), det1 FP. g3: det matches.
    # scores: 0.9 T, 0.8 F, 0.7 T -> sklearn AP = (1/2)(1) + (1/2)(2/3) = 5/6; recall 2/4.
    m, d = cuhk_basic()
    r = ps_eval.evaluate(m, d)
    approx(r, det_recall=0.5, det_ap=5 / 6 * 0.5)


def test_gallery_size_takes_first_names():
    m, d = cuhk_basic()
    # first 1 name: g1 only -> count_gt 1, ranking 0.9 neg, 0.8 TP -> AP 1/2, top1 0
    approx(ps_eval.evaluate(m, d, gallery_size=1), mAP=0.5, top1=0, top5=1)
    # larger than the list = whole list
    approx(ps_eval.evaluate(m, d, gallery_size=50), mAP=1 / 6)


def test_full_set_adds_other_images_as_negatives():
    m, d = cuhk_basic()
    m["images"].append(image("x", [([0, 0, 50, 100], 7)]))
    d["images"]["x"] = dets([[0, 0, 50, 100]], [0.99], [0.85])
    m["queries"][0]["gallery"] = ["g1", "g2"]
    # listed: g1 (0.9 neg, 0.8 TP), g2 (no dets, GT). extra: g3 0.95, x 0.85 (all negative)
    # ranking 0.95 n, 0.9 n, 0.85 n, 0.8 p -> sklearn AP 1/4; recall 1/2
    approx(ps_eval.evaluate(m, d, gallery_size=-1), mAP=1 / 8, top1=0, top5=1)
    approx(ps_eval.evaluate(m, d), mAP=1 / 4)  # listed only: 0.9 n, 0.8 p -> 1/2 * 1/2


def test_first_match_is_most_similar_not_best_iou():
    m = {
        "protocol": "cuhk-sysu",
        "images": [image("q", [([0, 0, 50, 100], 3)]), image("g", [([0, 0, 50, 100], 3)])],
        "queries": [{"image": "q", "box": [0, 0, 50, 100], "pid": 3, "gallery": ["g"]}],
    }
    # A: IoU 0.6 (x2 = 30 -> 30*100 / 5000), sim 0.7; B: IoU 1, sim 0.5. A is the TP, B a negative.
    d = {"images": {"g": dets([[0, 0, 30, 100], [0, 0, 50, 100]], [0.9, 0.9], [0.7, 0.5])},
         "queries": [{"embedding": Q}]}
    approx(ps_eval.evaluate(m, d), mAP=1.0, top1=1)
    # B more similar than A: B is TP, A negative -> still AP 1
    d["images"]["g"]["embeddings"] = [unit(0.5), unit(0.7)]
    approx(ps_eval.evaluate(m, d), mAP=1.0, top1=1)
    # A more similar but IoU 0.4 < 0.5: B (sim 0.5) is the TP, A ranks above it -> AP 1/2
    d["images"]["g"]["boxes"][0] = [0, 0, 20, 100]
    d["images"]["g"]["embeddings"] = [unit(0.7), unit(0.5)]
    approx(ps_eval.evaluate(m, d), mAP=0.5, top1=0, top5=1)


def test_tiny_box_threshold_and_iou_fixed():
    # GT 10 x 20: thr = 200 / (20 * 30) = 1/3. Det [0,0,10,50]: IoU = 200 / 500 = 0.4.
    m = {
        "protocol": "cuhk-sysu",
        "images": [image("q", [([0, 0, 10, 20], 5)]), image("g", [([0, 0, 10, 20], 5)])],
        "queries": [{"image": "q", "box": [0, 0, 10, 20], "pid": 5, "gallery": ["g"]}],
    }
    d = {"images": {"g": dets([[0, 0, 10, 50]], [0.8], [0.3])}, "queries": [{"embedding": Q}]}
    approx(ps_eval.evaluate(m, d), mAP=1.0, top1=1)
    approx(ps_eval.evaluate(m, d, iou_fixed=True), mAP=0.0, top1=0)
    # detection eval always uses IoU 0.5: 0.4 is a miss there
    approx(ps_eval.evaluate(m, d), det_recall=0.0, det_ap=0.0)
    assert ps_eval.search_iou_threshold([0, 0, 10, 20], False) == pytest.approx(1 / 3)
    assert ps_eval.search_iou_threshold([0, 0, 100, 200], False) == 0.5


def test_search_score_threshold():
    m, d = cuhk_basic()
    d["images"]["g3"]["scores"] = [0.49]  # dropped from search, kept for detection (>= 0.01)
    # ranking 0.9 n, 0.8 p -> AP 1/2 * 1/2
    r = ps_eval.evaluate(m, d)
    approx(r, mAP=0.25, top1=0, top5=1, det_recall=0.5)
    d["images"]["g3"]["scores"] = [0.5]  # >= 0.5 is kept
    approx(ps_eval.evaluate(m, d), mAP=1 / 6)


def test_ties_rank_negatives_first():
    m, d = cuhk_basic()
    # g1 TP sim 0.8; g3 negative at exactly the same embedding -> tie at the top after removing the 0.9 det
    d["images"]["g1"] = dets([[0, 0, 50, 100]], [0.9], [0.8])
    d["images"]["g3"]["embeddings"] = [unit(0.8)]
    # sklearn: one threshold holding 1 pos + 1 neg -> precision 1/2, AP 1/2; recall 1/2
    approx(ps_eval.evaluate(m, d), mAP=0.25, top1=0, top5=1)


def test_no_true_positive_and_no_gt_queries():
    m, d = cuhk_basic()
    # second query: pid 9 appears nowhere in its gallery (count_gt = 0) -> AP 0, top-k 0, still averaged
    m["images"][3]["persons"].append({"box": [0, 0, 30, 60], "pid": 9})
    m["queries"].append({"image": "g3", "box": [0, 0, 30, 60], "pid": 9, "gallery": ["g1", "g2"]})
    # third query: pid 1 but every detection misses the GT (count_tp = 0) -> 0
    m["queries"].append({"image": "q", "box": [0, 0, 50, 100], "pid": 1, "gallery": ["g3"]})
    m["images"][3]["persons"].append({"box": [150, 0, 190, 80], "pid": 1})
    d["queries"] += [{"embedding": Q}, {"embedding": Q}]
    r = ps_eval.evaluate(m, d)
    # query 1: g3 now holds pid 1 too (no detection near it) -> count_gt = 3 (g1, g2, g3); ranking 0.95 n, 0.9 n, 0.8 p -> 1/3 * 1/3
    approx(r, mAP=(1 / 9 + 0 + 0) / 3, top1=0, top5=1 / 3)


def test_prw_all_gallery_and_cross_camera():
    m = {
        "protocol": "prw",
        "images": [
            image("c1s1_000001.jpg", [([0, 0, 40, 100], 2)], camera=1),
            image("c1s1_000026.jpg", [([0, 0, 40, 100], 2)], camera=1),
            image("c2s1_000001.jpg", [([50, 0, 90, 100], 2)], camera=2),
            image("c3s1_000001.jpg", [([50, 0, 90, 100], -1)], camera=3),
        ],
        "queries": [{"image": "c1s1_000001.jpg", "box": [0, 0, 40, 100], "pid": 2}],
    }
    d = {
        "images": {
            "c1s1_000001.jpg": dets([[0, 0, 40, 100]], [0.9], [1.0]),  # the query frame: never in the gallery
            "c1s1_000026.jpg": dets([[0, 0, 40, 100]], [0.9], [0.9]),
            "c2s1_000001.jpg": dets([[50, 0, 90, 100]], [0.9], [0.6]),
            "c3s1_000001.jpg": dets([[50, 0, 90, 100]], [0.9], [0.7]),
        },
        "queries": [{"embedding": Q}],
    }
    # all: 0.9 p, 0.7 n, 0.6 p -> sklearn AP = 1/2 * 1 + 1/2 * 2/3 = 5/6; recall 2/2
    approx(ps_eval.evaluate(m, d), mAP=5 / 6, top1=1)
    # cross-camera: c2 and c3 only: 0.7 n, 0.6 p -> 1/2, count_gt 1
    approx(ps_eval.evaluate(m, d, cross_camera=True), mAP=0.5, top1=0, top5=1)
    # gallery_size only applies to listed galleries
    approx(ps_eval.evaluate(m, d, gallery_size=1), mAP=5 / 6)


# --------------------------------------------------------------------------- detection


def test_detection_mutual_argmax():
    # gt0 = [0,0,100,100]; gt1 = [200,0,250,100] (unlabeled). dets:
    # d0 = gt0 (IoU 1, score 0.9); d1 = [0,0,100,80] (IoU 0.8 with gt0, score 0.95); d2 score 0.005 ignored.
    # gt0's best det is d0, so d1 is a FP. gt1 unmatched.
    # scores 0.95 F, 0.9 T -> sklearn AP 1/2; recall 1/2 -> det_ap 1/4
    m = {"protocol": "prw", "images": [image("a", [([0, 0, 100, 100], 4), ([200, 0, 250, 100], -1)])],
         "queries": []}
    d = {"images": {"a": dets([[0, 0, 100, 100], [0, 0, 100, 80], [200, 0, 250, 100]], [0.9, 0.95, 0.005],
                              [0, 0, 0])}, "queries": []}
    r = ps_eval.evaluate(m, d)
    approx(r, det_recall=0.5, det_ap=0.25, mAP=0, top1=0)


def test_detection_iou_exactly_half_and_first_index_on_ties():
    # det [0,0,100,50] vs gt [0,0,100,100]: IoU exactly 0.5 -> match (>=).
    m = {"protocol": "prw", "images": [image("a", [([0, 0, 100, 100], 1)])], "queries": []}
    d = {"images": {"a": dets([[0, 0, 100, 50]], [0.3], [0])}, "queries": []}
    approx(ps_eval.evaluate(m, d), det_recall=1.0, det_ap=1.0)
    # two identical boxes: argmax takes the first; the second (higher score) is a FP
    d = {"images": {"a": dets([[0, 0, 100, 60], [0, 0, 100, 60]], [0.3, 0.6], [0, 0])}, "queries": []}
    # scores 0.6 F, 0.3 T -> AP 1/2, recall 1
    approx(ps_eval.evaluate(m, d), det_recall=1.0, det_ap=0.5)


def test_detection_image_without_gt_and_empty():
    m = {"protocol": "prw", "images": [image("a", [([0, 0, 100, 100], 1)]), image("b", [])], "queries": []}
    d = {"images": {"a": dets([[0, 0, 100, 100]], [0.5], [0]), "b": dets([[0, 0, 10, 10]], [0.8], [0])},
         "queries": []}
    # 0.8 F (image without GT), 0.5 T -> AP 1/2, recall 1
    approx(ps_eval.evaluate(m, d), det_recall=1.0, det_ap=0.5)
    approx(ps_eval.evaluate(m, {"images": {}, "queries": []}), det_recall=0.0, det_ap=0.0)


def test_cli_json(tmp_path):
    m, d = cuhk_basic()
    (tmp_path / "m.json").write_text(json.dumps(m))
    (tmp_path / "d.json").write_text(json.dumps(d))
    out = subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(__file__), "..", "ps_eval.py"), "--manifest",
         str(tmp_path / "m.json"), "--detections", str(tmp_path / "d.json"), "--gallery-size", "1", "--json"],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    assert set(r) == set(ps_eval.KEYS)
    approx(r, mAP=0.5)


# --------------------------------------------------------------------------- loop-based cross-check


def _ap_steps(y_true, y_score):
    """Step-wise AP with tied scores grouped (the definition sklearn implements)."""
    pos = sum(y_true)
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(y_score), reverse=True):
        tp = sum(1 for y, s in zip(y_true, y_score) if s >= t and y)
        n = sum(1 for s in y_score if s >= t)
        recall = tp / pos
        ap += (recall - prev_recall) * (tp / n)
        prev_recall = recall
    return ap


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _norm(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n > 0 else [0.0 for _ in v]


def _loop_eval(m, d, gallery_size, cross_camera, iou_fixed):
    ims = {im["name"]: im for im in m["images"]}
    det = {n: d["images"].get(n) or {"boxes": [], "scores": [], "embeddings": []} for n in ims}
    # detection
    ys, yt, gt_n, tp_n = [], [], 0, 0
    for im in m["images"]:
        g = [p["box"] for p in im["persons"]]
        e = det[im["name"]]
        k = [i for i, s in enumerate(e["scores"]) if s >= 0.01]
        gt_n += len(g)
        for j in k:
            ious = [_iou(gb, e["boxes"][j]) for gb in g]
            hit = False
            if ious:
                i = ious.index(max(ious))
                col = [_iou(g[i], e["boxes"][jj]) for jj in k]
                hit = ious[i] >= 0.5 and k[col.index(max(col))] == j
            yt.append(hit)
            ys.append(e["scores"][j])
            tp_n += hit
    rec = tp_n / gt_n if gt_n else 0.0
    det_ap = _ap_steps(yt, ys) * rec if tp_n else 0.0
    # search
    aps, hits = [], []
    for qi, q in enumerate(m["queries"]):
        fq = _norm(d["queries"][qi]["embedding"])
        extra = []
        if "gallery" in q:
            gal = list(dict.fromkeys(q["gallery"]))
            if gallery_size and gallery_size > 0:
                gal = gal[:gallery_size]
            if gallery_size == -1:
                extra = [n for n in ims if n != q["image"] and n not in gal]
        else:
            gal = [n for n in ims if n != q["image"]]
        if cross_camera:
            cam = ims[q["image"]]["camera"]
            gal = [n for n in gal if ims[n]["camera"] != cam]
            extra = [n for n in extra if ims[n]["camera"] != cam]
        items, cgt, ctp = [], 0, 0
        for n in gal + extra:
            gt = next((p["box"] for p in ims[n]["persons"] if p["pid"] == q["pid"]), None) if n in gal else None
            cgt += gt is not None
            e = det[n]
            cand = []
            for j, s in enumerate(e["scores"]):
                if s >= 0.5:
                    sim = sum(a * b for a, b in zip(_norm(e["embeddings"][j]), fq))
                    cand.append([sim, 0, e["boxes"][j]])
            if gt is not None:
                w, h = gt[2] - gt[0], gt[3] - gt[1]
                thr = 0.5 if iou_fixed else min(0.5, w * h / ((w + 10) * (h + 10)))
                for c in sorted(cand, key=lambda c: -c[0]):
                    if _iou(c[2], gt) >= thr:
                        c[1] = 1
                        ctp += 1
                        break
            items += cand
        if ctp == 0:
            aps.append(0.0)
            hits.append([0, 0, 0])
            continue
        aps.append(_ap_steps([c[1] for c in items], [c[0] for c in items]) * ctp / cgt)
        ranked = sorted(items, key=lambda c: (-c[0], c[1]))
        first = next(i for i, c in enumerate(ranked) if c[1])
        hits.append([int(first < k) for k in (1, 5, 10)])
    n = max(1, len(aps))
    return {"mAP": sum(aps) / n, "top1": sum(h[0] for h in hits) / n, "top5": sum(h[1] for h in hits) / n,
            "top10": sum(h[2] for h in hits) / n, "det_ap": det_ap, "det_recall": rec}


@pytest.mark.parametrize("seed", range(40))
def test_generated_cases_match_loop_implementation(seed):
    import gen_eval_cases

    g = gen_eval_cases.CaseGen(seed)
    m = g.make_manifest()
    d = json.loads(json.dumps(g.make_detections(m)))
    for flags in gen_eval_cases.FLAG_SETS[g.protocol]:
        want = _loop_eval(m, d, **flags)
        got = ps_eval.evaluate(m, d, **flags)
        for k in ps_eval.KEYS:
            assert got[k] == pytest.approx(want[k], abs=1e-9), (flags, k)
