"""Write the small fixtures under Tests/Fixtures/format/ used by NPYTests and SafetensorsTests.

Run from the repository root:
    /work/main/tools/.venv/bin/python tools/make_format_fixtures.py

Needs numpy and safetensors (no torch). The values are deterministic; the Swift tests hard-code
the same values for the NPY files and compare safetensors tensors against the reference .npy files
written here.

    npy/<name>.npy                      one file per dtype/shape case (written by numpy)
    npy/bad_*.npy                       files NPY.read must reject (fortran order, big endian, u2)
    safetensors/numpy.safetensors       written by safetensors.numpy.save_file (7 numpy dtypes)
    safetensors/all_dtypes.safetensors  all 8 PSEdge dtypes incl. BF16, written by safetensors.serialize_file
                                        (numpy has no bfloat16, so safetensors.numpy cannot write it)
    safetensors/ref/<tensor>.npy        reference values (BF16 tensors as their exact float32 values)
    safetensors/bad_f64.safetensors     an F64 tensor, which PSEdge does not support
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import safetensors
import safetensors.numpy as stnp

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "format")


def npy_cases() -> dict[str, np.ndarray]:
    return {
        "f4": np.array([[0.0, -1.5, 3.25], [np.inf, -np.inf, -0.0]], dtype=np.float32),
        "f2": np.array([[1.0, -2.0], [0.5, 65504.0]], dtype=np.float16),
        "f8": np.array([0.1, -1e-3, 2.5], dtype=np.float64),
        "i8": np.array([[0, -1], [2**40, -(2**63)]], dtype=np.int64),
        "i4": np.array([7, -7, 2**31 - 1, -(2**31)], dtype=np.int32),
        "i1": np.array([-128, -1, 0, 1, 127], dtype=np.int8),
        "u1": np.array([[0, 1], [128, 255]], dtype=np.uint8),
        "b1": np.array([True, False, True], dtype=np.bool_),
        "scalar_f4": np.array(3.5, dtype=np.float32),
        "empty_f4": np.zeros((0,), dtype=np.float32),
        "empty_i4_0x3": np.zeros((0, 3), dtype=np.int32),
        "f4_2x3x4": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 4,
    }


def write_npy(d: str) -> None:
    os.makedirs(d)
    for name, a in npy_cases().items():
        np.save(os.path.join(d, name + ".npy"), a)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    for version in [(2, 0), (3, 0)]:
        with open(os.path.join(d, f"v{version[0]}_f4.npy"), "wb") as f:
            np.lib.format.write_array(f, a, version=version)
    np.save(os.path.join(d, "fortran_f4.npy"), np.asfortranarray(a))
    np.save(os.path.join(d, "bad_big_endian.npy"), a.astype(">f4"))
    np.save(os.path.join(d, "bad_u2.npy"), np.array([1, 2], dtype=np.uint16))


def st_cases() -> dict[str, np.ndarray]:
    return {
        "f32": np.array([[1.0, -2.5, 0.0], [np.inf, 1e-30, 3.0]], dtype=np.float32),
        "f16": np.array([0.5, -0.25, 1024.0, 0.0], dtype=np.float16),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "u8": np.array([[0, 255], [7, 8]], dtype=np.uint8),
        "i32": np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
        "i64": np.array([[-(2**63), 2**62]], dtype=np.int64),
        "bool": np.array([True, False, False, True], dtype=np.bool_),
        "scalar": np.array(42.0, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def spec(dtype: str, a: np.ndarray) -> safetensors.TensorSpec:
    return safetensors.TensorSpec(dtype=dtype, shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes)


def write_safetensors(d: str) -> None:
    os.makedirs(os.path.join(d, "ref"))
    cases = st_cases()
    meta = {"format": "np", "source": "make_format_fixtures.py"}
    stnp.save_file(cases, os.path.join(d, "numpy.safetensors"), metadata=meta)

    # All eight dtypes through the library's generic serializer; BF16 data = top 16 bits of f32
    # values chosen to be exactly representable in bfloat16.
    bf_values = np.array([[1.0, -2.0, 0.15625], [256.0, -0.0078125, 3.0]], dtype=np.float32)
    bf_bits = (bf_values.view(np.uint32) >> 16).astype(np.uint16)
    assert ((bf_bits.astype(np.uint32) << 16).view(np.float32) == bf_values).all()
    # (The scalar is left out: TensorSpec records shape () as [1]; numpy.safetensors covers scalars.)
    arrays = {k: np.ascontiguousarray(v) for k, v in cases.items() if k != "scalar"}
    arrays["bf16"] = bf_bits
    specs = {k: spec(v.dtype.name, v) for k, v in arrays.items() if k != "bf16"}
    specs["bf16"] = spec("bfloat16", bf_bits)
    safetensors.serialize_file(specs, os.path.join(d, "all_dtypes.safetensors"), metadata={"kind": "all dtypes"})

    for k, v in cases.items():
        np.save(os.path.join(d, "ref", k + ".npy"), v)
    np.save(os.path.join(d, "ref", "bf16.npy"), bf_values)

    stnp.save_file({"w": np.array([1.0, 2.0], dtype=np.float64)}, os.path.join(d, "bad_f64.safetensors"))


def main() -> None:
    root = os.path.normpath(ROOT)
    for sub in ("npy", "safetensors"):
        p = os.path.join(root, sub)
        if os.path.exists(p):
            shutil.rmtree(p)
    write_npy(os.path.join(root, "npy"))
    write_safetensors(os.path.join(root, "safetensors"))
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(root) for f in fs)
    print(f"wrote fixtures under {root} ({total} bytes)")


if __name__ == "__main__":
    main()
