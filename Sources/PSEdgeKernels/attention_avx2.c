// Attention for small heads, AVX2 + FMA: 16 keys as two 8-lane vectors (lanes 0–7 and 8–15 of
// attention_impl.h's partial sums).
#if defined(__x86_64__)
#include "psedge_kernels.h"
#include "attention_impl.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

typedef struct { __m256 lo, hi; } v16;

AVX2 static inline v16 load16(const float *p) { return (v16){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
AVX2 static inline void store16(float *p, v16 v) { _mm256_storeu_ps(p, v.lo); _mm256_storeu_ps(p + 8, v.hi); }
AVX2 static inline v16 zero16(void) { return (v16){_mm256_setzero_ps(), _mm256_setzero_ps()}; }
AVX2 static inline v16 fma16(__m256 a, v16 b, v16 c) { return (v16){_mm256_fmadd_ps(a, b.lo, c.lo), _mm256_fmadd_ps(a, b.hi, c.hi)}; }
AVX2 static inline v16 fma16v(v16 a, v16 b, v16 c) { return (v16){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }

AVX2 static inline __m256 exp2_floor(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(PSE_ATTN_EXP_FLOOR));
    const __m256 magic = _mm256_set1_ps(PSE_ATTN_ROUND_MAGIC);
    const __m256 t = _mm256_add_ps(x, magic);
    const __m256 f = _mm256_sub_ps(x, _mm256_sub_ps(t, magic));
    __m256 p = _mm256_set1_ps(PSE_ATTN_C5);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(PSE_ATTN_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(PSE_ATTN_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(PSE_ATTN_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(PSE_ATTN_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i n = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(n, 23)));
}

// The fixed lane tree of pse_attn_lane_sum.
AVX2 static inline float lane_sum(v16 a) {
    const __m256 b = _mm256_add_ps(a.lo, a.hi);
    const __m128 c = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
    const __m128 d = _mm_add_ps(c, _mm_movehl_ps(c, c));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
}

AVX2 static inline float lane_max(__m256 a) {
    __m128 c = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    c = _mm_max_ps(c, _mm_movehl_ps(c, c));
    return _mm_cvtss_f32(_mm_max_ss(c, _mm_movehdup_ps(c)));
}

AVX2 void pse_attention_rows_avx2(const float *q, long q_stride, int rows, int d, int dv, const float *kt,
                                  const float *vt, int lk, int ldk, float c, float *o, long o_stride, float *scratch) {
    float *s = scratch;
    float cq[d];
    const int full = lk & ~(PSE_ATTN_LANES - 1);
    for (int i = 0; i < rows; i++) {
        const float *qi = q + i * q_stride;
        for (int e = 0; e < d; e++) cq[e] = qi[e] * c;
        // Scores and their max.
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (int j = 0; j < full; j += 16) {
            const __m256 c0 = _mm256_set1_ps(cq[0]);
            v16 k = load16(kt + j);
            v16 acc = {_mm256_mul_ps(c0, k.lo), _mm256_mul_ps(c0, k.hi)};
            for (int e = 1; e < d; e++) acc = fma16(_mm256_set1_ps(cq[e]), load16(kt + (long)e * ldk + j), acc);
            store16(s + j, acc);
            vmax = _mm256_max_ps(acc.lo, vmax);
            vmax = _mm256_max_ps(acc.hi, vmax);
        }
        const float m = pse_attn_score_tail(cq, d, kt, lk, ldk, s, lane_max(vmax));
        // Weights, their sum, and the first two value dimensions in the same pass (registers for two more would
        // spill: each dimension takes two of the sixteen).
        const __m256 vm = _mm256_set1_ps(m);
        const int e0 = dv < 2 ? dv : 2;
        const float *v0 = vt, *v1 = vt + (e0 > 1 ? ldk : 0);
        v16 sum = zero16(), a0 = sum, a1 = sum;
        for (int j = 0; j < ldk; j += 16) {
            const v16 x = load16(s + j);
            const v16 p = {exp2_floor(_mm256_sub_ps(x.lo, vm)), exp2_floor(_mm256_sub_ps(x.hi, vm))};
            store16(s + j, p);
            sum.lo = _mm256_add_ps(sum.lo, p.lo);
            sum.hi = _mm256_add_ps(sum.hi, p.hi);
            a0 = fma16v(p, load16(v0 + j), a0);
            a1 = fma16v(p, load16(v1 + j), a1);
        }
        const float total = lane_sum(sum);
        float *oi = o + i * o_stride;
        const float first[2] = {lane_sum(a0), lane_sum(a1)};
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
