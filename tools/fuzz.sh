#!/usr/bin/env bash
# Fuzzes PSEdge's file readers with libFuzzer (docs/FUZZING.md).
#
#   bash tools/fuzz.sh [--seconds N] [--jobs J] [--save-corpus] [TARGET ...]
#
# Targets: onnx safetensors psm npy png jpeg manifest detections pipeline (default: all).
# Each target runs N seconds (default 600) under AddressSanitizer, starting from the committed corpus
# (Tests/Fixtures/fuzz/corpus/TARGET) plus seeds taken from the test fixtures. Crash inputs land in
# out/fuzz/TARGET/artifacts; logs in out/fuzz/TARGET/log.txt; a summary table in out/fuzz/summary.md.
# --save-corpus merges what the run found back into the committed corpus (minimized by coverage; the smallest
# inputs up to 1 MiB per target are kept).
# --summary only rewrites out/fuzz/summary.md from the logs of earlier runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=600 jobs=1 save=0 summary_only=0 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --save-corpus) save=1; shift ;;
    --summary) summary_only=1; shift ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(onnx safetensors psm npy png jpeg manifest detections pipeline)
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (targets: ${all[*]})" >&2; exit 2; }
done

summarize() {
  local summary=out/fuzz/summary.md
  {
    echo "| target | seconds | execs | execs/s | coverage (edges) | features | corpus | crashes |"
    echo "|---|---|---|---|---|---|---|---|"
    for t in "${targets[@]}"; do
      [ -f "out/fuzz/$t/log.txt" ] || continue
      awk -v t="$t" -v crashes="$(find "out/fuzz/$t/artifacts" -type f | wc -l)" '
        /^fuzz.sh seconds:/ { secs = $3 }
        /^stat::number_of_executed_units:/ { execs = $2 }
        /^stat::average_exec_per_sec:/ { rate = $2 }
        /^#[0-9]+.* cov: / { for (i = 1; i <= NF; i++) { if ($i == "cov:") cov = $(i+1); if ($i == "ft:") ft = $(i+1); if ($i == "corp:") corp = $(i+1) } }
        END { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", t, secs, execs, rate, cov, ft, corp, crashes }
      ' "out/fuzz/$t/log.txt"
    done
  } >"$summary"
  cat "$summary"
}
if [ "$summary_only" = 1 ]; then summarize; exit 0; fi

# Build: libFuzzer's coverage instrumentation and ASan on every Swift module and on our C targets. With
# out/fuzz-libs (tools/fuzz/build_codecs.sh) libpng and libjpeg are instrumented too, found through pkg-config
# (static, so zlib is named explicitly); that build goes to its own scratch directory.
build=(swift build -c release --package-path tools/fuzz -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)
if [ -f out/fuzz-libs/lib/pkgconfig/libpng.pc ]; then
  export PKG_CONFIG_PATH=$root/out/fuzz-libs/lib/pkgconfig
  build+=(--scratch-path tools/fuzz/.build-codecs -Xlinker -lz)
  echo "fuzz.sh: libpng and libjpeg instrumented (out/fuzz-libs)" >&2
else
  echo "fuzz.sh: libpng and libjpeg not instrumented (run tools/fuzz/build_codecs.sh for coverage inside them)" >&2
fi
"${build[@]}" >&2
bin=$("${build[@]}" --show-bin-path)/psedge-fuzz

# Seeds: small files of each kind from the test fixtures.
seed_files() {
  local t=$1
  case $t in
    onnx) find Tests/Fixtures -name '*.onnx' -size -64k ;;
    safetensors) find Tests/Fixtures -name '*.safetensors' -size -64k ;;
    psm) find Tests/Fixtures out/fuzz-seeds -name '*.psm' -size -64k 2>/dev/null ;;
    npy) find Tests/Fixtures/format Tests/Fixtures/errors -name '*.npy' -size -16k ;;
    png) find Tests/Fixtures/images Tests/Fixtures/synthetic_small -name '*.png' -size -32k | head -n 20 ;;
    jpeg) find Tests/Fixtures/images Tests/Fixtures/synthetic_small -name '*.jpg' -size -32k | head -n 20 ;;
    manifest) find Tests/Fixtures/eval Tests/Fixtures/datasets Tests/Fixtures/synthetic_small -name 'manifest*.json' -size -32k ;;
    detections) find Tests/Fixtures/eval -name 'detections*.json' -size -32k ;;
    pipeline) find Tests/Fixtures/models Models -name 'pipeline.json' -size -32k ;;
  esac
}
max_len() {
  case $1 in onnx|psm|safetensors) echo 65536 ;; png|jpeg) echo 32768 ;; npy) echo 8192 ;; *) echo 16384 ;; esac
}

# A .psm seed: convert the smallest ONNX fixtures (needs the normal debug build of psedge).
if [[ " ${targets[*]} " == *" psm "* ]] && [ ! -d out/fuzz-seeds ]; then
  swift build --product psedge >&2
  mkdir -p out/fuzz-seeds
  for m in Tests/Fixtures/errors/tiny_add.onnx Tests/Fixtures/errors/tiny_conv.onnx; do
    .build/debug/psedge convert "$m" -o "out/fuzz-seeds/$(basename "$m" .onnx).psm" >/dev/null
  done
fi

run_target() {
  local t=$1 dir=out/fuzz/$1
  rm -rf "$dir"; mkdir -p "$dir/corpus" "$dir/artifacts"
  echo "fuzz.sh seconds: $seconds" >"$dir/log.txt"
  [ -d "Tests/Fixtures/fuzz/corpus/$t" ] && cp Tests/Fixtures/fuzz/corpus/$t/* "$dir/corpus/" 2>/dev/null || true
  seed_files "$t" | while read -r f; do cp "$f" "$dir/corpus/seed-$(echo "$f" | tr '/' '_')"; done
  local dict=()
  case $t in manifest|detections|pipeline) dict=(-dict=tools/fuzz/json.dict) ;; esac
  PSEDGE_FUZZ_TARGET=$t "$bin" "$dir/corpus" "${dict[@]}" \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=20 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" >>"$dir/log.txt" 2>&1 || true
  if [ "$save" = 1 ]; then
    local merged=$dir/merged
    mkdir -p "$merged"
    PSEDGE_FUZZ_TARGET=$t "$bin" -merge=1 -max_len="$(max_len "$t")" "$merged" "$dir/corpus" >"$dir/merge.txt" 2>&1 || true
    rm -rf "Tests/Fixtures/fuzz/corpus/$t"; mkdir -p "Tests/Fixtures/fuzz/corpus/$t"
    # The committed corpus keeps the smallest inputs up to 1 MiB per target (the full one stays in $merged).
    local total=0
    while read -r size f; do
      total=$((total + size)); [ "$total" -le 1048576 ] || break
      cp "$f" "Tests/Fixtures/fuzz/corpus/$t/"
    done < <(find "$merged" -type f -printf '%s %p\n' | sort -n)
  fi
}

running=0
for t in "${targets[@]}"; do
  echo "fuzzing $t for ${seconds}s" >&2
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

summarize
if find out/fuzz/*/artifacts -type f 2>/dev/null | grep -q .; then
  echo "crash inputs:" >&2; find out/fuzz/*/artifacts -type f >&2
  exit 1
fi
