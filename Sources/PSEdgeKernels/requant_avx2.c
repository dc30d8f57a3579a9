// Dequantization with the fused epilogue, AVX2: 8 elements per step (requant_impl.h).
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "requant_impl.h"
#include <immintrin.h>

#define ISA __attribute__((target("avx2")))

ISA void pse_dequant_rows_avx2(PSE_DEQUANT_PARAMS) {
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        const pse_dequant_row row = pse_dequant_row_at(r, acc, ldacc, x_scale, zp, wscale, wsum, residual, ldres, y, ldy);
        const float scale = row.scale;
        const int32_t corr = row.corr, *a = row.acc;
        const float *res = row.res;
        float *o = row.y;
        const __m256i vcorr = _mm256_set1_epi32(corr);
        const __m256 vscale = _mm256_set1_ps(scale), vbias = _mm256_set1_ps(bias ? bias[r] : 0.0f);
        int j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(a + j)), vcorr)), vscale);
            if (bias) v = _mm256_add_ps(v, vbias);
            if (res && residual_first) v = _mm256_add_ps(v, _mm256_loadu_ps(res + j));
            if (relu) v = _mm256_max_ps(v, zero);  // v > 0 ? v : 0
            if (res && !residual_first) v = _mm256_add_ps(v, _mm256_loadu_ps(res + j));
            _mm256_storeu_ps(o + j, v);
        }
        for (; j < n; j++)
            o[j] = pse_dequant_one(a[j], corr, scale, bias ? bias + r : NULL, res ? res + j : NULL, relu, residual_first);
    }
}

ISA void pse_dequant_cols_avx2(PSE_DEQUANT_COLS_PARAMS) {
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        const int32_t *a = acc + (size_t)r * ldacc;
        const float *res = residual ? residual + (size_t)r * ldres : NULL;
        float *o = y + (size_t)r * ldy;
        const __m256i vzp = _mm256_set1_epi32(zp[r]);
        const __m256 vxs = _mm256_set1_ps(x_scale[r]);
        int j = 0;
        for (; j + 8 <= n; j += 8) {
            const __m256i corr = _mm256_mullo_epi32(vzp, _mm256_loadu_si256((const __m256i *)((wsum + j))));  // wraps like the reference
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)((a + j))), corr)), _mm256_mul_ps(vxs, _mm256_loadu_ps(wscale + j)));
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
            if (res && residual_first) v = _mm256_add_ps(v, _mm256_loadu_ps(res + j));
            if (relu) v = _mm256_max_ps(v, zero);
            if (res && !residual_first) v = _mm256_add_ps(v, _mm256_loadu_ps(res + j));
            _mm256_storeu_ps(o + j, v);
        }
        for (; j < n; j++) {
            const int32_t corr = (int32_t)((uint32_t)zp[r] * (uint32_t)wsum[j]);
            o[j] = pse_dequant_one(a[j], corr, x_scale[r] * wscale[j], bias ? bias + j : NULL, res ? res + j : NULL, relu,
                                   residual_first);
        }
    }
}
#endif
