// Attention for small heads, portable reference: the canonical order of attention_impl.h, one key at a time.
#include "psedge_kernels.h"
#include "attention_impl.h"

void pse_attention_rows_scalar(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                               int lk, int ldk, float c, float *o, long o_stride, float *scratch) {
    float *s = scratch;
    float cq[d];
    for (int i = 0; i < rows; i++) {
        const float *qi = q + i * q_stride;
        for (int e = 0; e < d; e++) cq[e] = qi[e] * c;
        float m = -INFINITY;
        for (int j = 0; j < lk; j++) {
            float acc = cq[0] * kt[j];
            for (int e = 1; e < d; e++) acc = fmaf(cq[e], kt[(long)e * ldk + j], acc);
            s[j] = acc;
            m = acc > m ? acc : m;
        }
        for (int j = lk; j < ldk; j++) s[j] = -INFINITY;
        float lanes[PSE_ATTN_LANES] = {0};
        for (int j = 0; j < ldk; j++) {
            s[j] = pse_attn_exp2(s[j] - m);
            lanes[j % PSE_ATTN_LANES] += s[j];
        }
        const float sum = pse_attn_lane_sum(lanes);
        float *oi = o + i * o_stride;
        for (int e = 0; e < dv; e++) {
            const float *v = vt + (long)e * ldk;
            float acc[PSE_ATTN_LANES] = {0};
            for (int j = 0; j < ldk; j++) acc[j % PSE_ATTN_LANES] = fmaf(s[j], v[j], acc[j % PSE_ATTN_LANES]);
            oi[e] = pse_attn_lane_sum(acc) / sum;
        }
    }
}
