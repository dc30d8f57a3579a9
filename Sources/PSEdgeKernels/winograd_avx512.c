// Winograd F(4×4, 3×3) transforms, AVX-512F: 16 tiles per vector, and several rows of tiles per vector when a row
// has fewer than 16 (ResNet's 14×14 stage: 4 tiles a row, which the portable loops run 4 lanes wide). The same
// operations in the same order as winograd.c's portable loops (no fused multiply-adds), so both give the same bits.
#if defined(__x86_64__)
#include "winograd_impl.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f")))

// Bᵀ on six vectors, written out as winograd.c's input_1d evaluates it (no fused multiply-adds).
AVX512 static inline void input_1d_x16(const __m512 d[6], __m512 o[6]) {
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f),
                 minus_four = _mm512_set1_ps(-4.0f);
    o[0] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(four, d[0]), _mm512_mul_ps(five, d[2])), d[4]);
    o[1] = _mm512_add_ps(_mm512_mul_ps(minus_four, _mm512_add_ps(d[1], d[2])), _mm512_add_ps(d[3], d[4]));
    o[2] = _mm512_add_ps(_mm512_mul_ps(four, _mm512_sub_ps(d[1], d[2])), _mm512_sub_ps(d[4], d[3]));
    o[3] = _mm512_add_ps(_mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1])), _mm512_sub_ps(d[4], d[2]));
    o[4] = _mm512_add_ps(_mm512_mul_ps(two, _mm512_sub_ps(d[1], d[3])), _mm512_sub_ps(d[4], d[2]));
    o[5] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(four, d[1]), _mm512_mul_ps(five, d[3])), d[5]);
}

// One padded input row split by phase: out[p·wq + q] = line[4q + p] (line = the row with pad_l zeros before it and
// zeros after it, `line` has room for 4·wq + 64 floats).
AVX512 static void split_row(const float *src, int width, int pad_l, int wq, float *line, float *out) {
    const int lanes = 4 * wq, left = pad_l < lanes ? pad_l : lanes, inside = width < lanes - left ? width : lanes - left;
    memset(line, 0, sizeof(float) * left);
    memcpy(line + left, src, sizeof(float) * inside);
    memset(line + left + inside, 0, sizeof(float) * ((wq + 15) / 16 * 64 - left - inside));
    const __m512i lo = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i hi = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    for (int q = 0; q < wq; q += 16) {
        const float *s = line + 4 * q;
        __m512 a = _mm512_loadu_ps(s), b = _mm512_loadu_ps(s + 16), c = _mm512_loadu_ps(s + 32), d = _mm512_loadu_ps(s + 48);
        __m512 ab01 = _mm512_permutex2var_ps(a, lo, b), cd01 = _mm512_permutex2var_ps(c, lo, d);  // phases 0 | 1
        __m512 ab23 = _mm512_permutex2var_ps(a, hi, b), cd23 = _mm512_permutex2var_ps(c, hi, d);  // phases 2 | 3
        const __mmask16 m = wq - q >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (wq - q)) - 1);
        _mm512_mask_storeu_ps(out + q, m, _mm512_shuffle_f32x4(ab01, cd01, 0x44));
        _mm512_mask_storeu_ps(out + wq + q, m, _mm512_shuffle_f32x4(ab01, cd01, 0xEE));
        _mm512_mask_storeu_ps(out + 2 * wq + q, m, _mm512_shuffle_f32x4(ab23, cd23, 0x44));
        _mm512_mask_storeu_ps(out + 3 * wq + q, m, _mm512_shuffle_f32x4(ab23, cd23, 0xEE));
    }
}

