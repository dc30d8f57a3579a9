// Winograd F(4×4, 3×3) transforms for 3×3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016; interpolation points 0, ±1, ±2 and ∞).
//
// A 6×6 input patch d gives 36 products per (output, input) channel pair instead of 144 for its 4×4 outputs:
//   U = G g Gᵀ (weights, once at convert time),  V = Bᵀ d B (inputs),  M[ξ] = Σ_c U[ξ][m][c] · V[ξ][c][t],
//   y = Aᵀ M A (outputs).
// The 36 sums are ordinary GEMMs (pse_sconv_gemm or BLAS); this file has the transforms as portable C and chooses
// between them and winograd_avx512.c's, which compute every value with the same operations in the same order (no
// fused multiply-adds on either): every GEMM path sees the same V and every output is finished the same way, so a
// Winograd convolution is bit-exact across kernel paths whenever its GEMM is. (The SSE transposes only move values.)
#include "kernel_dispatch.h"
#include "psedge_kernels_ops.h"
#include "sconv_impl.h"
#include "winograd_impl.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <xmmintrin.h>  // 4×4 transposes (SSE, part of x86-64); other CPUs take the plain loops
#endif

#define T 6  // transformed tile side
#define R 4  // outputs per tile side

// The 1-D transforms run over `n` independent lanes at once (rows of tiles side by side), so the compiler vectorizes
// them whatever the target; d[k] / m[k] are the k-th of the 6 inputs for every lane.

