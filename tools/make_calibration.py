"""Calibration and held-out input sets for PSEdge's quantization tests and benchmarks.

Run: tools/.venv/bin/python tools/make_calibration.py --out Tests/Fixtures/generated/calibration

Writes, for each model, <out>/<model>/{calib,heldout}/sample_NNN/<input>.npy (the layout `psedge convert
--calibration DIR` reads). The two sets use disjoint seeds, so the held-out inputs are never seen by calibration.
  unet_sd21_mini: sample N(0,1) [1,4,32,32], timestep uniform integer in [0, 1000) as float32 [1],
                  encoder_hidden_states N(0,1) [1,77,64]   (the distribution of the fixture's own inputs)
  resnet50:       input N(0,1) [1,3,224,224]
"""
import argparse
import os

import numpy as np

SETS = {"calib": (8, 1000), "heldout": (4, 2000)}  # (count, first seed)


def unet_sample(rng):
    return {
        "sample": rng.standard_normal((1, 4, 32, 32), dtype=np.float32),
        "timestep": np.array([rng.integers(0, 1000)], dtype=np.float32),
        "encoder_hidden_states": rng.standard_normal((1, 77, 64), dtype=np.float32),
    }


def resnet_sample(rng):
    return {"input": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for model, make in (("unet_sd21_mini", unet_sample), ("resnet50", resnet_sample)):
        for split, (count, seed0) in SETS.items():
            for i in range(count):
                d = os.path.join(args.out, model, split, f"sample_{i:03d}")
                os.makedirs(d, exist_ok=True)
                for name, arr in make(np.random.default_rng(seed0 + i)).items():
                    np.save(os.path.join(d, name + ".npy"), arr)
    print(f"wrote calibration sets to {args.out}")


if __name__ == "__main__":
    main()
