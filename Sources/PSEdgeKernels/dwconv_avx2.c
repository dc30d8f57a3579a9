// Depthwise convolution, AVX2 + FMA: 8 output columns per vector (stride 1, or stride 2 with a deinterleave);
// borders and other strides per pixel.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "dwconv_impl.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

// Elements p[0], p[2], …, p[14] (reads p[15]).
AVX2 static inline __m256 load_even8(const float *p) {
    const __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

AVX2 void pse_dwconv2d_f32_avx2(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                                int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow) {
    int lo = ow, hi = ow;
    if (sw == 1 || sw == 2) pse_dw_interior(w, kw, pad_l, sw, dw, ow, sw - 1, &lo, &hi);
    const __m256 zero = _mm256_setzero_ps();
    for (int oy = 0; oy < oh; oy++) {
        const int iy0 = oy * sh - pad_t;
        float *yr = y + (long)oy * ow;
        pse_dw_pixels(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, ow, oy, 0, lo);
        int ox = lo;
        for (; ox + 8 <= hi; ox += 8) {
            __m256 acc = _mm256_set1_ps(bias);
            for (int ky = 0; ky < kh; ky++) {
                const int iy = iy0 + ky * dh;
                const float *row = x + (long)iy * w + (ox * sw - pad_l);
                const int inside = iy >= 0 && iy < h;
                for (int kx = 0; kx < kw; kx++) {
                    const __m256 v = !inside ? zero : sw == 1 ? _mm256_loadu_ps(row + kx * dw) : load_even8(row + kx * dw);
                    acc = _mm256_fmadd_ps(v, _mm256_set1_ps(f[ky * kw + kx]), acc);
                }
            }
            _mm256_storeu_ps(yr + ox, acc);
        }
        pse_dw_pixels(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, ow, oy, ox, ow);
    }
}
#endif
