// Max pooling of one plane, AVX-512F: column maxima 16 at a time, then the windows of stride 1 or 2 along them 16
// outputs at a time (stride 2 takes every other column by a two-register permute). Other strides go the portable
// way. The same comparisons in the same order as ops_math.c's loops (maxpool_impl.h), so the same bits.
#if defined(__x86_64__)
#include "maxpool_impl.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

static inline __mmask16 first_n(int n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

AVX512 void pse_maxpool2d_f32_avx512(PSE_MAXPOOL_PARAMS) {
    if (sw > 2) {
        pse_maxpool2d_f32_portable(x, h, w, kh, kw, sh, sw, pad_t, pad_l, y, oh, ow, t);
        return;
    }
    const __m512 lowest = _mm512_set1_ps(-INFINITY);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int lo, hi;
    pse_maxpool_inside(w, kw, sw, pad_l, ow, &lo, &hi);
    for (int oy = 0; oy < oh; oy++) {
        const int y0 = oy * sh - pad_t;
        const int r0 = y0 < 0 ? 0 : y0, r1 = y0 + kh > h ? h : y0 + kh;
        // max_ps(v, best) keeps best when v is not greater (or is NaN), as `v > best ? v : best` does.
        for (int i = 0; i < w; i += 16) {
            const __mmask16 m = first_n(w - i);
            __m512 best = lowest;
            for (int r = r0; r < r1; r++) best = _mm512_max_ps(_mm512_mask_loadu_ps(lowest, m, x + (size_t)r * w + i), best);
            _mm512_mask_storeu_ps(t + i, m, best);
        }
        float *yr = y + (size_t)oy * ow;
        for (int ox = lo; ox < hi; ox += 16) {
            const __mmask16 m = first_n(hi - ox);
            __m512 best = lowest;
            for (int c = 0; c < kw; c++) {
                const int at = ox * sw + c - pad_l;  // the first output's column; all lie in [0, w)
                __m512 v;
                if (sw == 1) {
                    v = _mm512_maskz_loadu_ps(m, t + at);
                } else {
                    // Columns at, at+2, …: 32 loaded (only those below w), the even ones kept.
                    const __m512 a = _mm512_maskz_loadu_ps(first_n(w - at), t + at);
                    const __m512 b = _mm512_maskz_loadu_ps(first_n(w - at - 16), t + at + 16);
                    v = _mm512_permutex2var_ps(a, even, b);
                }
                best = _mm512_max_ps(v, best);
            }
            _mm512_mask_storeu_ps(yr + ox, m, best);
        }
        for (int ox = 0; ox < lo; ox++) yr[ox] = pse_window_max(t, w, ox * sw - pad_l, kw);
        for (int ox = hi; ox < ow; ox++) yr[ox] = pse_window_max(t, w, ox * sw - pad_l, kw);
    }
}
#endif
