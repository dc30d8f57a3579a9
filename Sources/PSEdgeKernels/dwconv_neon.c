// Depthwise convolution, ARM NEON: 4 output columns per vector (stride 1, or stride 2 through vld2's
// deinterleave); borders and other strides per pixel. vfmaq_f32 is fused, as fmaf in the reference.
#if defined(__aarch64__)
#include "psedge_kernels.h"
#include "dwconv_impl.h"
#include <arm_neon.h>

void pse_dwconv2d_f32_neon(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                           int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow) {
    int lo = ow, hi = ow;
    if (sw == 1 || sw == 2) pse_dw_interior(w, kw, pad_l, sw, dw, ow, sw - 1, &lo, &hi);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (int oy = 0; oy < oh; oy++) {
        const int iy0 = oy * sh - pad_t;
        float *yr = y + (long)oy * ow;
        pse_dw_pixels(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, ow, oy, 0, lo);
        int ox = lo;
        for (; ox + 4 <= hi; ox += 4) {
            float32x4_t acc = vdupq_n_f32(bias);
            for (int ky = 0; ky < kh; ky++) {
                const int iy = iy0 + ky * dh;
                const float *row = x + (long)iy * w + (ox * sw - pad_l);
                const int inside = iy >= 0 && iy < h;
                for (int kx = 0; kx < kw; kx++) {
                    const float32x4_t v = !inside ? zero : sw == 1 ? vld1q_f32(row + kx * dw) : vld2q_f32(row + kx * dw).val[0];
                    acc = vfmaq_f32(acc, v, vdupq_n_f32(f[ky * kw + kx]));
                }
            }
            vst1q_f32(yr + ox, acc);
        }
        pse_dw_pixels(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, ow, oy, ox, ow);
    }
}
#endif
