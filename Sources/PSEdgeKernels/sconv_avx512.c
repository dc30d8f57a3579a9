// fp32 convolution GEMM over packed panels, AVX-512F: tiles of 8 rows × 32 columns (two panels), 16 accumulators
// (sconv_impl.h). Ragged columns go through masked loads and stores; leftover rows through narrower tiles.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "sconv_impl.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

// R rows × Q panels starting at row 0 of a and panel 0 of bp; `cols` valid columns in total (≤ 16·Q).
#define DEFINE_TILE(R, Q)                                                                                                   \
    AVX512 static void tile_##R##x##Q(int k, const float *a, int lda, const float *bp, int ldb, size_t pstride, const float *bias, \
                                      const float *res, int ldres, int relu, int residual_first, float *c, int ldc, int cols) { \
        __m512 acc[R][Q];                                                                                                   \
        for (int r = 0; r < R; r++) {                                                                                       \
            const __m512 b0 = _mm512_set1_ps(bias ? bias[r] : 0.0f);                                                         \
            for (int q = 0; q < Q; q++) acc[r][q] = b0;                                                                     \
        }                                                                                                                   \
        __mmask16 in[Q];                                                                                                    \
        for (int q = 0; q < Q; q++) {                                                                                       \
            const int left = cols - 16 * q;                                                                                 \
            in[q] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);                         \
        }                                                                                                                   \
        for (int kk = 0; kk < k; kk++) {                                                                                    \
            __m512 b[Q];                                                                                                    \
            for (int q = 0; q < Q; q++) b[q] = _mm512_maskz_loadu_ps(in[q], bp + q * pstride + (size_t)kk * ldb);          \
            for (int r = 0; r < R; r++) {                                                                                   \
                const __m512 av = _mm512_set1_ps(a[(size_t)r * lda + kk]);                                                  \
                for (int q = 0; q < Q; q++) acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);                              \
            }                                                                                                               \
        }                                                                                                                   \
        const __m512 zero = _mm512_setzero_ps();                                                                            \
        for (int q = 0; q < Q; q++) {                                                                                       \
            const int left = cols - 16 * q;                                                                                 \
            if (left <= 0) break;                                                                                           \
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);                          \
            for (int r = 0; r < R; r++) {                                                                                   \
                __m512 v = acc[r][q];                                                                                       \
                const float *rr = res ? res + (size_t)r * ldres + 16 * q : NULL;                                            \
                if (rr && residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, rr));                            \
                if (relu) v = _mm512_max_ps(v, zero);                                                                       \
                if (rr && !residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, rr));                           \
                _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16 * q, mask, v);                                               \
            }                                                                                                               \
        }                                                                                                                   \
    }

DEFINE_TILE(8, 2)
DEFINE_TILE(4, 2)
DEFINE_TILE(2, 2)
DEFINE_TILE(1, 2)
DEFINE_TILE(8, 1)
DEFINE_TILE(4, 1)
DEFINE_TILE(2, 1)
DEFINE_TILE(1, 1)

AVX512 void pse_sconv_gemm_avx512(PSE_SCONV_PARAMS) {
    for (int j = 0; j < n; j += 32) {
        const int cols = n - j < 32 ? n - j : 32;
        const float *b = bp + (size_t)(j / PSE_SCONV_PANEL) * pstride;
        const float *rj = res ? res + j : NULL;
        int r = 0;
        // The last panel alone when 16 columns or fewer are left (the next panel may not exist).
#define RUN(R, Q)                                                                                                           \
        for (; r + R <= m; r += R)                                                                                          \
            tile_##R##x##Q(k, a + (size_t)r * lda, lda, b, ldb, pstride, bias ? bias + r : NULL,                            \
                           rj ? rj + (size_t)r * ldres : NULL, ldres, relu, residual_first, c + (size_t)r * ldc + j, ldc, cols);
        if (cols > 16) { RUN(8, 2) RUN(4, 2) RUN(2, 2) RUN(1, 2) }
        else { RUN(8, 1) RUN(4, 1) RUN(2, 1) RUN(1, 1) }
#undef RUN
    }
}
#endif
