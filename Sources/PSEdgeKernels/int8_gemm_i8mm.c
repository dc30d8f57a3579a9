// ARM i8mm (ARMv8.6 USMMLA) packed int8 GEMM. USMMLA multiplies a 2×8 unsigned matrix by a 2×8 signed one
// (transposed) into a 2×2 int32 tile, so u8 × s8 needs no sign shift: exact integer sums, equal to the scalar
// reference bit for bit. Two packed k-groups (16 columns × 4 k each) are zipped into column pairs of 8 k.
// u8s8: rows of A are the unsigned operand; s8u8: the packed u8 columns are, and the tile comes out transposed.
#if defined(__aarch64__)
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <arm_neon.h>

#if defined(__clang__)
#define I8MM __attribute__((target("i8mm")))
#else
#define I8MM __attribute__((target("arch=armv8.2-a+i8mm")))
#endif

// 8 bytes of row `r` starting at k-group g (two groups; missing k read as 0).
static inline uint64_t load_k8(const void *row, int g, int k) {
    const int kg = (k + 3) / 4;
    const uint64_t lo = pse_load_k4(row, g, k), hi = g + 1 < kg ? pse_load_k4(row, g + 1, k) : 0;
    return lo | hi << 32;
}

// The 16 columns of k-groups g, g+1 of one packed block as 8 column pairs of 8 k: pair p = columns 2p, 2p+1.
static inline void column_pairs(const uint8_t *blk, int g, int kg, uint8x16_t pair[8]) {
    const uint8x16_t zero = vdupq_n_u8(0);
    for (int q = 0; q < 4; q++) {
        const uint32x4_t x = vreinterpretq_u32_u8(vld1q_u8(blk + (size_t)g * 64 + 16 * q));
        const uint32x4_t y = vreinterpretq_u32_u8(g + 1 < kg ? vld1q_u8(blk + (size_t)(g + 1) * 64 + 16 * q) : zero);
        pair[2 * q] = vreinterpretq_u8_u32(vzip1q_u32(x, y));
        pair[2 * q + 1] = vreinterpretq_u8_u32(vzip2q_u32(x, y));
    }
}

I8MM void pse_gemm_u8s8_packed_i8mm(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc) {
    const int kg = (k + 3) / 4, nb = (n + 15) / 16;
    for (int j = 0; j < nb; j++) {
        const uint8_t *bj = (const uint8_t *)bp + (size_t)j * kg * 64;
        const int cols = n - 16 * j < 16 ? n - 16 * j : 16;
        for (int i = 0; i < m; i += 2) {
            const uint8_t *r0 = a + (size_t)i * lda, *r1 = i + 1 < m ? r0 + lda : r0;  // an odd last row pairs with itself
            int32x4_t acc[8];
            for (int p = 0; p < 8; p++) acc[p] = vdupq_n_s32(0);
            for (int g = 0; g < kg; g += 2) {
                const uint8x16_t av = vreinterpretq_u8_u64(vcombine_u64(vcreate_u64(load_k8(r0, g, k)), vcreate_u64(load_k8(r1, g, k))));
                uint8x16_t pair[8];
                column_pairs(bj, g, kg, pair);
                for (int p = 0; p < 8; p++) acc[p] = vusmmlaq_s32(acc[p], av, vreinterpretq_s8_u8(pair[p]));
            }
            // acc[p] = [row0 col 2p, row0 col 2p+1, row1 col 2p, row1 col 2p+1]
            int32_t t0[16], t1[16];
            for (int p = 0; p < 8; p++) {
                vst1_s32(t0 + 2 * p, vget_low_s32(acc[p]));
                vst1_s32(t1 + 2 * p, vget_high_s32(acc[p]));
            }
            for (int l = 0; l < cols; l++) c[(size_t)i * ldc + 16 * j + l] = t0[l];
            if (i + 1 < m)
                for (int l = 0; l < cols; l++) c[(size_t)(i + 1) * ldc + 16 * j + l] = t1[l];
        }
    }
}

I8MM void pse_gemm_s8u8_packed_i8mm(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc) {
    const int kg = (k + 3) / 4, nb = (n + 15) / 16;
    for (int j = 0; j < nb; j++) {
        const uint8_t *bj = bp + (size_t)j * kg * 64;
        const int cols = n - 16 * j < 16 ? n - 16 * j : 16;
        for (int i = 0; i < m; i += 2) {
            const int8_t *r0 = a + (size_t)i * lda, *r1 = i + 1 < m ? r0 + lda : r0;
            int32x4_t acc[8];
            for (int p = 0; p < 8; p++) acc[p] = vdupq_n_s32(0);
            for (int g = 0; g < kg; g += 2) {
                const int8x16_t wv = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(load_k8(r0, g, k)), vcreate_u64(load_k8(r1, g, k))));
                uint8x16_t pair[8];
                column_pairs(bj, g, kg, pair);
                for (int p = 0; p < 8; p++) acc[p] = vusmmlaq_s32(acc[p], pair[p], wv);
            }
            // Transposed: acc[p] = [col 2p row0, col 2p row1, col 2p+1 row0, col 2p+1 row1]
            int32_t t0[16], t1[16];
            for (int p = 0; p < 8; p++) {
                t0[2 * p] = vgetq_lane_s32(acc[p], 0);
                t1[2 * p] = vgetq_lane_s32(acc[p], 1);
                t0[2 * p + 1] = vgetq_lane_s32(acc[p], 2);
                t1[2 * p + 1] = vgetq_lane_s32(acc[p], 3);
            }
            for (int l = 0; l < cols; l++) c[(size_t)i * ldc + 16 * j + l] = t0[l];
            if (i + 1 < m)
                for (int l = 0; l < cols; l++) c[(size_t)(i + 1) * ldc + 16 * j + l] = t1[l];
        }
    }
}
#endif
