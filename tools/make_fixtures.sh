#!/usr/bin/env bash
# Generate Tests/Fixtures/generated/ (what CI runs before the Swift tests).
#
#   bash tools/make_fixtures.sh
#
# Idempotent: creates tools/.venv if missing, installs tools/requirements-fixtures.txt,
# then runs each generator unless its output is newer than everything it depends on
# (a .stamp file is written when a step finishes). Needs only python3 (3.11) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=tools/.venv
PY=$VENV/bin/python
GEN=Tests/Fixtures/generated

if [ ! -x "$PY" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
if [ ! "$VENV/.fixtures-installed" -nt tools/requirements-fixtures.txt ]; then
    "$PY" -m pip install -q --disable-pip-version-check -r tools/requirements-fixtures.txt
    touch "$VENV/.fixtures-installed"
fi

# step NAME OUTDIR DEPENDENCIES... -- COMMAND...
step() {
    local name=$1 out=$2
    shift 2
    local deps=()
    while [ "$1" != "--" ]; do deps+=("$1"); shift; done
    shift
    local fresh=1
    if [ -f "$out/.stamp" ]; then
        for dep in "${deps[@]}" tools/requirements-fixtures.txt; do
            [ "$out/.stamp" -nt "$dep" ] || fresh=0
        done
    else
        fresh=0
    fi
    if [ "$fresh" = 1 ]; then
        echo "== $name: up to date ($out)"
        return
    fi
    echo "== $name -> $out"
    "$@"
    touch "$out/.stamp"
}

step conformance "$GEN/conformance" tools/gen_conformance.py Tests/Fixtures/conformance-ops.txt -- \
    "$PY" tools/gen_conformance.py --ops-file Tests/Fixtures/conformance-ops.txt --out "$GEN/conformance"
step light-models "$GEN/light" tools/gen_light_models.py tools/gen_conformance.py -- \
    "$PY" tools/gen_light_models.py --out "$GEN/light"
step resnet50 "$GEN/resnet50" tools/materialize_resnet50.py Tests/Fixtures/models/resnet50/model.onnx -- \
    "$PY" tools/materialize_resnet50.py --dir Tests/Fixtures/models/resnet50 --out "$GEN/resnet50"
step calibration "$GEN/calibration" tools/make_calibration.py -- \
    "$PY" tools/make_calibration.py --out "$GEN/calibration"
step eval-cases "$GEN/eval" tools/gen_eval_cases.py tools/ps_eval.py -- \
    "$PY" tools/gen_eval_cases.py --out "$GEN/eval" --seeds 40
step resnet-safetensors "$GEN/resnet_tv" tools/make_resnet_safetensors.py -- \
    "$PY" tools/make_resnet_safetensors.py --out "$GEN/resnet_tv"
