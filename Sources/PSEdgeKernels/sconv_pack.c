// Packing fp32 activations into the 16-column panels of the convolution GEMM (sconv_impl.h).
#include "psedge_kernels.h"
#include "psedge_kernels_ops.h"
#include "sconv_impl.h"
#include "im2col_impl.h"
#include <string.h>

size_t pse_sconv_packed_floats(int k, int n) { return (size_t)((n + PSE_SCONV_PANEL - 1) / PSE_SCONV_PANEL) * k * PSE_SCONV_PANEL; }

// One im2col row (n = out_h·out_w floats) for k-index `row`, padding 0: per output row, only the columns whose
// input lies outside the image are filled, the inside is copied.
static void im2col_row_f32(const float *img, int height, int width, int kh, int kw, int pad_t, int pad_l, int sh, int sw,
                           int dh, int dw, int out_h, int out_w, int row, float *dst) {
    const int c = row / (kh * kw), ky = (row / kw) % kh, kx = row % kw;
    const float *src = img + (size_t)c * height * width;
    int x0, lo, hi;
    pse_im2col_inside(width, pad_l, kx, dw, sw, out_w, &x0, &lo, &hi);
    if (pse_im2col_block_row((const uint8_t *)src, sizeof(float), height, width, ky * dh - pad_t, sh, sw, out_h, out_w, x0, lo,
                             hi, 0, (uint8_t *)dst))
        return;
    for (int oy = 0; oy < out_h; oy++) {
        const int iy = oy * sh - pad_t + ky * dh;
        float *d = dst + (size_t)oy * out_w;
        if (iy < 0 || iy >= height) { memset(d, 0, sizeof(float) * out_w); continue; }
        const float *srow = src + (size_t)iy * width + x0;
        for (int ox = 0; ox < lo; ox++) d[ox] = 0.0f;
        if (sw == 1) memcpy(d + lo, srow + lo, sizeof(float) * (hi - lo));
        else for (int ox = lo; ox < hi; ox++) d[ox] = srow[(ptrdiff_t)ox * sw];
        for (int ox = hi; ox < out_w; ox++) d[ox] = 0.0f;
    }
}

void pse_sconv_pack(const float *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l, int sh,
                    int sw, int dh, int dw, int out_h, int out_w, float *panels, int k_begin, int k_end, float *row) {
    const int k = channels * kh * kw, n = out_h * out_w;
    const int pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pad_t == 0 && pad_l == 0 && out_h == height && out_w == width;
    const size_t pstride = (size_t)k * PSE_SCONV_PANEL;
    for (int kk = k_begin; kk < k_end; kk++) {
        const float *src = row;
        if (pointwise) src = img + (size_t)kk * n;
        else im2col_row_f32(img, height, width, kh, kw, pad_t, pad_l, sh, sw, dh, dw, out_h, out_w, kk, row);
        float *dst = panels + (size_t)kk * PSE_SCONV_PANEL;
        int j = 0;
        for (; j + PSE_SCONV_PANEL <= n; j += PSE_SCONV_PANEL, dst += pstride) memcpy(dst, src + j, sizeof(float) * PSE_SCONV_PANEL);
        if (j < n) {
            memcpy(dst, src + j, sizeof(float) * (n - j));
            memset(dst + (n - j), 0, sizeof(float) * (PSE_SCONV_PANEL - (n - j)));
        }
    }
}
