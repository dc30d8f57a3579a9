#!/usr/bin/env bash
# The whole test suite: system packages, generated fixtures (ONNX conformance cases, light models, ResNet-50
# weights and their ONNX Runtime references, calibration sets, evaluation cases), the Python tools' tests
# (pytest), then the Swift tests. Extra arguments go to `swift test` (e.g. --filter ConformanceTests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install_deps.sh
bash tools/make_fixtures.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

py_passed=0 py_failed=0
if [ $# -eq 0 ]; then
  tools/.venv/bin/python -m pytest -q tools/tests 2>&1 | tee "$log" || status=$?
  line=$(grep -E "^[0-9]+ (passed|failed)|[0-9]+ passed|[0-9]+ failed" "$log" | tail -n 1 || true)
  py_passed=$(echo "$line" | { grep -oE "[0-9]+ passed" || true; } | awk '{s += $1} END {print s + 0}')
  py_failed=$(echo "$line" | { grep -oE "[0-9]+ (failed|errors?)" || true; } | awk '{s += $1} END {print s + 0}')
fi

swift build --build-tests
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log" || status=$?
# One plain summary line over both suites, from their own counts.
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" "$log" | tail -n 1 || true)
sw_total=0 sw_failed=0
if [ -n "$summary" ]; then
  sw_total=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
  sw_failed=$(echo "$summary" | sed -E 's/.*with ([0-9]+) failures?.*/\1/')
fi
echo "$((sw_total - sw_failed + py_passed)) passed, $((sw_failed + py_failed)) failed"
exit $status
