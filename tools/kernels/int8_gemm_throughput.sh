#!/usr/bin/env bash
# Builds and runs tools/kernels/int8_gemm_throughput.c (one core) against the kernel sources.
set -euo pipefail
cd "$(dirname "$0")/../.."
K=Sources/PSEdgeKernels
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O3 -I "$K/include" -I "$K" tools/kernels/int8_gemm_throughput.c "$K/int8_gemm_avx512vnni.c" "$K/int8_gemm_avx2.c" \
  "$K/int8_gemm_scalar.c" "$K/int8_pack.c" -o "$out/bench"
taskset -c 0 "$out/bench" 2>/dev/null || "$out/bench"
