"""Shared helpers for the person-search manifest tools (converters, synthetic generator).

Manifest (what `psedge eval` and tools/ps_eval.py read):

    {"protocol": "cuhk-sysu" | "prw",
     "images": [{"name", "path", "width", "height", "camera",
                 "persons": [{"box": [x1, y1, x2, y2], "pid": int}]}],   # pid -1 = unlabeled
     "queries": [{"image", "box", "pid", "gallery": [names]}]}           # "gallery" optional

`path` is relative to the manifest's dataset root. `width`/`height` are null when the image file is absent,
`camera` is null when the dataset has no camera ids (CUHK-SYSU).
"""

from __future__ import annotations

import json
import os

import numpy as np


# ----------------------------------------------------------------------------- MATLAB structures (scipy.io.loadmat)


def mat_str(x) -> str:
    """A MATLAB char array as loadmat returns it (possibly wrapped in cells / 1x1 arrays) -> str."""
    while isinstance(x, np.ndarray):
        if x.size == 0:
            return ""
        x = x.ravel()[0]
    return x.decode() if isinstance(x, bytes) else str(x)


def mat_num(x) -> np.ndarray:
    """A MATLAB numeric array (possibly wrapped in a 1x1 cell) -> flat float64 array (empty if empty)."""
    while isinstance(x, np.ndarray) and x.dtype == object:
        if x.size == 0:
            return np.zeros(0)
        x = x.ravel()[0]
    return np.asarray(x, dtype=np.float64).ravel()


def mat_records(x) -> list:
    """A MATLAB struct array (possibly wrapped in cells) -> list of records (index them by field name)."""
    while isinstance(x, np.ndarray) and x.dtype.names is None and x.dtype == object and x.size == 1:
        x = x.ravel()[0]
    if not isinstance(x, np.ndarray) or x.dtype.names is None:
        raise ValueError(f"not a MATLAB struct array: {type(x)}")
    return list(x.ravel())


def mat_cells(x) -> list:
    """A MATLAB cell array -> list of its elements."""
    return list(np.asarray(x, dtype=object).ravel())


# ----------------------------------------------------------------------------- boxes, images, output


def xywh_to_xyxy(b) -> list:
    x, y, w, h = (float(v) for v in b)
    return [x, y, x + w, y + h]


def num(v):
    """int when integral (keeps manifests readable), else float."""
    f = float(v)
    return int(f) if f.is_integer() else f


def image_size(path: str):
    """(width, height) read from the image header, or (None, None) when the file is absent."""
    if not os.path.isfile(path):
        return None, None
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def write_manifest(path: str, manifest: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
        f.write("\n")
