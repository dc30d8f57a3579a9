"""PSEdge int8 vs ONNX Runtime int8 on the same model, calibration data and held-out inputs.

Run (after `swift build -c release` and `bash tools/make_fixtures.sh`):
  tools/.venv/bin/python tools/compare_int8_ort.py [--model unet_sd21_mini|resnet50] [--psedge .build/release/psedge]

For the model it:
  1. runs ONNX Runtime fp32 on every held-out sample (the reference);
  2. quantizes with ORT's own static QDQ, per-channel weights (onnxruntime.quantization.quantize_static,
     MinMax calibration on the calibration set) and runs it on the held-out samples;
  3. converts with `psedge convert --quantize int8 --calibration <calib>` and runs `psedge run` on each
     held-out sample;
and prints the output cosine / relative error of each int8 model against the fp32 reference, plus file sizes.
Both quantizers see exactly the same calibration samples; neither sees the held-out ones.
"""
import argparse
import glob
import json
import os
import subprocess
import tempfile

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS = {
    "unet_sd21_mini": os.path.join(ROOT, "Tests/Fixtures/models/unet_sd21_mini/model.onnx"),
    "resnet50": os.path.join(ROOT, "Tests/Fixtures/generated/resnet50/model.onnx"),
}


def load_samples(d):
    out = []
    for s in sorted(glob.glob(os.path.join(d, "sample_*"))):
        out.append({os.path.basename(f)[:-4]: np.load(f) for f in glob.glob(os.path.join(s, "*.npy"))})
    return out


class Reader(CalibrationDataReader):
    def __init__(self, samples):
        self.it = iter(samples)

    def get_next(self):
        return next(self.it, None)


def fidelity(refs, outs):
    r = np.concatenate([x.ravel().astype(np.float64) for x in refs])
    o = np.concatenate([x.ravel().astype(np.float64) for x in outs])
    cos = float(r @ o / (np.linalg.norm(r) * np.linalg.norm(o)))
    rel = float(np.abs(r - o).max() / np.abs(r).max())
    return cos, rel


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="unet_sd21_mini", choices=sorted(MODELS))
    ap.add_argument("--psedge", default=os.path.join(ROOT, ".build/release/psedge"))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    model = MODELS[args.model]
    cal_root = os.path.join(ROOT, "Tests/Fixtures/generated/calibration", args.model)
    calib, heldout = load_samples(os.path.join(cal_root, "calib")), load_samples(os.path.join(cal_root, "heldout"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    fp32 = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    out_name = fp32.get_outputs()[0].name
    refs = [fp32.run([out_name], s)[0] for s in heldout]

    with tempfile.TemporaryDirectory() as tmp:
        ort_rows = {}
        # ORT as its docs recommend: quant_pre_process (shape inference + graph optimization) first, and also
        # without it, since the pre-processing changes which nodes get quantized.
        pre = os.path.join(tmp, "model.pre.onnx")
        quant_pre_process(model, pre)
        for label, src in (("ort_qdq_int8", model), ("ort_qdq_int8_preprocessed", pre)):
            qdq = os.path.join(tmp, label + ".onnx")
            quantize_static(src, qdq, Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
            ort_q = ort.InferenceSession(qdq, opts, providers=["CPUExecutionProvider"])
            outs = [ort_q.run([out_name], s)[0] for s in heldout]
            ort_rows[label] = dict(zip(("cosine", "relative_error"), fidelity(refs, outs)), bytes=os.path.getsize(qdq))

        psm = os.path.join(tmp, "model.int8.psm")
        subprocess.run([args.psedge, "convert", model, "-o", psm, "--quantize", "int8",
                        "--calibration", os.path.join(cal_root, "calib"), "--threads", "2"], check=True,
                       stdout=subprocess.DEVNULL)
        ps_outs = []
        for i, _ in enumerate(heldout):
            sample_dir = sorted(glob.glob(os.path.join(cal_root, "heldout", "sample_*")))[i]
            inputs = [f"--input={os.path.basename(f)[:-4]}={f}" for f in sorted(glob.glob(os.path.join(sample_dir, "*.npy")))]
            out_dir = os.path.join(tmp, f"out{i}")
            subprocess.run([args.psedge, "run", psm, *inputs, "--output-dir", out_dir, "--threads", "2"], check=True,
                           stdout=subprocess.DEVNULL)
            ps_outs.append(np.load(os.path.join(out_dir, out_name.replace("/", "_") + ".npy")))
        ps_size = os.path.getsize(psm)

    fp32_size = os.path.getsize(model) + sum(os.path.getsize(f) for f in glob.glob(os.path.join(os.path.dirname(model), "*.weights")))
    results = {
        "model": args.model,
        "heldout_samples": len(heldout),
        "calibration_samples": len(calib),
        **ort_rows,
        "psedge_int8": dict(zip(("cosine", "relative_error"), fidelity(refs, ps_outs)), bytes=ps_size),
        "fp32_onnx_bytes": fp32_size,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
