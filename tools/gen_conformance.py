"""Generate ONNX backend *node* conformance fixtures for the ops PSEdge supports.

The onnx wheel ships the node test definitions (onnx.backend.test.case.node)
but not their data; this script runs those definitions (as
`python -m onnx.backend.test.cmd_tools generate-data` does) and writes, for
every kept case:

    <out>/<case_name>/model.onnx
    <out>/<case_name>/inputs/<graph input name>.npy     (first data set only)
    <out>/<case_name>/outputs/<graph output name>.npy
    <out>/index.txt                                      case_name<TAB>op_type

File names are tensor names with every character outside [A-Za-z0-9._-]
replaced by '_'. op_type is the op under test (for "_expanded" cases, the op
whose function body the case expands).

A case is kept only if all of its nodes are listed in the ops file, all its
tensors (graph I/O, initializers, tensor attributes, Cast targets and
inferred intermediates) are float32/float16/int64/int32/int8/uint8/bool, it
does not use training mode, and its graph I/O are plain tensors.

Run:  tools/.venv/bin/python tools/gen_conformance.py \
          --ops-file Tests/Fixtures/conformance-ops.txt \
          --out Tests/Fixtures/generated/conformance [--check-ort]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

ALLOWED_DTYPES = {
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.INT64,
    TensorProto.INT32,
    TensorProto.INT8,
    TensorProto.UINT8,
    TensorProto.BOOL,
}


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def read_ops(path: str) -> list[str]:
    ops = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and line not in ops:
                ops.append(line)
    return ops


def to_array(x) -> np.ndarray:
    return numpy_helper.to_array(x) if isinstance(x, TensorProto) else np.asarray(x)


def all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(attr.g)
            for g in attr.graphs:
                yield from all_nodes(g)


def skip_reason(case, ops: set[str]) -> str | None:
    """Return why a case must be skipped, or None to keep it."""
    model = case.model
    graph = model.graph
    nodes = list(all_nodes(graph))
    for node in nodes:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ops:
            return "op not in list"
    for vi in list(graph.input) + list(graph.output):
        if not vi.type.HasField("tensor_type"):
            return "sequence/optional/map io"
    if "training" in case.name:
        return "training mode"
    for node in nodes:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "BatchNormalization" and attrs.get("training_mode", None) and attrs["training_mode"].i:
            return "training mode"
        if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
            return "training mode"
    # dtypes: declared graph I/O, initializers, attributes, inferred intermediates
    dtypes = {vi.type.tensor_type.elem_type for vi in list(graph.input) + list(graph.output)}
    dtypes |= {t.data_type for t in graph.initializer}
    for node in nodes:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                dtypes.add(a.t.data_type)
            elif a.type == onnx.AttributeProto.SPARSE_TENSOR:
                return "sparse tensor"
            if node.op_type == "Cast" and a.name == "to":
                dtypes.add(a.i)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        for vi in inferred.graph.value_info:
            if vi.type.HasField("tensor_type"):
                dtypes.add(vi.type.tensor_type.elem_type)
            else:
                return "sequence/optional/map io"
    except Exception:  # noqa: BLE001 - inference failure is not a reason to skip
        pass
    dtypes.discard(TensorProto.UNDEFINED)
    bad = dtypes - ALLOWED_DTYPES
    if bad:
        return "dtype " + "/".join(sorted(TensorProto.DataType.Name(d).lower() for d in bad))
    inputs, outputs = case.data_sets[0]
    for arr in list(inputs) + list(outputs):
        if to_array(arr).dtype == object:
            return "dtype string"
    return None


def target_op(case, base_ops: dict[str, str]) -> str:
    if "_expanded" in case.name:
        base = re.sub(r"_expanded(_ver\d+)?$", "", case.name)
        if base in base_ops:
            return base_ops[base]
    return case.model.graph.node[0].op_type


def write_case(case, out_dir: str) -> None:
    os.makedirs(os.path.join(out_dir, "inputs"))
    os.makedirs(os.path.join(out_dir, "outputs"))
    onnx.save(case.model, os.path.join(out_dir, "model.onnx"))
    inputs, outputs = case.data_sets[0]
    graph = case.model.graph
    assert len(inputs) == len(graph.input) and len(outputs) == len(graph.output), case.name
    for vi, arr in zip(graph.input, inputs):
        np.save(os.path.join(out_dir, "inputs", safe_name(vi.name) + ".npy"), to_array(arr))
    for vi, arr in zip(graph.output, outputs):
        np.save(os.path.join(out_dir, "outputs", safe_name(vi.name) + ".npy"), to_array(arr))


def check_ort(case) -> str | None:
    """Run the case with ONNX Runtime; return an error string on mismatch."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    try:
        sess = ort.InferenceSession(case.model.SerializeToString(), providers=["CPUExecutionProvider"])
        inputs, outputs = case.data_sets[0]
        feeds = {vi.name: to_array(a) for vi, a in zip(case.model.graph.input, inputs)}
        got = sess.run(None, feeds)
        for ref, out in zip(outputs, got):
            np.testing.assert_allclose(out, to_array(ref), rtol=case.rtol, atol=case.atol)
    except Exception as e:  # noqa: BLE001
        return str(e).strip().splitlines()[0][:160]
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--check-ort", action="store_true", help="also run every kept case with ONNX Runtime")
    args = ap.parse_args()

    ops = read_ops(args.ops_file)
    opset = set(ops)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.seterr(all="ignore")
        from onnx.backend.test.case.node import collect_testcases

        cases = collect_testcases()
    base_ops = {c.name: c.model.graph.node[0].op_type for c in cases if "_expanded" not in c.name}

    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)

    kept: dict[str, list[str]] = collections.defaultdict(list)
    skipped: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    index = []
    ort_failures = []
    for case in sorted(cases, key=lambda c: c.name):
        op = target_op(case, base_ops)
        if op not in opset:
            continue
        reason = skip_reason(case, opset)
        if reason:
            skipped[op][reason] += 1
            continue
        write_case(case, os.path.join(args.out, case.name))
        kept[op].append(case.name)
        index.append(f"{case.name}\t{op}")
        if args.check_ort:
            err = check_ort(case)
            if err:
                ort_failures.append(f"{case.name}: {err}")

    with open(os.path.join(args.out, "index.txt"), "w") as f:
        f.write("\n".join(index) + "\n")

    total_skips = collections.Counter()
    print(f"{'op':24} {'kept':>4}  skipped")
    for op in ops:
        total_skips.update(skipped[op])
        detail = ", ".join(f"{r}: {n}" for r, n in sorted(skipped[op].items()))
        print(f"{op:24} {len(kept[op]):4}  {detail}")
    print(f"total kept: {len(index)}; skipped: " + ", ".join(f"{r}: {n}" for r, n in sorted(total_skips.items())))
    missing = [op for op in ops if not kept[op]]
    if missing:
        print("ops without any case:", " ".join(missing))
    if args.check_ort:
        print(f"ORT disagreements: {len(ort_failures)}")
        for line in ort_failures:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
