#!/usr/bin/env python3
"""Writes hostile inputs for the fuzz targets to Tests/Fixtures/fuzz/regressions/<target>/.

Each is a small file whose header claims far more than the file holds (or nests too deep, or overflows a
shape product); FuzzRegressionTests asserts each is rejected with the message listed in expected.json.
Crash inputs found by tools/fuzz.sh are added to the same folders by hand, with their expected message.
Standard library only, so it runs without the tools/ virtualenv.
"""
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "fuzz", "regressions")
EXPECTED = os.path.join(ROOT, "expected.json")
# Inputs the fuzzer found (named found-*) are added by hand; keep their entries.
expected = {}
if os.path.exists(EXPECTED):
    with open(EXPECTED) as f:
        expected = {k: v for k, v in json.load(f).items() if os.path.basename(k).startswith("found-")}


def put(target, name, data, message):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    expected[f"{target}/{name}"] = message


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width, height, idat):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def npy(header_dict_text, payload=b""):
    header = header_dict_text.encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def safetensors(header, payload=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    return varint(num << 3 | wire) + payload


def ld(num, body):
    return field(num, 2, varint(len(body)) + body)


def onnx_model_with_initializer(dims, raw=b""):
    # TensorProto: dims=1 (varint), data_type=2 (1 = float), name=8, raw_data=9.
    tensor = b"".join(field(1, 0, varint(d)) for d in dims) + field(2, 0, varint(1)) + ld(8, b"w") + ld(9, raw)
    node = ld(1, b"w") + ld(2, b"y") + ld(4, b"Identity")
    value_info = ld(1, b"y")
    graph = ld(1, node) + ld(2, b"g") + ld(5, tensor) + ld(12, value_info)
    opset = ld(1, b"") + field(2, 0, varint(17))
    return field(1, 0, varint(8)) + ld(7, graph) + ld(8, opset)


# PNG: 60 KB of pixels claimed, 10 bytes of data; and 16384 x 16384 in a few dozen bytes.
put("png", "huge-dimensions", png(16384, 16384, zlib.compress(b"\x00" * 16)), "cannot fit in this file")
put("png", "zero-width", png(0, 16, zlib.compress(b"\x00")), "PNG")
# NPY: element count overflows Int; and a plain lie about the payload.
put("npy", "shape-overflow", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"), "whose size overflows")
put("npy", "shape-larger-than-file", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000), }", b"\0" * 16), "is truncated")
put("npy", "negative-dim", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4), }"), "not a tuple of non-negative integers")
# safetensors: a shape whose byte count overflows, and offsets outside the file.
put("safetensors", "shape-overflow",
    safetensors({"w": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 16]}}, b"\0" * 16), "whose size overflows")
put("safetensors", "offsets-outside",
    safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 2**40]}}, b"\0" * 16), "outside the 16-byte data buffer")
put("safetensors", "deep-json", struct.pack("<Q", 20000) + b"[" * 10000 + b"]" * 10000, "nesting")
# ONNX: an initializer that claims 2^40 x 2^40 floats with no data, and one whose dims overflow Int64.
put("onnx", "huge-initializer", onnx_model_with_initializer([2**40, 2**40]), "has too many elements")
put("onnx", "dims-overflow", onnx_model_with_initializer([2**62, 2**62, 4]), "has too many elements")
# JSON readers: nesting far deeper than any real file.
deep = b'{"protocol": "cuhk-sysu", "images": ' + b"[" * 100000 + b"]" * 100000 + b"}"
put("manifest", "deep-nesting", deep, "nesting")
put("detections", "deep-nesting", b'{"images": ' + b"[" * 100000 + b"]" * 100000 + b"}", "nesting")
put("pipeline", "deep-nesting", b'{"format": ' + b"[" * 100000 + b"]" * 100000 + b"}", "not valid JSON")
put("pipeline", "empty", b"", "not valid JSON")

with open(EXPECTED, "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"wrote {len(expected)} regression inputs to {os.path.normpath(ROOT)}")
