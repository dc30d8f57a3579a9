// ARM dotprod (ARMv8.2 SDOT) packed int8 GEMM. SDOT multiplies signed bytes only, so the unsigned operand is
// shifted to signed (u - 128, an XOR with 0x80) and the shift is added back exactly:
//   Σ a·b = Σ (a - 128)·b + 128·Σ b   (u8 A)      Σ a·b = Σ a·(b - 128) + 128·Σ a   (u8 B).
// All in int32, so results equal the scalar reference bit for bit.
#if defined(__aarch64__)
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <arm_neon.h>

#if defined(__clang__)
#define DOTPROD __attribute__((target("dotprod")))
#else
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

DOTPROD static void store_cols(int32_t *dst, const int32x4_t acc[4], int cols) {
    int32_t tmp[16];
    for (int q = 0; q < 4; q++) vst1q_s32(tmp + 4 * q, acc[q]);
    for (int l = 0; l < cols; l++) dst[l] = tmp[l];
}

DOTPROD void pse_gemm_u8s8_packed_dotprod(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc) {
    const int kg = (k + 3) / 4, nb = (n + 15) / 16;
    const int8x16_t ones = vdupq_n_s8(1);
    for (int j = 0; j < nb; j++) {
        const int8_t *bj = bp + (size_t)j * kg * 64;
        const int cols = n - 16 * j < 16 ? n - 16 * j : 16;
        // 128 · column sums of B (padding bytes are 0).
        int32x4_t colsum[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int g = 0; g < kg; g++)
            for (int q = 0; q < 4; q++) colsum[q] = vdotq_s32(colsum[q], vld1q_s8(bj + (size_t)g * 64 + 16 * q), ones);
        for (int q = 0; q < 4; q++) colsum[q] = vshlq_n_s32(colsum[q], 7);
        for (int i = 0; i < m; i++) {
            const uint8_t *ar = a + (size_t)i * lda;
            int32x4_t acc[4] = {colsum[0], colsum[1], colsum[2], colsum[3]};
            for (int g = 0; g < kg; g++) {
                const int8x16_t av = vreinterpretq_s8_u32(vdupq_n_u32(pse_load_k4(ar, g, k) ^ 0x80808080u));
                const int8_t *blk = bj + (size_t)g * 64;
                for (int q = 0; q < 4; q++) acc[q] = vdotq_s32(acc[q], vld1q_s8(blk + 16 * q), av);
            }
            store_cols(c + (size_t)i * ldc + 16 * j, acc, cols);
        }
    }
}

DOTPROD void pse_gemm_s8u8_packed_dotprod(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc) {
    const int kg = (k + 3) / 4, nb = (n + 15) / 16;
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int i = 0; i < m; i++) {
        const int8_t *ar = a + (size_t)i * lda;
        int32_t rowsum = 0;
        for (int p = 0; p < k; p++) rowsum += ar[p];
        const int32x4_t base = vdupq_n_s32(rowsum * 128);
        for (int j = 0; j < nb; j++) {
            const uint8_t *bj = bp + (size_t)j * kg * 64;
            const int cols = n - 16 * j < 16 ? n - 16 * j : 16;
            int32x4_t acc[4] = {base, base, base, base};
            for (int g = 0; g < kg; g++) {
                const int8x16_t av = vreinterpretq_s8_u32(vdupq_n_u32(pse_load_k4(ar, g, k)));
                const uint8_t *blk = bj + (size_t)g * 64;
                for (int q = 0; q < 4; q++)
                    acc[q] = vdotq_s32(acc[q], vreinterpretq_s8_u8(veorq_u8(vld1q_u8(blk + 16 * q), flip)), av);
            }
            store_cols(c + (size_t)i * ldc + 16 * j, acc, cols);
        }
    }
}
#endif
