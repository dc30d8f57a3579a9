// Activation quantization and min/max, AVX-512F: 16 floats per step (quantize_impl.h).
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "quantize_impl.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

AVX512 void pse_quantize_u8_avx512(const float *x, uint8_t *q, size_t n, float scale, int zero_point) {
    const float inv = 1.0f / scale, zp = (float)zero_point;
    const __m512 vinv = _mm512_set1_ps(inv), vzp = _mm512_set1_ps(zp), magic = _mm512_set1_ps(PSE_QUANT_MAGIC);
    const __m512 lo = _mm512_set1_ps(-512.0f), hi = _mm512_set1_ps(512.0f), zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);  // max(v, lo) = v > lo ? v : lo: NaN becomes lo
        v = _mm512_add_ps(_mm512_sub_ps(_mm512_add_ps(v, magic), magic), vzp);
        v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
    }
    for (; i < n; i++) q[i] = pse_quantize_one(x[i], inv, zp);
}

AVX512 void pse_minmax_avx512(const float *x, size_t n, float *min_out, float *max_out) {
    float lo = n ? x[0] : 0.0f, hi = lo;
    size_t i = 1;
    if (n >= 17) {
        __m512 vlo = _mm512_set1_ps(lo), vhi = vlo;
        for (; i + 16 <= n; i += 16) {
            const __m512 v = _mm512_loadu_ps(x + i);
            vlo = _mm512_min_ps(v, vlo);  // v < lo ? v : lo, as the reference
            vhi = _mm512_max_ps(v, vhi);
        }
        float l[16], h[16];
        _mm512_storeu_ps(l, vlo);
        _mm512_storeu_ps(h, vhi);
        pse_minmax_tail(l, 0, 16, &lo, &hi);
        pse_minmax_tail(h, 0, 16, &lo, &hi);
    }
    pse_minmax_tail(x, i, n, &lo, &hi);
    *min_out = lo;
    *max_out = hi;
}
#endif
