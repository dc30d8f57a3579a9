#!/usr/bin/env bash
# One command from a fresh Debian machine (as root): install what PSEdge needs, build it, and run the main job
# on the shipped fixture model — convert the SD-2.1-structured mini UNet to .psm, inspect it, run it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install_deps.sh
swift build -c release --product psedge
bin=.build/release/psedge
model=Tests/Fixtures/models/unet_sd21_mini
mkdir -p out
echo "== convert"
$bin convert "$model/model.onnx" -o out/unet_sd21_mini.psm --report
echo "== inspect"
$bin inspect out/unet_sd21_mini.psm | head -20
echo "== run"
$bin run out/unet_sd21_mini.psm \
  --input sample="$model/inputs/sample.npy" \
  --input timestep="$model/inputs/timestep.npy" \
  --input encoder_hidden_states="$model/inputs/encoder_hidden_states.npy" \
  --output-dir out/unet_sd21_mini --threads "$(nproc)"
echo "outputs written to out/unet_sd21_mini/"