// Bᵀ: 6 inputs → 6 outputs per lane.
static void input_1d(const float *const d[T], float *const o[T], int n) {
    for (int l = 0; l < n; l++) {
        float d0 = d[0][l], d1 = d[1][l], d2 = d[2][l], d3 = d[3][l], d4 = d[4][l], d5 = d[5][l];
        o[0][l] = 4.0f * d0 - 5.0f * d2 + d4;
        o[1][l] = -4.0f * (d1 + d2) + (d3 + d4);
        o[2][l] = 4.0f * (d1 - d2) + (d4 - d3);
        o[3][l] = 2.0f * (d3 - d1) + (d4 - d2);
        o[4][l] = 2.0f * (d1 - d3) + (d4 - d2);
        o[5][l] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

// Aᵀ: 6 inputs → 4 outputs per lane.
static void output_1d(const float *const m[T], float *const o[R], int n) {
    for (int l = 0; l < n; l++) {
        float m0 = m[0][l], m1 = m[1][l], m2 = m[2][l], m3 = m[3][l], m4 = m[4][l], m5 = m[5][l];
        float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;
        o[0][l] = m0 + p12 + p34;
        o[1][l] = n12 + 2.0f * n34;
        o[2][l] = p12 + 4.0f * p34;
        o[3][l] = n12 + 8.0f * n34 + m5;
    }
}

// row[p·n + q] = line[4q + p] for q < n, p < 4 (one padded input row split by phase).
static void deinterleave4(const float *line, int n, float *row) {
    int q = 0;
#if defined(__x86_64__)
    for (; q + 4 <= n; q += 4) {
        __m128 a = _mm_loadu_ps(line + 4 * q), b = _mm_loadu_ps(line + 4 * q + 4), c = _mm_loadu_ps(line + 4 * q + 8),
               d = _mm_loadu_ps(line + 4 * q + 12);
        _MM_TRANSPOSE4_PS(a, b, c, d);
        _mm_storeu_ps(row + q, a), _mm_storeu_ps(row + n + q, b), _mm_storeu_ps(row + 2 * n + q, c), _mm_storeu_ps(row + 3 * n + q, d);
    }
#endif
    for (; q < n; q++)
        for (int p = 0; p < 4; p++) row[p * n + q] = line[4 * q + p];
}

// line[4t + j] = o[j·n + t] for t < n, j < 4 (the four output columns of each tile back in row order).
static void interleave4(const float *o, int n, float *line) {
    int t = 0;
#if defined(__x86_64__)
    for (; t + 4 <= n; t += 4) {
        __m128 a = _mm_loadu_ps(o + t), b = _mm_loadu_ps(o + n + t), c = _mm_loadu_ps(o + 2 * n + t), d = _mm_loadu_ps(o + 3 * n + t);
        _MM_TRANSPOSE4_PS(a, b, c, d);
        _mm_storeu_ps(line + 4 * t, a), _mm_storeu_ps(line + 4 * t + 4, b), _mm_storeu_ps(line + 4 * t + 8, c), _mm_storeu_ps(line + 4 * t + 12, d);
    }
#endif
    for (; t < n; t++)
        for (int j = 0; j < 4; j++) line[4 * t + j] = o[j * n + t];
}

void pse_winograd_f43_weights(const float *w, int m, int c, float *u) {
    // G (6×3) in double so the transformed weights are the exact ones rounded once.
    static const double G[T][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    size_t plane = (size_t)m * c;
    for (int oc = 0; oc < m; oc++) {
        for (int ic = 0; ic < c; ic++) {
            const float *g = w + ((size_t)oc * c + ic) * 9;
            double gt[T][3];  // G g
            for (int i = 0; i < T; i++)
                for (int j = 0; j < 3; j++) gt[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    double v = gt[i][0] * G[j][0] + gt[i][1] * G[j][1] + gt[i][2] * G[j][2];
                    u[(size_t)(i * T + j) * plane + (size_t)oc * c + ic] = (float)v;
                }
        }
    }
}

void pse_winograd_f43_input_portable(const float *x, int c_begin, int c_end, int channels, int height, int width, int pad_t, int pad_l,
                            int ty_begin, int ty_end, int tiles_w, float *v) {
    // One band of 6 input rows at a time, stored by phase: row k, phase p, column q holds x = 4q + p (4 phases of
    // tiles_w + 1 columns), so the k-th input of tile tx along a row is phase k % 4 at column tx + k / 4: every
    // transform below reads and writes contiguous lanes.
    int wq = tiles_w + 1, lanes = 4 * wq;
    size_t tiles = (size_t)(ty_end - ty_begin) * tiles_w, point = (size_t)channels * tiles;
    float *band = malloc(sizeof(float) * (size_t)lanes * (T * 2 + 1));
    if (!band) return;
    float *vert = band + (size_t)lanes * T, *line = vert + (size_t)lanes * T;  // line: one padded input row
    int left = pad_l < lanes ? pad_l : lanes, inside = width < lanes - left ? width : lanes - left;
    for (int ch = c_begin; ch < c_end; ch++) {
        const float *img = x + (size_t)ch * height * width;
        for (int ty = ty_begin; ty < ty_end; ty++) {
            for (int k = 0; k < T; k++) {
                int yy = ty * R + k - pad_t;
                float *row = band + (size_t)k * lanes;
                if (yy < 0 || yy >= height) {
                    memset(row, 0, sizeof(float) * lanes);
                    continue;
                }
                memset(line, 0, sizeof(float) * left);
                memcpy(line + left, img + (size_t)yy * width, sizeof(float) * inside);
                memset(line + left + inside, 0, sizeof(float) * (lanes - left - inside));
                deinterleave4(line, wq, row);
            }
            // Bᵀ down the columns: band rows → vert rows (all 4·wq lanes).
            const float *din[T];
            float *dout[T];
            for (int k = 0; k < T; k++) din[k] = band + (size_t)k * lanes, dout[k] = vert + (size_t)k * lanes;
            input_1d(din, dout, lanes);
            // … then B along each row: input k of tile tx is phase k % 4, column tx + k / 4.
            for (int i = 0; i < T; i++) {
                const float *r = vert + (size_t)i * lanes;
                const float *hin[T] = {r, r + wq, r + 2 * wq, r + 3 * wq, r + 1, r + wq + 1};
                float *hout[T];
                for (int j = 0; j < T; j++)
                    hout[j] = v + (size_t)(i * T + j) * point + (size_t)ch * tiles + (size_t)(ty - ty_begin) * tiles_w;
                input_1d(hin, hout, tiles_w);
            }
        }
    }
    free(band);
}

void pse_winograd_f43_output_portable(const float *mm, int m_begin, int m_end, int channels_out, int ty_begin, int ty_end, int tiles_w,
                             int out_h, int out_w, const float *bias, const float *res, int relu, int residual_first, float *y) {
    size_t tiles = (size_t)(ty_end - ty_begin) * tiles_w, point = (size_t)channels_out * tiles;
    int n = tiles_w;
    float *buf = malloc(sizeof(float) * (size_t)n * (T * R + R * R + R));
    if (!buf) return;
    float *horiz = buf, *out = buf + (size_t)n * T * R;  // horiz[i][j'][tx], out[i'][j'][tx]
    float *line = out + (size_t)n * R * R;               // one output row, tiles interleaved back
    for (int oc = m_begin; oc < m_end; oc++) {
        float *yc = y + (size_t)oc * out_h * out_w;
        const float *rc = res ? res + (size_t)oc * out_h * out_w : NULL;
        float b = bias ? bias[oc] : 0.0f;
        for (int ty = ty_begin; ty < ty_end; ty++) {
            const float *mt = mm + (size_t)oc * tiles + (size_t)(ty - ty_begin) * tiles_w;
            // A along each row of M: m[i][0…5] → horiz[i][0…3].
            for (int i = 0; i < T; i++) {
                const float *hin[T];
                float *hout[R];
                for (int j = 0; j < T; j++) hin[j] = mt + (size_t)(i * T + j) * point;
                for (int j = 0; j < R; j++) hout[j] = horiz + (size_t)(i * R + j) * n;
                output_1d(hin, hout, n);
            }
            // Aᵀ down the columns: horiz[0…5][j'] → out[0…3][j'] (all 4 phases at once: 4·n lanes).
            const float *vin[T];
            float *vout[R];
            for (int i = 0; i < T; i++) vin[i] = horiz + (size_t)i * R * n;
            for (int i = 0; i < R; i++) vout[i] = out + (size_t)i * R * n;
            output_1d(vin, vout, R * n);
            int rows = out_h - ty * R < R ? out_h - ty * R : R;
            for (int i = 0; i < rows; i++) {
                size_t o = (size_t)(ty * R + i) * out_w;
                const float *oi = out + (size_t)i * R * n;
                interleave4(oi, n, line);
                float *yr = yc + o;
                const float *rr = rc ? rc + o : NULL;
                if (rr && residual_first) for (int xx = 0; xx < out_w; xx++) yr[xx] = (line[xx] + b) + rr[xx];
                else for (int xx = 0; xx < out_w; xx++) yr[xx] = line[xx] + b;
                if (relu) for (int xx = 0; xx < out_w; xx++) yr[xx] = yr[xx] > 0.0f ? yr[xx] : 0.0f;
                if (rr && !residual_first) for (int xx = 0; xx < out_w; xx++) yr[xx] = yr[xx] + rr[xx];
            }
        }
    }
    free(buf);
}

// ---- Run-time choice of the transforms (CPU features; PSEDGE_WINOGRAD_KERNEL overrides). ----

static const pse_impl impls[] = {
#if defined(__x86_64__)
    {"avx512", PSE_CPU_AVX512F, {(pse_entry)pse_winograd_f43_input_avx512, (pse_entry)pse_winograd_f43_output_avx512}},
#endif
    {"portable", 0, {(pse_entry)pse_winograd_f43_input_portable, (pse_entry)pse_winograd_f43_output_portable}},
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_WINOGRAD_KERNEL", impls);

int pse_winograd_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_winograd_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_winograd_f43_input(PSE_WINOGRAD_INPUT_PARAMS) {
    ((pse_winograd_input_fn)pse_dispatch_chosen(&dispatcher)->entries[0])(x, c_begin, c_end, channels, height, width, pad_t, pad_l,
                                                                          ty_begin, ty_end, tiles_w, v);
}

void pse_winograd_f43_output(PSE_WINOGRAD_OUTPUT_PARAMS) {
    ((pse_winograd_output_fn)pse_dispatch_chosen(&dispatcher)->entries[1])(mm, m_begin, m_end, channels_out, ty_begin, ty_end, tiles_w,
                                                                           out_h, out_w, bias, res, relu, residual_first, y);
}