AVX512 void pse_winograd_f43_input_avx512(const float *x, int c_begin, int c_end, int channels, int height, int width, int pad_t,
                                          int pad_l, int ty_begin, int ty_end, int tiles_w, float *v) {
    const int rows = (ty_end - ty_begin) * 4 + 2, wq = tiles_w + 1, lanes = 4 * wq;
    const int tiles = (ty_end - ty_begin) * tiles_w;
    const size_t point = (size_t)channels * tiles;
    // Rows of tiles per vector (rows narrower than 16 share one), or 16-tile pieces of a wider row.
    const int per = tiles_w >= 16 ? 1 : 16 / tiles_w, piece = tiles_w >= 16 ? 16 : tiles_w;
    float *split = malloc(sizeof(float) * ((size_t)rows * lanes + (size_t)(wq + 15) / 16 * 64));
    if (!split) return;
    for (int ch = c_begin; ch < c_end; ch++) {
        const float *img = x + (size_t)ch * height * width;
        for (int r = 0; r < rows; r++) {
            const int yy = ty_begin * 4 + r - pad_t;
            float *row = split + (size_t)r * lanes;
            if (yy < 0 || yy >= height) memset(row, 0, sizeof(float) * lanes);
            else split_row(img + (size_t)yy * width, width, pad_l, wq, split + (size_t)rows * lanes, row);
        }
        float *vc = v + (size_t)ch * tiles;
        for (int ty = 0; ty < ty_end - ty_begin; ty += per) {
            const int nrows = ty_end - ty_begin - ty < per ? ty_end - ty_begin - ty : per;
            for (int tx = 0; tx < tiles_w; tx += piece) {
                const int n = tiles_w - tx < piece ? tiles_w - tx : piece;  // tiles of one row in this vector
                const __mmask16 one = (__mmask16)((1u << n) - 1);
                const __mmask16 live = (__mmask16)((1u << (n * nrows)) - 1);
                __m512 vert[6][6];  // [transformed row][patch column]
                for (int kc = 0; kc < 6; kc++) {
                    __m512 d[6], o[6];
                    for (int kr = 0; kr < 6; kr++) {
                        __m512 acc = _mm512_setzero_ps();
                        for (int s = 0; s < nrows; s++) {
                            const float *at = split + (size_t)((ty + s) * 4 + kr) * lanes + (kc % 4) * wq + kc / 4 + tx;
                            acc = _mm512_mask_loadu_ps(acc, (__mmask16)(one << (s * n)), at - s * n);
                        }
                        d[kr] = acc;
                    }
                    input_1d_x16(d, o);
                    for (int i = 0; i < 6; i++) vert[i][kc] = o[i];
                }
                float *vt = vc + (size_t)ty * tiles_w + tx;
                for (int i = 0; i < 6; i++) {
                    __m512 o[6];
                    input_1d_x16(vert[i], o);
                    for (int j = 0; j < 6; j++) _mm512_mask_storeu_ps(vt + (size_t)(i * 6 + j) * point, live, o[j]);
                }
            }
        }
    }
    free(split);
}

// Aᵀ on six vectors → four, as winograd.c's output_1d evaluates it.
AVX512 static inline void output_1d_x16(const __m512 m[6], __m512 o[4]) {
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f), eight = _mm512_set1_ps(8.0f);
    const __m512 p12 = _mm512_add_ps(m[1], m[2]), n12 = _mm512_sub_ps(m[1], m[2]);
    const __m512 p34 = _mm512_add_ps(m[3], m[4]), n34 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], p12), p34);
    o[1] = _mm512_add_ps(n12, _mm512_mul_ps(two, n34));
    o[2] = _mm512_add_ps(p12, _mm512_mul_ps(four, p34));
    o[3] = _mm512_add_ps(_mm512_add_ps(n12, _mm512_mul_ps(eight, n34)), m[5]);
}

