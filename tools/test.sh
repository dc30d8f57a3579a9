#!/usr/bin/env bash
# The whole test suite: system packages, generated fixtures (ONNX conformance cases, light models, ResNet-50
# weights and their ONNX Runtime references), then the Swift tests. Extra arguments go to `swift test`
# (e.g. --filter ConformanceTests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install_deps.sh
bash tools/make_fixtures.sh
swift build --build-tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log" || status=$?
# One plain summary line from XCTest's own count.
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" "$log" | tail -n 1 || true)
if [ -n "$summary" ]; then
  total=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
  failed=$(echo "$summary" | sed -E 's/.*with ([0-9]+) failures?.*/\1/')
  echo "$((total - failed)) passed, $failed failed"
fi
exit $status
