"""Independent person-search scorer (Python reference for `psedge eval`).

Reads a dataset manifest and a detections file (formats below) and computes

    {"mAP", "top1", "top5", "top10", "det_ap", "det_recall"}   (fractions in [0, 1])

following the standard evaluation protocol of the community code (SeqNet /
COAT `eval_func.py`; reference notes: shared/reference/person-search-models.md
§4, DiffPS variant §1.8). It is written from that description with numpy and
`sklearn.metrics.average_precision_score`; it shares no code with the Swift
scorer.

Run:
    tools/.venv/bin/python tools/ps_eval.py --manifest M --detections D \
        [--gallery-size N] [--cross-camera] [--iou-fixed] [--json]

Formats
-------
Manifest:   {"protocol": "cuhk-sysu"|"prw",
             "images": [{"name", "path", "width", "height", "camera",
                         "persons": [{"box": [x1,y1,x2,y2], "pid": int}]}],
             "queries": [{"image", "box", "pid", "gallery": [names]}]}
            pid -1 = unlabeled person. "gallery" is optional.
Detections: {"images": {name: {"boxes": [[x1,y1,x2,y2]], "scores": [...],
                               "embeddings": [[...]]}},
             "queries": [{"embedding": [...]}]}            (manifest order)
            An image missing from "images" has no detections.

Rules (§4 unless noted)
-----------------------
Search (SeqNet eval_search_cuhk / eval_search_prw, CBGM off):
  * Gallery detections are kept when score >= 0.5 (det_thresh=0.5).
  * Embeddings (gallery and query) are L2-normalised here; similarity is the
    dot product. The query feature is the detections file's query embedding
    (the GT query box feature). A zero vector stays zero. Equal embedding
    vectors get exactly equal similarities (computed once per distinct vector),
    so ties are real ties.
  * Gallery of a query: its "gallery" list when present (CUHK-SYSU TestG
    protocol), else every manifest image except the query image (PRW,
    ignore_cam_id=True). Duplicate names in a listed gallery are counted once.
  * --gallery-size N (only for queries with a listed gallery): the first N
    names of the list (all of them when N exceeds its length). N = -1 is
    SeqNet's full-set mode: the whole listed gallery, plus every other manifest
    image except the query image as an all-negative image (its detections are
    labelled 0 and it adds nothing to count_gt, exactly as SeqNet).
    No --gallery-size (null) = the whole listed gallery.
  * --cross-camera: gallery images whose camera equals the query image's
    camera are removed (PRW ignore_cam_id=False). Applied after the size cut.
  * GT of the query in a gallery image = the box of the person with the
    query's pid (the first one if listed twice). count_gt = number of gallery
    images that contain it, whether or not they have detections (the recall
    penalty).
  * IoU threshold = min(0.5, w*h / ((w+10)*(h+10))) with w, h of that GT box;
    --iou-fixed uses 0.5 (DiffPS, §1.8; only search is affected).
  * Per gallery image, the detection with the highest similarity among those
    with IoU >= threshold is the (only) true positive: SeqNet's "first match
    in descending similarity order". When several tie at that similarity it
    does not matter which is labelled: they have the same score.
  * AP = average_precision_score(y_true, y_score) * count_tp / count_gt, or 0
    when count_tp == 0.
  * top-k (k = 1, 5, 10) = 1 if a true positive is among the k highest
    similarities. Decided here (SeqNet uses np.argsort, whose order of equal
    values is unspecified): equal similarities rank negatives before
    positives, i.e. hit iff #(negatives with sim >= best TP sim) < k.
  * mAP, top-k = means over all queries. Decided here: a query whose gallery
    holds no GT at all (count_gt == 0; SeqNet would divide by zero) scores
    AP 0 and top-k 0 and stays in the means. No queries -> all search metrics 0.

Detection (SeqNet eval_detection as engine.py calls it: det_thresh=0.01,
iou_thresh=0.5, labeled_only=False):
  * Over every manifest image; GT = all persons, unlabeled ones included.
  * Detections with score >= 0.01. IoU matrix gt x det; a pair (i, j) is a
    match iff IoU >= 0.5, i is the argmax over gt of column j and j is the
    argmax over dets of row i (argmax = lowest index among equal maxima, as
    numpy). Each detection contributes (score, matched?); count_tp = matches,
    count_gt += #GT of every image (also when it has no detections).
  * Decided here: an image without GT boxes (SeqNet's argmax would fail)
    contributes its detections as false positives.
  * det_recall = count_tp / count_gt; det_ap = average_precision_score(...) *
    det_recall, 0 when count_tp == 0 (and both 0 when count_gt == 0).
IoU = inter / union with inter = max(0, x2-x1) * max(0, y2-y1) on the
intersection rectangle (no +1), in float64.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import numpy as np
from sklearn.metrics import average_precision_score

SEARCH_DET_THRESH = 0.5
DETECTION_DET_THRESH = 0.01
DETECTION_IOU = 0.5
TOPK = (1, 5, 10)
KEYS = ("mAP", "top1", "top5", "top10", "det_ap", "det_recall")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (n,4) with every box in b (m,4), x1y1x2y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(0.0, x2 - x1) * np.maximum(0.0, y2 - y1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def search_iou_threshold(box, fixed: bool) -> float:
    if fixed:
        return 0.5
    w = float(box[2]) - float(box[0])
    h = float(box[3]) - float(box[1])
    return min(0.5, (w * h) / ((w + 10.0) * (h + 10.0)))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def sk_ap(y_true, y_score) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(average_precision_score(np.asarray(y_true, dtype=np.int64), np.asarray(y_score, dtype=np.float64)))


class _Dets:
    """Detections of one image as arrays (possibly empty)."""

    def __init__(self, entry, dim):
        boxes = entry.get("boxes", []) if entry else []
        scores = entry.get("scores", []) if entry else []
        embs = entry.get("embeddings", []) if entry else []
        n = len(boxes)
        if len(scores) != n or len(embs) != n:
            raise ValueError(f"detections: {n} boxes, {len(scores)} scores, {len(embs)} embeddings")
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(n, 4)
        self.scores = np.asarray(scores, dtype=np.float64).reshape(n)
        self.emb = np.asarray(embs, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, dim))


def evaluate_detection(manifest: dict, dets: dict[str, _Dets]) -> tuple[float, float]:
    """(det_ap, det_recall) as SeqNet eval_detection(det_thresh=0.01, iou 0.5, all GT)."""
    y_true: list[bool] = []
    y_score: list[float] = []
    count_gt = 0
    count_tp = 0
    for im in manifest["images"]:
        gt = np.asarray([p["box"] for p in im.get("persons", [])], dtype=np.float64).reshape(-1, 4)
        d = dets[im["name"]]
        keep = d.scores >= DETECTION_DET_THRESH
        boxes, scores = d.boxes[keep], d.scores[keep]
        num_gt, num_det = gt.shape[0], boxes.shape[0]
        count_gt += num_gt
        if num_det == 0:
            continue
        if num_gt == 0:
            y_true.extend([False] * num_det)
            y_score.extend(scores.tolist())
            continue
        ious = iou_matrix(gt, boxes)
        tf = ious >= DETECTION_IOU
        best_gt = np.argmax(ious, axis=0)  # per det
        best_det = np.argmax(ious, axis=1)  # per gt
        mask = np.zeros_like(tf)
        mask[best_gt, np.arange(num_det)] = True
        tf &= mask
        mask = np.zeros_like(tf)
        mask[np.arange(num_gt), best_det] = True
        tf &= mask
        y_true.extend(tf.any(axis=0).tolist())
        y_score.extend(scores.tolist())
        count_tp += int(tf.sum())
    if count_gt == 0:
        return 0.0, 0.0
    recall = count_tp / count_gt
    ap = 0.0 if count_tp == 0 else sk_ap(y_true, y_score) * recall
    return ap, recall


def query_gallery(manifest: dict, q: dict, gallery_size, cross_camera: bool, cams: dict):
    """(listed gallery names, extra all-negative names) for one query."""
    names = [im["name"] for im in manifest["images"]]
    extra: list[str] = []
    if q.get("gallery") is not None:
        listed = list(dict.fromkeys(q["gallery"]))
        if gallery_size is not None and gallery_size > 0:
            listed = listed[:gallery_size]
        elif gallery_size == -1:
            inlist = set(listed)
            extra = [n for n in names if n != q["image"] and n not in inlist]
    else:
        listed = [n for n in names if n != q["image"]]
    if cross_camera:
        if q["image"] not in cams:
            raise ValueError(f"--cross-camera: query image {q['image']!r} is not in the manifest")
        qc = cams[q["image"]]
        listed = [n for n in listed if cams.get(n) != qc]
        extra = [n for n in extra if cams.get(n) != qc]
    return listed, extra


def evaluate_search(manifest, dets, query_embs, gallery_size, cross_camera, iou_fixed):
    """(mAP, [top1, top5, top10]) as SeqNet eval_search_* without CBGM."""
    cams = {im["name"]: im.get("camera") for im in manifest["images"]}
    persons = {im["name"]: im.get("persons", []) for im in manifest["images"]}
    # search detections: score >= 0.5. Similarities are computed once per distinct embedding vector, so that
    # equal vectors give bit-identical (tied) similarities whatever path the matrix product takes.
    kept, emb_rows, start = {}, [], 0
    for name, d in dets.items():
        k = np.nonzero(d.scores >= SEARCH_DET_THRESH)[0]
        kept[name] = (d.boxes[k], slice(start, start + k.size))
        emb_rows.append(d.emb[k])
        start += k.size
    dim = query_embs[0].size if query_embs else 0
    all_emb = np.concatenate(emb_rows, axis=0) if start else np.zeros((0, dim))
    uniq, inverse = np.unique(all_emb, axis=0, return_inverse=True)
    uniq = l2_normalize(uniq)
    inverse = inverse.reshape(-1)
    aps, accs = [], []
    for qi, q in enumerate(manifest["queries"]):
        feat_q = l2_normalize(query_embs[qi])
        sim_all = (uniq @ feat_q)[inverse] if start else np.zeros(0)
        listed, extra = query_gallery(manifest, q, gallery_size, cross_camera, cams)
        pid = int(q["pid"])
        y_true: list[int] = []
        y_score: list[float] = []
        count_gt = count_tp = 0
        for name in listed:
            if name not in persons:
                raise ValueError(f"gallery image {name!r} is not in the manifest")
            gt = None
            if pid >= 0:
                for p in persons[name]:
                    if int(p["pid"]) == pid:
                        gt = np.asarray(p["box"], dtype=np.float64)
                        break
            count_gt += gt is not None
            boxes, sl = kept[name]
            if boxes.shape[0] == 0:
                continue
            sim = sim_all[sl]
            label = np.zeros(len(sim), dtype=np.int64)
            if gt is not None:
                thr = search_iou_threshold(gt, iou_fixed)
                ok = np.nonzero(iou_matrix(gt, boxes)[0] >= thr)[0]
                if ok.size:
                    label[ok[np.argmax(sim[ok])]] = 1
                    count_tp += 1
            y_true.extend(label.tolist())
            y_score.extend(sim.tolist())
        for name in extra:
            boxes, sl = kept[name]
            if boxes.shape[0]:
                y_true.extend([0] * boxes.shape[0])
                y_score.extend(sim_all[sl].tolist())
        if count_tp == 0:
            aps.append(0.0)
            accs.append([0.0] * len(TOPK))
            continue
        aps.append(sk_ap(y_true, y_score) * count_tp / count_gt)
        yt = np.asarray(y_true, dtype=bool)
        ys = np.asarray(y_score, dtype=np.float64)
        best = ys[yt].max()
        n_before = int(np.count_nonzero(~yt & (ys >= best)))
        accs.append([1.0 if n_before < k else 0.0 for k in TOPK])
    if not aps:
        return 0.0, [0.0] * len(TOPK)
    return float(np.mean(aps)), np.mean(np.asarray(accs), axis=0).tolist()


def load_detections(manifest: dict, detections: dict):
    qs = detections.get("queries", [])
    if len(qs) != len(manifest["queries"]):
        raise ValueError(f"{len(qs)} query embeddings for {len(manifest['queries'])} manifest queries")
    query_embs = [np.asarray(q["embedding"], dtype=np.float64).ravel() for q in qs]
    dim = query_embs[0].size if query_embs else 0
    names = {im["name"] for im in manifest["images"]}
    dimages = detections.get("images", {})
    unknown = set(dimages) - names
    if unknown:
        raise ValueError(f"detections for images not in the manifest: {sorted(unknown)[:5]}")
    dets = {n: _Dets(dimages.get(n), dim) for n in names}
    return dets, query_embs


def evaluate(manifest: dict, detections: dict, gallery_size=None, cross_camera=False, iou_fixed=False) -> dict:
    dets, query_embs = load_detections(manifest, detections)
    det_ap, det_recall = evaluate_detection(manifest, dets)
    mAP, accs = evaluate_search(manifest, dets, query_embs, gallery_size, cross_camera, iou_fixed)
    return {
        "mAP": mAP,
        "top1": accs[0],
        "top5": accs[1],
        "top10": accs[2],
        "det_ap": det_ap,
        "det_recall": det_recall,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--detections", required=True)
    ap.add_argument("--gallery-size", type=int, default=None,
                    help="first N names of each listed gallery; -1 = full set (CUHK-SYSU)")
    ap.add_argument("--cross-camera", action="store_true", help="drop gallery images of the query's camera (PRW)")
    ap.add_argument("--iou-fixed", action="store_true", help="search IoU threshold fixed at 0.5 (DiffPS)")
    ap.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = ap.parse_args(argv)
    if args.gallery_size is not None and (args.gallery_size == 0 or args.gallery_size < -1):
        ap.error("--gallery-size must be a positive integer or -1")
    with open(args.manifest) as f:
        manifest = json.load(f)
    with open(args.detections) as f:
        detections = json.load(f)
    res = evaluate(manifest, detections, args.gallery_size, args.cross_camera, args.iou_fixed)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"search ({len(manifest['queries'])} queries):")
        print(f"  mAP    = {res['mAP']:.2%}")
        for k in TOPK:
            print(f"  top-{k:<2d} = {res[f'top{k}']:.2%}")
        print("detection (score >= 0.01, IoU 0.5, all GT):")
        print(f"  AP     = {res['det_ap']:.2%}")
        print(f"  recall = {res['det_recall']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
