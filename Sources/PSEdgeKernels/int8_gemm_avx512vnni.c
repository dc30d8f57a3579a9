// AVX-512 VNNI packed int8 GEMM: vpdpbusd multiplies 4 u8 × 4 s8 and adds into each int32 lane, so one
// instruction does 16 columns × 4 k. The microkernel holds a 4-row × 64-column tile in 16 accumulators: per k-group
// it loads 4 B vectors and broadcasts 4 A words for 16 vpdpbusd (loads are half the instructions of a
// 1-row × 16-column loop). Columns left over in blocks of 16, rows in ones.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <immintrin.h>

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// dpbusd(acc, unsigned, signed): with B signed the broadcast A (unsigned) goes first.
#define DP_A_UNSIGNED(acc, b, abc) _mm512_dpbusd_epi32(acc, abc, b)
#define DP_B_UNSIGNED(acc, b, abc) _mm512_dpbusd_epi32(acc, b, abc)

static inline int32_t load_word(const void *p) { int32_t v; __builtin_memcpy(&v, p, 4); return v; }

static inline __mmask16 col_mask(int cols) { return cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1); }

#define DEFINE_VNNI_GEMM(NAME, AT, BT, DP)                                                                    \
    /* R rows × Q blocks of 16 columns, accumulators c[R][Q]. */                                               \
    VNNI static inline void NAME##_tile(int R, int Q, int k, const AT *a, int lda, const BT *b0, size_t bstride,    \
                                        int32_t *c, int ldc, int last_cols) {                                  \
        __m512i acc[4][4];                                                                                     \
        for (int r = 0; r < 4; r++)                                                                            \
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_si512();                                    \
        const int kfull = k / 4, kg = (k + 3) / 4;                                                             \
        for (int g = 0; g < kg; g++) {                                                                         \
            __m512i b[4];                                                                                      \
            for (int q = 0; q < Q; q++) b[q] = _mm512_loadu_si512((const void *)(b0 + q * bstride + (size_t)g * 64)); \
            for (int r = 0; r < R; r++) {                                                                      \
                const AT *ar = a + (size_t)r * lda;                                                            \
                const __m512i av = _mm512_set1_epi32(g < kfull ? load_word(ar + 4 * g) : (int)pse_load_k4(ar, g, k)); \
                for (int q = 0; q < Q; q++) acc[r][q] = DP(acc[r][q], b[q], av);                               \
            }                                                                                                  \
        }                                                                                                      \
        for (int r = 0; r < R; r++)                                                                            \
            for (int q = 0; q < Q; q++)                                                                        \
                _mm512_mask_storeu_epi32(c + (size_t)r * ldc + 16 * q, q == Q - 1 ? col_mask(last_cols) : 0xFFFF, acc[r][q]); \
    }                                                                                                          \
    VNNI void NAME(int m, int n, int k, const AT *a, int lda, const BT *bp, int32_t *c, int ldc) {             \
        const int kg = (k + 3) / 4, nb = (n + 15) / 16;                                                        \
        const size_t bstride = (size_t)kg * 64;                                                                \
        for (int j = 0; j < nb; j += 4) {                                                                      \
            const int Q = nb - j < 4 ? nb - j : 4;                                                             \
            const int last_cols = n - 16 * (j + Q - 1);                                                        \
            for (int i = 0; i < m; i += 4) {                                                                   \
                const int R = m - i < 4 ? m - i : 4;                                                           \
                /* Constant R, Q for the full tile so the compiler unrolls it into registers. */               \
                if (R == 4 && Q == 4)                                                                          \
                    NAME##_tile(4, 4, k, a + (size_t)i * lda, lda, bp + j * bstride, bstride, c + (size_t)i * ldc + 16 * j, ldc, last_cols); \
                else                                                                                           \
                    NAME##_tile(R, Q, k, a + (size_t)i * lda, lda, bp + j * bstride, bstride, c + (size_t)i * ldc + 16 * j, ldc, last_cols); \
            }                                                                                                  \
        }                                                                                                      \
    }

DEFINE_VNNI_GEMM(pse_gemm_u8s8_packed_avx512vnni, uint8_t, int8_t, DP_A_UNSIGNED)
DEFINE_VNNI_GEMM(pse_gemm_s8u8_packed_avx512vnni, int8_t, uint8_t, DP_B_UNSIGNED)
#endif
