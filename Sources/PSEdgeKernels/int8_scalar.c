// Scalar int8 reference kernels. Loops are written so the compiler can vectorize the inner dimension;
// the hand-written SIMD files come later and are tested against these.
#include "psedge_kernels.h"
#include "quantize_impl.h"
#include <math.h>
#include <string.h>

void pse_quantize_u8_scalar(const float *x, uint8_t *q, size_t n, float scale, int zero_point) {
    const float inv = 1.0f / scale, zp = (float)zero_point;
    for (size_t i = 0; i < n; i++) q[i] = pse_quantize_one(x[i], inv, zp);
}

void pse_minmax_scalar(const float *x, size_t n, float *min_out, float *max_out) {
    float lo = n ? x[0] : 0.0f, hi = lo;
    pse_minmax_tail(x, 1, n, &lo, &hi);
    *min_out = lo;
    *max_out = hi;
}

void pse_u8_range(float lo, float hi, float *scale, int32_t *zero_point) {
    const float l = lo < 0.0f ? lo : 0.0f, h = hi > 0.0f ? hi : 0.0f;
    const float s = (h - l) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) {
        *scale = 1.0f;
        *zero_point = 0;
        return;
    }
    float z = rintf(-l / s);  // round half to even (the default rounding mode)
    z = z < 0.0f ? 0.0f : (z > 255.0f ? 255.0f : z);
    *scale = s;
    *zero_point = (int32_t)z;
}

void pse_im2col_u8(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                   int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, uint8_t pad_value,
                   uint8_t *cols) {
    const size_t plane = (size_t)out_h * out_w;
    for (int c = 0; c < channels; c++) {
        const uint8_t *src = img + (size_t)c * height * width;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                uint8_t *dst = cols + ((size_t)(c * kh + ky) * kw + kx) * plane;
                for (int oy = 0; oy < out_h; oy++) {
                    int iy = oy * stride_h - pad_t + ky * dil_h;
                    uint8_t *row = dst + (size_t)oy * out_w;
                    if (iy < 0 || iy >= height) { memset(row, pad_value, (size_t)out_w); continue; }
                    const uint8_t *srow = src + (size_t)iy * width;
                    for (int ox = 0; ox < out_w; ox++) {
                        int ix = ox * stride_w - pad_l + kx * dil_w;
                        row[ox] = (ix >= 0 && ix < width) ? srow[ix] : pad_value;
                    }
                }
            }
        }
    }
}

void pse_gemm_s8u8_s32(int m, int n, int k, const int8_t *a, int lda, const uint8_t *b, int ldb, int32_t *c, int ldc) {
    for (int i = 0; i < m; i++) {
        int32_t *crow = c + (size_t)i * ldc;
        memset(crow, 0, sizeof(int32_t) * (size_t)n);
        const int8_t *arow = a + (size_t)i * lda;
        for (int p = 0; p < k; p++) {
            const int32_t w = arow[p];
            if (w == 0) continue;
            const uint8_t *brow = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++) crow[j] += w * (int32_t)brow[j];
        }
    }
}

void pse_gemm_u8s8_s32(int m, int n, int k, const uint8_t *a, int lda, const int8_t *b, int ldb, int32_t *c, int ldc) {
    for (int i = 0; i < m; i++) {
        int32_t *crow = c + (size_t)i * ldc;
        memset(crow, 0, sizeof(int32_t) * (size_t)n);
        const uint8_t *arow = a + (size_t)i * lda;
        for (int p = 0; p < k; p++) {
            const int32_t x = arow[p];
            if (x == 0) continue;
            const int8_t *brow = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++) crow[j] += x * (int32_t)brow[j];
        }
    }
}
