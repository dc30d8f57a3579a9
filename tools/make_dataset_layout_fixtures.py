"""Write tiny CUHK-SYSU and PRW datasets in the official file layout, to test the converters.

    tools/.venv/bin/python tools/make_dataset_layout_fixtures.py --out Tests/Fixtures/datasets

writes (committed, a few KB):

    cuhk_sysu_mini/Image/SSM/s1..s10.jpg (80 x 60)
    cuhk_sysu_mini/annotation/{Images,Person,pool}.mat
    cuhk_sysu_mini/annotation/test/train_test/{Train,TestG50,TestG100}.mat
    cuhk_sysu_mini/annotation/test/subset/{Occlusion,Resolution}.mat
    prw_mini/frames/*.jpg (96 x 54; camera 6: 72 x 58)
    prw_mini/annotations/<frame>.jpg.mat (box_new, one anno_file, one anno_previous)
    prw_mini/{frame_test,frame_train,ID_test,ID_train}.mat, prw_mini/query_info.txt (CRLF lines)

The MATLAB variables have the structure the community readers index (SeqNet/COAT datasets/cuhk_sysu.py and
prw.py): struct arrays as 1 x N, cell arrays as N x 1, boxes as 1 x 4 doubles x, y, w, h, an empty
idlocate (0 x 0) where a TestG gallery image does not hold the query person (after the positives).
The data (identities, boxes, splits) are the literals below; tools/tests/test_converters.py asserts the
manifests built from them.
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
from PIL import Image, ImageDraw
from scipy.io import savemat

# ----------------------------------------------------------------------------- CUHK-SYSU mini

CUHK_SIZE = (80, 60)
CUHK_TRAIN = ["s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg"]
CUHK_POOL = ["s5.jpg", "s6.jpg", "s7.jpg", "s8.jpg", "s9.jpg", "s10.jpg"]
# identity -> [(image, x, y, w, h)]
CUHK_PERSONS = {
    "p101": [("s1.jpg", 5, 5, 12, 30), ("s2.jpg", 40, 10, 14, 35), ("s3.jpg", 20, 20, 10, 30)],
    "p102": [("s2.jpg", 10, 12, 12, 28), ("s4.jpg", 50, 5, 15, 40)],
    "p201": [("s5.jpg", 4, 10, 12, 30), ("s6.jpg", 30, 8, 14, 32), ("s9.jpg", 60, 20, 10, 25)],
    "p202": [("s6.jpg", 8, 20, 12, 30), ("s7.jpg", 44, 12, 16, 40), ("s10.jpg", 20, 5, 11, 33)],
    "p203": [("s7.jpg", 5, 5, 10, 20), ("s8.jpg", 33, 15, 12, 30)],
}
CUHK_UNLABELED = [("s1.jpg", 50, 20, 10, 25), ("s3.jpg", 60, 5, 0, 20),  # zero width: dropped by readers
                  ("s5.jpg", 40, 30, 12, 24), ("s8.jpg", 60, 10, 12, 30), ("s9.jpg", 10, 10, 11, 31)]
CUHK_TRAIN_IDS = ["p101", "p102"]
# protocol: (query identity, query image, gallery images in stored order: positives first)
CUHK_TESTG = {
    50: [("p201", "s5.jpg", ["s6.jpg", "s9.jpg", "s7.jpg", "s8.jpg"]),
         ("p202", "s6.jpg", ["s7.jpg", "s10.jpg", "s5.jpg", "s9.jpg"]),
         ("p203", "s7.jpg", ["s8.jpg", "s5.jpg", "s9.jpg", "s10.jpg"])],
    100: [("p201", "s5.jpg", ["s6.jpg", "s9.jpg", "s7.jpg", "s8.jpg", "s10.jpg"]),
          ("p202", "s6.jpg", ["s7.jpg", "s10.jpg", "s5.jpg", "s9.jpg", "s8.jpg"]),
          ("p203", "s7.jpg", ["s8.jpg", "s5.jpg", "s9.jpg", "s10.jpg", "s6.jpg"])],
}
CUHK_SUBSETS = {
    ("Occlusion.mat", "Occlusion1"): [("p203", "s7.jpg", ["s8.jpg", "s5.jpg", "s6.jpg"])],
    ("Resolution.mat", "Test_Size"): [("p202", "s6.jpg", ["s7.jpg", "s10.jpg", "s8.jpg"])],
}

# ----------------------------------------------------------------------------- PRW mini

PRW_TEST = ["c1s1_000151", "c1s1_000176", "c2s1_000101", "c3s2_000226", "c6s1_000026"]
PRW_TRAIN = ["c1s1_000026", "c2s1_000051"]
# frame -> (mat variable, rows [pid, x, y, w, h]); pid -2 = unlabeled
PRW_ANNOS = {
    "c1s1_000151": ("box_new", [[3, 5, 5, 10, 30], [7, 40, 10, 12, 35], [-2, 60, 5, 10, 20]]),
    "c1s1_000176": ("box_new", [[3, 8, 6, 10, 30], [-2, -2, 10, 12, 30]]),
    "c2s1_000101": ("anno_file", [[3, 30, 10, 11, 32], [7, 50, 5, 12, 36]]),
    "c3s2_000226": ("box_new", [[7, 10.5, 12.7, 14.2, 30.9]]),
    "c6s1_000026": ("anno_previous", [[-2, 20, 20, 10, 20], [9, -3, 10, 15, 30]]),
    "c1s1_000026": ("box_new", [[1, 5, 5, 10, 30], [-2, 30, 5, 10, 30]]),
    "c2s1_000051": ("box_new", [[1, 20, 5, 10, 30], [2, 40, 5, 12, 30]]),
}
PRW_QUERIES = ["3 5 5 10 30 c1s1_000151", "7 50 5 12 36 c2s1_000101", "7 10.5 12.7 14.2 30.9 c3s2_000226",
               "9 -3 10 15 30 c6s1_000026"]
PRW_ID_TEST = [3, 7, 9]
PRW_ID_TRAIN = [1, 2]


# ----------------------------------------------------------------------------- MATLAB writers


def struct_array(records: list[dict], fields: list[str]) -> np.ndarray:
    arr = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for i, r in enumerate(records):
        for f in fields:
            arr[f][0, i] = r[f]
    return arr


def cell_column(values: list) -> np.ndarray:
    c = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        c[i, 0] = v
    return c


def box(x, y, w, h) -> np.ndarray:
    return np.array([[x, y, w, h]], dtype=np.float64)


def scalar(v) -> np.ndarray:
    return np.array([[v]], dtype=np.float64)


def save(path: str, variables: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    savemat(path, variables, do_compression=True)
    # the MAT 5 header text holds a creation date: fix it so that reruns give identical files
    with open(path, "r+b") as f:
        f.write(b"MATLAB 5.0 MAT-file, written by PSEdge tools/make_dataset_layout_fixtures.py".ljust(116))


def jpeg(path: str, size, boxes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.new("RGB", size, (90, 110, 90))
    d = ImageDraw.Draw(im)
    for x, y, w, h in boxes:
        d.rectangle([x, y, x + max(w, 1) - 1, y + h - 1], fill=(200, 80, 60))
    im.save(path, quality=30)


def scene(imname, b):
    return {"imname": imname, "idlocate": box(*b), "ishard": scalar(0)}


def protocol_items(spec, with_occlusion=False):
    locs = {(ident, img): b for ident, rows in CUHK_PERSONS.items() for img, *b in rows}
    items = []
    for ident, qimg, gallery in spec:
        q = struct_array([{"imname": qimg, "idlocate": box(*locs[(ident, qimg)]), "ishard": scalar(0),
                           "idname": ident}], ["imname", "idlocate", "ishard", "idname"])
        g = struct_array([{"imname": n, "idlocate": box(*locs[(ident, n)]) if (ident, n) in locs else np.zeros((0, 0)),
                           "ishard": scalar(0)} for n in gallery], ["imname", "idlocate", "ishard"])
        rec = {"Query": q, "Gallery": g}
        if with_occlusion:
            rec["occlusion"] = scalar(1)
        items.append(rec)
    return struct_array(items, ["Query", "Gallery"] + (["occlusion"] if with_occlusion else []))


def write_cuhk(root: str) -> None:
    ann = os.path.join(root, "annotation")
    per_image = {n: [] for n in CUHK_TRAIN + CUHK_POOL}
    for ident, rows in CUHK_PERSONS.items():
        for img, *b in rows:
            per_image[img].append(tuple(b))
    for img, *b in CUHK_UNLABELED:
        per_image[img].append(tuple(b))
    imgs = struct_array([{"imname": n, "nAppear": scalar(len(bs)),
                          "box": struct_array([{"idlocate": box(*b), "ishard": scalar(0)} for b in bs],
                                              ["idlocate", "ishard"])}
                         for n, bs in per_image.items()], ["imname", "nAppear", "box"])
    save(os.path.join(ann, "Images.mat"), {"Img": imgs})
    persons = struct_array([{"idname": ident, "nAppear": scalar(len(rows)),
                             "scene": struct_array([scene(img, b) for img, *b in rows], ["imname", "idlocate", "ishard"])}
                            for ident, rows in CUHK_PERSONS.items()], ["idname", "nAppear", "scene"])
    save(os.path.join(ann, "Person.mat"), {"Person": persons})
    save(os.path.join(ann, "pool.mat"), {"pool": cell_column(CUHK_POOL)})
    train = cell_column([struct_array([{"idname": ident, "nAppear": scalar(len(CUHK_PERSONS[ident])),
                                        "scene": struct_array([scene(img, b) for img, *b in CUHK_PERSONS[ident]],
                                                              ["imname", "idlocate", "ishard"])}],
                                      ["idname", "nAppear", "scene"]) for ident in CUHK_TRAIN_IDS])
    save(os.path.join(ann, "test", "train_test", "Train.mat"), {"Train": train})
    for size, spec in CUHK_TESTG.items():
        save(os.path.join(ann, "test", "train_test", f"TestG{size}.mat"), {f"TestG{size}": protocol_items(spec)})
    for (fname, key), spec in CUHK_SUBSETS.items():
        save(os.path.join(ann, "test", "subset", fname), {key: protocol_items(spec, key == "Occlusion1")})
    for n, bs in per_image.items():
        jpeg(os.path.join(root, "Image", "SSM", n), CUHK_SIZE, bs)


def write_prw(root: str) -> None:
    for frame, (key, rows) in PRW_ANNOS.items():
        save(os.path.join(root, "annotations", frame + ".jpg.mat"), {key: np.array(rows, dtype=np.float64)})
        size = (72, 58) if frame.startswith("c6") else (96, 54)
        jpeg(os.path.join(root, "frames", frame + ".jpg"), size, [r[1:] for r in rows])
    save(os.path.join(root, "frame_test.mat"), {"img_index_test": cell_column(PRW_TEST)})
    save(os.path.join(root, "frame_train.mat"), {"img_index_train": cell_column(PRW_TRAIN)})
    save(os.path.join(root, "ID_test.mat"), {"ID_test2": np.array([PRW_ID_TEST], dtype=np.float64)})
    save(os.path.join(root, "ID_train.mat"), {"ID_train": np.array([PRW_ID_TRAIN], dtype=np.float64)})
    with open(os.path.join(root, "query_info.txt"), "wb") as f:
        for line in PRW_QUERIES:
            f.write(line.encode() + b"\r\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="tiny CUHK-SYSU / PRW datasets in the official layout")
    ap.add_argument("--out", default="Tests/Fixtures/datasets")
    args = ap.parse_args(argv)
    for name, writer in (("cuhk_sysu_mini", write_cuhk), ("prw_mini", write_prw)):
        root = os.path.join(args.out, name)
        if os.path.isdir(root):
            shutil.rmtree(root)
        writer(root)
        print(f"wrote {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
