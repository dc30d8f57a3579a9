// Attention for small heads, AVX-512F: 16 keys per vector, the lanes being attention_impl.h's 16 partial sums.
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "attention_impl.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

// The same values as pse_attn_exp2 with fewer instructions: n = round-to-nearest-even(x) by vrndscaleps (what the
// magic-number addition computes), and p·2ⁿ by vscalefps (exact here: p ∈ [0.7, 1.5], n ∈ [−64, 0], so the
// result is normal and scaling only changes the exponent — what adding n to the exponent bits does).
AVX512 static inline __m512 exp2_floor(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(PSE_ATTN_EXP_FLOOR));
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(PSE_ATTN_C5);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(PSE_ATTN_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(PSE_ATTN_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(PSE_ATTN_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(PSE_ATTN_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// The fixed lane tree of pse_attn_lane_sum.
AVX512 static inline float lane_sum(__m512 a) {
    const __m256 b = _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    const __m128 c = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
    const __m128 d = _mm_add_ps(c, _mm_movehl_ps(c, c));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
}

// Four query rows at once: each key and value vector is loaded once for the four (loads, not arithmetic, bound the
// one-row loop). Every row goes through exactly the operations of the one-row loop below.
#define GROUP 4

AVX512 static void four_rows(const float *q, long q_stride, int d, int dv, const float *kt, const float *vt, int lk, int ldk,
                             float c, float *o, long o_stride, float *s) {
    float cq[GROUP][d];
    const int full = lk & ~(PSE_ATTN_LANES - 1);
    for (int r = 0; r < GROUP; r++)
        for (int e = 0; e < d; e++) cq[r][e] = q[r * q_stride + e] * c;
    // Scores and their maxima.
    __m512 vmax[GROUP];
    for (int r = 0; r < GROUP; r++) vmax[r] = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < ldk; j += 16) {
        __m512 acc[GROUP];
        const __m512 k0 = _mm512_loadu_ps(kt + j);
        for (int r = 0; r < GROUP; r++) acc[r] = _mm512_mul_ps(_mm512_set1_ps(cq[r][0]), k0);
        for (int e = 1; e < d; e++) {
            const __m512 ke = _mm512_loadu_ps(kt + (long)e * ldk + j);
            for (int r = 0; r < GROUP; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(cq[r][e]), ke, acc[r]);
        }
        // Padding keys (the zero columns past lk in the last block) score −∞.
        const __mmask16 real = j < full ? (__mmask16)0xFFFF : (__mmask16)((1u << (lk - full)) - 1);
        for (int r = 0; r < GROUP; r++) {
            if (real != 0xFFFF) acc[r] = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), real, acc[r]);
            _mm512_storeu_ps(s + (long)r * ldk + j, acc[r]);
            vmax[r] = _mm512_max_ps(acc[r], vmax[r]);
        }
    }
    __m512 vm[GROUP];
    for (int r = 0; r < GROUP; r++) vm[r] = _mm512_set1_ps(_mm512_reduce_max_ps(vmax[r]));
    // Weights, their sums, and the first four value dimensions.
    const int e0 = dv < 4 ? dv : 4;
    const float *v0 = vt, *v1 = vt + (e0 > 1 ? ldk : 0), *v2 = vt + (e0 > 2 ? 2L * ldk : 0), *v3 = vt + (e0 > 3 ? 3L * ldk : 0);
    __m512 sum[GROUP], a[GROUP][4];
    for (int r = 0; r < GROUP; r++) sum[r] = a[r][0] = a[r][1] = a[r][2] = a[r][3] = _mm512_setzero_ps();
    for (int j = 0; j < ldk; j += 16) {
        const __m512 w0 = _mm512_loadu_ps(v0 + j), w1 = _mm512_loadu_ps(v1 + j), w2 = _mm512_loadu_ps(v2 + j), w3 = _mm512_loadu_ps(v3 + j);
        for (int r = 0; r < GROUP; r++) {
            float *sr = s + (long)r * ldk + j;
            const __m512 p = exp2_floor(_mm512_sub_ps(_mm512_loadu_ps(sr), vm[r]));
            if (dv > 4) _mm512_storeu_ps(sr, p);  // the weights are read again only for value dimensions past 4
            sum[r] = _mm512_add_ps(sum[r], p);
            a[r][0] = _mm512_fmadd_ps(p, w0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(p, w1, a[r][1]);
            a[r][2] = _mm512_fmadd_ps(p, w2, a[r][2]);
            a[r][3] = _mm512_fmadd_ps(p, w3, a[r][3]);
        }
    }
    float total[GROUP];
    for (int r = 0; r < GROUP; r++) {
        total[r] = lane_sum(sum[r]);
        float *oi = o + r * o_stride;
        for (int e = 0; e < e0; e++) oi[e] = lane_sum(a[r][e]) / total[r];
    }
    // The other value dimensions, four at a time, then one at a time.
    int e = e0;
    for (; e + 4 <= dv; e += 4) {
        const float *u0 = vt + (long)e * ldk, *u1 = u0 + ldk, *u2 = u1 + ldk, *u3 = u2 + ldk;
        for (int r = 0; r < GROUP; r++) a[r][0] = a[r][1] = a[r][2] = a[r][3] = _mm512_setzero_ps();
        for (int j = 0; j < ldk; j += 16) {
            const __m512 w0 = _mm512_loadu_ps(u0 + j), w1 = _mm512_loadu_ps(u1 + j), w2 = _mm512_loadu_ps(u2 + j), w3 = _mm512_loadu_ps(u3 + j);
            for (int r = 0; r < GROUP; r++) {
                const __m512 p = _mm512_loadu_ps(s + (long)r * ldk + j);
                a[r][0] = _mm512_fmadd_ps(p, w0, a[r][0]);
                a[r][1] = _mm512_fmadd_ps(p, w1, a[r][1]);
                a[r][2] = _mm512_fmadd_ps(p, w2, a[r][2]);
                a[r][3] = _mm512_fmadd_ps(p, w3, a[r][3]);
            }
        }
        for (int r = 0; r < GROUP; r++) {
            float *oi = o + r * o_stride;
            for (int t = 0; t < 4; t++) oi[e + t] = lane_sum(a[r][t]) / total[r];
        }
    }
    for (; e < dv; e++) {
        const float *w = vt + (long)e * ldk;
        for (int r = 0; r < GROUP; r++) a[r][0] = _mm512_setzero_ps();
        for (int j = 0; j < ldk; j += 16) {
            const __m512 we = _mm512_loadu_ps(w + j);
            for (int r = 0; r < GROUP; r++) a[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(s + (long)r * ldk + j), we, a[r][0]);
        }
        for (int r = 0; r < GROUP; r++) o[r * o_stride + e] = lane_sum(a[r][0]) / total[r];
    }
}

AVX512 void pse_attention_rows_avx512(const float *q, long q_stride, int rows, int d, int dv, const float *kt,
                                      const float *vt, int lk, int ldk, float c, float *o, long o_stride, float *scratch) {
    float *s = scratch;
    float cq[d];
    const int full = lk & ~(PSE_ATTN_LANES - 1);
    int i = 0;
    for (; i + GROUP <= rows; i += GROUP) four_rows(q + i * q_stride, q_stride, d, dv, kt, vt, lk, ldk, c, o + i * o_stride, o_stride, s);
    for (; i < rows; i++) {
        const float *qi = q + i * q_stride;
        for (int e = 0; e < d; e++) cq[e] = qi[e] * c;
        // Scores and their max.
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < ldk; j += 16) {
            __m512 acc = _mm512_mul_ps(_mm512_set1_ps(cq[0]), _mm512_loadu_ps(kt + j));
            for (int e = 1; e < d; e++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(cq[e]), _mm512_loadu_ps(kt + (long)e * ldk + j), acc);
            const __mmask16 real = j < full ? (__mmask16)0xFFFF : (__mmask16)((1u << (lk - full)) - 1);
            if (real != 0xFFFF) acc = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), real, acc);
            _mm512_storeu_ps(s + j, acc);
            vmax = _mm512_max_ps(acc, vmax);
        }
        const float m = _mm512_reduce_max_ps(vmax);
        // Weights, their sum, and the first four value dimensions in the same pass.
        const __m512 vm = _mm512_set1_ps(m);
        const int e0 = dv < 4 ? dv : 4;
        const float *v0 = vt, *v1 = vt + (e0 > 1 ? ldk : 0), *v2 = vt + (e0 > 2 ? 2L * ldk : 0), *v3 = vt + (e0 > 3 ? 3L * ldk : 0);
        __m512 sum = _mm512_setzero_ps(), a0 = sum, a1 = sum, a2 = sum, a3 = sum;
        for (int j = 0; j < ldk; j += 16) {
            const __m512 p = exp2_floor(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
            if (dv > 4) _mm512_storeu_ps(s + j, p);
            sum = _mm512_add_ps(sum, p);
            a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + j), a0);
            a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v1 + j), a1);
            a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v2 + j), a2);
            a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v3 + j), a3);
        }
        const float total = lane_sum(sum);
        float *oi = o + i * o_stride;
        const float first[4] = {lane_sum(a0), lane_sum(a1), lane_sum(a2), lane_sum(a3)};
        for (int e = 0; e < e0; e++) oi[e] = first[e] / total;
        // The other value dimensions, four at a time, then one at a time.
        int e = e0;
        for (; e + 4 <= dv; e += 4) {
            const float *w0 = vt + (long)e * ldk, *w1 = w0 + ldk, *w2 = w1 + ldk, *w3 = w2 + ldk;
            a0 = a1 = a2 = a3 = _mm512_setzero_ps();
            for (int j = 0; j < ldk; j += 16) {
                const __m512 p = _mm512_loadu_ps(s + j);
                a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(w0 + j), a0);
                a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(w1 + j), a1);
                a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(w2 + j), a2);
                a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(w3 + j), a3);
            }
            oi[e] = lane_sum(a0) / total;
            oi[e + 1] = lane_sum(a1) / total;
            oi[e + 2] = lane_sum(a2) / total;
            oi[e + 3] = lane_sum(a3) / total;
        }
        for (; e < dv; e++) {
            const float *w = vt + (long)e * ldk;
            a0 = _mm512_setzero_ps();
            for (int j = 0; j < ldk; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(s + j), _mm512_loadu_ps(w + j), a0);
            oi[e] = lane_sum(a0) / total;
        }
    }
}
#endif
