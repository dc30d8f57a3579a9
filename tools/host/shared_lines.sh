#!/usr/bin/env bash
# Builds and runs tools/host/shared_lines.c (x86-64, two CPUs).
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O2 "$(dirname "$0")/shared_lines.c" -o "$out/shared_lines" -lpthread
"$out/shared_lines"
