"""Turn the "light" models shipped in the onnx wheel into PSEdge fixtures.

onnx/backend/test/data/light/light_<name>.onnx are real architectures whose
weights are ConstantOfShape nodes (every weight = 0.02), stamped opset 9 / IR 3
(initializers are also listed as graph inputs). The onnx backend test runner
(onnx/backend/test/runner/__init__.py, `run` with use_dummy=True) loads the
file unchanged, feeds every graph input that is not an initializer with
Runner.generate_dummy_data(random=False), i.e.

    (np.arange(n).reshape(shape) / n).astype(np.float32)   # unknown dims -> 1

and compares against light_<name>_output_0.pb with the tolerances from
onnx.backend.test.case.model.collect_testcases (rtol 1e-3, densenet121 2e-3;
atol 1e-7). This script does exactly that and writes

    <out>/<name>/model.onnx
    <out>/<name>/inputs/<input>.npy      ('/' etc. in names become '_')
    <out>/<name>/outputs/<output>.npy    (the shipped expected output)

then checks that ONNX Runtime reproduces the expected output.

Run:  tools/.venv/bin/python tools/gen_light_models.py --out Tests/Fixtures/generated/light
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnx.backend.test.case.model import collect_testcases
from onnx.backend.test.runner import Runner

from gen_conformance import safe_name

ort.set_default_logger_severity(3)
LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    cases = [c for c in collect_testcases() if c.url and c.url.startswith("onnx/backend/test/data/light/")]
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    ok = True
    for case in cases:
        src = os.path.join(LIGHT_DIR, f"light_{case.model_name}.onnx")
        out_dir = os.path.join(args.out, case.model_name)
        os.makedirs(os.path.join(out_dir, "inputs"))
        os.makedirs(os.path.join(out_dir, "outputs"))
        shutil.copy(src, os.path.join(out_dir, "model.onnx"))
        model = onnx.load(src)

        inits = {i.name for i in model.graph.initializer}
        feeds = {}
        for x in model.graph.input:
            if x.name in inits:
                continue
            feeds[x.name] = Runner.generate_dummy_data(x, seed=0, name=case.model_name, random=False)
            np.save(os.path.join(out_dir, "inputs", safe_name(x.name) + ".npy"), feeds[x.name])

        expected = []
        for i, y in enumerate(model.graph.output):
            t = onnx.TensorProto()
            with open(os.path.join(LIGHT_DIR, f"light_{case.model_name}_output_{i}.pb"), "rb") as f:
                t.ParseFromString(f.read())
            expected.append(numpy_helper.to_array(t))
            np.save(os.path.join(out_dir, "outputs", safe_name(y.name) + ".npy"), expected[-1])

        sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
        got = sess.run(None, feeds)
        diff = max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected))
        try:
            for g, e in zip(got, expected):
                np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
            status = "ok"
        except AssertionError:
            status, ok = "MISMATCH", False
        print(f"{case.model_name:14} rtol={case.rtol:g} atol={case.atol:g} max|ORT-expected|={diff:.3g} {status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
