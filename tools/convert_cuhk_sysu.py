"""Convert the official CUHK-SYSU annotations into a person-search manifest (see tools/ps_manifest.py).

    tools/.venv/bin/python tools/convert_cuhk_sysu.py ROOT -o test.json [--gallery-size 100]
    tools/.venv/bin/python tools/convert_cuhk_sysu.py ROOT -o occlusion.json --subset occlusion
    tools/.venv/bin/python tools/convert_cuhk_sysu.py ROOT -o train.json --split train

ROOT is the unpacked dataset:

    Image/SSM/s*.jpg
    annotation/Images.mat               Img: struct(imname, nAppear, box), box: struct(idlocate, ishard)
    annotation/Person.mat               Person: struct(idname, nAppear, scene), scene: struct(imname, idlocate, ishard)
    annotation/pool.mat                 pool: cell of test image names (the test gallery pool)
    annotation/test/train_test/Train.mat          Train: cell of struct(idname, nAppear, scene)
    annotation/test/train_test/TestG{N}.mat       TestG{N}: struct(Query, Gallery), N = 50..4000
        Query: struct(imname, idlocate, ishard, idname); Gallery: struct(imname, idlocate, ishard) x N,
        idlocate empty where the query person is absent
    annotation/test/subset/Occlusion.mat  (Occlusion1), Resolution.mat (Test_Size): same as TestG

All boxes are stored as x, y, w, h and written as x1, y1, x2, y2 = x, y, x + w, y + h (after the int32 cast
the community loaders apply). As in SeqNet's reader, Images.mat boxes with w <= 0 or h <= 0 are dropped.

Test split: images = pool.mat in its order; queries = the protocol file's queries in order, each with its
gallery list (positives first, as stored). Train split: images = Images.mat minus pool (sorted), no queries.
pids are the identity numbers of the idname fields ("p1234" -> 1234): every box that Person.mat lists gets
its identity, and the protocol file's query and gallery boxes (or Train.mat's boxes) get the query's identity
(a conflict is an error); all other persons are unlabeled (-1). Boxes in the protocol that match no
Images.mat box exactly are reported. camera is null (CUHK-SYSU has no camera ids); width/height come from
the image files when present, else null.

Full-set evaluation (SeqNet gallery_size -1) uses the TestG50 galleries plus the whole pool: convert with
--gallery-size 50 and score with --gallery-size -1.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np
from scipy.io import loadmat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ps_manifest import image_size, mat_cells, mat_num, mat_records, mat_str, num, write_manifest  # noqa: E402

GALLERY_SIZES = (50, 100, 500, 1000, 2000, 4000)
SUBSETS = {
    "occlusion": ("annotation/test/subset/Occlusion.mat", "Occlusion1"),
    "low_resolution": ("annotation/test/subset/Resolution.mat", "Test_Size"),
}


def parse_pid(idname: str) -> int:
    m = re.search(r"\d+", idname)
    if not m:
        raise ValueError(f"identity name without a number: {idname!r}")
    return int(m.group())


def int_box(b) -> tuple:
    """x, y, w, h as SeqNet's astype(np.int32)."""
    return tuple(int(v) for v in np.asarray(b, dtype=np.float64).astype(np.int32))


class Labels:
    """Boxes of every image (Images.mat) and the pid given to each."""

    def __init__(self, root: str):
        self.boxes: dict[str, list[tuple]] = {}
        self.pids: dict[str, list[int]] = {}
        self.order: list[str] = []
        self.unmatched: list[tuple] = []
        imgs = loadmat(os.path.join(root, "annotation", "Images.mat"))["Img"]
        for rec in mat_records(imgs):
            name = mat_str(rec["imname"])
            boxes = [int_box(mat_num(b["idlocate"])) for b in mat_records(rec["box"])]
            boxes = [b for b in boxes if b[2] > 0 and b[3] > 0]
            self.boxes[name] = boxes
            self.pids[name] = [-1] * len(boxes)
            self.order.append(name)

    def set(self, name: str, box, pid: int, source: str) -> None:
        b = int_box(box)
        for i, have in enumerate(self.boxes.get(name, [])):
            if have == b:
                if self.pids[name][i] not in (-1, pid):
                    raise ValueError(f"{source}: {name} box {b} is pid {self.pids[name][i]} elsewhere, {pid} here")
                self.pids[name][i] = pid
                return
        self.unmatched.append((source, name, b))


