"""Convert the official PRW annotations into a person-search manifest (see tools/ps_manifest.py).

    tools/.venv/bin/python tools/convert_prw.py ROOT -o test.json
    tools/.venv/bin/python tools/convert_prw.py ROOT -o train.json --split train

ROOT is the unpacked dataset:

    frames/c{cam}s{seq}_{frame}.jpg
    annotations/<frame>.jpg.mat     box_new (or anno_file / anno_previous): N x 5 [pid, x, y, w, h], pid -2 = unlabeled
    frame_test.mat                  img_index_test: cell of test frame names (no extension)
    frame_train.mat                 img_index_train: cell of training frame names
    query_info.txt                  one query per line: "pid x y w h frame" (frame without extension)
    ID_test.mat (ID_test2), ID_train.mat (ID_train): identity lists (only checked here)

Boxes follow SeqNet's PRW reader exactly: annotation rows are clipped at 0 as x, y, w, h, then
x2 = x + w, y2 = y + h, then cast to int32 (truncation); query boxes are x, y, x + w, y + h cast to int32, then
clipped at 0. Unlabeled persons (-2) get pid -1. The camera is the digit after "c" in the frame name
(c1s1_000151.jpg -> 1). Queries carry no "gallery": a PRW query's gallery is every other test frame (and
with --cross-camera, every test frame of another camera). width/height come from the frame files, else
1920 x 1080 for cameras 1-5 and 720 x 576 for camera 6 (the PRW frame sizes).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np
from scipy.io import loadmat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ps_manifest import image_size, mat_cells, mat_num, mat_str, num, write_manifest  # noqa: E402

BOX_KEYS = ("box_new", "anno_file", "anno_previous")


def camera_of(name: str) -> int:
    m = re.search(r"c(\d)", name)
    if not m:
        raise ValueError(f"no camera id in frame name {name!r}")
    return int(m.group(1))


def frame_list(root: str, split: str) -> list[str]:
    fname, key = ("frame_test.mat", "img_index_test") if split == "test" else ("frame_train.mat", "img_index_train")
    return [mat_str(c) + ".jpg" for c in mat_cells(loadmat(os.path.join(root, fname))[key])]


def read_boxes(root: str, name: str):
    anno = loadmat(os.path.join(root, "annotations", name + ".mat"))
    for key in BOX_KEYS:
        if key in anno:
            rows = np.asarray(anno[key], dtype=np.float64).reshape(-1, 5)
            break
    else:
        raise KeyError(f"annotations/{name}.mat has none of {BOX_KEYS}")
    ids = rows[:, 0].astype(np.int64)
    rois = np.clip(rows[:, 1:], 0, None)
    rois[:, 2:] += rois[:, :2]
    rois = rois.astype(np.int32)
    ids[ids == -2] = -1
    return rois, ids


def read_queries(root: str) -> list[dict]:
    queries = []
    with open(os.path.join(root, "query_info.txt"), "rb") as f:
        for raw in f:
            parts = raw.decode("utf-8").split()
            if not parts:
                continue
            pid = int(float(parts[0]))
            x, y, w, h = (float(v) for v in parts[1:5])
            box = np.clip(np.array([x, y, x + w, y + h]).astype(np.int32), 0, None)
            queries.append({"image": parts[5] + ".jpg", "box": [int(v) for v in box], "pid": pid})
    return queries


def convert(root: str, split: str = "test") -> dict:
    names = frame_list(root, split)
    images = []
    for name in names:
        rois, ids = read_boxes(root, name)
        cam = camera_of(name)
        rel = f"frames/{name}"
        w, h = image_size(os.path.join(root, rel))
        if w is None:
            w, h = (720, 576) if cam == 6 else (1920, 1080)
        persons = [{"box": [num(v) for v in r], "pid": int(p)} for r, p in zip(rois, ids)]
        images.append({"name": name, "path": rel, "width": w, "height": h, "camera": cam, "persons": persons})
    queries = []
    if split == "test":
        queries = read_queries(root)
        known = set(names)
        missing = [q["image"] for q in queries if q["image"] not in known]
        if missing:
            raise ValueError(f"query frames not in frame_test.mat: {missing[:5]}")
        test_ids_path = os.path.join(root, "ID_test.mat")
        if os.path.isfile(test_ids_path):
            test_ids = {int(v) for v in mat_num(loadmat(test_ids_path)["ID_test2"])}
            odd = sorted({q["pid"] for q in queries} - test_ids)
            if odd:
                print(f"warning: query pids not in ID_test.mat: {odd[:10]}", file=sys.stderr)
    return {"protocol": "prw", "images": images, "queries": queries}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="PRW annotations -> person-search manifest")
    ap.add_argument("root")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--split", choices=("test", "train"), default="test")
    args = ap.parse_args(argv)
    m = convert(args.root, args.split)
    write_manifest(args.output, m)
    n_persons = sum(len(im["persons"]) for im in m["images"])
    print(f"{args.output}: {len(m['images'])} images, {n_persons} persons, {len(m['queries'])} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
