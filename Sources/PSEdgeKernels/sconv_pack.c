// Packing fp32 activations into the 16-column panels of the convolution GEMM (sconv_impl.h).
#include "psedge_kernels.h"
#include "psedge_kernels_ops.h"
#include "sconv_impl.h"
#include "im2col_impl.h"
#include <string.h>

size_t pse_sconv_packed_floats(int k, int n) { return (size_t)((n + PSE_SCONV_PANEL - 1) / PSE_SCONV_PANEL) * k * PSE_SCONV_PANEL; }

// d[i] = s[2·i] for i < n (a stride-2 convolution's columns), 4 at a time. A vector reads s[2·i … 2·i + 7], one past
// the last element it uses, so it runs only while a later element is needed anyway.
static void gather_stride2_f32(float *d, const float *s, int n) {
    int i = 0;
#if defined(__x86_64__)
    for (; i + 4 < n; i += 4) {
        const __m128 a = _mm_loadu_ps(s + 2 * i), b = _mm_loadu_ps(s + 2 * i + 4);
        _mm_storeu_ps(d + i, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
    }
#endif  // (ARM packs no fp32 panels: it has no vector panel GEMM, convolutions go through BLAS there.)
    for (; i < n; i++) d[i] = s[2 * i];
}

// One im2col row restricted to output rows [oy0, oy1) ((oy1 − oy0)·out_w floats) for k-index `row`, padding 0: per
// output row, only the columns whose input lies outside the image are filled, the inside is copied.
static void im2col_rows_f32(const float *img, int height, int width, int kh, int kw, int pad_t, int pad_l, int sh, int sw,
                            int dh, int dw, int oy0, int oy1, int out_w, int row, float *dst) {
    const int c = row / (kh * kw), ky = (row / kw) % kh, kx = row % kw;
    const float *src = img + (size_t)c * height * width;
    int x0, lo, hi;
    pse_im2col_inside(width, pad_l, kx, dw, sw, out_w, &x0, &lo, &hi);
    if (pse_im2col_block_row((const uint8_t *)src, sizeof(float), height, width, oy0 * sh + ky * dh - pad_t, sh, sw, oy1 - oy0,
                             out_w, x0, lo, hi, 0, (uint8_t *)dst))
        return;
    for (int oy = oy0; oy < oy1; oy++) {
        const int iy = oy * sh - pad_t + ky * dh;
        float *d = dst + (size_t)(oy - oy0) * out_w;
        if (iy < 0 || iy >= height) { memset(d, 0, sizeof(float) * out_w); continue; }
        const float *srow = src + (size_t)iy * width + x0;
        for (int ox = 0; ox < lo; ox++) d[ox] = 0.0f;
        if (sw == 1) memcpy(d + lo, srow + lo, sizeof(float) * (hi - lo));
        else if (sw == 2) gather_stride2_f32(d + lo, srow + 2 * (ptrdiff_t)lo, hi - lo);
        else for (int ox = lo; ox < hi; ox++) d[ox] = srow[(ptrdiff_t)ox * sw];
        for (int ox = hi; ox < out_w; ox++) d[ox] = 0.0f;
    }
}

// One k-row of n columns into its place in the panels (columns past n in the last panel are 0).
static void row_to_panels(const float *src, int n, float *dst, size_t pstride) {
    int j = 0;
    for (; j + PSE_SCONV_PANEL <= n; j += PSE_SCONV_PANEL, dst += pstride) memcpy(dst, src + j, sizeof(float) * PSE_SCONV_PANEL);
    if (j < n) {
        memcpy(dst, src + j, sizeof(float) * (n - j));
        memset(dst + (n - j), 0, sizeof(float) * (PSE_SCONV_PANEL - (n - j)));
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
        else im2col_rows_f32(img, height, width, kh, kw, pad_t, pad_l, sh, sw, dh, dw, 0, out_h, out_w, kk, row);
        row_to_panels(src, n, panels + (size_t)kk * PSE_SCONV_PANEL, pstride);
    }
}

void pse_sconv_pack_cols(const float *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l, int sh,
                         int sw, int dh, int dw, int out_w, int c0, int c1, float *panels, float *row) {
    const int k = channels * kh * kw, oy0 = c0 / out_w, oy1 = (c1 + out_w - 1) / out_w, skip = c0 - oy0 * out_w;
    const size_t pstride = (size_t)k * PSE_SCONV_PANEL;
    for (int kk = 0; kk < k; kk++) {
        im2col_rows_f32(img, height, width, kh, kw, pad_t, pad_l, sh, sw, dh, dw, oy0, oy1, out_w, kk, row);
        row_to_panels(row + skip, c1 - c0, panels + (size_t)kk * PSE_SCONV_PANEL, pstride);
    }
}
