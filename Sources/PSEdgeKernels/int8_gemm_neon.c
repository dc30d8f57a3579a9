// ARM NEON packed int8 GEMM (baseline AArch64). Both operands are widened to int16 and multiplied into int32
// (vmull), so nothing saturates: results equal the scalar reference bit for bit.
#if defined(__aarch64__)
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <arm_neon.h>

// Four k-bytes of A widened to int16, twice: [a0 a1 a2 a3 a0 a1 a2 a3].
static inline int16x8_t widen_a_u8(uint32_t w) {
    int16x4_t v = vreinterpret_s16_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(w)))));
    return vcombine_s16(v, v);
}
static inline int16x8_t widen_a_s8(uint32_t w) {
    int16x4_t v = vget_low_s16(vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(w))));
    return vcombine_s16(v, v);
}

// Dot products of 4 columns (16 bytes: 4 k-bytes per column) with A's 4 k-bytes.
static inline int32x4_t dot4(int16x8_t b01, int16x8_t b23, int16x8_t a) {
    int32x4_t c0 = vmull_s16(vget_low_s16(b01), vget_low_s16(a)), c1 = vmull_high_s16(b01, a);
    int32x4_t c2 = vmull_s16(vget_low_s16(b23), vget_low_s16(a)), c3 = vmull_high_s16(b23, a);
    return vpaddq_s32(vpaddq_s32(c0, c1), vpaddq_s32(c2, c3));
}
static inline int32x4_t dot4_s8(const int8_t *b, int16x8_t a) {
    int8x16_t v = vld1q_s8(b);
    return dot4(vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v), a);
}
static inline int32x4_t dot4_u8(const uint8_t *b, int16x8_t a) {
    uint8x16_t v = vld1q_u8(b);
    return dot4(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))), vreinterpretq_s16_u16(vmovl_high_u8(v)), a);
}

static void store_cols(int32_t *dst, const int32x4_t acc[4], int cols) {
    int32_t tmp[16];
    for (int q = 0; q < 4; q++) vst1q_s32(tmp + 4 * q, acc[q]);
    for (int l = 0; l < cols; l++) dst[l] = tmp[l];
}

#define DEFINE_NEON_GEMM(NAME, AT, BT, WIDEN_A, DOT4)                                                          \
    void NAME(int m, int n, int k, const AT *a, int lda, const BT *bp, int32_t *c, int ldc) {                  \
        const int kg = (k + 3) / 4, nb = (n + 15) / 16;                                                        \
        for (int j = 0; j < nb; j++) {                                                                         \
            const BT *bj = bp + (size_t)j * kg * 64;                                                           \
            const int cols = n - 16 * j < 16 ? n - 16 * j : 16;                                                \
            for (int i = 0; i < m; i++) {                                                                      \
                const AT *ar = a + (size_t)i * lda;                                                            \
                int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};           \
                for (int g = 0; g < kg; g++) {                                                                 \
                    const BT *blk = bj + (size_t)g * 64;                                                       \
                    const int16x8_t av = WIDEN_A(pse_load_k4(ar, g, k));                                       \
                    for (int q = 0; q < 4; q++) acc[q] = vaddq_s32(acc[q], DOT4(blk + 16 * q, av));            \
                }                                                                                              \
                store_cols(c + (size_t)i * ldc + 16 * j, acc, cols);                                           \
            }                                                                                                  \
        }                                                                                                      \
    }

DEFINE_NEON_GEMM(pse_gemm_u8s8_packed_neon, uint8_t, int8_t, widen_a_u8, dot4_s8)
DEFINE_NEON_GEMM(pse_gemm_s8u8_packed_neon, int8_t, uint8_t, widen_a_s8, dot4_u8)
#endif
