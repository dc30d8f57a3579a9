// im2col / col2im for GEMM-based (transposed) convolution.
#include "psedge_kernels.h"
#include <string.h>

void pse_im2col(const float *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, float *cols) {
    const size_t plane = (size_t)out_h * out_w;
    for (int c = 0; c < channels; c++) {
        const float *src = img + (size_t)c * height * width;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                float *dst = cols + ((size_t)(c * kh + ky) * kw + kx) * plane;
                for (int oy = 0; oy < out_h; oy++) {
                    int iy = oy * stride_h - pad_t + ky * dil_h;
                    float *row = dst + (size_t)oy * out_w;
                    if (iy < 0 || iy >= height) { memset(row, 0, sizeof(float) * out_w); continue; }
                    const float *srow = src + (size_t)iy * width;
                    int ix0 = -pad_l + kx * dil_w;
                    if (stride_w == 1 && ix0 >= 0 && ix0 + out_w <= width) {
                        memcpy(row, srow + ix0, sizeof(float) * out_w);
                        continue;
                    }
                    for (int ox = 0; ox < out_w; ox++) {
                        int ix = ox * stride_w + ix0;
                        row[ox] = (ix >= 0 && ix < width) ? srow[ix] : 0.0f;
                    }
                }
            }
        }
    }
}

void pse_col2im(const float *cols, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                int stride_h, int stride_w, int dil_h, int dil_w, int in_h, int in_w, float *img) {
    // cols: [C*KH*KW, in_h*in_w]; img: [C, height, width] (accumulated into).
    const size_t plane = (size_t)in_h * in_w;
    for (int c = 0; c < channels; c++) {
        float *dst = img + (size_t)c * height * width;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                const float *src = cols + ((size_t)(c * kh + ky) * kw + kx) * plane;
                for (int iy = 0; iy < in_h; iy++) {
                    int oy = iy * stride_h - pad_t + ky * dil_h;
                    if (oy < 0 || oy >= height) continue;
                    for (int ix = 0; ix < in_w; ix++) {
                        int ox = ix * stride_w - pad_l + kx * dil_w;
                        if (ox >= 0 && ox < width) dst[(size_t)oy * width + ox] += src[(size_t)iy * in_w + ix];
                    }
                }
            }
        }
    }
}
