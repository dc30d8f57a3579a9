"""Synthetic person-search dataset: procedurally drawn people in scenes from several cameras.

    tools/.venv/bin/python tools/make_synthetic.py --preset small --seed 0 --out Tests/Fixtures/synthetic_small
    tools/.venv/bin/python tools/make_synthetic.py --preset benchmark --seed 0 --out out/synthetic [--jobs 2]
    ... [--samples docs/images]    also write annotated sample images (GT boxes) for the docs

Writes DIR/images/s*.png, DIR/train.json and DIR/test.json (person-search manifests, protocol "cuhk-sysu":
queries with explicit galleries, positives first, then negatives; every image has a camera id), and
DIR/identities.json (the attributes of every identity). The same preset and seed give the same files.

What is in it (docs/SYNTHETIC.md has pictures and the numbers of each preset):
  * Cameras with their own background (street, mall, park, station), lighting (brightness, colour
    temperature, vertical gradient), image size and viewpoint: a ground-plane perspective maps the foot
    position to the person height, between 10 % and 60 % of the image height over all cameras.
  * Identities = combinations of attributes: body height/build/head size/leg length, skin, hair colour and
    style (short, long, bun, cap), top colour + pattern (solid, horizontal/vertical stripes, checker) + second
    colour + sleeve length, bottom colour + type (trousers, shorts, skirt), shoe colour, bag (none, backpack,
    shoulder bag, handbag) + bag colour. Every attribute value is shared by several identities of a split, and
    any two identities differ in at least 3 attributes, so no single attribute separates identities.
    An identity keeps its attributes in every scene; view (front, back, side), mirroring, walking phase,
    scale and lighting change.
  * Unlabeled passers-by (pid -1) with fresh random attributes, movable objects (cars, bushes, benches, bins,
    signs) and other people occluding persons (a labeled person's box is at most ~half covered).
  * CUHK-style splits: training identities and test identities are disjoint and live in disjoint image
    sets; each test identity appears in 2+ test images (mostly on different cameras) and is queried once
    (from its least occluded appearance); its gallery lists all its other images, then random images
    without it, up to the preset's gallery length.
GT boxes are the tight boxes of the drawn person (x1, y1, x2, y2 in pixels, clipped to the image).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ps_manifest import write_manifest  # noqa: E402

# ----------------------------------------------------------------------------- presets

PRESETS = {
    "small": dict(cameras=3, test_images=24, test_ids=10, train_images=16, train_ids=8, appear=(2, 3),
                  max_labeled=3, passers=(0, 2), gallery=12, scale=1.0),
    "benchmark": dict(cameras=6, test_images=1200, test_ids=360, train_images=1000, train_ids=300, appear=(2, 5),
                      max_labeled=4, passers=(0, 3), gallery=100, scale=1.0),
}

# camera templates: kind, size (w, h) at scale 1, horizon (fraction of h), person height at the top of the
# walkable area and at the bottom of the image (fractions of the image height), brightness, tint (r, g, b)
CAMERAS = [
    dict(kind="street", size=(480, 320), horizon=0.42, hmin=0.22, hmax=0.60, bright=1.00, tint=(1.04, 1.00, 0.94)),
    dict(kind="mall", size=(400, 300), horizon=0.38, hmin=0.16, hmax=0.48, bright=0.92, tint=(1.06, 1.00, 0.88)),
    dict(kind="park", size=(448, 336), horizon=0.45, hmin=0.10, hmax=0.30, bright=1.10, tint=(0.98, 1.02, 1.00)),
    dict(kind="station", size=(512, 288), horizon=0.40, hmin=0.14, hmax=0.42, bright=0.78, tint=(0.90, 0.98, 1.10)),
    dict(kind="street", size=(384, 288), horizon=0.30, hmin=0.25, hmax=0.55, bright=0.85, tint=(0.95, 0.98, 1.06)),
    dict(kind="mall", size=(416, 312), horizon=0.48, hmin=0.11, hmax=0.26, bright=1.05, tint=(1.00, 1.00, 1.00)),
]

# ----------------------------------------------------------------------------- attributes

SKIN = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36)]
HAIR = {"black": (30, 25, 22), "dark brown": (70, 45, 30), "brown": (125, 82, 45), "blond": (215, 182, 112),
        "grey": (165, 162, 158), "auburn": (150, 62, 32)}
HAIR_STYLES = ["short", "long", "bun", "cap"]
TOPS = {"red": (200, 40, 40), "blue": (40, 75, 185), "navy": (25, 35, 82), "green": (50, 140, 60),
        "yellow": (232, 200, 52), "white": (236, 236, 230), "black": (36, 36, 40), "grey": (128, 128, 130),
        "orange": (232, 122, 32), "purple": (122, 60, 152), "pink": (232, 142, 172), "teal": (30, 140, 140)}
PATTERNS = ["solid", "hstripes", "vstripes", "checker"]
SLEEVES = ["short", "long"]
BOTTOMS = {"dark jeans": (40, 60, 110), "black": (30, 30, 34), "grey": (110, 110, 116), "khaki": (190, 170, 120),
           "brown": (110, 75, 45), "white": (226, 226, 220), "burgundy": (120, 30, 45), "light jeans": (112, 142, 192)}
BOTTOM_TYPES = ["trousers", "shorts", "skirt"]
SHOES = {"black": (25, 25, 25), "white": (235, 235, 235), "brown": (95, 60, 35), "grey": (120, 120, 125)}
BAGS = ["none", "backpack", "shoulder", "handbag"]
BAG_COLOURS = {"black": (30, 30, 30), "brown": (120, 72, 40), "red": (170, 35, 40), "blue": (45, 80, 170),
               "green": (40, 110, 60), "beige": (210, 190, 150), "grey": (100, 100, 105), "pink": (225, 130, 170)}

CATEGORICAL = ["skin", "hair", "hair_style", "top", "pattern", "top2", "sleeves", "bottom", "bottom_type", "shoes",
               "bag", "bag_colour"]
CHOICES = {"skin": len(SKIN), "hair": list(HAIR), "hair_style": HAIR_STYLES, "top": list(TOPS), "pattern": PATTERNS,
           "top2": list(TOPS), "sleeves": SLEEVES, "bottom": list(BOTTOMS), "bottom_type": BOTTOM_TYPES,
           "shoes": list(SHOES), "bag": BAGS, "bag_colour": list(BAG_COLOURS)}
MIN_DIFFERENT = 3


def random_attributes(rng) -> dict:
    """One random person (passers-by)."""
    a = {}
    for k in CATEGORICAL:
        c = CHOICES[k]
        a[k] = int(rng.integers(c)) if isinstance(c, int) else str(c[int(rng.integers(len(c)))])
    while a["top2"] == a["top"]:
        a["top2"] = str(CHOICES["top2"][int(rng.integers(len(TOPS)))])
    if rng.random() < 0.4:
        a["bag"] = "none"
    a.update(body(rng))
    return a


def body(rng) -> dict:
    return {"height": round(float(rng.uniform(0.90, 1.08)), 3), "build": round(float(rng.uniform(0.85, 1.18)), 3),
            "head": round(float(rng.uniform(0.90, 1.10)), 3), "hip": round(float(rng.uniform(0.49, 0.54)), 3)}


def visible_key(a) -> list:
    """Categorical attributes as they show (second colour only with a pattern, bag colour only with a bag)."""
    return [a["skin"], a["hair"], a["hair_style"], a["top"], a["pattern"],
            a["top2"] if a["pattern"] != "solid" else "-", a["sleeves"], a["bottom"], a["bottom_type"], a["shoes"],
            a["bag"], a["bag_colour"] if a["bag"] != "none" else "-"]


def shared_column(rng, values: list, n: int) -> list:
    """n draws from `values` in which every value used appears at least twice (when n >= 2)."""
    if n <= 0:
        return []
    if n == 1:
        return [values[int(rng.integers(len(values)))]]
    m = max(1, min(len(values), n // 2))
    chosen = [values[int(i)] for i in rng.choice(len(values), size=m, replace=False)]
    col = chosen * 2 + [chosen[int(i)] for i in rng.integers(0, m, n - 2 * m)]
    return [col[int(i)] for i in rng.permutation(n)]


def make_identities(rng, n: int) -> list[dict]:
    """n identities whose visible attribute values are each shared by 2+ of them, any two differing in
    >= MIN_DIFFERENT visible attributes (so no single attribute separates identities)."""
    cols = {k: shared_column(rng, list(range(CHOICES[k])) if k == "skin" else list(CHOICES[k]), n)
            for k in ("skin", "hair", "hair_style", "top", "pattern", "sleeves", "bottom", "bottom_type", "shoes")}
    n_none = int(round(0.4 * n)) if n >= 4 else 0
    bags = ["none"] * n_none + shared_column(rng, BAGS[1:], n - n_none)
    cols["bag"] = [bags[int(i)] for i in rng.permutation(n)]
    ids = [{k: (int(v) if k == "skin" else v) for k, v in zip(cols, vals)} for vals in zip(*cols.values())]
    patterned = [i for i, a in enumerate(ids) if a["pattern"] != "solid"]
    with_bag = [i for i, a in enumerate(ids) if a["bag"] != "none"]
    for i, v in zip(patterned, shared_column(rng, list(TOPS), len(patterned))):
        ids[i]["top2"] = v
    for i, v in zip(with_bag, shared_column(rng, list(BAG_COLOURS), len(with_bag))):
        ids[i]["bag_colour"] = v
    for i, a in enumerate(ids):  # invisible ones: any value
        a.setdefault("top2", str(list(TOPS)[int(rng.integers(len(TOPS)))]))
        a.setdefault("bag_colour", str(list(BAG_COLOURS)[int(rng.integers(len(BAG_COLOURS)))]))
        a.update(body(rng))
    # repair by swapping values inside a column (keeps every value's count): second colour != main colour,
    # and every pair differs in >= MIN_DIFFERENT visible attributes
    free = ["skin", "hair", "hair_style", "top", "sleeves", "bottom", "bottom_type", "shoes"]
    for _ in range(200000):
        bad = None
        for i in patterned:
            if ids[i]["top2"] == ids[i]["top"]:
                bad = (i, None)
                break
        if bad is None:
            keys = [visible_key(a) for a in ids]
            for i in range(n):
                for j in range(i + 1, n):
                    if sum(x != y for x, y in zip(keys[i], keys[j])) < MIN_DIFFERENT:
                        bad = (i, j)
                        break
                if bad:
                    break
        if bad is None:
            return ids
        i = bad[0] if bad[1] is None or rng.random() < 0.5 else bad[1]
        k = free[int(rng.integers(len(free)))]
        j = int(rng.integers(n))
        ids[i][k], ids[j][k] = ids[j][k], ids[i][k]
    raise RuntimeError("could not make distinct identities")


# ----------------------------------------------------------------------------- drawing people


def shade(c, f):
    return tuple(int(max(0, min(255, v * f))) for v in c)


def pattern_image(size, a, u) -> Image.Image:
    w, h = size
    c1 = np.array(TOPS[a["top"]], dtype=np.uint8)
    c2 = np.array(TOPS[a["top2"]], dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    period = max(2.0, 0.055 * u)
    if a["pattern"] == "hstripes":
        sel = (yy // period).astype(int) % 2 == 1
    elif a["pattern"] == "vstripes":
        sel = (xx // period).astype(int) % 2 == 1
    elif a["pattern"] == "checker":
        sel = ((yy // period).astype(int) + (xx // period).astype(int)) % 2 == 1
    else:
        sel = np.zeros((h, w), dtype=bool)
    arr = np.where(sel[..., None], c2, c1)
    return Image.fromarray(np.concatenate([arr, np.full((h, w, 1), 255, np.uint8)], axis=2), "RGBA")


def render_person(a: dict, height_px: float, view: str, phase: float, flip: bool) -> Image.Image:
    """RGBA image of one person (tight-ish canvas), drawn supersampled then reduced."""
    S = 4 if height_px < 60 else (3 if height_px < 120 else 2)
    u = height_px * S
    H = int(round(u))
    side = view == "side"
    bw = a["build"]
    W = int(round(u * (0.50 if not side else 0.42) * bw)) + 4
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    cx = W / 2.0
    skin = SKIN[a["skin"]]
    hair = HAIR[a["hair"]]
    top = TOPS[a["top"]]
    bottom = BOTTOMS[a["bottom"]]
    shoes = SHOES[a["shoes"]]
    bag_c = BAG_COLOURS[a["bag_colour"]]

    head_r = 0.062 * u * a["head"]
    head_cy = head_r + 0.012 * u
    sh_y = head_cy + head_r + 0.035 * u
    hip_y = a["hip"] * u
    foot_y = 0.972 * u
    knee_y = hip_y + 0.48 * (foot_y - hip_y)
    torso_hw = (0.125 if not side else 0.075) * u * bw
    waist_hw = torso_hw * 0.86
    leg_w = 0.052 * u * bw
    arm_w = 0.036 * u * bw
    swing = phase * (0.09 if side else 0.025) * u
    bag_side = -1 if flip else 1  # which side a shoulder bag / handbag hangs on

    def quad(x0, y0, x1, y1, w0, w1, fill):
        d.polygon([(x0 - w0, y0), (x0 + w0, y0), (x1 + w1, y1), (x1 - w1, y1)], fill=fill)

    def long_hair(dr):
        dr.rounded_rectangle([cx - head_r * 1.0, head_cy - head_r * 0.2, cx + head_r * 1.0, sh_y + 0.07 * u],
                             radius=0.02 * u, fill=hair)

    if a["hair_style"] == "long" and view != "back":  # behind everything, showing beside the neck
        long_hair(d)
    # backpack seen from the back or side goes behind the arms but over the torso (drawn later); from the side
    # its body sticks out behind
    if a["bag"] == "backpack" and side:
        bx = cx - bag_side * (torso_hw + 0.05 * u)
        d.rounded_rectangle([bx - 0.055 * u, sh_y + 0.02 * u, bx + 0.055 * u, sh_y + 0.26 * u], radius=0.02 * u,
                            fill=bag_c)

    # legs
    if side:
        legs = [(cx - swing, 0.95), (cx + swing, 1.0)]
        hips = [cx, cx]
    else:
        legs = [(cx - waist_hw * 0.5 - swing, 1.0), (cx + waist_hw * 0.5 + swing, 1.0)]
        hips = [cx - waist_hw * 0.5, cx + waist_hw * 0.5]
    for (fx, f), hx in zip(legs, hips):
        c_upper = bottom if a["bottom_type"] != "skirt" else skin
        c_lower = bottom if a["bottom_type"] == "trousers" else skin
        kx = (hx + fx) / 2
        quad(hx, hip_y - 0.01 * u, kx, knee_y, leg_w * f, leg_w * 0.9 * f, shade(c_upper, f))
        quad(kx, knee_y, fx, foot_y - 0.02 * u, leg_w * 0.9 * f, leg_w * 0.75 * f, shade(c_lower, f))
        sx = fx + (0.035 * u if side and not flip else (-0.035 * u if side else 0))
        d.ellipse([sx - leg_w * 1.15, foot_y - 0.035 * u, sx + leg_w * 1.15, foot_y + 0.02 * u], fill=shoes)
    if a["bottom_type"] != "skirt":
        d.rectangle([cx - waist_hw, hip_y - 0.05 * u, cx + waist_hw, hip_y + 0.03 * u], fill=bottom)
    else:
        quad(cx, hip_y - 0.05 * u, cx, knee_y - 0.02 * u, waist_hw, waist_hw * 1.55, bottom)

    # torso with pattern
    torso = [(cx - torso_hw, sh_y), (cx + torso_hw, sh_y), (cx + waist_hw, hip_y - 0.02 * u),
             (cx - waist_hw, hip_y - 0.02 * u)]
    mask = Image.new("L", (W, H), 0)
    ImageDraw.Draw(mask).polygon(torso, fill=255)
    ImageDraw.Draw(mask).ellipse([cx - torso_hw, sh_y - 0.02 * u, cx + torso_hw, sh_y + 0.05 * u], fill=255)
    img.paste(pattern_image((W, H), a, u), (0, 0), mask)

    # bag over the torso
    if a["bag"] == "backpack" and view == "back":
        d.rounded_rectangle([cx - torso_hw * 0.72, sh_y + 0.03 * u, cx + torso_hw * 0.72, sh_y + 0.27 * u],
                            radius=0.025 * u, fill=bag_c)
    elif a["bag"] == "backpack" and view == "front":
        for s in (-1, 1):
            d.line([(cx + s * torso_hw * 0.55, sh_y), (cx + s * torso_hw * 0.6, sh_y + 0.2 * u)],
                   fill=shade(bag_c, 0.85), width=max(1, int(0.018 * u)))
    elif a["bag"] == "shoulder":
        d.line([(cx - bag_side * torso_hw * 0.8, sh_y), (cx + bag_side * waist_hw, hip_y - 0.04 * u)],
               fill=shade(bag_c, 0.8), width=max(1, int(0.014 * u)))

    # arms
    hand_y = hip_y + 0.05 * u
    arms = [cx + swing * 0.8] if side else [cx - torso_hw - arm_w * 0.6, cx + torso_hw + arm_w * 0.6]
    shoulders = [cx] if side else [cx - torso_hw + arm_w * 0.4, cx + torso_hw - arm_w * 0.4]
    for hx, sx in zip(arms, shoulders):
        elbow_y = sh_y + 0.45 * (hand_y - sh_y)
        ex = (sx + hx) / 2
        quad(sx, sh_y + 0.005 * u, ex, elbow_y, arm_w, arm_w * 0.9, shade(top, 0.92))
        quad(ex, elbow_y, hx, hand_y, arm_w * 0.9, arm_w * 0.75, shade(top if a["sleeves"] == "long" else skin, 0.92))
        d.ellipse([hx - arm_w, hand_y - arm_w * 0.6, hx + arm_w, hand_y + arm_w * 1.3], fill=skin)
    if a["bag"] == "shoulder":
        bx = cx + bag_side * (waist_hw + 0.03 * u)
        d.rounded_rectangle([bx - 0.05 * u, hip_y - 0.08 * u, bx + 0.05 * u, hip_y + 0.02 * u], radius=0.012 * u,
                            fill=bag_c)
    elif a["bag"] == "handbag":
        hx = arms[0] if (side or bag_side < 0) else arms[-1]
        d.line([(hx, hand_y), (hx, hand_y + 0.04 * u)], fill=shade(bag_c, 0.7), width=max(1, int(0.01 * u)))
        d.rounded_rectangle([hx - 0.045 * u, hand_y + 0.03 * u, hx + 0.045 * u, hand_y + 0.11 * u],
                            radius=0.01 * u, fill=bag_c)

    # neck, head, hair
    d.rectangle([cx - 0.025 * u, head_cy + head_r * 0.6, cx + 0.025 * u, sh_y + 0.01 * u], fill=shade(skin, 0.9))
    hb = [cx - head_r * 0.88, head_cy - head_r, cx + head_r * 0.88, head_cy + head_r]
    style = a["hair_style"]
    if style == "long" and view == "back":  # hair over the back down to the shoulders
        long_hair(d)
    d.ellipse(hb, fill=skin)
    if view == "back":
        d.ellipse(hb, fill=hair)
    else:
        d.chord([hb[0] - 1, hb[1] - 1, hb[2] + 1, hb[1] + 1.5 * head_r], 180, 360, fill=hair)
        if side:
            d.pieslice(hb, 180 if flip else 270, 270 if flip else 360, fill=hair)
        if style == "long":
            d.rectangle([hb[0], head_cy - head_r * 0.2, hb[0] + head_r * 0.3, head_cy + head_r * 0.9], fill=hair)
            d.rectangle([hb[2] - head_r * 0.3, head_cy - head_r * 0.2, hb[2], head_cy + head_r * 0.9], fill=hair)
        if view == "front" and u > 180:
            for s in (-1, 1):
                ex = cx + s * head_r * 0.35
                d.ellipse([ex - 0.006 * u, head_cy - 0.004 * u, ex + 0.006 * u, head_cy + 0.008 * u], fill=(40, 30, 30))
    if style == "bun":
        d.ellipse([cx - head_r * 0.4, hb[1] - head_r * 0.45, cx + head_r * 0.4, hb[1] + head_r * 0.3], fill=hair)
    elif style == "cap":
        cap = BAG_COLOURS[a["bag_colour"]] if a["bag"] != "none" else TOPS[a["top2"]]
        d.chord([hb[0] - 2, hb[1] - 2, hb[2] + 2, hb[3] - head_r * 0.5], 180, 360, fill=cap)
        if view != "back":
            vx = hb[2] if not flip else hb[0]
            d.rectangle([min(cx, vx), hb[1] + head_r * 0.45, max(cx, vx) + (0.03 * u if not flip else -0.03 * u),
                         hb[1] + head_r * 0.6], fill=shade(cap, 0.8))

    # soft shading from the left, then reduce with premultiplied alpha
    arr = np.asarray(img).astype(np.float32)
    g = np.linspace(1.06, 0.84, W, dtype=np.float32)[None, :, None]
    arr[..., :3] *= g
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = img.convert("RGBa").resize((max(1, round(W / S)), max(1, round(H / S))), Image.Resampling.BOX)
    return out.convert("RGBA")


# ----------------------------------------------------------------------------- scenes


def camera_list(n: int, scale: float) -> list[dict]:
    cams = []
    for i in range(n):
        c = dict(CAMERAS[i % len(CAMERAS)])
        w, h = c["size"]
        c["size"] = (int(round(w * scale / 8) * 8), int(round(h * scale / 8) * 8))
        c["id"] = i + 1
        cams.append(c)
    return cams


def person_height(cam, y_foot: float) -> float:
    W, H = cam["size"]
    y0 = cam["horizon"] * H + 0.04 * H
    t = (y_foot - y0) / (H - y0)
    return (cam["hmin"] + t * (cam["hmax"] - cam["hmin"])) * H


def draw_background(cam, seed: int) -> Image.Image:
    rng = np.random.default_rng([seed, 7, cam["id"]])
    W, H = cam["size"]
    hz = int(cam["horizon"] * H)
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    kind = cam["kind"]

    def vgrad(y0, y1, c0, c1):
        for y in range(y0, y1):
            t = (y - y0) / max(1, y1 - y0 - 1)
            d.line([(0, y), (W, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(c0, c1)))

    if kind in ("street", "park"):
        vgrad(0, hz, (150, 190, 230), (205, 222, 236))
    else:
        wall = [(205, 195, 180), (180, 188, 196), (214, 205, 190)][int(rng.integers(3))]
        vgrad(0, hz, shade(wall, 1.05), shade(wall, 0.9))
    if kind == "street":
        x = -int(rng.integers(0, 30))
        while x < W:
            bw = int(rng.integers(W // 8, W // 4))
            bh = int(rng.integers(hz // 3, hz))
            col = [(170, 120, 100), (190, 180, 160), (120, 125, 140), (200, 170, 130), (150, 150, 150)][
                int(rng.integers(5))]
            d.rectangle([x, hz - bh, x + bw, hz], fill=col)
            for wy in range(hz - bh + 6, hz - 8, 14):
                for wx in range(x + 5, x + bw - 8, 12):
                    d.rectangle([wx, wy, wx + 5, wy + 7], fill=shade(col, 0.55))
            x += bw + int(rng.integers(0, 8))
        vgrad(hz, H, (120, 120, 124), (95, 95, 100))
        d.rectangle([0, hz, W, hz + int(0.06 * H)], fill=(170, 165, 160))
        for x in range(0, W, 40):
            d.line([(x, hz + int(0.06 * H)), (x - 20, H)], fill=(135, 135, 138), width=1)
    elif kind == "park":
        for _ in range(int(W / 25)):
            tx = int(rng.integers(0, W))
            r = int(rng.integers(12, 30))
            d.ellipse([tx - r, hz - 2 * r, tx + r, hz + 4], fill=(45 + int(rng.integers(30)), 100 + int(rng.integers(40)), 50))
        vgrad(hz, H, (110, 160, 80), (80, 135, 60))
        d.polygon([(W * 0.42, hz), (W * 0.58, hz), (W * 0.9, H), (W * 0.1, H)], fill=(200, 185, 150))
    elif kind == "mall":
        x = 0
        while x < W:
            sw = int(rng.integers(W // 6, W // 3))
            col = [(230, 90, 70), (70, 120, 200), (90, 170, 110), (240, 200, 80), (160, 100, 170)][int(rng.integers(5))]
            d.rectangle([x + 4, int(hz * 0.25), x + sw - 4, int(hz * 0.4)], fill=col)
            d.rectangle([x + 8, int(hz * 0.48), x + sw - 8, hz], fill=(165, 190, 205))
            x += sw
        for i, y in enumerate(range(hz, H, max(4, (H - hz) // 10))):
            pass
        vgrad(hz, H, (215, 210, 200), (180, 175, 168))
        step = 6
        y = hz
        while y < H:
            d.line([(0, y), (W, y)], fill=(165, 160, 152))
            step = int(step * 1.35) + 1
            y += step
        for x in range(-W, 2 * W, 60):
            d.line([(W / 2 + (x - W / 2) * 0.2, hz), (x, H)], fill=(165, 160, 152))
    elif kind == "station":
        for x in range(int(rng.integers(10, 40)), W, int(W / 4)):
            d.rectangle([x, int(hz * 0.3), x + int(W / 9), int(hz * 0.8)],
                        fill=[(220, 80, 60), (60, 90, 170), (240, 220, 120)][int(rng.integers(3))])
        vgrad(hz, H, (150, 150, 155), (120, 120, 126))
        d.rectangle([0, hz + int(0.03 * H), W, hz + int(0.045 * H)], fill=(235, 205, 40))
        for x in range(0, W, int(W / 3)):
            d.rectangle([x + 20, 0, x + 20 + int(W / 28), hz + int(0.02 * H)], fill=(175, 175, 180))
    return img


OBJECTS = {  # kind: (height relative to a person at that depth, width / height, colours)
    "car": (0.75, 2.1, [(180, 30, 30), (40, 60, 140), (200, 200, 205), (30, 30, 30), (90, 90, 95)]),
    "bush": (0.45, 1.6, [(50, 110, 50), (70, 125, 45)]),
    "bench": (0.35, 2.0, [(130, 90, 55), (90, 90, 95)]),
    "bin": (0.45, 0.6, [(60, 110, 60), (80, 80, 85)]),
    "sign": (0.95, 0.45, [(230, 230, 230), (40, 100, 180)]),
}
OBJECT_KINDS = {"street": ["car", "bin", "sign", "bench"], "park": ["bush", "bench", "bin"],
                "mall": ["bench", "bin", "sign"], "station": ["bench", "bin", "sign"]}


def draw_object(d: ImageDraw.ImageDraw, kind, box, colour):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if kind == "car":
        d.rounded_rectangle([x1, y1 + 0.35 * h, x2, y2 - 0.12 * h], radius=0.1 * h, fill=colour)
        d.polygon([(x1 + 0.2 * w, y1 + 0.37 * h), (x1 + 0.32 * w, y1), (x1 + 0.7 * w, y1), (x1 + 0.82 * w, y1 + 0.37 * h)],
                  fill=shade(colour, 0.9))
        d.polygon([(x1 + 0.27 * w, y1 + 0.33 * h), (x1 + 0.35 * w, y1 + 0.07 * h), (x1 + 0.67 * w, y1 + 0.07 * h),
                   (x1 + 0.75 * w, y1 + 0.33 * h)], fill=(150, 180, 200))
        for wx in (x1 + 0.22 * w, x2 - 0.22 * w):
            d.ellipse([wx - 0.14 * h, y2 - 0.3 * h, wx + 0.14 * h, y2], fill=(20, 20, 20))
    elif kind == "bush":
        for i in range(3):
            cx = x1 + (0.25 + 0.25 * i) * w
            d.ellipse([cx - 0.35 * w, y1 + (0.1 if i == 1 else 0.3) * h, cx + 0.35 * w, y2], fill=shade(colour, 0.9 + 0.08 * i))
    elif kind == "bench":
        d.rectangle([x1, y1, x2, y1 + 0.3 * h], fill=colour)
        d.rectangle([x1, y1 + 0.45 * h, x2, y1 + 0.6 * h], fill=shade(colour, 0.9))
        for lx in (x1 + 0.08 * w, x2 - 0.12 * w):
            d.rectangle([lx, y1 + 0.6 * h, lx + 0.04 * w, y2], fill=(50, 50, 50))
    elif kind == "bin":
        d.rectangle([x1, y1 + 0.1 * h, x2, y2], fill=colour)
        d.rectangle([x1 - 0.05 * w, y1, x2 + 0.05 * w, y1 + 0.12 * h], fill=shade(colour, 0.8))
    elif kind == "sign":
        d.rectangle([x1 + 0.45 * w, y1 + 0.4 * h, x1 + 0.55 * w, y2], fill=(90, 90, 95))
        d.rectangle([x1, y1, x2, y1 + 0.45 * h], fill=colour)
        d.rectangle([x1 + 0.15 * w, y1 + 0.12 * h, x2 - 0.15 * w, y1 + 0.2 * h], fill=shade(colour, 0.5))


def box_cover(box, fronts) -> float:
    """Fraction of `box` covered by the union of the boxes in `fronts` (rasterised)."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    w, h = max(1, x2 - x1), max(1, y2 - y1)
    m = np.zeros((h, w), dtype=bool)
    for f in fronts:
        a1, b1 = max(0, int(f[0]) - x1), max(0, int(f[1]) - y1)
        a2, b2 = min(w, int(f[2]) - x1), min(h, int(f[3]) - y1)
        if a2 > a1 and b2 > b1:
            m[b1:b2, a1:a2] = True
    return float(m.mean())


