#!/usr/bin/env bash
# The whole test suite: system packages, generated fixtures (ONNX conformance cases, light models, ResNet-50
# weights and their ONNX Runtime references), then the Swift tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install_deps.sh
bash tools/make_fixtures.sh
swift build --build-tests
swift test --skip-build "$@"