def load_person_mat(root: str, labels: Labels) -> None:
    path = os.path.join(root, "annotation", "Person.mat")
    if not os.path.isfile(path):
        return
    for rec in mat_records(loadmat(path)["Person"]):
        pid = parse_pid(mat_str(rec["idname"]))
        for sc in mat_records(rec["scene"]):
            labels.set(mat_str(sc["imname"]), mat_num(sc["idlocate"]), pid, "Person.mat")


def convert(root: str, split: str = "test", gallery_size: int = 100, subset: str | None = None) -> dict:
    labels = Labels(root)
    load_person_mat(root, labels)
    pool = [mat_str(c) for c in mat_cells(loadmat(os.path.join(root, "annotation", "pool.mat"))["pool"])]
    queries = []
    if split == "test":
        if subset:
            rel, key = SUBSETS[subset]
        else:
            rel, key = f"annotation/test/train_test/TestG{gallery_size}.mat", f"TestG{gallery_size}"
        for item in mat_records(loadmat(os.path.join(root, rel))[key]):
            q = mat_records(item["Query"])[0]
            qname = mat_str(q["imname"])
            qbox = mat_num(q["idlocate"])
            pid = parse_pid(mat_str(q["idname"]))
            labels.set(qname, qbox, pid, key)
            gallery = []
            for g in mat_records(item["Gallery"]):
                gname = mat_str(g["imname"])
                gbox = mat_num(g["idlocate"])
                gallery.append(gname)
                if gbox.size:
                    labels.set(gname, gbox, pid, key)
            b = int_box(qbox)
            queries.append({"image": qname, "box": [b[0], b[1], b[0] + b[2], b[1] + b[3]], "pid": pid,
                            "gallery": gallery})
        names = pool
    else:
        train = loadmat(os.path.join(root, "annotation", "test", "train_test", "Train.mat"))["Train"]
        for cell in mat_cells(train):
            rec = mat_records(cell)[0]
            pid = parse_pid(mat_str(rec["idname"]))
            for sc in mat_records(rec["scene"]):
                labels.set(mat_str(sc["imname"]), mat_num(sc["idlocate"]), pid, "Train.mat")
        names = sorted(set(labels.order) - set(pool))
    images = []
    for name in names:
        if name not in labels.boxes:
            raise ValueError(f"{name} is not in Images.mat")
        rel = f"Image/SSM/{name}"
        w, h = image_size(os.path.join(root, rel))
        persons = [{"box": [num(x), num(y), num(x + bw), num(y + bh)], "pid": pid}
                   for (x, y, bw, bh), pid in zip(labels.boxes[name], labels.pids[name])]
        images.append({"name": name, "path": rel, "width": w, "height": h, "camera": None, "persons": persons})
    if labels.unmatched:
        print(f"warning: {len(labels.unmatched)} annotated boxes match no Images.mat box, e.g. "
              f"{labels.unmatched[:3]}", file=sys.stderr)
    return {"protocol": "cuhk-sysu", "images": images, "queries": queries}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="CUHK-SYSU annotations -> person-search manifest")
    ap.add_argument("root")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--split", choices=("test", "train"), default="test")
    ap.add_argument("--gallery-size", type=int, default=100, choices=GALLERY_SIZES,
                    help="which TestG{N}.mat gives the queries' galleries (default 100)")
    ap.add_argument("--subset", choices=sorted(SUBSETS), help="occlusion / low_resolution query subsets")
    args = ap.parse_args(argv)
    m = convert(args.root, args.split, args.gallery_size, args.subset)
    write_manifest(args.output, m)
    n_persons = sum(len(im["persons"]) for im in m["images"])
    print(f"{args.output}: {len(m['images'])} images, {n_persons} persons, {len(m['queries'])} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
