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
        /* Masked loads (slow on some CPUs) only for a ragged last panel. */                                                \
        for (int kk = 0; kk < k; kk++) {                                                                                    \
            const float *bk = b + (size_t)kk * ldb;                                                                         \
            const __m256 b0 = cols >= 16 ? _mm256_loadu_ps(bk) : _mm256_maskload_ps(bk, in0);                               \
            const __m256 b1 = cols >= 16 ? _mm256_loadu_ps(bk + 8) : _mm256_maskload_ps(bk + 8, in1);                       \
            for (int r = 0; r < R; r++) {                                                                                   \
                const __m256 av = _mm256_set1_ps(a[(size_t)r * lda + kk]);                                                  \
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);                                                                     \
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);                                                                     \
            }                                                                                                               \
        }                                                                                                                   \
        const __m256 zero = _mm256_setzero_ps();                                                                            \
        for (int r = 0; r < R; r++) {                                                                                       \
            const float *rr = res ? res + (size_t)r * ldres : NULL;                                                         \
            float *cr = c + (size_t)r * ldc;                                                                                \
            if (cols == 16) {                                                                                               \
                __m256 v0 = lo[r], v1 = hi[r];                                                                              \
                if (rr && residual_first) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rr)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rr + 8)); } \
                if (relu) { v0 = _mm256_max_ps(v0, zero); v1 = _mm256_max_ps(v1, zero); }  /* v > 0 ? v : 0 */             \
                if (rr && !residual_first) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rr)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rr + 8)); } \
                _mm256_storeu_ps(cr, v0);                                                                                   \
                _mm256_storeu_ps(cr + 8, v1);                                                                               \
                continue;                                                                                                   \
            }                                                                                                               \
            float sums[16];                                                                                                 \
            _mm256_storeu_ps(sums, lo[r]);                                                                                  \
            _mm256_storeu_ps(sums + 8, hi[r]);                                                                              \
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
// ---- Rows form (weights in 16-row panels, sconv_impl.h): tiles of one panel (two 8-lane halves) × J columns;
// results go out through a small stack tile (AVX2 has no scatter), finished with the same operations. ----

#define DEFINE_ROWS_TILE(J)                                                                                                 \
    AVX2 static void rows_##J(int k, const float *a, const float *b, int ldb, const float *bias, const float *res,         \
                              int ldres, int relu, int residual_first, float *c, int ldc, int rows) {                      \
        __m256 lo[J], hi[J];                                                                                                \
        float bz[16] = {0};                                                                                                 \
        for (int r = 0; r < rows; r++) bz[r] = bias ? bias[r] : 0.0f;                                                      \
        for (int j = 0; j < J; j++) lo[j] = _mm256_loadu_ps(bz), hi[j] = _mm256_loadu_ps(bz + 8);                           \
        for (int kk = 0; kk < k; kk++) {                                                                                    \
            const __m256 a0 = _mm256_loadu_ps(a + (size_t)kk * 16), a1 = _mm256_loadu_ps(a + (size_t)kk * 16 + 8);          \
            const float *bk = b + (size_t)kk * ldb;                                                                         \
            for (int j = 0; j < J; j++) {                                                                                   \
                const __m256 bv = _mm256_set1_ps(bk[j]);                                                                    \
                lo[j] = _mm256_fmadd_ps(a0, bv, lo[j]);                                                                     \
                hi[j] = _mm256_fmadd_ps(a1, bv, hi[j]);                                                                     \
            }                                                                                                               \
        }                                                                                                                   \
        for (int j = 0; j < J; j++) {                                                                                       \
            float t[16];                                                                                                    \
            _mm256_storeu_ps(t, lo[j]);                                                                                     \
            _mm256_storeu_ps(t + 8, hi[j]);                                                                                 \
            for (int r = 0; r < rows; r++)                                                                                  \
                c[(size_t)r * ldc + j] = pse_sconv_finish(t[r], res ? res + (size_t)r * ldres + j : NULL, relu, residual_first); \
        }                                                                                                                   \
    }

DEFINE_ROWS_TILE(4)
DEFINE_ROWS_TILE(2)
DEFINE_ROWS_TILE(1)

AVX2 void pse_sconv_rows_avx2(PSE_SCONV_ROWS_PARAMS) {
    for (int r = 0; r < m; r += 16) {
        const int rows = m - r < 16 ? m - r : 16;
        const float *a = ap + (size_t)(r / 16) * apstride;
        for (int j = 0; j < n;) {
            const int left = n - j, J = left >= 4 ? 4 : left >= 2 ? 2 : 1;
            const float *b = bp + (size_t)(j / PSE_SCONV_PANEL) * pstride + j % PSE_SCONV_PANEL;
            const float *bi = bias ? bias + r : NULL, *ri = res ? res + (size_t)r * ldres + j : NULL;
            float *ci = c + (size_t)r * ldc + j;
            if (J == 4) rows_4(k, a, b, ldb, bi, ri, ldres, relu, residual_first, ci, ldc, rows);
            else if (J == 2) rows_2(k, a, b, ldb, bi, ri, ldres, relu, residual_first, ci, ldc, rows);
            else rows_1(k, a, b, ldb, bi, ri, ldres, relu, residual_first, ci, ldc, rows);
            j += J;
        }
    }
}
#endif
