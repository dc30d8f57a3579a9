#!/usr/bin/env bash
# One command from a fresh Debian machine (as root): install what PSEdge needs, build it, and run the main job:
# `psedge demo` on the shipped default person-search model (Models/default).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install_deps.sh
swift build -c release --product psedge
bin=.build/release/psedge
# The main job: convert the shipped default model (fp32 + int8), index its sample gallery, answer its sample query.
$bin demo --model Models/default --work out/demo --threads "$(nproc)"
echo "annotated results written to out/demo/results/"
