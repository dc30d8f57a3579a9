// Packing into the 16-column × 4-k layout the int8 GEMMs read.
#include "psedge_kernels.h"
#include <string.h>

size_t pse_packed_b_size(int k, int n) {
    size_t nb = ((size_t)n + 15) / 16, kg = ((size_t)k + 3) / 4;
    return nb * kg * 64;
}

void pse_pack_b(const void *bv, int ldb, int k, int n, void *packedv) {
    const uint8_t *b = bv;
    uint8_t *p = packedv;
    const int kg = (k + 3) / 4;
    memset(p, 0, pse_packed_b_size(k, n));
    // Row by row: byte q of lane (col & 15) in block (col >> 4), k-group row / 4.
    for (int row = 0; row < k; row++) {
        const uint8_t *src = b + (size_t)row * ldb;
        uint8_t *dst = p + (size_t)(row >> 2) * 64 + (row & 3);
        for (int col = 0; col < n; col++) dst[(size_t)(col >> 4) * kg * 64 + (col & 15) * 4] = src[col];
    }
}

void pse_im2col_u8_packed(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                          int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, uint8_t pad_value,
                          uint8_t *packed) {
    const int k = channels * kh * kw, n = out_h * out_w;
    memset(packed, 0, pse_packed_b_size(k, n));
    pse_im2col_u8_packed_rows(img, channels, height, width, kh, kw, pad_t, pad_l, stride_h, stride_w, dil_h, dil_w,
                              out_h, out_w, pad_value, packed, 0, k);
}

void pse_im2col_u8_packed_rows(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t,
                               int pad_l, int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w,
                               uint8_t pad_value, uint8_t *packed, int row_begin, int row_end) {
    const int k = channels * kh * kw;
    const int kg = (k + 3) / 4;
    const size_t block = (size_t)kg * 64;  // bytes per 16-column block
    for (int row = row_begin; row < row_end; row++) {
        const int c = row / (kh * kw), ky = (row / kw) % kh, kx = row % kw;
        const uint8_t *src = img + (size_t)c * height * width;
        uint8_t *dst = packed + (size_t)(row >> 2) * 64 + (row & 3);
        int col = 0;
        for (int oy = 0; oy < out_h; oy++) {
            const int iy = oy * stride_h - pad_t + ky * dil_h;
            const int rowValid = iy >= 0 && iy < height;
            const uint8_t *srow = src + (size_t)(rowValid ? iy : 0) * width;
            int ix = -pad_l + kx * dil_w;
            for (int ox = 0; ox < out_w; ox++, col++, ix += stride_w) {
                const uint8_t v = (rowValid && ix >= 0 && ix < width) ? srow[ix] : pad_value;
                dst[(size_t)(col >> 4) * block + (col & 15) * 4] = v;
            }
        }
    }
}
