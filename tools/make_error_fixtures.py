"""Tiny models for PSEdge's error-path tests (Tests/Fixtures/errors/).

Run: tools/.venv/bin/python tools/make_error_fixtures.py
Writes:
  tiny_add.onnx       Y = Relu(X + B), X f32[2,3]; a valid model the CLI tests convert and run
  tiny_add_x.npy      an input for it, tiny_add_y.npy the expected output (computed with onnxruntime)
  unknown_op.onnx     a node with op type 'FrobnicateTensor'
  cycle.onnx          two nodes that feed each other
  wrong_shape_x.npy   f32[3,2]: does not fit tiny_add's input
  tiny_conv.onnx      Conv 3x3 -> Relu -> Flatten -> Gemm, X f32[1,3,8,8] (quantization CLI tests),
  tiny_conv_calib/sample_00N/X.npy  three calibration samples for it, tiny_conv_x.npy a held-out input
"""
import os

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "errors")


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])
    b = helper.make_tensor("B", TensorProto.FLOAT, [3], [0.5, -1.0, 2.0])
    tiny = model([helper.make_node("Add", ["X", "B"], ["S"], name="add"),
                  helper.make_node("Relu", ["S"], ["Y"], name="relu")], [x], [y], [b])
    onnx.checker.check_model(tiny)
    onnx.save(tiny, os.path.join(OUT, "tiny_add.onnx"))
    xv = np.array([[1, -2, 3], [-4, 5, -6]], dtype=np.float32)
    np.save(os.path.join(OUT, "tiny_add_x.npy"), xv)
    sess = ort.InferenceSession(os.path.join(OUT, "tiny_add.onnx"), providers=["CPUExecutionProvider"])
    np.save(os.path.join(OUT, "tiny_add_y.npy"), sess.run(None, {"X": xv})[0])
    np.save(os.path.join(OUT, "wrong_shape_x.npy"), np.zeros((3, 2), dtype=np.float32))

    unknown = model([helper.make_node("FrobnicateTensor", ["X"], ["Y"], name="frob1")], [x], [y])
    onnx.save(unknown, os.path.join(OUT, "unknown_op.onnx"))

    cycle = model([helper.make_node("Add", ["X", "B2"], ["A1"], name="loop_a"),
                   helper.make_node("Relu", ["A1"], ["B2"], name="loop_b"),
                   helper.make_node("Identity", ["A1"], ["Y"], name="out")], [x], [y])
    onnx.save(cycle, os.path.join(OUT, "cycle.onnx"))
    tiny_conv()


def tiny_conv():
    rng = np.random.default_rng(7)
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 10])
    w = onnx.numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "W")
    b = onnx.numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "B")
    fw = onnx.numpy_helper.from_array(rng.normal(0, 0.1, (10, 256)).astype(np.float32), "FW")
    fb = onnx.numpy_helper.from_array(rng.normal(0, 0.1, (10,)).astype(np.float32), "FB")
    m = model([helper.make_node("Conv", ["X", "W", "B"], ["C"], name="conv", pads=[1, 1, 1, 1]),
               helper.make_node("Relu", ["C"], ["R"], name="relu"),
               helper.make_node("Flatten", ["R"], ["F"], name="flatten"),
               helper.make_node("Gemm", ["F", "FW", "FB"], ["Y"], name="fc", transB=1)], [x], [y], [w, b, fw, fb])
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "tiny_conv.onnx"))
    for i in range(3):
        d = os.path.join(OUT, "tiny_conv_calib", f"sample_{i:03d}")
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "X.npy"), rng.standard_normal((1, 3, 8, 8)).astype(np.float32))
    np.save(os.path.join(OUT, "tiny_conv_x.npy"), rng.standard_normal((1, 3, 8, 8)).astype(np.float32))


if __name__ == "__main__":
    main()
