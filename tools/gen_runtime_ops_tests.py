"""Generates Tests/PSEdgeTests/RuntimeOpsCases.swift: one XCTest per single-node case below, with inputs
and expected outputs computed by onnxruntime (or the onnx reference evaluator where ORT lacks the op
or differs from the spec), pasted as literals.

Run:  tools/.venv/bin/python tools/gen_runtime_ops_tests.py > Tests/PSEdgeTests/RuntimeOpsCases.swift
(any python with onnx + onnxruntime + numpy works; e.g. /work/main/tools/.venv/bin/python).
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

NP2ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.bool_): TensorProto.BOOL,
}

OUT = []


def fmt_float(v: float) -> str:
    v = float(v)
    if np.isnan(v):
        return ".nan"
    if np.isinf(v):
        return ".infinity" if v > 0 else "-.infinity"
    s = "%.9g" % v
    if "e" not in s and "." not in s:
        s += ".0"
    return s


def swift_tensor(a: np.ndarray) -> str:
    a = np.asarray(a)
    shape = "[" + ", ".join(str(d) for d in a.shape) + "]"
    flat = a.reshape(-1)
    if a.dtype == np.float32:
        vals = ", ".join(fmt_float(v) for v in flat)
        return f"T.f([{vals}], {shape})"
    if a.dtype == np.int64:
        return f"T.i64([{', '.join(str(int(v)) for v in flat)}], {shape})"
    if a.dtype == np.int32:
        return f"T.i32([{', '.join(str(int(v)) for v in flat)}], {shape})"
    if a.dtype == np.uint8:
        return f"T.u8([{', '.join(str(int(v)) for v in flat)}], {shape})"
    if a.dtype == np.int8:
        return f"T.i8([{', '.join(str(int(v)) for v in flat)}], {shape})"
    if a.dtype == np.bool_:
        return f"T.b([{', '.join('true' if v else 'false' for v in flat)}], {shape})"
    raise ValueError(a.dtype)


def swift_attr(v) -> str:
    if isinstance(v, bool):
        return f".int({int(v)})"
    if isinstance(v, int):
        return f".int({v})"
    if isinstance(v, float):
        return f".float({fmt_float(v)})"
    if isinstance(v, str):
        return f'.string("{v}")'
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, int) for x in v):
            return f".ints([{', '.join(str(x) for x in v)}])"
        return f".floats([{', '.join(fmt_float(x) for x in v)}])"
    raise ValueError(v)


def case(name, op, opset, inputs, attrs=None, outputs=("y",), ref="ort", rtol=1e-4, atol=1e-5, expected=None):
    """inputs: list of (name, array, kind) with kind 'in' (graph input) or 'const' (initializer), or None."""
    attrs = attrs or {}
    g_inputs, inits, node_inputs, feeds = [], [], [], {}
    for item in inputs:
        if item is None:
            node_inputs.append("")
            continue
        n, a, kind = item
        a = np.asarray(a)
        node_inputs.append(n)
        if kind == "const":
            inits.append(numpy_helper.from_array(a, n))
        else:
            g_inputs.append(helper.make_tensor_value_info(n, NP2ONNX[a.dtype], list(a.shape)))
            feeds[n] = a
    node = helper.make_node(op, node_inputs, list(outputs), **attrs)
    g_outputs = [onnx.ValueInfoProto(name=o) for o in outputs if o]
    graph = helper.make_graph([node], name, g_inputs, g_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    results = {}
    ref_out = {}
    if ref != "none":
        try:
            ref_out = ReferenceEvaluator(model).run(None, feeds)
            ref_out = dict(zip([o for o in outputs if o], ref_out))
        except Exception as e:  # the reference lacks some cases ORT handles (e.g. negative pads)
            if ref == "ref":
                raise
            print(f"// note: {name}: reference evaluator failed ({type(e).__name__}); using onnxruntime", file=sys.stderr)
    if expected is not None:
        results = expected
    elif ref == "ort":
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        ort_out = dict(zip([o for o in outputs if o], sess.run(None, feeds)))
        for k in ort_out:
            if k not in ref_out:
                continue
            r, o = np.asarray(ref_out[k]), np.asarray(ort_out[k])
            if r.shape != o.shape or (r.dtype.kind == "f" and not np.allclose(r.astype(np.float64), o, rtol=1e-3, atol=1e-4, equal_nan=True)):
                print(f"// note: {name}: reference evaluator and onnxruntime differ on {k}", file=sys.stderr)
        results = ort_out
    else:
        results = ref_out
    lines = [f"    func test_{name}() throws {{"]
    attr_s = ", ".join(f'"{k}": {swift_attr(v)}' for k, v in attrs.items())
    attr_s = f"[{attr_s}]" if attrs else "[:]"
    ins = []
    for item in inputs:
        if item is None:
            ins.append(".omitted")
        else:
            n, a, kind = item
            ins.append(f'.{"constant" if kind == "const" else "input"}("{n}", {swift_tensor(np.asarray(a))})')
    exp = [f'("{k}", {swift_tensor(np.asarray(v).astype(np.asarray(v).dtype))})' for k, v in results.items()]
    lines.append(f'        try check("{op}", opset: {opset}, attrs: {attr_s},')
    lines.append(f"                  inputs: [{', '.join(ins)}],")
    lines.append(f"                  expected: [{', '.join(exp)}], rtol: {rtol}, atol: {atol})")
    lines.append("    }")
    OUT.append("\n".join(lines))


rng = np.random.default_rng(1234)


def rnd(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def X(a, name="x"):
    return (name, a, "in")


def C(a, name):
    return (name, a, "const")


# ---------------- Normalization ----------------
x = rnd(2, 3, 4)
case("softmax_opset11_default_axis_flattens", "Softmax", 11, [X(x)])
case("softmax_opset11_axis2", "Softmax", 11, [X(x)], {"axis": 2})
case("softmax_opset13_default_axis", "Softmax", 13, [X(x)])
case("softmax_opset13_axis1_strided", "Softmax", 13, [X(x)], {"axis": 1})
case("softmax_opset13_axis0_strided", "Softmax", 13, [X(rnd(3, 2, 300))], {"axis": 0})
case("softmax_large_numbers", "Softmax", 13, [X(np.array([[0, 1, 2, 3], [10000, 10001, 10002, 10003]], np.float32))])
case("logsoftmax_opset11_axis1", "LogSoftmax", 11, [X(x)], {"axis": 1})
case("logsoftmax_opset13_axis1", "LogSoftmax", 13, [X(x)], {"axis": 1})
case("logsoftmax_opset13_default", "LogSoftmax", 13, [X(x)])

x = rnd(2, 3, 4)
case("layernorm_last_axis_bias_stats", "LayerNormalization", 17,
     [X(x), C(rnd(4), "s"), C(rnd(4), "b")], {"epsilon": 1e-3}, outputs=("y", "mean", "inv"))
case("layernorm_axis1_no_bias_stats", "LayerNormalization", 17,
     [X(x), C(rnd(3, 4), "s")], {"axis": 1}, outputs=("y", "mean", "inv"))
case("layernorm_broadcast_scale", "LayerNormalization", 17,
     [X(x), C(rnd(1, 4), "s"), C(rnd(4), "b")], {"axis": -2}, ref="ref")
case("layernorm_runtime_scale_neg_axis", "LayerNormalization", 17,
     [X(x), X(rnd(3, 4), "s"), X(rnd(3, 4), "b")], {"axis": -2})
case("instancenorm", "InstanceNormalization", 17,
     [X(rnd(2, 3, 2, 5)), C(rnd(3), "s"), C(rnd(3), "b")], {"epsilon": 1e-2})
case("instancenorm_3d", "InstanceNormalization", 17, [X(rnd(1, 2, 5)), C(rnd(2), "s"), C(rnd(2), "b")])
x = rnd(2, 4, 3, 2)
case("groupnorm_opset18_per_group", "GroupNormalization", 18,
     [X(x), C(rnd(2), "s"), C(rnd(2), "b")], {"num_groups": 2}, ref="ref")
case("groupnorm_opset21_per_channel", "GroupNormalization", 21,
     [X(x), C(rnd(4), "s"), C(rnd(4), "b")], {"num_groups": 2, "epsilon": 1e-3}, ref="ref")
case("batchnorm", "BatchNormalization", 15,
     [X(rnd(2, 3, 2, 2)), C(rnd(3), "s"), C(rnd(3), "b"), C(rnd(3), "m"),
      C(np.abs(rnd(3)) + 0.5, "v")], {"epsilon": 1e-3})
case("batchnorm_opset9_rank2", "BatchNormalization", 9,
     [X(rnd(4, 3)), C(rnd(3), "s"), C(rnd(3), "b"), C(rnd(3), "m"), C(np.abs(rnd(3)) + 0.5, "v")])
case("lrn_size3", "LRN", 13, [X(rnd(2, 5, 2, 3))], {"alpha": 0.0002, "beta": 0.5, "bias": 2.0, "size": 3})


def lrn_np(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    # The formula of the ONNX LRN spec (onnxruntime only supports odd sizes).
    sq = np.zeros_like(x, dtype=np.float64)
    c = x.shape[1]
    for ch in range(c):
        lo = max(0, ch - (size - 1) // 2)
        hi = min(c, ch + int(np.ceil((size - 1) / 2)) + 1)
        sq[:, ch] = np.sum(x[:, lo:hi].astype(np.float64) ** 2, axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


x = rnd(1, 6, 3, 2)
case("lrn_size4_default_beta", "LRN", 13, [X(x)], {"size": 4, "alpha": 0.1}, ref="none",
     expected={"y": lrn_np(x, 4, alpha=0.1)})

# ---------------- Pooling ----------------
x = rnd(1, 2, 5, 6)
case("maxpool_2d_default", "MaxPool", 12, [X(x)], {"kernel_shape": [2, 2]})
case("maxpool_2d_pads_strides", "MaxPool", 12, [X(x)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
case("maxpool_2d_ceil", "MaxPool", 12, [X(x)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
case("maxpool_2d_dilations", "MaxPool", 12, [X(x)], {"kernel_shape": [2, 2], "dilations": [2, 2]})
case("maxpool_2d_same_upper", "MaxPool", 12, [X(x)], {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"})
case("maxpool_2d_same_lower", "MaxPool", 12, [X(x)], {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"})
case("maxpool_2d_valid", "MaxPool", 12, [X(x)], {"kernel_shape": [3, 3], "auto_pad": "VALID"})
case("maxpool_1d", "MaxPool", 12, [X(rnd(2, 3, 9))], {"kernel_shape": [3], "strides": [2], "pads": [1, 0]})
case("maxpool_3d", "MaxPool", 12, [X(rnd(1, 2, 4, 4, 5))], {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [0, 1, 1, 1, 1, 0]})
case("maxpool_2d_uint8", "MaxPool", 12, [X(rng.integers(0, 255, (1, 1, 5, 5)).astype(np.uint8))], {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]})
case("maxpool_indices", "MaxPool", 12, [X(rnd(2, 2, 4, 5))], {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 0, 0]}, outputs=("y", "i"))
case("maxpool_indices_col_major", "MaxPool", 12, [X(rnd(1, 2, 4, 5))], {"kernel_shape": [2, 2], "strides": [2, 2], "storage_order": 1}, outputs=("y", "i"))
case("averagepool_2d_pads", "AveragePool", 11, [X(x)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
case("averagepool_2d_pads_include", "AveragePool", 11, [X(x)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
case("averagepool_2d_ceil", "AveragePool", 11, [X(x)], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1})
case("averagepool_2d_ceil_include_pad", "AveragePool", 19, [X(x)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1})
case("averagepool_2d_same_lower", "AveragePool", 11, [X(x)], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"})
case("averagepool_2d_dilations_opset19", "AveragePool", 19, [X(x)], {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 0, 1, 1]})
case("averagepool_1d", "AveragePool", 11, [X(rnd(1, 3, 7))], {"kernel_shape": [3], "strides": [2]})
case("averagepool_3d", "AveragePool", 11, [X(rnd(1, 1, 4, 4, 4))], {"kernel_shape": [2, 2, 3], "pads": [1, 0, 1, 0, 1, 1]})
case("globalaveragepool", "GlobalAveragePool", 13, [X(rnd(2, 3, 4, 5))])
case("globalmaxpool_3d", "GlobalMaxPool", 13, [X(rnd(2, 3, 2, 2, 3))])

# ---------------- Reductions ----------------
x = rnd(2, 3, 4)
ax = lambda *a: C(np.array(a, np.int64), "axes")
case("reduce_mean_opset13_axes_attr", "ReduceMean", 13, [X(x)], {"axes": [1]})
case("reduce_mean_opset18_axes_input_nokeep", "ReduceMean", 18, [X(x), ax(0, 2)], {"keepdims": 0})
case("reduce_mean_all", "ReduceMean", 18, [X(x)])
case("reduce_sum_opset11_attr", "ReduceSum", 11, [X(x)], {"axes": [-1]})
case("reduce_sum_opset13_input_middle", "ReduceSum", 13, [X(x), ax(1)])
case("reduce_sum_noop_empty_axes", "ReduceSum", 13, [X(x), C(np.array([], np.int64), "axes")], {"noop_with_empty_axes": 1})
case("reduce_sum_int64", "ReduceSum", 13, [X(rng.integers(-50, 50, (3, 4)).astype(np.int64)), ax(0)], {"keepdims": 0})
case("reduce_sum_empty_set", "ReduceSum", 13, [X(np.zeros((2, 0, 4), np.float32)), ax(1)])
case("reduce_max_opset18", "ReduceMax", 18, [X(x), ax(0, 2)])
case("reduce_max_opset13_attr", "ReduceMax", 13, [X(rnd(2, 3, 2, 3))], {"axes": [1, 3], "keepdims": 0})
case("reduce_max_int32", "ReduceMax", 18, [X(rng.integers(-50, 50, (3, 4)).astype(np.int32)), ax(1)])
case("reduce_max_bool", "ReduceMax", 20, [X(np.array([[True, False], [False, False], [True, True]])), ax(1)], ref="ref")
case("reduce_min_bool", "ReduceMin", 20, [X(np.array([[True, False], [False, False], [True, True]])), ax(1)], ref="ref")
case("reduce_max_empty_set", "ReduceMax", 18, [X(np.zeros((2, 0, 4), np.float32)), ax(1)], ref="ref")
case("reduce_min_opset18", "ReduceMin", 18, [X(rnd(2, 3, 2, 3)), ax(0, 3)], {"keepdims": 0})
case("reduce_min_int64", "ReduceMin", 18, [X(rng.integers(-50, 50, (3, 4)).astype(np.int64))], {"keepdims": 0})
case("reduce_prod", "ReduceProd", 18, [X(x), ax(-1)])
case("reduce_prod_opset13", "ReduceProd", 13, [X(x)], {"axes": [0, 1]})
case("reduce_l1", "ReduceL1", 18, [X(x), ax(1)])
case("reduce_l2", "ReduceL2", 18, [X(x), ax(2)], {"keepdims": 0})
case("reduce_l2_opset13_all", "ReduceL2", 13, [X(x)])
case("reduce_sum_square", "ReduceSumSquare", 18, [X(x), ax(0, 1)])
case("reduce_log_sum", "ReduceLogSum", 18, [X(np.abs(x) + 0.1), ax(1)])
case("reduce_mean_scattered_axes", "ReduceMean", 18, [X(rnd(2, 3, 4, 5)), ax(0, 2)])
case("reduce_sum_4d_two_axes_last", "ReduceSum", 13, [X(rnd(2, 3, 4, 5)), ax(1, 3)], {"keepdims": 0})
case("reduce_sum_wide_columns", "ReduceSum", 13, [X(rnd(3, 1500)), ax(0)])
xa = np.array([[2, 1, 3, 3], [0, 5, 5, 1], [4, 4, 0, 2]], np.float32)
case("argmax_default", "ArgMax", 13, [X(xa)])
case("argmax_axis1_nokeep_last", "ArgMax", 13, [X(xa)], {"axis": 1, "keepdims": 0, "select_last_index": 1})
case("argmin_axis_neg1", "ArgMin", 13, [X(xa)], {"axis": -1})
case("argmin_axis0_last", "ArgMin", 13, [X(np.array([[1, 1], [1, 0], [1, 0]], np.float32))], {"axis": 0, "select_last_index": 1})
case("argmax_3d_middle", "ArgMax", 13, [X(rnd(2, 3, 4))], {"axis": 1})
case("argmin_int64", "ArgMin", 13, [X(rng.integers(-9, 9, (3, 5)).astype(np.int64))], {"axis": 1, "keepdims": 0})

# ---------------- Misc ----------------
x = rnd(1, 2, 3, 4)
pads = lambda *a: C(np.array(a, np.int64), "pads")
case("pad_opset2_attr_value", "Pad", 2, [X(x)], {"pads": [0, 0, 1, 2, 0, 0, 2, 1], "value": 1.5})
case("pad_opset11_constant_value_input", "Pad", 11, [X(x), pads(0, 1, 1, 0, 0, 0, 1, 2), X(np.array(-2.0, np.float32), "v")])
case("pad_opset11_const_value_const", "Pad", 11, [X(x), pads(0, 0, 2, 1, 0, 0, 0, 3), C(np.array(0.5, np.float32), "v")])
case("pad_reflect", "Pad", 11, [X(x), pads(0, 0, 2, 3, 0, 0, 1, 3)], {"mode": "reflect"})
case("pad_edge", "Pad", 11, [X(x), pads(0, 1, 2, 3, 0, 1, 1, 5)], {"mode": "edge"})
case("pad_wrap", "Pad", 19, [X(x), pads(0, 0, 2, 3, 0, 0, 1, 5)], {"mode": "wrap"})
case("pad_negative_crop", "Pad", 11, [X(x), pads(0, 0, -1, 2, 0, 0, 1, -2)])
case("pad_axes_opset18", "Pad", 18, [X(x), C(np.array([1, 2, 0, 1], np.int64), "pads"), None, C(np.array([-1, 2], np.int64), "axes")])
case("pad_int32_reflect", "Pad", 18, [X(rng.integers(0, 99, (3, 4)).astype(np.int32)), pads(1, 2, 2, 1)], {"mode": "reflect"})
case("pad_int64_constant", "Pad", 18, [X(rng.integers(0, 99, (3, 4)).astype(np.int64)), pads(1, 2, 2, 1), C(np.array(7, np.int64), "v")])
case("pad_edge_wide_rows", "Pad", 18, [X(rnd(2, 40)), pads(1, 3, 2, 5)], {"mode": "edge"})
case("pad_constant_wide_rows", "Pad", 18, [X(rnd(2, 30)), pads(1, 3, 0, 2), C(np.array(9, np.float32), "v")])
case("tile", "Tile", 13, [X(rnd(2, 3, 4)), C(np.array([2, 1, 3], np.int64), "r")])
case("tile_precomputed", "Tile", 13, [X(np.array([[0, 1], [2, 3]], np.float32)), C(np.array([2, 2], np.int64), "r")])
case("tile_int64_wide", "Tile", 13, [X(rng.integers(0, 9, (2, 20)).astype(np.int64)), C(np.array([3, 2], np.int64), "r")])
case("dropout_opset13_mask", "Dropout", 13, [X(rnd(3, 4))], outputs=("y", "mask"))
case("dropout_opset12_ratio", "Dropout", 12, [X(rnd(3, 4)), X(np.array(0.3, np.float32), "r")])
case("dropout_opset7", "Dropout", 7, [X(rnd(3, 4))], {"ratio": 0.2})

# ---------------- Resize ----------------
# Expected values from the reference evaluator (the ONNX backend suite's source of truth; onnxruntime
# differs for align_corners with non-integral output widths).
x = rnd(1, 2, 3, 4)
sc = lambda *a: C(np.array(a, np.float32), "scales")
sz = lambda *a: C(np.array(a, np.int64), "sizes")
R = "Resize"
case("resize_nearest_scales_up", R, 19, [X(x), None, sc(1, 1, 2, 1.5)], ref="ref")
case("resize_nearest_sizes_down_asym_floor", R, 19, [X(x), None, None, sz(1, 2, 2, 3)],
     {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, ref="ref")
case("resize_nearest_ceil_half_pixel", R, 19, [X(x), None, None, sz(1, 2, 5, 7)], {"nearest_mode": "ceil"}, ref="ref")
case("resize_nearest_prefer_ceil_align", R, 19, [X(x), None, None, sz(1, 2, 5, 7)],
     {"nearest_mode": "round_prefer_ceil", "coordinate_transformation_mode": "align_corners"}, ref="ref")
case("resize_nearest_axes_not_larger", R, 19, [X(x), None, None, sz(7, 5)],
     {"axes": [3, 2], "keep_aspect_ratio_policy": "not_larger"}, ref="ref")
case("resize_nearest_not_smaller", R, 19, [X(x), None, None, sz(7, 5)],
     {"axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"}, ref="ref")
case("resize_nearest_int64", R, 19, [X(rng.integers(0, 9, (1, 1, 2, 3)).astype(np.int64)), None, sc(1, 1, 2, 2)], ref="ref")
case("resize_nearest_opset11_empty_scales", R, 11, [X(x), C(np.array([], np.float32), "roi"), C(np.array([], np.float32), "scales"), sz(1, 2, 6, 2)], ref="ref")
case("resize_nearest_opset10", R, 10, [X(x), sc(1, 1, 2, 2.5)], ref="ort")
case("resize_nearest_opset10_down", R, 10, [X(rnd(1, 1, 5, 7)), sc(1, 1, 0.6, 0.5)], ref="ort")
case("resize_linear_scales_up", R, 19, [X(x), None, sc(1, 1, 2, 2)], {"mode": "linear"}, ref="ref")
case("resize_linear_down_align_corners", R, 19, [X(x), None, sc(1, 1, 0.6, 0.6)],
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, ref="ref")
case("resize_linear_pytorch_half_pixel", R, 19, [X(x), None, None, sz(1, 2, 1, 3)],
     {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, ref="ref")
case("resize_linear_half_pixel_symmetric", R, 19, [X(x), None, sc(1, 1, 1.7, 0.6)],
     {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}, ref="ref")
case("resize_linear_asymmetric_3d", R, 19, [X(rnd(2, 3, 4)), None, sc(1, 2.5, 1.5)],
     {"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, ref="ref")
case("resize_linear_5d", R, 19, [X(rnd(1, 2, 3, 2, 4)), None, sc(1, 1, 2, 1.5, 0.75)], {"mode": "linear"}, ref="ref")
case("resize_linear_antialias_down", R, 19, [X(rnd(1, 1, 6, 8)), None, sc(1, 1, 0.5, 0.4)], {"mode": "linear", "antialias": 1}, ref="ref")
case("resize_linear_opset10", R, 10, [X(x), sc(1, 1, 2, 1.5)], {"mode": "linear"}, ref="ort")
case("resize_tf_crop_and_resize", R, 19, [X(rnd(1, 1, 4, 4)), C(np.array([0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7], np.float32), "roi"), None, sz(1, 1, 3, 3)],
     {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 10.0}, ref="ref")
case("resize_tf_crop_and_resize_axes_nearest", R, 19, [X(rnd(1, 1, 4, 4)), C(np.array([0.6, 0.4, 1.7, 1.2], np.float32), "roi"), None, sz(3, 3)],
     {"axes": [3, 2], "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -1.0}, ref="ref")
case("resize_cubic_scales_up", R, 19, [X(rnd(1, 1, 4, 4)), None, sc(1, 1, 2, 2)], {"mode": "cubic"}, ref="ref")
case("resize_cubic_down_exclude_outside", R, 19, [X(rnd(1, 1, 4, 4)), None, sc(1, 1, 0.8, 0.8)],
     {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, ref="ref")
case("resize_cubic_antialias_down", R, 19, [X(rnd(1, 1, 6, 6)), None, None, sz(1, 1, 3, 4)], {"mode": "cubic", "antialias": 1}, ref="ref")
case("resize_cubic_align_corners", R, 19, [X(rnd(1, 1, 3, 4)), None, sc(1, 1, 2, 1.5)], {"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, ref="ref")
case("upsample_nearest_opset9", "Upsample", 9, [X(rnd(1, 1, 2, 3)), C(np.array([1, 1, 2, 3], np.float32), "scales")], ref="ort")
case("upsample_linear_opset9", "Upsample", 9, [X(rnd(1, 1, 2, 3)), C(np.array([1, 1, 2, 2], np.float32), "scales")], {"mode": "linear"}, ref="ort")
case("upsample_nearest_opset7_attr", "Upsample", 7, [X(rnd(1, 2, 2, 3))], {"scales": [1.0, 1.0, 2.0, 2.0]}, ref="ort")

# ---------------- RoiAlign ----------------
xr = rnd(2, 3, 6, 7)
rois = np.array([[0, 0, 5, 4], [1.5, 0.2, 4.4, 5.9], [2, 2, 2.5, 2.5], [-1, 3, 8, 9]], np.float32)
bi = ("batch_indices", np.array([0, 1, 1, 0], np.int64), "in")
case("roialign_opset16_half_pixel", "RoiAlign", 16, [X(xr), ("rois", rois, "in"), bi],
     {"output_height": 3, "output_width": 2, "sampling_ratio": 2, "spatial_scale": 1.0})
case("roialign_opset10_adaptive", "RoiAlign", 10, [X(xr), ("rois", rois, "in"), bi],
     {"output_height": 2, "output_width": 3, "spatial_scale": 0.5})
case("roialign_max", "RoiAlign", 16, [X(xr), ("rois", rois, "in"), bi],
     {"mode": "max", "output_height": 2, "output_width": 2, "sampling_ratio": 2, "coordinate_transformation_mode": "output_half_pixel"})

# ---------------- Einsum ----------------
E = "Einsum"
case("einsum_transpose", E, 12, [X(rnd(3, 4))], {"equation": "ij->ji"})
case("einsum_sum_rows", E, 12, [X(rnd(3, 4))], {"equation": "ij->i"})
case("einsum_batch_diagonal", E, 12, [X(rnd(3, 5, 5))], {"equation": "...ii ->...i"})
case("einsum_inner_product", E, 12, [X(rnd(5)), X(rnd(5), "b")], {"equation": "i,i"})
case("einsum_batch_matmul", E, 12, [X(rnd(5, 2, 3)), X(rnd(5, 3, 4), "b")], {"equation": "bij, bjk -> bik"})
case("einsum_attention_scores", E, 12, [X(rnd(2, 3, 4, 5)), X(rnd(2, 3, 6, 5), "b")], {"equation": "bhqd,bhkd->bhqk"})
case("einsum_implicit_matmul", E, 12, [X(rnd(3, 4)), X(rnd(4, 2), "b")], {"equation": "ij,jk"})
case("einsum_outer_permuted", E, 12, [X(rnd(3)), X(rnd(4), "b")], {"equation": "i,j->ji"})
case("einsum_three_operands", E, 12, [X(rnd(2, 3)), X(rnd(3, 4), "b"), X(rnd(4, 2), "c")], {"equation": "ij,jk,kl->il"})
case("einsum_broadcast_ellipsis", E, 12, [X(rnd(2, 1, 3, 4)), X(rnd(1, 5, 4, 2), "b")], {"equation": "...ij,...jk->...ik"}, ref="ref")
case("einsum_scalar", E, 12, [X(np.array(2.5, np.float32))], {"equation": "->"})
case("einsum_sum_one_operand_label", E, 12, [X(rnd(2, 3)), X(rnd(3, 4), "b")], {"equation": "ij,jk->k"})

# ---------------- Extra ops ----------------
x = rnd(2, 3, 4)
case("hardmax_opset13_axis1", "Hardmax", 13, [X(np.array([[[1, 3, 3], [2, 0, 3]], [[0, 0, 0], [5, 1, 2]]], np.float32))], {"axis": 1})
case("hardmax_opset11_flatten", "Hardmax", 11, [X(x)], {"axis": 1})
case("lpnorm_p2_axis1", "LpNormalization", 1, [X(x)], {"axis": 1, "p": 2})
case("lpnorm_p1_last", "LpNormalization", 1, [X(x)], {"p": 1})
case("mvn_default_axes", "MeanVarianceNormalization", 13, [X(rnd(2, 3, 2, 4))])
case("mvn_last_axis", "MeanVarianceNormalization", 13, [X(rnd(2, 3, 5))], {"axes": [2]})
case("lppool_2d_p2", "LpPool", 18, [X(rnd(1, 2, 5, 6))], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
case("lppool_1d_p3", "LpPool", 18, [X(rnd(1, 2, 7))], {"kernel_shape": [2], "p": 3})
case("globallppool", "GlobalLpPool", 2, [X(rnd(2, 3, 4, 5))])
case("reduce_log_sum_exp", "ReduceLogSumExp", 18, [X(rnd(2, 3, 4, scale=30.0)), ax(0, 2)])
case("reduce_log_sum_exp_nokeep", "ReduceLogSumExp", 13, [X(rnd(2, 3, 4))], {"axes": [1], "keepdims": 0})

print("// Generated by tools/gen_runtime_ops_tests.py; do not edit by hand. Expected values come from")
print("// onnxruntime or the onnx reference evaluator (see the script).")
print("import XCTest")
print("import PSEdgeIR")
print()
print("extension RuntimeOpsTests {")
print("\n\n".join(OUT))
print("}")
