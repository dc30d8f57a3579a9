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
    int nb = (n + 15) / 16, kg = (k + 3) / 4;
    memset(p, 0, pse_packed_b_size(k, n));
    for (int j = 0; j < nb; j++) {
        for (int g = 0; g < kg; g++) {
            uint8_t *blk = p + ((size_t)j * kg + g) * 64;
            for (int l = 0; l < 16; l++) {
                int col = j * 16 + l;
                if (col >= n) break;
                for (int q = 0; q < 4; q++) {
                    int row = g * 4 + q;
                    if (row < k) blk[l * 4 + q] = b[(size_t)row * ldb + col];
                }
            }
        }
    }
}

void pse_im2col_u8_packed(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                          int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, uint8_t pad_value,
                          uint8_t *packed) {
    const int k = channels * kh * kw, n = out_h * out_w;
    const int kg = (k + 3) / 4;
    memset(packed, 0, pse_packed_b_size(k, n));
    for (int row = 0; row < k; row++) {
        const int c = row / (kh * kw), ky = (row / kw) % kh, kx = row % kw;
        const uint8_t *src = img + (size_t)c * height * width;
        const int g = row / 4, q = row % 4;
        for (int col = 0; col < n; col++) {
            const int oy = col / out_w, ox = col % out_w;
            const int iy = oy * stride_h - pad_t + ky * dil_h, ix = ox * stride_w - pad_l + kx * dil_w;
            const uint8_t v = (iy >= 0 && iy < height && ix >= 0 && ix < width) ? src[(size_t)iy * width + ix] : pad_value;
            packed[(((size_t)(col / 16) * kg + g) * 16 + (col % 16)) * 4 + q] = v;
        }
    }
}