def plan_scene(cam, labeled: list[tuple[int, dict]], n_passers: int, rng, seed: int) -> list[dict]:
    """Entities (people and objects) with depth, position and size; labeled persons at most half covered."""
    W, H = cam["size"]
    y_top = cam["horizon"] * H + 0.04 * H
    for attempt in range(60):
        ents = []
        people = [(pid, a) for pid, a in labeled] + [(-1, None)] * n_passers
        for pid, a in people:
            if a is None:
                a = random_attributes(rng)
            yf = float(rng.uniform(y_top + 0.02 * H, H - 1))
            h = person_height(cam, yf) * a["height"]
            h = min(h, 0.6 * H, yf)
            h = max(h, 0.1 * H)
            w = h * 0.5 * a["build"]
            x = float(rng.uniform(-0.1 * w, W - 0.9 * w))
            view = ["front", "back", "side"][int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
            ents.append(dict(type="person", pid=pid, attrs=a, yf=yf, h=h, box=[x, yf - h, x + w, yf], view=view,
                             phase=float(rng.uniform(-1, 1)), flip=bool(rng.random() < 0.5)))
        n_obj = int(rng.integers(0, 3))
        kinds = OBJECT_KINDS[cam["kind"]]
        for _ in range(n_obj):
            kind = kinds[int(rng.integers(len(kinds)))]
            rel, aspect, cols = OBJECTS[kind]
            lab = [e for e in ents if e["type"] == "person" and e["pid"] >= 0]
            if lab and rng.random() < 0.5:  # in front of a labeled person, covering its lower part
                t = lab[int(rng.integers(len(lab)))]
                yf = min(H - 1, t["yf"] + float(rng.uniform(0.01, 0.06)) * H)
                oh = person_height(cam, yf) * rel
                ow = oh * aspect
                x = (t["box"][0] + t["box"][2]) / 2 - ow * float(rng.uniform(0.2, 0.8))
            else:
                yf = float(rng.uniform(y_top, H - 1))
                oh = person_height(cam, yf) * rel
                ow = oh * aspect
                x = float(rng.uniform(-0.2 * ow, W - 0.8 * ow))
            ents.append(dict(type="object", kind=kind, colour=cols[int(rng.integers(len(cols)))], yf=yf,
                             box=[x, yf - oh, x + ow, yf]))
        ents.sort(key=lambda e: e["yf"])
        ok = True
        for i, e in enumerate(ents):
            if e["type"] == "person" and e["pid"] >= 0:
                cov = box_cover(e["box"], [f["box"] for f in ents[i + 1:]])
                e["cover"] = cov
                if cov > 0.5:
                    ok = False
        if ok:
            return ents
    raise RuntimeError("no scene layout without heavy occlusion")


def render_scene(cam, ents, background: Image.Image, rng) -> tuple[Image.Image, list[dict]]:
    img = background.copy()
    d = ImageDraw.Draw(img)
    W, H = cam["size"]
    persons = []
    for e in ents:
        if e["type"] == "object":
            draw_object(d, e["kind"], e["box"], e["colour"])
            continue
        p = render_person(e["attrs"], e["h"], e["view"], e["phase"], e["flip"])
        pw, ph = p.size
        cx = (e["box"][0] + e["box"][2]) / 2
        x0 = int(round(cx - pw / 2))
        y0 = int(round(e["yf"] - ph))
        img.paste(p, (x0, y0), p)
        bb = p.getchannel("A").point(lambda v: 255 if v >= 96 else 0).getbbox()
        if bb is None:
            continue
        box = [max(0, x0 + bb[0]), max(0, y0 + bb[1]), min(W, x0 + bb[2]), min(H, y0 + bb[3])]
        if box[2] - box[0] < 2 or box[3] - box[1] < 4:
            continue
        persons.append({"box": [int(v) for v in box], "pid": int(e["pid"]), "cover": round(e.get("cover", 0.0), 3)})
    # lighting: camera brightness and tint, a per-image change, a vertical gradient
    arr = np.asarray(img).astype(np.float32)
    b = cam["bright"] * float(rng.uniform(0.92, 1.08))
    tint = np.array(cam["tint"], dtype=np.float32) * (1 + rng.uniform(-0.03, 0.03, 3).astype(np.float32))
    grad = np.linspace(1.04, 0.94, H, dtype=np.float32)[:, None, None]
    arr = arr * b * tint[None, None, :] * grad
    img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    return img, persons


# ----------------------------------------------------------------------------- dataset


def assign_appearances(rng, n_images: int, cams: list[int], pids: list[int], appear, max_labeled: int):
    """image index -> list of pids; each pid in appear[0]..appear[1] images, on different cameras if possible."""
    by_cam: dict[int, list[int]] = {}
    for i, c in enumerate(cams):
        by_cam.setdefault(c, []).append(i)
    content: list[list[int]] = [[] for _ in range(n_images)]
    for pid in pids:
        k = int(rng.integers(appear[0], appear[1] + 1))
        order = list(rng.permutation(sorted(by_cam)))
        chosen: list[int] = []
        for j in range(k * 4):
            cam = order[j % len(order)]
            cands = [i for i in by_cam[cam] if len(content[i]) < max_labeled and i not in chosen]
            if not cands:
                continue
            chosen.append(int(cands[int(rng.integers(len(cands)))]))
            if len(chosen) == k:
                break
        if len(chosen) < 2:
            raise RuntimeError("not enough image capacity for the identities")
        for i in chosen:
            content[i].append(pid)
    return content


def _render_one(job):
    seed, split, idx, cam, pids, attrs, n_passers, out_dir, name = job
    rng = np.random.default_rng([seed, 1 if split == "train" else 2, idx])
    bg = draw_background(cam, seed)
    ents = plan_scene(cam, [(p, attrs[p]) for p in pids], n_passers, rng, seed)
    img, persons = render_scene(cam, ents, bg, rng)
    img.save(os.path.join(out_dir, "images", name), optimize=False, compress_level=6)
    return name, persons


def generate(preset: str, seed: int, out: str, jobs: int = 1) -> dict:
    P = PRESETS[preset]
    rng = np.random.default_rng([seed, 0])
    cams = camera_list(P["cameras"], P["scale"])
    identities = make_identities(rng, P["train_ids"]) + make_identities(rng, P["test_ids"])
    # pids: train 1..N_train, test after a gap so the two ranges never touch
    train_pids = list(range(1, P["train_ids"] + 1))
    test_pids = list(range(1001, 1001 + P["test_ids"]))
    attrs = {pid: a for pid, a in zip(train_pids + test_pids, identities)}
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "images"))
    splits = {}
    counter = 0
    work = []
    for split, n_img, pids in (("train", P["train_images"], train_pids), ("test", P["test_images"], test_pids)):
        img_cams = [cams[int(c)] for c in rng.integers(0, len(cams), n_img)]
        content = assign_appearances(rng, n_img, [c["id"] for c in img_cams], pids, P["appear"], P["max_labeled"])
        names = []
        for i in range(n_img):
            counter += 1
            name = f"s{counter:05d}.png"
            names.append(name)
            lo, hi = P["passers"]
            n_pass = int(rng.integers(lo, hi + 1))
            if not content[i] and n_pass == 0:
                n_pass = 1
            work.append((seed, split, i, img_cams[i], content[i], attrs, n_pass, out, name))
        splits[split] = (names, img_cams)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            results = dict(ex.map(_render_one, work, chunksize=8))
    else:
        results = dict(map(_render_one, work))

    manifests = {}
    for split, (names, img_cams) in splits.items():
        images = []
        for name, cam in zip(names, img_cams):
            W, H = cam["size"]
            images.append({"name": name, "path": f"images/{name}", "width": W, "height": H, "camera": cam["id"],
                           "persons": [{"box": p["box"], "pid": p["pid"]} for p in results[name]]})
        queries = []
        if split == "test":
            occ = {}
            for name in names:
                for p in results[name]:
                    if p["pid"] >= 0:
                        occ.setdefault(p["pid"], []).append((name, p))
            qrng = np.random.default_rng([seed, 3])
            for pid in sorted(occ):
                apps = occ[pid]
                if len(apps) < 2:
                    continue  # (a person can vanish if fully clipped; every identity keeps >= 2 in practice)
                best = min(apps, key=lambda t: (t[1]["cover"], -(t[1]["box"][3] - t[1]["box"][1])))
                pos = [n for n, _ in apps if n != best[0]]
                pos = list(dict.fromkeys(pos))
                neg_pool = [n for n in names if n != best[0] and n not in set(n for n, _ in apps)]
                n_neg = max(0, min(len(neg_pool), P["gallery"] - len(pos)))
                neg = [neg_pool[int(i)] for i in qrng.choice(len(neg_pool), size=n_neg, replace=False)]
                queries.append({"image": best[0], "box": best[1]["box"], "pid": pid, "gallery": pos + neg})
        manifests[split] = {"protocol": "cuhk-sysu", "images": images, "queries": queries}
        write_manifest(os.path.join(out, f"{split}.json"), manifests[split])
    with open(os.path.join(out, "identities.json"), "w") as f:
        json.dump({"preset": preset, "seed": seed,
                   "cameras": [{k: c[k] for k in ("id", "kind", "size", "hmin", "hmax", "bright", "tint")} for c in cams],
                   "identities": {str(p): attrs[p] for p in train_pids + test_pids}}, f, indent=1)
        f.write("\n")
    return manifests


