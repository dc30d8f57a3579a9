// Depthwise convolution, shared pieces of the per-ISA files (internal; see psedge_kernels_ops.h).
// Every path computes each output as bias, then fused multiply-adds over the taps in ky-major, kx-minor order,
// padding read as 0.0 — so all paths round identically and equal the scalar reference bit for bit.
#ifndef PSEDGE_DWCONV_IMPL_H
#define PSEDGE_DWCONV_IMPL_H
#include <math.h>

void pse_dwconv2d_f32_scalar(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                             int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow);
#if defined(__x86_64__)
void pse_dwconv2d_f32_avx2(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                           int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow);
void pse_dwconv2d_f32_avx512(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                             int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow);
#endif
#if defined(__aarch64__)
void pse_dwconv2d_f32_neon(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                           int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow);
#endif

/// One output pixel whose first tap reads input (iy0, ix0).
static inline float pse_dw_pixel(const float *x, int h, int w, const float *f, int kh, int kw, int iy0, int ix0,
                                 int dh, int dw, float acc) {
    for (int ky = 0; ky < kh; ky++) {
        const int iy = iy0 + ky * dh;
        for (int kx = 0; kx < kw; kx++) {
            const int ix = ix0 + kx * dw;
            const float v = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(long)iy * w + ix] : 0.0f;
            acc = fmaf(v, f[ky * kw + kx], acc);
        }
    }
    return acc;
}

/// Output columns [ox_begin, ox_end) of output row `oy`, one pixel at a time (borders, and the reference).
static inline void pse_dw_pixels(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                                 int sh, int sw, int dh, int dw, float bias, float *y, int ow, int oy, int ox_begin,
                                 int ox_end) {
    for (int ox = ox_begin; ox < ox_end; ox++)
        y[(long)oy * ow + ox] = pse_dw_pixel(x, h, w, f, kh, kw, oy * sh - pad_t, ox * sw - pad_l, dh, dw, bias);
}

/// The output columns [*lo, *hi) whose taps all lie inside a row, reading `extra` more floats past the last
/// tap (strided vector loads read one element beyond the last one they keep).
static inline void pse_dw_interior(int w, int kw, int pad_l, int sw, int dw, int ow, int extra, int *lo, int *hi) {
    int l = (pad_l + sw - 1) / sw;
    const int span = (kw - 1) * dw + extra;  // last element read, relative to the first tap
    const int num = w - 1 + pad_l - span;
    int h_ = num < 0 ? 0 : num / sw + 1;
    if (l > ow) l = ow;
    if (h_ > ow) h_ = ow;
    if (h_ < l) h_ = l;
    *lo = l;
    *hi = h_;
}
#endif
