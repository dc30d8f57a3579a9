// AVX-512 VNNI packed int8 GEMM: vpdpbusd multiplies 4 u8 × 4 s8 and adds into each int32 lane,
// so one instruction does 16 columns × 4 k. Rows are processed 4 at a time, sharing each B load.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <immintrin.h>

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// U8_A: A is the unsigned operand (broadcast), B signed; otherwise B is unsigned and A signed.
#define DEFINE_VNNI_GEMM(NAME, AT, BT, DP)                                                                    \
    VNNI void NAME(int m, int n, int k, const AT *a, int lda, const BT *bp, int32_t *c, int ldc) {             \
        const int kg = (k + 3) / 4, nb = (n + 15) / 16;                                                        \
        for (int j = 0; j < nb; j++) {                                                                         \
            const BT *bj = bp + (size_t)j * kg * 64;                                                           \
            const int cols = n - 16 * j < 16 ? n - 16 * j : 16;                                                \
            const __mmask16 mask = cols == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);             \
            int i = 0;                                                                                         \
            for (; i + 4 <= m; i += 4) {                                                                       \
                __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;                                \
                const AT *a0 = a + (size_t)i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;            \
                for (int g = 0; g < kg; g++) {                                                                 \
                    const __m512i b = _mm512_loadu_si512((const void *)(bj + (size_t)g * 64));                 \
                    c0 = DP(c0, b, _mm512_set1_epi32((int)pse_load_k4(a0, g, k)));                             \
                    c1 = DP(c1, b, _mm512_set1_epi32((int)pse_load_k4(a1, g, k)));                             \
                    c2 = DP(c2, b, _mm512_set1_epi32((int)pse_load_k4(a2, g, k)));                             \
                    c3 = DP(c3, b, _mm512_set1_epi32((int)pse_load_k4(a3, g, k)));                             \
                }                                                                                              \
                int32_t *cr = c + (size_t)i * ldc + 16 * j;                                                    \
                _mm512_mask_storeu_epi32(cr, mask, c0);                                                        \
                _mm512_mask_storeu_epi32(cr + ldc, mask, c1);                                                  \
                _mm512_mask_storeu_epi32(cr + 2 * (size_t)ldc, mask, c2);                                      \
                _mm512_mask_storeu_epi32(cr + 3 * (size_t)ldc, mask, c3);                                      \
            }                                                                                                  \
            for (; i < m; i++) {                                                                               \
                __m512i c0 = _mm512_setzero_si512();                                                           \
                const AT *a0 = a + (size_t)i * lda;                                                            \
                for (int g = 0; g < kg; g++) {                                                                 \
                    const __m512i b = _mm512_loadu_si512((const void *)(bj + (size_t)g * 64));                 \
                    c0 = DP(c0, b, _mm512_set1_epi32((int)pse_load_k4(a0, g, k)));                             \
                }                                                                                              \
                _mm512_mask_storeu_epi32(c + (size_t)i * ldc + 16 * j, mask, c0);                              \
            }                                                                                                  \
        }                                                                                                      \
    }

// dpbusd(acc, unsigned, signed): B signed here, so the broadcast A (unsigned) goes first.
#define DP_A_UNSIGNED(acc, b, abc) _mm512_dpbusd_epi32(acc, abc, b)
#define DP_B_UNSIGNED(acc, b, abc) _mm512_dpbusd_epi32(acc, b, abc)

DEFINE_VNNI_GEMM(pse_gemm_u8s8_packed_avx512vnni, uint8_t, int8_t, DP_A_UNSIGNED)
DEFINE_VNNI_GEMM(pse_gemm_s8u8_packed_avx512vnni, int8_t, uint8_t, DP_B_UNSIGNED)
#endif
