// Depthwise convolution, AVX-512F: 16 output columns per vector (stride 1, or stride 2 with a two-register
// permute); borders and other strides per pixel.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "dwconv_impl.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

// Elements p[0], p[2], …, p[30] (reads p[31]).
AVX512 static inline __m512 load_even16(const float *p) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
}

AVX512 void pse_dwconv2d_f32_avx512(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                                    int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow) {
    int lo = ow, hi = ow;
    if (sw == 1 || sw == 2) pse_dw_interior(w, kw, pad_l, sw, dw, ow, sw - 1, &lo, &hi);
    const __m512 zero = _mm512_setzero_ps();
    for (int oy = 0; oy < oh; oy++) {
        const int iy0 = oy * sh - pad_t;
        float *yr = y + (long)oy * ow;
        pse_dw_pixels(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, ow, oy, 0, lo);
        int ox = lo;
        for (; ox + 16 <= hi; ox += 16) {
            __m512 acc = _mm512_set1_ps(bias);
            for (int ky = 0; ky < kh; ky++) {
                const int iy = iy0 + ky * dh;
                const float *row = x + (long)iy * w + (ox * sw - pad_l);
                const int inside = iy >= 0 && iy < h;
                for (int kx = 0; kx < kw; kx++) {
                    const __m512 v = !inside ? zero : sw == 1 ? _mm512_loadu_ps(row + kx * dw) : load_even16(row + kx * dw);
                    acc = _mm512_fmadd_ps(v, _mm512_set1_ps(f[ky * kw + kx]), acc);
                }
            }
            _mm512_storeu_ps(yr + ox, acc);
        }
        pse_dw_pixels(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, ow, oy, ox, ow);
    }
}
#endif
