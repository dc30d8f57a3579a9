// fp32 convolution GEMM over packed panels, AVX-512F: tiles of 8 rows × 32 columns (two panels), 16 accumulators
// (sconv_impl.h). Ragged columns go through masked loads and stores; leftover rows through narrower tiles.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "sconv_impl.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,prfchw")))

// R rows × Q panels starting at row 0 of a and panel 0 of bp; `cols` valid columns in total (≤ 16·Q).
#define DEFINE_TILE(R, Q)                                                                                                   \
    AVX512 static void tile_##R##x##Q(int k, const float *a, int lda, const float *bp, int ldb, size_t pstride, const float *bias, \
                                      const float *res, int ldres, int relu, int residual_first, float *c, int ldc, int cols, const float *next) { \
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
        /* The tile's output and residual lines are requested now and arrive while it sums. */                             \
        for (int r = 0; r < R; r++)                                                                                         \
            for (int q = 0; q < Q; q++) {                                                                                   \
                __builtin_prefetch(c + (size_t)r * ldc + 16 * q, 1, 3);                                                   \
                if (res) _mm_prefetch((const char *)(res + (size_t)r * ldres + 16 * q), _MM_HINT_T0);                      \
            }                                                                                                               \
        for (int kk = 0; kk < k; kk++) {                                                                                    \
            __m512 b[Q];                                                                                                    \
            if (next)                                                                                                       \
                for (int q = 0; q < Q; q++) _mm_prefetch((const char *)(next + q * pstride + (size_t)kk * ldb), _MM_HINT_T0); \
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
        // The first row group also requests the next column group's activations (strided rows when read in place,
        // which the hardware prefetcher does not follow); the later row groups find this group's in cache.
        const float *next = j + 32 < n ? b + 2 * pstride : NULL;
        int r = 0;
        // The last panel alone when 16 columns or fewer are left (the next panel may not exist).
#define RUN(R, Q)                                                                                                           \
        for (; r + R <= m; r += R)                                                                                          \
            tile_##R##x##Q(k, a + (size_t)r * lda, lda, b, ldb, pstride, bias ? bias + r : NULL,                            \
                           rj ? rj + (size_t)r * ldres : NULL, ldres, relu, residual_first, c + (size_t)r * ldc + j, ldc, cols, \
                           r == 0 ? next : NULL);
        if (cols > 16) { RUN(8, 2) RUN(4, 2) RUN(2, 2) RUN(1, 2) }
        else { RUN(8, 1) RUN(4, 1) RUN(2, 1) RUN(1, 1) }
#undef RUN
    }
}
// ---- Rows form (weights in 16-row panels): tiles of P panels (16·P output channels) × J columns, one vector per
// panel and column; results leave through scatters (the tile's channels are a column of the output). ----

#define DEFINE_ROWS_TILE(P, J)                                                                                              \
    AVX512 static void rows_##P##x##J(int k, const float *ap, size_t apstride, const float *b, int ldb, const float *bias,  \
                                      const float *res, int ldres, int relu, int residual_first, float *c, int ldc,        \
                                      int rows) {                                                                           \
        __m512 acc[P][J];                                                                                                   \
        __mmask16 live[P];                                                                                                  \
        for (int p = 0; p < P; p++) {                                                                                       \
            const int left = rows - 16 * p;                                                                                 \
            live[p] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);                      \
            const __m512 b0 = bias ? _mm512_maskz_loadu_ps(live[p], bias + 16 * p) : _mm512_setzero_ps();                   \
            for (int j = 0; j < J; j++) acc[p][j] = b0;                                                                     \
        }                                                                                                                   \
        for (int kk = 0; kk < k; kk++) {                                                                                    \
            __m512 a[P];                                                                                                    \
            for (int p = 0; p < P; p++) a[p] = _mm512_loadu_ps(ap + p * apstride + (size_t)kk * 16);                        \
            const float *bk = b + (size_t)kk * ldb;                                                                         \
            for (int j = 0; j < J; j++) {                                                                                   \
                const __m512 bv = _mm512_set1_ps(bk[j]);                                                                    \
                for (int p = 0; p < P; p++) acc[p][j] = _mm512_fmadd_ps(a[p], bv, acc[p][j]);                              \
            }                                                                                                               \
        }                                                                                                                   \
        const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);                        \
        const __m512i at_c = _mm512_mullo_epi32(lane, _mm512_set1_epi32(ldc));                                              \
        const __m512i at_r = _mm512_mullo_epi32(lane, _mm512_set1_epi32(ldres));                                            \
        const __m512 zero = _mm512_setzero_ps();                                                                            \
        for (int p = 0; p < P; p++) {                                                                                       \
            for (int j = 0; j < J; j++) {                                                                                   \
                __m512 v = acc[p][j];                                                                                       \
                const float *rr = res ? res + (size_t)16 * p * ldres + j : NULL;                                            \
                if (rr && residual_first) v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(zero, live[p], at_r, rr, 4));       \
                if (relu) v = _mm512_max_ps(v, zero);                                                                       \
                if (rr && !residual_first) v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(zero, live[p], at_r, rr, 4));      \
                _mm512_mask_i32scatter_ps(c + (size_t)16 * p * ldc + j, live[p], at_c, v, 4);                               \
            }                                                                                                               \
        }                                                                                                                   \
    }

DEFINE_ROWS_TILE(2, 8)
DEFINE_ROWS_TILE(2, 4)
DEFINE_ROWS_TILE(2, 2)
DEFINE_ROWS_TILE(2, 1)
DEFINE_ROWS_TILE(1, 8)
DEFINE_ROWS_TILE(1, 4)
DEFINE_ROWS_TILE(1, 2)
DEFINE_ROWS_TILE(1, 1)

AVX512 void pse_sconv_rows_avx512(PSE_SCONV_ROWS_PARAMS) {
    // Rows outer: a tile's weight panels (K·32 floats) stay in cache while every column group uses them. Column
    // groups of 8, then 4, 2, 1 never cross a 16-column activation panel.
    for (int r = 0; r < m; r += 32) {
        const int rows = m - r < 32 ? m - r : 32;
        const float *a = ap + (size_t)(r / 16) * apstride;
        for (int j = 0; j < n;) {
            const int left = n - j, J = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            const float *b = bp + (size_t)(j / PSE_SCONV_PANEL) * pstride + j % PSE_SCONV_PANEL;
            const float *bi = bias ? bias + r : NULL, *ri = res ? res + (size_t)r * ldres + j : NULL;
            float *ci = c + (size_t)r * ldc + j;
#define RUN(P, JJ) rows_##P##x##JJ(k, a, apstride, b, ldb, bi, ri, ldres, relu, residual_first, ci, ldc, rows)
            if (rows > 16) {
                if (J == 8) RUN(2, 8); else if (J == 4) RUN(2, 4); else if (J == 2) RUN(2, 2); else RUN(2, 1);
            } else {
                if (J == 8) RUN(1, 8); else if (J == 4) RUN(1, 4); else if (J == 2) RUN(1, 2); else RUN(1, 1);
            }
#undef RUN
            j += J;
        }
    }
}
#endif
