#!/usr/bin/env python3
"""Writes the small ONNX files the importer tests read (Tests/Fixtures/onnx-import/).

Run from the repository root with the fixtures venv:

    tools/.venv/bin/python tools/make_onnx_import_fixtures.py

The output is committed (a few KB); rerun only when changing a case. Every file is
deterministic. Values asserted by Tests/PSEdgeTests/ONNXImporterTests.swift are noted
next to the tensors that carry them.
"""
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "onnx-import")


def save(model, name, check=True):
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def model_of(graph, opset=17, ir=8, extra_opsets=()):
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="psedge-fixtures", producer_version="1.0")
    m.ir_version = ir
    return m


def raw(name, array, dtype=None):
    t = numpy_helper.from_array(np.asarray(array), name)
    if dtype is not None:  # bfloat16: bit patterns in raw_data
        t.data_type = dtype
    return t


def simple_graph(initializers, name="g"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    add = helper.make_node("Add", ["x", initializers[0].name], ["y"], name="add")
    return helper.make_graph([add], name, [x], [y], initializer=initializers)


def _without_input(model, name):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [i for i in m.graph.input if i.name != name]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    return m


def raw_initializers():
    # Every tensor in raw_data (little-endian); types PSEdge lacks are converted on import.
    inits = [
        raw("w", np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5),   # [-2.5 … 2.5]
        raw("shape", np.array([3, -1], dtype=np.int64)),
        raw("h", np.array([0.5, -1.0, 2.0, 65504.0], dtype=np.float16)),
        raw("flags", np.array([True, False, True])),
        raw("u", np.array([0, 7, 255], dtype=np.uint8)),
        raw("s8", np.array([-128, 0, 127], dtype=np.int8)),
        raw("i32", np.array([-2147483648, 0, 2147483647], dtype=np.int32)),
        raw("bf", np.array([0x3F80, 0xC000], dtype=np.uint16), dtype=TensorProto.BFLOAT16),  # 1.0, -2.0
        raw("d", np.array([0.25, -1e10], dtype=np.float64)),          # DOUBLE → f32
        raw("i16", np.array([-32768, 32767], dtype=np.int16)),         # INT16 → i32
        raw("u16", np.array([65535, 1], dtype=np.uint16)),             # UINT16 → i32
        raw("u32", np.array([4294967295, 2], dtype=np.uint32)),        # UINT32 → i64
        raw("u64", np.array([9223372036854775807, 3], dtype=np.uint64)),  # UINT64 → i64
        raw("scalar", np.array(4.0, dtype=np.float32)),                # rank 0
        raw("empty", np.zeros((0, 4), dtype=np.float32)),             # zero elements
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    z = helper.make_tensor_value_info("z", TensorProto.INT64, [None, 2])        # dim without value
    q = helper.make_tensor_value_info("q", TensorProto.FLOAT, None)             # unknown rank
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    nodes = [
        helper.make_node("Constant", [], ["c"], name="const",
                         value=numpy_helper.from_array(np.array([1.0, 2.0, 3.0], dtype=np.float32))),
        helper.make_node("Add", ["x", "c"], ["t"], name="add"),
        helper.make_node("Mul", ["t", "c"], ["y"]),   # unnamed node
    ]
    g = helper.make_graph(nodes, "raw_graph", [x, z, q], [y], initializer=inits)
    g.value_info.extend([
        helper.make_tensor_value_info("c", TensorProto.FLOAT, [3]),              # static → valueTypes
        helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", 3]),     # symbolic → skipped
    ])
    m = model_of(g, opset=17, ir=8)
    onnx.checker.check_model(_without_input(m, "q"))
    save(m, "raw_initializers.onnx", check=False)   # the checker wants a shape on every graph input


def typed_initializers():
    # The typed repeated fields instead of raw_data.
    inits = [
        helper.make_tensor("f", TensorProto.FLOAT, [2, 2], [1.0, -2.0, 3.5, 0.0]),          # float_data
        helper.make_tensor("l", TensorProto.INT64, [3], [-1, 0, 1 << 40]),                   # int64_data
        helper.make_tensor("h", TensorProto.FLOAT16, [3], [0.5, -1.0, 2.0]),                 # int32_data bits
        helper.make_tensor("bf", TensorProto.BFLOAT16, [2], [1.0, -2.0]),                    # int32_data bits
        helper.make_tensor("i", TensorProto.INT32, [2], [-7, 123456]),                       # int32_data
        helper.make_tensor("s8", TensorProto.INT8, [2], [-5, 100]),                          # int32_data
        helper.make_tensor("u8", TensorProto.UINT8, [2], [200, 3]),                          # int32_data
        helper.make_tensor("b", TensorProto.BOOL, [3], [True, False, True]),                 # int32_data
        helper.make_tensor("i16", TensorProto.INT16, [2], [-300, 300]),                      # int32_data
        helper.make_tensor("d", TensorProto.DOUBLE, [2], [0.5, 3.0]),                        # double_data
        helper.make_tensor("u32", TensorProto.UINT32, [2], [4000000000, 1]),                 # uint64_data
    ]
    for t in inits:
        assert not t.HasField("raw_data"), t.name
    save(model_of(simple_graph([inits[0]] + inits[1:], "typed_graph"), opset=13, ir=7), "typed_initializers.onnx")


EXT_BIN = "external_data.bin"


def external_data():
    # One external file holding four tensors:
    #   a f32 [2,2] at offset 16 (borrowed), b i64 [3] at 32 (borrowed),
    #   c f16 [3] at 57 (odd offset → copied), d f64 [2] at 64 (DOUBLE → f32, copied).
    a = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([10, -20, 30], dtype=np.int64)
    c = np.array([1.5, -0.25, 8.0], dtype=np.float16)
    d = np.array([2.5, -4.0], dtype=np.float64)
    blob = bytearray(b"PSEDGE-TEST-EXT\0")             # 16 bytes of header the tensors skip
    blob += a.tobytes()                                  # 16..32
    blob += b.tobytes()                                  # 32..56
    blob += b"\0"                                        # 56
    blob += c.tobytes()                                  # 57..63
    blob += b"\0"                                        # 63
    blob += d.tobytes()                                  # 64..80
    assert len(blob) == 80
    with open(os.path.join(OUT, EXT_BIN), "wb") as f:
        f.write(bytes(blob))

    def ext(name, array, offset, location=EXT_BIN, length=None):
        t = numpy_helper.from_array(array, name)
        set_external_data(t, location, offset, array.nbytes if length is None else length)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        return t

    def model(inits, name):
        # Built without the checker: it would try to open the external files (and reject the bad ones).
        m = model_of(simple_graph(inits, name.replace(".onnx", "")))
        save(m, name, check=False)

    model([ext("a", a, 16), ext("b", b, 32), ext("c", c, 57), ext("d", d, 64)], "external_data.onnx")
    # Bad references, one per file.
    model([ext("a", a, 72)], "ext_outside.onnx")                       # [72, 88) past the 80-byte file
    model([ext("a", a, 16, location="../" + EXT_BIN)], "ext_parent.onnx")
    model([ext("a", a, 16, location="/etc/hostname")], "ext_absolute.onnx")
    model([ext("a", a, 16, location="missing.bin")], "ext_missing.onnx")
    model([ext("a", a, 16, length=20)], "ext_length.onnx")              # 20 != 2*2*4


def ir3_inputs():
    # IR version 3: initializers must also be listed as graph inputs.
    w = raw("w", np.full((3,), 0.5, dtype=np.float32))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    wi = helper.make_tensor_value_info("w", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "ir3", [x, wi], [y], initializer=[w])
    save(model_of(g, opset=7, ir=3), "ir3_inputs.onnx")


def attributes():
    # A custom-domain node carrying every supported attribute kind, plus an ai.onnx-domain node.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    every = helper.make_node(
        "AllAttrs", ["x", ""], ["a"], name="every", domain="test.psedge",
        i=-7, f=0.25, s="héllo", ints=[1, -2, 3], floats=[0.5, -1.5], strings=["a", "bc"],
        t=numpy_helper.from_array(np.array([4, 5], dtype=np.int64)),
    )
    every.attribute.append(helper.make_attribute("empty", [], attr_type=onnx.AttributeProto.INTS))
    relu = helper.make_node("Relu", ["a"], ["y"], name="relu", domain="ai.onnx")
    g = helper.make_graph([every, relu], "attrs", [x], [y])
    m = model_of(g, opset=13, ir=8, extra_opsets=[("test.psedge", 1), ("ai.onnx.ml", 3)])
    helper.set_model_props(m, {"author": "psedge", "purpose": "attribute test"})
    save(m, "attributes.onnx", check=False)   # the checker does not know test.psedge


def error_models():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])

    # Subgraph attribute (If).
    one = helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "then", [], [one])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["o"])], "else", [], [one])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    g = helper.make_graph([helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)],
                          "if", [cond, x], [y])
    save(model_of(g, opset=17), "graph_attr.onnx")

    # Sparse tensor attribute.
    sp = helper.make_sparse_tensor(helper.make_tensor("v", TensorProto.FLOAT, [1], [2.0]),
                                   helper.make_tensor("i", TensorProto.INT64, [1], [0]), [3])
    g = helper.make_graph([helper.make_node("Constant", [], ["y"], name="sparse_const", sparse_value=sp)], "sparse", [], [y])
    save(model_of(g, opset=17), "sparse_attr.onnx")

    # STRING initializer.
    s = helper.make_tensor("words", TensorProto.STRING, [2], [b"a", b"b"])
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "strings", [x], [y], initializer=[s])
    save(model_of(g, opset=17), "string_init.onnx")

    # Duplicate initializer (the checker rejects it, so it is written unchecked).
    w1 = raw("w", np.array([1.0], dtype=np.float32))
    w2 = raw("w", np.array([2.0], dtype=np.float32))
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "dup", [x], [y], initializer=[w1, w2])
    save(model_of(g, opset=17), "dup_init.onnx", check=False)

    # raw_data shorter than the shape needs.
    bad = raw("short", np.array([1.0, 2.0], dtype=np.float32))
    bad.dims[:] = [3]
    g = helper.make_graph([helper.make_node("Add", ["x", "short"], ["y"])], "short", [x], [y], initializer=[bad])
    save(model_of(g, opset=17), "raw_size_mismatch.onnx", check=False)

    # Opsets outside 7...22.
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "old", [x], [y])
    save(model_of(g, opset=6, ir=3), "opset6.onnx", check=False)
    save(model_of(g, opset=29, ir=11), "opset29.onnx", check=False)

    # Truncated model: the first half of a valid one.
    with open(os.path.join(OUT, "raw_initializers.onnx"), "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])

    # Not protobuf at all.
    with open(os.path.join(OUT, "not_protobuf.onnx"), "wb") as f:
        f.write(b"This is a text file, not an ONNX model.\n")


def tensor_files():
    # Serialized TensorProtos, as in ONNX test data sets (input_0.pb).
    t = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5, "input_0")
    with open(os.path.join(OUT, "input_0.pb"), "wb") as f:
        f.write(t.SerializeToString())
    t = helper.make_tensor("half", TensorProto.FLOAT16, [2], [1.0, -0.5])   # int32_data bit patterns
    with open(os.path.join(OUT, "half_typed.pb"), "wb") as f:
        f.write(t.SerializeToString())


def main():
    os.makedirs(OUT, exist_ok=True)
    raw_initializers()
    typed_initializers()
    external_data()
    ir3_inputs()
    attributes()
    error_models()
    tensor_files()
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.relpath(OUT)}")
    assert total < 100_000, total


if __name__ == "__main__":
    sys.exit(main())
