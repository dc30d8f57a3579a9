// AVX2 packed int8 GEMM. vpmaddubsw would saturate (u8·s8 pairs reach 2·255·127 > 32767), so both operands
// are widened to int16 and multiplied with vpmaddwd, which is exact: results equal the scalar reference.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

// Four k-bytes of A widened to int16 and repeated for 4 lanes: [a0 a1 a2 a3] × 4.
AVX2 static inline __m256i widen_a_u8(uint32_t w) {
    __m128i v = _mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)w));
    return _mm256_broadcastq_epi64(v);
}
AVX2 static inline __m256i widen_a_s8(uint32_t w) {
    __m128i v = _mm_cvtepi8_epi16(_mm_cvtsi32_si128((int)w));
    return _mm256_broadcastq_epi64(v);
}
AVX2 static inline __m256i widen_b_s8(const void *p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p)); }
AVX2 static inline __m256i widen_b_u8(const void *p) { return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p)); }

// acc_lo4 holds pair sums [l0 l0 l1 l1 l2 l2 l3 l3] of lanes 0-3, acc_hi4 of lanes 4-7 → 8 lane totals.
AVX2 static inline __m256i finish8(__m256i acc_lo4, __m256i acc_hi4) {
    __m256i h = _mm256_hadd_epi32(acc_lo4, acc_hi4);  // [l0 l1 l4 l5 | l2 l3 l6 l7]
    return _mm256_permute4x64_epi64(h, 0xD8);         // [l0 l1 l2 l3 l4 l5 l6 l7]
}

AVX2 static void store_cols(int32_t *dst, __m256i lo8, __m256i hi8, int cols) {
    if (cols == 16) {
        _mm256_storeu_si256((__m256i *)dst, lo8);
        _mm256_storeu_si256((__m256i *)(dst + 8), hi8);
        return;
    }
    int32_t tmp[16];
    _mm256_storeu_si256((__m256i *)tmp, lo8);
    _mm256_storeu_si256((__m256i *)(tmp + 8), hi8);
    for (int l = 0; l < cols; l++) dst[l] = tmp[l];
}

#define DEFINE_AVX2_GEMM(NAME, AT, BT, WIDEN_A, WIDEN_B)                                                      \
    AVX2 void NAME(int m, int n, int k, const AT *a, int lda, const BT *bp, int32_t *c, int ldc) {             \
        const int kg = (k + 3) / 4, nb = (n + 15) / 16;                                                        \
        for (int j = 0; j < nb; j++) {                                                                         \
            const BT *bj = bp + (size_t)j * kg * 64;                                                           \
            const int cols = n - 16 * j < 16 ? n - 16 * j : 16;                                                \
            for (int i = 0; i < m; i++) {                                                                      \
                const AT *ar = a + (size_t)i * lda;                                                            \
                __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;                                \
                for (int g = 0; g < kg; g++) {                                                                 \
                    const BT *blk = bj + (size_t)g * 64;                                                       \
                    const __m256i av = WIDEN_A(pse_load_k4(ar, g, k));                                         \
                    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(WIDEN_B(blk), av));                            \
                    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(WIDEN_B(blk + 16), av));                       \
                    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(WIDEN_B(blk + 32), av));                       \
                    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(WIDEN_B(blk + 48), av));                       \
                }                                                                                              \
                store_cols(c + (size_t)i * ldc + 16 * j, finish8(s0, s1), finish8(s2, s3), cols);              \
            }                                                                                                  \
        }                                                                                                      \
    }

DEFINE_AVX2_GEMM(pse_gemm_u8s8_packed_avx2, uint8_t, int8_t, widen_a_u8, widen_b_s8)
DEFINE_AVX2_GEMM(pse_gemm_s8u8_packed_avx2, int8_t, uint8_t, widen_a_s8, widen_b_u8)
#endif
