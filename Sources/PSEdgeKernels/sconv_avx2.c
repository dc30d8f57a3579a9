// fp32 convolution GEMM over packed panels, AVX2 + FMA: tiles of 6 rows × 16 columns (one panel as two 8-lane
// halves), 12 accumulators (sconv_impl.h). Ragged columns go through masked loads and a stack copy; leftover
// rows through narrower tiles.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "sconv_impl.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

#define DEFINE_TILE(R)                                                                                                      \
    AVX2 static void tile_##R(int k, const float *a, int lda, const float *b, int ldb, const float *bias, const float *res,   \
                              int ldres, int relu, int residual_first, float *c, int ldc, int cols) {                      \
        __m256 lo[R], hi[R];                                                                                                \
        for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_set1_ps(bias ? bias[r] : 0.0f);                                  \
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                                     \
        const __m256i in0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);                                              \
        const __m256i in1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);                                          \
        for (int kk = 0; kk < k; kk++) {                                                                                    \
            const float *bk = b + (size_t)kk * ldb;                                                                         \
            const __m256 b0 = _mm256_maskload_ps(bk, in0), b1 = _mm256_maskload_ps(bk + 8, in1);                            \
            for (int r = 0; r < R; r++) {                                                                                   \
                const __m256 av = _mm256_set1_ps(a[(size_t)r * lda + kk]);                                                  \
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);                                                                     \
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);                                                                     \
            }                                                                                                               \
        }                                                                                                                   \
        for (int r = 0; r < R; r++) {                                                                                       \
            float sums[16];                                                                                                 \
            _mm256_storeu_ps(sums, lo[r]);                                                                                  \
            _mm256_storeu_ps(sums + 8, hi[r]);                                                                              \
            const float *rr = res ? res + (size_t)r * ldres : NULL;                                                         \
            float *cr = c + (size_t)r * ldc;                                                                                \
            for (int j = 0; j < cols; j++) cr[j] = pse_sconv_finish(sums[j], rr ? rr + j : NULL, relu, residual_first);     \
        }                                                                                                                   \
    }

DEFINE_TILE(6)
DEFINE_TILE(3)
DEFINE_TILE(1)

AVX2 void pse_sconv_gemm_avx2(PSE_SCONV_PARAMS) {
    for (int j = 0; j < n; j += PSE_SCONV_PANEL) {
        const int cols = n - j < PSE_SCONV_PANEL ? n - j : PSE_SCONV_PANEL;
        const float *b = bp + (size_t)(j / PSE_SCONV_PANEL) * pstride;
        const float *rj = res ? res + j : NULL;
        int r = 0;
#define RUN(R)                                                                                                              \
        for (; r + R <= m; r += R)                                                                                          \
            tile_##R(k, a + (size_t)r * lda, lda, b, ldb, bias ? bias + r : NULL, rj ? rj + (size_t)r * ldres : NULL, ldres, \
                     relu, residual_first, c + (size_t)r * ldc + j, ldc, cols);
        RUN(6) RUN(3) RUN(1)
#undef RUN
    }
}
#endif
