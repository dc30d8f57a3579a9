// Attention for small heads, ARM NEON: 16 keys as four 4-lane vectors (lanes 0–3, 4–7, 8–11, 12–15 of
// attention_impl.h's partial sums). fmaxnm gives the max semantics of the reference (a NaN reads as the other
// operand).
#if defined(__aarch64__)
#include "psedge_kernels.h"
#include "attention_impl.h"
#include <arm_neon.h>

typedef struct { float32x4_t r[4]; } v16;

static inline v16 load16(const float *p) { return (v16){{vld1q_f32(p), vld1q_f32(p + 4), vld1q_f32(p + 8), vld1q_f32(p + 12)}}; }
static inline void store16(float *p, v16 v) { for (int k = 0; k < 4; k++) vst1q_f32(p + 4 * k, v.r[k]); }
static inline v16 zero16(void) { const float32x4_t z = vdupq_n_f32(0); return (v16){{z, z, z, z}}; }
static inline v16 fma16v(v16 a, v16 b, v16 c) {
    for (int k = 0; k < 4; k++) c.r[k] = vfmaq_f32(c.r[k], a.r[k], b.r[k]);
    return c;
}

static inline float32x4_t exp2_floor(float32x4_t x) {
    x = vmaxnmq_f32(x, vdupq_n_f32(PSE_ATTN_EXP_FLOOR));
    const float32x4_t magic = vdupq_n_f32(PSE_ATTN_ROUND_MAGIC);
    const float32x4_t t = vaddq_f32(x, magic);
    const float32x4_t f = vsubq_f32(x, vsubq_f32(t, magic));
    float32x4_t p = vdupq_n_f32(PSE_ATTN_C5);
    p = vfmaq_f32(vdupq_n_f32(PSE_ATTN_C4), p, f);
    p = vfmaq_f32(vdupq_n_f32(PSE_ATTN_C3), p, f);
    p = vfmaq_f32(vdupq_n_f32(PSE_ATTN_C2), p, f);
    p = vfmaq_f32(vdupq_n_f32(PSE_ATTN_C1), p, f);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, f);
    const int32x4_t n = vsubq_s32(vreinterpretq_s32_f32(t), vreinterpretq_s32_f32(magic));
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), vshlq_n_s32(n, 23)));
}

// The fixed lane tree of pse_attn_lane_sum.
static inline float lane_sum(v16 a) {
    const float32x4_t b0 = vaddq_f32(a.r[0], a.r[2]), b1 = vaddq_f32(a.r[1], a.r[3]);
    const float32x4_t c = vaddq_f32(b0, b1);
    const float32x2_t d = vadd_f32(vget_low_f32(c), vget_high_f32(c));
    return vget_lane_f32(d, 0) + vget_lane_f32(d, 1);
}

void pse_attention_rows_neon(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                             int lk, int ldk, float c, float *o, long o_stride, float *scratch) {
    float *s = scratch;
    float cq[d];
    const int full = lk & ~(PSE_ATTN_LANES - 1);
    for (int i = 0; i < rows; i++) {
        const float *qi = q + i * q_stride;
        for (int e = 0; e < d; e++) cq[e] = qi[e] * c;
        // Scores and their max.
        float32x4_t vmax = vdupq_n_f32(-INFINITY);
        for (int j = 0; j < full; j += 16) {
            v16 acc = load16(kt + j);
            for (int k = 0; k < 4; k++) acc.r[k] = vmulq_n_f32(acc.r[k], cq[0]);
            for (int e = 1; e < d; e++) {
                const v16 kv = load16(kt + (long)e * ldk + j);
                for (int k = 0; k < 4; k++) acc.r[k] = vfmaq_n_f32(acc.r[k], kv.r[k], cq[e]);
            }
            store16(s + j, acc);
            for (int k = 0; k < 4; k++) vmax = vmaxnmq_f32(acc.r[k], vmax);
        }
        const float m = pse_attn_score_tail(cq, d, kt, lk, ldk, s, vmaxnmvq_f32(vmax));
        // Weights, their sum, and the first four value dimensions in the same pass.
        const float32x4_t vm = vdupq_n_f32(m);
        const int e0 = dv < 4 ? dv : 4;
        const float *v0 = vt, *v1 = vt + (e0 > 1 ? ldk : 0), *v2 = vt + (e0 > 2 ? 2L * ldk : 0), *v3 = vt + (e0 > 3 ? 3L * ldk : 0);
        v16 sum = zero16(), a0 = sum, a1 = sum, a2 = sum, a3 = sum;
        for (int j = 0; j < ldk; j += 16) {
            v16 p = load16(s + j);
            for (int k = 0; k < 4; k++) p.r[k] = exp2_floor(vsubq_f32(p.r[k], vm));
            store16(s + j, p);
            for (int k = 0; k < 4; k++) sum.r[k] = vaddq_f32(sum.r[k], p.r[k]);
            a0 = fma16v(p, load16(v0 + j), a0);
            a1 = fma16v(p, load16(v1 + j), a1);
            a2 = fma16v(p, load16(v2 + j), a2);
            a3 = fma16v(p, load16(v3 + j), a3);
        }
        const float total = lane_sum(sum);
        float *oi = o + i * o_stride;
        const float first[4] = {lane_sum(a0), lane_sum(a1), lane_sum(a2), lane_sum(a3)};
        for (int e = 0; e < e0; e++) oi[e] = first[e] / total;
        // The other value dimensions, four at a time, then one at a time.
        int e = e0;
        for (; e + 4 <= dv; e += 4) {
            const float *w0 = vt + (long)e * ldk, *w1 = w0 + ldk, *w2 = w1 + ldk, *w3 = w2 + ldk;
            v16 b0 = zero16(), b1 = b0, b2 = b0, b3 = b0;
            for (int j = 0; j < ldk; j += 16) {
                const v16 p = load16(s + j);
                b0 = fma16v(p, load16(w0 + j), b0);
                b1 = fma16v(p, load16(w1 + j), b1);
                b2 = fma16v(p, load16(w2 + j), b2);
                b3 = fma16v(p, load16(w3 + j), b3);
            }
            oi[e] = lane_sum(b0) / total;
            oi[e + 1] = lane_sum(b1) / total;
            oi[e + 2] = lane_sum(b2) / total;
            oi[e + 3] = lane_sum(b3) / total;
        }
        for (; e < dv; e++) {
            const float *w = vt + (long)e * ldk;
            v16 b0 = zero16();
            for (int j = 0; j < ldk; j += 16) b0 = fma16v(load16(s + j), load16(w + j), b0);
            oi[e] = lane_sum(b0) / total;
        }
    }
}
#endif
