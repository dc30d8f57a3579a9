// Activation quantization and min/max, AVX2: 8 floats per step (quantize_impl.h).
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "quantize_impl.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

AVX2 void pse_quantize_u8_avx2(const float *x, uint8_t *q, size_t n, float scale, int zero_point) {
    const float inv = 1.0f / scale, zp = (float)zero_point;
    const __m256 vinv = _mm256_set1_ps(inv), vzp = _mm256_set1_ps(zp), magic = _mm256_set1_ps(PSE_QUANT_MAGIC);
    const __m256 lo = _mm256_set1_ps(-512.0f), hi = _mm256_set1_ps(512.0f), zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv);
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // max(v, lo) = v > lo ? v : lo: NaN becomes lo
        v = _mm256_add_ps(_mm256_sub_ps(_mm256_add_ps(v, magic), magic), vzp);
        v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
        const __m256i w = _mm256_cvttps_epi32(v);  // 0…255 in each 32-bit lane
        const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(w16, w16));
    }
    for (; i < n; i++) q[i] = pse_quantize_one(x[i], inv, zp);
}

AVX2 void pse_minmax_avx2(const float *x, size_t n, float *min_out, float *max_out) {
    float lo = n ? x[0] : 0.0f, hi = lo;
    size_t i = 1;
    if (n >= 9) {
        __m256 vlo = _mm256_set1_ps(lo), vhi = vlo;
        for (; i + 8 <= n; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            vlo = _mm256_min_ps(v, vlo);  // v < lo ? v : lo, as the reference
            vhi = _mm256_max_ps(v, vhi);
        }
        float l[8], h[8];
        _mm256_storeu_ps(l, vlo);
        _mm256_storeu_ps(h, vhi);
        pse_minmax_tail(l, 0, 8, &lo, &hi);
        pse_minmax_tail(h, 0, 8, &lo, &hi);
    }
    pse_minmax_tail(x, i, n, &lo, &hi);
    *min_out = lo;
    *max_out = hi;
}
#endif
