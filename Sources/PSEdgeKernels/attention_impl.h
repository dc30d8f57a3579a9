// Attention for small heads, shared pieces of the per-ISA files (internal; see psedge_kernels_ops.h).
//
// The result of every path is defined by this canonical order, so all of them round identically and equal the
// scalar reference bit for bit:
//   c_e  = q_e · (scale · log2 e)                                   (one rounding per query element)
//   s_j  = c_0·kt[0][j], then s_j = fma(c_e, kt[e][j], s_j) for e = 1 … d−1
//   m    = max_j s_j                                                (exact in any order)
//   p_j  = pse_attn_exp2(s_j − m)                                   (2^x, inputs below −64 read as −64)
//   key j goes to lane j mod 16; per lane, in ascending j: sum += p_j, acc_e = fma(p_j, vt[e][j], acc_e)
//   the 16 lanes are added as a fixed tree (L + 8, then L + 4, L + 2, L + 1)
//   out_e = acc_e / sum
// Keys past lk (the padding up to ldk) score −∞, so p = 2^−64: their values are 0 and their weight cannot move a
// float sum that holds the row's largest weight, 1.
#ifndef PSEDGE_ATTENTION_IMPL_H
#define PSEDGE_ATTENTION_IMPL_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#define PSE_ATTN_LANES 16
#define PSE_ATTN_EXP_FLOOR (-64.0f)
#define PSE_ATTN_ROUND_MAGIC 12582912.0f  // 1.5·2^23: adding it rounds a float below 2^22 to an integer

// 2^f on [−0.5, 0.5] by a degree-5 polynomial with 1 + c1·f + … + c5·f⁵, its coefficients fitted for least maximum
// relative error (iteratively reweighted least squares; relative error ≤ 1.6e-7 in fp32 — a degree-6 Taylor
// polynomial reaches 2.2e-7 with one more multiply-add).
#define PSE_ATTN_C1 0.693147004f
#define PSE_ATTN_C2 0.240222424f
#define PSE_ATTN_C3 0.0555073358f
#define PSE_ATTN_C4 0.00967151299f
#define PSE_ATTN_C5 0.00132647273f

typedef void (*pse_attention_rows_fn)(const float *q, long q_stride, int rows, int d, int dv, const float *kt,
                                      const float *vt, int lk, int ldk, float c, float *o, long o_stride,
                                      float *scratch);

void pse_attention_rows_scalar(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                               int lk, int ldk, float c, float *o, long o_stride, float *scratch);
#if defined(__x86_64__)
void pse_attention_rows_avx2(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                             int lk, int ldk, float c, float *o, long o_stride, float *scratch);
void pse_attention_rows_avx512(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                               int lk, int ldk, float c, float *o, long o_stride, float *scratch);
#endif
#if defined(__aarch64__)
void pse_attention_rows_neon(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                             int lk, int ldk, float c, float *o, long o_stride, float *scratch);
#endif

/// 2^x for x ≤ 0 (x below the floor, −∞ and NaN included, reads as the floor — the semantics of x86 max_ps and
/// NEON fmaxnm): x = n + f with n = round(x), |f| ≤ 0.5, 2^f by Horner's rule with fused multiply-adds, n added
/// into the exponent bits. The vector paths compute the same values per lane (AVX-512 with vrndscaleps/vscalefps).
static inline float pse_attn_exp2(float x) {
    x = x > PSE_ATTN_EXP_FLOOR ? x : PSE_ATTN_EXP_FLOOR;
    const float t = x + PSE_ATTN_ROUND_MAGIC;
    const float n = t - PSE_ATTN_ROUND_MAGIC;
    const float f = x - n;
    float p = PSE_ATTN_C5;
    p = fmaf(p, f, PSE_ATTN_C4);
    p = fmaf(p, f, PSE_ATTN_C3);
    p = fmaf(p, f, PSE_ATTN_C2);
    p = fmaf(p, f, PSE_ATTN_C1);
    p = fmaf(p, f, 1.0f);
    int32_t tb, pb;
    memcpy(&tb, &t, 4);
    memcpy(&pb, &p, 4);
    const int32_t magic_bits = 0x4B400000;  // the bits of PSE_ATTN_ROUND_MAGIC: tb − magic_bits = n
    pb += (int32_t)((uint32_t)(tb - magic_bits) << 23);
    float r;
    memcpy(&r, &pb, 4);
    return r;
}

/// The fixed tree over 16 lane partial sums.
static inline float pse_attn_lane_sum(const float *a) {
    float b[8], c[4];
    for (int l = 0; l < 8; l++) b[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) c[l] = b[l] + b[l + 4];
    const float d0 = c[0] + c[2], d1 = c[1] + c[3];
    return d0 + d1;
}

/// Scores of keys [lk rounded down to 16, lk) and the −∞ padding up to ldk, for the vector paths (which score
/// whole 16-key blocks): returns the max of m and the tail's scores.
static inline float pse_attn_score_tail(const float *c, int d, const float *kt, int lk, int ldk, float *s, float m) {
    for (int j = lk & ~(PSE_ATTN_LANES - 1); j < lk; j++) {
        float acc = c[0] * kt[j];
        for (int e = 1; e < d; e++) acc = fmaf(c[e], kt[(long)e * ldk + j], acc);
        s[j] = acc;
        m = acc > m ? acc : m;
    }
    for (int j = lk; j < ldk; j++) s[j] = -INFINITY;
    return m;
}
#endif
