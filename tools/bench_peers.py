"""PSEdge vs ONNX Runtime on the same model, same inputs, same threads: latency, peak RSS and cold load.

Run (after `swift build -c release --product psedge` and `bash tools/make_fixtures.sh`):
  tools/.venv/bin/python tools/bench_peers.py --model resnet50 --threads 2 --runs 20 [--rounds 3] [--json out.json]
  tools/.venv/bin/python tools/bench_peers.py --model unet_sd21_mini ...

Measured, each in a fresh process so peak RSS is the engine's own (VmHWM of that process):
  ort-fp32   ONNX Runtime CPUExecutionProvider on the fp32 model
  ort-int8   ONNX Runtime on its static QDQ per-channel int8 model (quantize_static, same calibration set)
  psedge-fp32 / psedge-int8   `psedge bench` on the fp32 / int8 .psm (converted with the same calibration set)
Engines are interleaved round by round (A B C D, A B C D, …) so background load hits all of them alike; the
table reports, per engine, the median of the per-round medians, and ratios against ORT; `paired_time_ratios` are the
medians of the per-round time ratios (engines a few seconds apart), which hold up when the host changes speed between
rounds; the JSON also keeps every round's medians and time ratios.
Cold load = open + first run (ORT: InferenceSession creation + first run).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS = {
    "unet_sd21_mini": os.path.join(ROOT, "Tests/Fixtures/models/unet_sd21_mini/model.onnx"),
    "resnet50": os.path.join(ROOT, "Tests/Fixtures/generated/resnet50/model.onnx"),
}

ORT_WORKER = textwrap.dedent("""
    import json, sys, time, glob, os
    import numpy as np
    t0 = time.perf_counter()
    import onnxruntime as ort
    model, sample_dir, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    feeds = {os.path.basename(f)[:-4]: np.load(f) for f in glob.glob(os.path.join(sample_dir, "*.npy"))}
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
    s.run(None, feeds)
    cold = (time.perf_counter() - t0) * 1e3
    for _ in range(2): s.run(None, feeds)
    ts = []
    for _ in range(runs):
        a = time.perf_counter(); s.run(None, feeds); ts.append((time.perf_counter() - a) * 1e3)
    ts.sort()
    rss = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    print(json.dumps({"median_ms": ts[len(ts)//2], "p95_ms": ts[min(len(ts)-1, int(len(ts)*0.95))],
                      "peak_rss_mb": int(rss) / 1024, "cold_ms": cold}))
""")


def ort_bench(model, sample_dir, threads, runs):
    out = subprocess.run([sys.executable, "-c", ORT_WORKER, model, sample_dir, str(threads), str(runs)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def psedge_bench(psedge, psm, sample_dir, threads, runs):
    inputs = [f"--input={os.path.basename(f)[:-4]}={f}" for f in sorted(glob.glob(os.path.join(sample_dir, "*.npy")))]
    out = subprocess.run([psedge, "bench", psm, *inputs, "--runs", str(runs), "--threads", str(threads), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50", choices=sorted(MODELS))
    ap.add_argument("--psedge", default=os.path.join(ROOT, ".build/release/psedge"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    import numpy as np

    model = MODELS[args.model]
    cal = os.path.join(ROOT, "Tests/Fixtures/generated/calibration", args.model)
    sample = sorted(glob.glob(os.path.join(cal, "heldout", "sample_*")))[0]
    calib = [{os.path.basename(f)[:-4]: np.load(f) for f in glob.glob(os.path.join(s, "*.npy"))}
             for s in sorted(glob.glob(os.path.join(cal, "calib", "sample_*")))]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        qdq = os.path.join(tmp, "model.qdq.onnx")
        quantize_static(model, qdq, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        fp32_psm, int8_psm = os.path.join(tmp, "fp32.psm"), os.path.join(tmp, "int8.psm")
        subprocess.run([args.psedge, "convert", model, "-o", fp32_psm], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([args.psedge, "convert", model, "-o", int8_psm, "--quantize", "int8", "--calibration",
                        os.path.join(cal, "calib"), "--threads", str(args.threads)], check=True, stdout=subprocess.DEVNULL)
        engines = {
            "ort-fp32": lambda: ort_bench(model, sample, args.threads, args.runs),
            "ort-int8": lambda: ort_bench(qdq, sample, args.threads, args.runs),
            "psedge-fp32": lambda: psedge_bench(args.psedge, fp32_psm, sample, args.threads, args.runs),
            "psedge-int8": lambda: psedge_bench(args.psedge, int8_psm, sample, args.threads, args.runs),
        }
        rounds = {name: [] for name in engines}
        for _ in range(args.rounds):
            for name, fn in engines.items():
                rounds[name].append(fn())

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    table = {name: {k: med([r[k] for r in rs]) for k in ("median_ms", "p95_ms", "peak_rss_mb", "cold_ms")}
             for name, rs in rounds.items()}
    ratios = {
        "psedge_int8_vs_ort_int8_time": table["psedge-int8"]["median_ms"] / table["ort-int8"]["median_ms"],
        "psedge_fp32_vs_ort_fp32_time": table["psedge-fp32"]["median_ms"] / table["ort-fp32"]["median_ms"],
        "psedge_int8_vs_ort_fp32_time": table["psedge-int8"]["median_ms"] / table["ort-fp32"]["median_ms"],
        "psedge_int8_vs_ort_int8_rss": table["psedge-int8"]["peak_rss_mb"] / table["ort-int8"]["peak_rss_mb"],
        "psedge_int8_vs_ort_int8_cold": table["psedge-int8"]["cold_ms"] / table["ort-int8"]["cold_ms"],
    }
    # Per round (engines back to back): the spread shows how much of a ratio is this host's drift.
    per_round = {name: [r["median_ms"] for r in rs] for name, rs in rounds.items()}
    round_ratios = {
        "psedge_int8_vs_ort_int8_time": [a / b for a, b in zip(per_round["psedge-int8"], per_round["ort-int8"])],
        "psedge_fp32_vs_ort_fp32_time": [a / b for a, b in zip(per_round["psedge-fp32"], per_round["ort-fp32"])],
        "psedge_int8_vs_ort_fp32_time": [a / b for a, b in zip(per_round["psedge-int8"], per_round["ort-fp32"])],
    }
    # The median of the per-round ratios: each compares two runs a few seconds apart, so it holds up when the host
    # changes speed between rounds (BENCHMARKS.md, "host phases"), where the ratio of the two medians may pair a
    # fast round of one engine with a slow round of the other.
    paired = {name: med(rs) for name, rs in round_ratios.items()}
    result = {"model": args.model, "threads": args.threads, "runs": args.runs, "rounds": args.rounds,
              "engines": table, "ratios": ratios, "paired_time_ratios": paired, "median_ms_per_round": per_round,
              "time_ratios_per_round": round_ratios}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
