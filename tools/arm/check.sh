#!/usr/bin/env bash
# Cross-compiles the ARM kernel files (int8 GEMM: NEON, dotprod, i8mm; depthwise convolution, attention: NEON) with Debian's gcc-aarch64-linux-gnu into a static test
# program and runs it under qemu-aarch64: with -cpu max (has dotprod) both paths are compared with the scalar
# reference bit for bit; with -cpu cortex-a53 (ARMv8.0, no dotprod) the NEON path.
# Needs: apt-get install gcc-aarch64-linux-gnu qemu-user.
set -euo pipefail
cd "$(dirname "$0")/../.."
K=Sources/PSEdgeKernels
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O2 -static -std=c11 -Wall -Werror -I "$K/include" -I "$K" \
  tools/arm/int8_kernels_check.c "$K/int8_gemm_scalar.c" "$K/int8_gemm_neon.c" "$K/int8_gemm_dotprod.c" "$K/int8_gemm_i8mm.c" "$K/int8_pack.c" \
  -o "$out/int8_check"
aarch64-linux-gnu-gcc -O2 -static -std=c11 -Wall -Werror -I "$K/include" -I "$K" \
  tools/arm/dwconv_check.c "$K/dwconv_scalar.c" "$K/dwconv_neon.c" -lm -o "$out/dwconv_check"
aarch64-linux-gnu-gcc -O2 -static -std=c11 -Wall -Werror -I "$K/include" -I "$K" \
  tools/arm/attention_check.c "$K/attention_scalar.c" "$K/attention_neon.c" -lm -o "$out/attention_check"
qemu-aarch64 -cpu max "$out/int8_check" --dotprod --i8mm
qemu-aarch64 -cpu cortex-a53 "$out/int8_check"
qemu-aarch64 -cpu cortex-a53 "$out/dwconv_check"
qemu-aarch64 -cpu cortex-a53 "$out/attention_check"