# ----------------------------------------------------------------------------- docs samples

PID_COLOURS = [(255, 60, 60), (60, 200, 255), (255, 210, 40), (120, 255, 90), (255, 110, 230), (255, 150, 40)]


def annotate(img: Image.Image, persons, highlight=None) -> Image.Image:
    img = img.convert("RGB")
    d = ImageDraw.Draw(img)
    for p in persons:
        x1, y1, x2, y2 = p["box"]
        if p["pid"] < 0:
            d.rectangle([x1, y1, x2 - 1, y2 - 1], outline=(235, 235, 235), width=1)
            continue
        c = PID_COLOURS[p["pid"] % len(PID_COLOURS)]
        d.rectangle([x1, y1, x2 - 1, y2 - 1], outline=c, width=2)
        d.rectangle([x1, max(0, y1 - 11), x1 + 6 * len(str(p["pid"])) + 3, max(0, y1 - 11) + 10], fill=c)
        d.text((x1 + 2, max(0, y1 - 11) - 1), str(p["pid"]), fill=(0, 0, 0))
    return img


def write_samples(out: str, dest: str) -> list[str]:
    """3 annotated test scenes from different cameras + one identity strip (query crop, then its gallery crops)."""
    os.makedirs(dest, exist_ok=True)
    test = json.load(open(os.path.join(out, "test.json")))
    written = []
    seen = set()
    for im in sorted(test["images"], key=lambda im: -sum(p["pid"] >= 0 for p in im["persons"])):
        if im["camera"] in seen or len(seen) == 3:
            continue
        seen.add(im["camera"])
        img = annotate(Image.open(os.path.join(out, im["path"])), im["persons"])
        path = os.path.join(dest, f"synthetic_cam{im['camera']}.png")
        img.save(path, optimize=True)
        written.append(path)
    # identity strips: for 4 queries, the query crop then every other appearance, same height
    by_name = {im["name"]: im for im in test["images"]}
    rows = []
    strips = []
    for q in test["queries"]:
        crops = [(q["image"], q["box"])]
        for name in q["gallery"]:
            for p in by_name[name]["persons"]:
                if p["pid"] == q["pid"]:
                    crops.append((name, p["box"]))
        if len(crops) >= 3 or len(test["queries"]) < 12:
            strips.append(crops)
        if len(strips) == 4:
            break
    for crops in strips:
        tiles = []
        for k, (name, box) in enumerate(crops[:5]):
            c = Image.open(os.path.join(out, by_name[name]["path"])).convert("RGB").crop(box)
            c = c.resize((max(1, round(c.width * 96 / c.height)), 96), Image.Resampling.LANCZOS)
            t = Image.new("RGB", (c.width + 6, 102), (255, 255, 255) if k else (255, 60, 60))
            t.paste(c, (3, 3))
            tiles.append(t)
        row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * len(tiles), 102), (255, 255, 255))
        x = 0
        for t in tiles:
            row.paste(t, (x, 0))
            x += t.width + 4
        rows.append(row)
    strip = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 6 for r in rows)), (255, 255, 255))
    y = 0
    for r in rows:
        strip.paste(r, (0, y))
        y += r.height + 6
    path = os.path.join(dest, "synthetic_identities.png")
    strip.save(path, optimize=True)
    written.append(path)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="synthetic person-search dataset")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for rendering")
    ap.add_argument("--samples", help="also write annotated sample images into this folder")
    args = ap.parse_args(argv)
    ms = generate(args.preset, args.seed, args.out, args.jobs)
    for split, m in ms.items():
        n_p = sum(len(im["persons"]) for im in m["images"])
        n_l = sum(p["pid"] >= 0 for im in m["images"] for p in im["persons"])
        print(f"{split}: {len(m['images'])} images, {n_p} persons ({n_l} labeled), {len(m['queries'])} queries")
    if args.samples:
        for p in write_samples(args.out, args.samples):
            print("sample:", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