AVX512 void pse_winograd_f43_output_avx512(const float *mm, int m_begin, int m_end, int channels_out, int ty_begin, int ty_end,
                                           int tiles_w, int out_h, int out_w, const float *bias, const float *res, int relu,
                                           int residual_first, float *y) {
    const int tiles = (ty_end - ty_begin) * tiles_w;
    const size_t point = (size_t)channels_out * tiles;
    const int per = tiles_w >= 16 ? 1 : 16 / tiles_w, piece = tiles_w >= 16 ? 16 : tiles_w;
    // Interleaving four vectors of tile lanes into rows: x = a0 b0 a1 b1 …, then line = x0 x1 y0 y1 x2 x3 y2 y3 ….
    const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i quad_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i quad_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    const __m512 zero = _mm512_setzero_ps();
    float line[64] __attribute__((aligned(64)));
    for (int oc = m_begin; oc < m_end; oc++) {
        float *yc = y + (size_t)oc * out_h * out_w;
        const float *rc = res ? res + (size_t)oc * out_h * out_w : NULL;
        const __m512 b = _mm512_set1_ps(bias ? bias[oc] : 0.0f);
        const float *mc = mm + (size_t)oc * tiles;
        for (int ty = 0; ty < ty_end - ty_begin; ty += per) {
            const int nrows = ty_end - ty_begin - ty < per ? ty_end - ty_begin - ty : per;
            for (int tx = 0; tx < tiles_w; tx += piece) {
                const int n = tiles_w - tx < piece ? tiles_w - tx : piece;
                const __mmask16 live = (__mmask16)((1u << (n * nrows)) - 1);
                const float *mt = mc + (size_t)ty * tiles_w + tx;
                __m512 horiz[6][4];  // [row of M][output column]
                for (int i = 0; i < 6; i++) {
                    __m512 in[6];
                    for (int j = 0; j < 6; j++) in[j] = _mm512_maskz_loadu_ps(live, mt + (size_t)(i * 6 + j) * point);
                    output_1d_x16(in, horiz[i]);
                }
                __m512 out[4][4];  // [output row][output column]
                for (int j = 0; j < 4; j++) {
                    __m512 in[6], o[4];
                    for (int i = 0; i < 6; i++) in[i] = horiz[i][j];
                    output_1d_x16(in, o);
                    for (int i = 0; i < 4; i++) out[i][j] = o[i];
                }
                for (int i = 0; i < 4; i++) {
                    const __m512 x0 = _mm512_permutex2var_ps(out[i][0], pair_lo, out[i][1]), y0 = _mm512_permutex2var_ps(out[i][2], pair_lo, out[i][3]);
                    const __m512 x1 = _mm512_permutex2var_ps(out[i][0], pair_hi, out[i][1]), y1 = _mm512_permutex2var_ps(out[i][2], pair_hi, out[i][3]);
                    _mm512_store_ps(line, _mm512_permutex2var_ps(x0, quad_lo, y0));
                    _mm512_store_ps(line + 16, _mm512_permutex2var_ps(x0, quad_hi, y0));
                    _mm512_store_ps(line + 32, _mm512_permutex2var_ps(x1, quad_lo, y1));
                    _mm512_store_ps(line + 48, _mm512_permutex2var_ps(x1, quad_hi, y1));
                    for (int s = 0; s < nrows; s++) {
                        const int oy = (ty_begin + ty + s) * 4 + i;
                        if (oy >= out_h) continue;
                        const int x0c = 4 * tx, width = 4 * n < out_w - x0c ? 4 * n : out_w - x0c;
                        const float *src = line + 4 * s * n;
                        float *yr = yc + (size_t)oy * out_w + x0c;
                        const float *rr = rc ? rc + (size_t)oy * out_w + x0c : NULL;
                        for (int q = 0; q < width; q += 16) {
                            const __mmask16 mk = width - q >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (width - q)) - 1);
                            __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, src + q), b);
                            if (rr && residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, rr + q));
                            if (relu) v = _mm512_max_ps(v, zero);
                            if (rr && !residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, rr + q));
                            _mm512_mask_storeu_ps(yr + q, mk, v);
                        }
                    }
                }
            }
        }
    }
}
#endif
