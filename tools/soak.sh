#!/usr/bin/env bash
# Soak test: `psedge index` over N images (default 2000) of the synthetic benchmark preset, sampling RSS and open
# file descriptors every 100 images; reports growth after warm-up (the first 300 images) and fails if RSS grows
# by 5 % or more, or the descriptor count changes.
#   bash tools/soak.sh [--model Models/default] [--images 2000] [--data DIR] [--steps 2] [--precision fp32]
# DIR defaults to out/synthetic (generated with tools/make_synthetic.py --preset benchmark --seed 0 if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
model=Models/default images=2000 data=out/synthetic steps=2 precision=fp32
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;; --images) images=$2; shift 2 ;; --data) data=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;; --precision) precision=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ! -d "$data/images" ]; then
  tools/.venv/bin/python tools/make_synthetic.py --preset benchmark --seed 0 --out "$data" --jobs 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gallery"
ls "$data/images" | sort | head -n "$images" | while read -r f; do ln -s "$(cd "$data/images" && pwd)/$f" "$work/gallery/$f"; done
swift build -c release --product psedge >/dev/null
start=$(date +%s)
.build/release/psedge index --model "$model" --steps "$steps" --precision "$precision" "$work/gallery" --db "$work/soak.sqlite" \
  --quiet --report-every 100 2> "$work/samples.txt"
secs=$(( $(date +%s) - start ))
grep '^images=' "$work/samples.txt" | tee "$work/rss.txt"
python3 - "$work/rss.txt" "$secs" <<'PY'
import sys
rows = [dict(kv.split("=") for kv in line.split()) for line in open(sys.argv[1])]
rss = [(int(r["images"]), float(r["rss_mb"]), int(r["open_fds"])) for r in rows]
warm = [r for r in rss if r[0] >= 300]
base, last = warm[0][1], warm[-1][1]
peak = max(r[1] for r in warm)
growth = (peak - base) / base * 100
fds = sorted({r[2] for r in rss})
print(f"{rss[-1][0]} images in {sys.argv[2]} s; RSS after warm-up {base:.1f} MB, at the end {last:.1f} MB, peak {peak:.1f} MB: "
      f"growth {growth:+.2f} %; open fds {fds}")
ok = growth < 5 and len(fds) == 1
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
