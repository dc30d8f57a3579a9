"""Small image fixtures for ImageCodecTests (Tests/Fixtures/images/), made and decoded with Pillow.

    tools/.venv/bin/python tools/make_image_fixtures.py [--out Tests/Fixtures/images]

Each <name>.<ext> comes with <name>.rgb: the raw RGB8 bytes (rows top to bottom) of Pillow's decode,
Image.open(f).convert("RGB").tobytes(), which the Swift decoders (libpng / libjpeg-turbo) are compared with.
Exception: gray16.png's .rgb is round(v / 257) per sample (libpng's 16-to-8 scaling); Pillow clips 16-bit gray
to 255 instead of scaling.

The pictures are synthetic: smooth gradients, hard edges and a little noise, at odd sizes so that chroma
subsampling and MCU padding are exercised. Deterministic (fixed seed).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image


def picture(w: int, h: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    img[(x > w // 2) & (y < h // 2)] = [250, 30, 20]  # a hard-edged block
    img += r.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_rgb(path: str, rgb: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())


def pil_rgb(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "images"))
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)

    def save(name: str, im: Image.Image, **kw) -> str:
        p = os.path.join(out, name)
        im.save(p, **kw)
        return p

    # JPEG: 4:2:0 baseline, 4:4:4 progressive, grayscale.
    for name, w, h, kw, mode in [
        ("photo_420.jpg", 37, 23, dict(quality=85), "RGB"),
        ("photo_444_progressive.jpg", 33, 17, dict(quality=92, subsampling=0, progressive=True), "RGB"),
        ("gray.jpg", 19, 11, dict(quality=80), "L"),
    ]:
        im = Image.fromarray(picture(w, h, seed=len(name)))
        if mode == "L":
            im = im.convert("L")
        p = save(name, im, **kw)
        write_rgb(p[: -len(".jpg")] + ".rgb", pil_rgb(p))

    # PNG: palette (with a transparent entry), 1-bit gray, RGBA, 16-bit gray.
    base = picture(21, 13, seed=5)
    pal = Image.fromarray(base).quantize(colors=7)
    pal.info["transparency"] = 0
    p = save("palette.png", pal, transparency=0)
    write_rgb(p[:-4] + ".rgb", pil_rgb(p))

    bw = Image.fromarray(((base[..., 0] > 128) * 255).astype(np.uint8)).convert("1")
    p = save("gray1.png", bw)
    write_rgb(p[:-4] + ".rgb", pil_rgb(p))

    alpha = np.linspace(0, 255, 21 * 13).reshape(13, 21).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([base, alpha]), "RGBA")
    p = save("rgba.png", rgba)
    write_rgb(p[:-4] + ".rgb", pil_rgb(p))

    g16 = (np.arange(23 * 9, dtype=np.uint32).reshape(9, 23) * 317 % 65536).astype(np.uint16)
    g16[0, :4] = [0, 128, 129, 65535]
    p = save("gray16.png", Image.fromarray(g16))
    with Image.open(p) as im:
        back = np.asarray(im, dtype=np.uint32)
        assert im.mode.startswith("I") and (back == g16).all(), im.mode
    scaled = np.floor(g16.astype(np.float64) / 257 + 0.5).astype(np.uint8)
    write_rgb(p[:-4] + ".rgb", np.dstack([scaled] * 3))

    print(f"image fixtures -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
