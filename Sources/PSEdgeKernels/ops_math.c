// Vectorized helpers for softmax and normalization. Written with the GCC/clang vector extension so the
// same source compiles to SSE on x86 and NEON on ARM; tails use scalar code.
#include "kernel_dispatch.h"
#include "maxpool_impl.h"
#include "psedge_kernels_ops.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

// 4 lanes: the baseline vector width of x86-64 (SSE2) and ARM64 (NEON).
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
#define W 4

static inline v4f load4(const float *p) { v4f v; memcpy(&v, p, sizeof v); return v; }
static inline void store4(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f splat(float f) { return (v4f){f, f, f, f}; }
static inline v4f vmax(v4f a, v4f b) { v4i m = a > b; return (v4f)(((v4i)a & m) | ((v4i)b & ~m)); }
static inline v4f vmin(v4f a, v4f b) { v4i m = a < b; return (v4f)(((v4i)a & m) | ((v4i)b & ~m)); }
static inline float hsum(v4f v) {
    return (v[0] + v[2]) + (v[1] + v[3]);
}

// exp(x) = 2^n * exp(r), n = round(x / ln2), |r| <= ln2/2; exp(r) by a degree-6 polynomial.
static inline v4f vexp(v4f xin) {
    v4i under = xin < splat(-87.33654f);   // exp underflows: exactly 0 (masked softmax entries)
    v4i over = xin > splat(88.72283f);     // overflows: +inf
    v4i nan = xin != xin;
    v4f x = vmin(vmax(xin, splat(-87.33654f)), splat(88.72283f));
    const v4f magic = splat(12582912.0f); // 1.5 * 2^23: adding it rounds to an integer
    v4f t = x * splat(1.44269504088896341f) + magic;
    v4i ni = (v4i)t - (v4i)magic;
    v4f n = t - magic;
    v4f r = x - n * splat(0.693145751953125f);
    r = r - n * splat(1.428606765330187045e-06f);
    v4f p = splat(1.0f / 720);
    p = p * r + splat(1.0f / 120);
    p = p * r + splat(1.0f / 24);
    p = p * r + splat(1.0f / 6);
    p = p * r + splat(0.5f);
    p = p * r + splat(1.0f);
    p = p * r + splat(1.0f);
    v4i bits = (v4i)p + (ni << 23);
    bits = (bits & ~(under | over | nan)) | ((v4i)splat(INFINITY) & over) | ((v4i)xin & nan);
    return (v4f)bits;
}

static inline float sexp(float x) {
    v4f v = vexp(splat(x));
    return v[0];
}

void pse_ops_exp(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) store4(y + i, vexp(load4(x + i)));
    for (; i < n; i++) y[i] = sexp(x[i]);
}

float pse_ops_exp_shift_sum(const float *x, float *y, size_t n, float shift) {
    v4f acc = splat(0), s = splat(shift);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        v4f e = vexp(load4(x + i) - s);
        store4(y + i, e);
        acc += e;
    }
    float tail = 0;
    for (; i < n; i++) {
        float e = sexp(x[i] - shift);
        y[i] = e;
        tail += e;
    }
    return hsum(acc) + tail;
}

float pse_ops_max(const float *x, size_t n) {
    size_t i = 0;
    float m = -INFINITY;
    if (n >= W) {
        v4f a = load4(x);
        for (i = W; i + W <= n; i += W) a = vmax(a, load4(x + i));
        for (int k = 0; k < W; k++) m = a[k] > m ? a[k] : m;
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

void pse_ops_softmax_row(const float *x, float *y, size_t n, int log_mode) {
    if (n == 0) return;
    float m = pse_ops_max(x, n);
    if (log_mode) {
        // y = x - m - log(sum(exp(x - m))); exp values go to y first, then are overwritten.
        float s = pse_ops_exp_shift_sum(x, y, n, m);
        float ls = m + logf(s);
        for (size_t i = 0; i < n; i++) y[i] = x[i] - ls;
    } else {
        float s = pse_ops_exp_shift_sum(x, y, n, m);
        float inv = 1.0f / s;
        size_t i = 0;
        v4f vi = splat(inv);
        for (; i + W <= n; i += W) store4(y + i, load4(y + i) * vi);
        for (; i < n; i++) y[i] *= inv;
    }
}

float pse_ops_sum(const float *x, size_t n) {
    v4f a = splat(0), b = splat(0);
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        a += load4(x + i);
        b += load4(x + i + W);
    }
    for (; i + W <= n; i += W) a += load4(x + i);
    float tail = 0;
    for (; i < n; i++) tail += x[i];
    return hsum(a + b) + tail;
}

void pse_ops_mean_var(const float *x, size_t n, float *mean, float *var) {
    if (n == 0) { *mean = 0; *var = 0; return; }
    float m = pse_ops_sum(x, n) / (float)n;
    v4f a = splat(0), b = splat(0), vm = splat(m);
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        v4f d0 = load4(x + i) - vm, d1 = load4(x + i + W) - vm;
        a += d0 * d0;
        b += d1 * d1;
    }
    for (; i + W <= n; i += W) { v4f d = load4(x + i) - vm; a += d * d; }
    float tail = 0;
    for (; i < n; i++) { float d = x[i] - m; tail += d * d; }
    *mean = m;
    *var = (hsum(a + b) + tail) / (float)n;
}

// ---- Activations (4 lanes; the tail goes through a zero-padded vector, so it rounds like the rest). ----

static inline void map4(const float *x, float *y, size_t n, v4f (*f)(v4f)) {
    size_t i = 0;
    for (; i + W <= n; i += W) store4(y + i, f(load4(x + i)));
    if (i < n) {
        float t[W] = {0};
        memcpy(t, x + i, (n - i) * sizeof(float));
        const v4f r = f(load4(t));
        memcpy(y + i, &r, (n - i) * sizeof(float));
    }
}

static inline v4f vabs(v4f x) { return (v4f)((v4i)x & (v4i){INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX}); }

// 1 / (1 + e^-x) from e = exp(-|x|) (never overflows): 1/(1+e) for x ≥ 0, e/(1+e) below.
static inline v4f vsigmoid(v4f x) {
    const v4f e = vexp(-vabs(x));
    const v4f r = splat(1.0f) / (splat(1.0f) + e);
    const v4i neg = x < splat(0.0f);
    return (v4f)(((v4i)(e * r) & neg) | ((v4i)r & ~neg));
}

static inline v4f vsilu(v4f x) { return x * vsigmoid(x); }

// erf by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7): 1 − t·P(t)·exp(−z²), t = 1/(1 + p|z|), odd in z.
static inline v4f verf(v4f z) {
    const v4f a = vabs(z);
    const v4f t = splat(1.0f) / (splat(1.0f) + splat(0.3275911f) * a);
    v4f p = splat(1.061405429f);
    p = p * t + splat(-1.453152027f);
    p = p * t + splat(1.421413741f);
    p = p * t + splat(-0.284496736f);
    p = p * t + splat(0.254829592f);
    const v4f e = splat(1.0f) - p * t * vexp(-(a * a));
    return (v4f)((v4i)e | ((v4i)z & (v4i)splat(-0.0f)));  // the sign of z
}

// x·Φ(x) = 0.5·x·(1 + erf(x/√2)).
static inline v4f vgelu(v4f x) { return splat(0.5f) * x * (splat(1.0f) + verf(x * splat(0.70710678118654752f))); }

void pse_ops_sigmoid(const float *x, float *y, size_t n) { map4(x, y, n, vsigmoid); }
void pse_ops_silu(const float *x, float *y, size_t n) { map4(x, y, n, vsilu); }
void pse_ops_gelu(const float *x, float *y, size_t n) { map4(x, y, n, vgelu); }

// ---- Pooling. ----

void pse_maxpool2d_f32_portable(PSE_MAXPOOL_PARAMS) {
    for (int oy = 0; oy < oh; oy++) {
        const int y0 = oy * sh - pad_t;
        const int r0 = y0 < 0 ? 0 : y0, r1 = y0 + kh > h ? h : y0 + kh;
        // Column maxima of the window's rows (a NaN never wins, as in the generic kernel), then windows along them.
        for (int i = 0; i < w; i++) t[i] = -INFINITY;
        for (int r = r0; r < r1; r++) {
            const float *row = x + (size_t)r * w;
            for (int i = 0; i < w; i++) t[i] = row[i] > t[i] ? row[i] : t[i];
        }
        float *yr = y + (size_t)oy * ow;
        // Windows wholly inside the row, [lo, hi): one pass per window column, each a strided loop that vectorizes
        // (max is exact and a NaN never wins, so the order of the comparisons does not matter).
        int lo, hi;
        pse_maxpool_inside(w, kw, sw, pad_l, ow, &lo, &hi);
        for (int ox = lo; ox < hi; ox++) yr[ox] = -INFINITY;
        for (int c = 0; c < kw; c++) {
            const float *tc = t + c - pad_l;
            for (int ox = lo; ox < hi; ox++) {
                const float v = tc[(size_t)ox * sw];
                yr[ox] = v > yr[ox] ? v : yr[ox];
            }
        }
        for (int ox = 0; ox < lo; ox++) yr[ox] = pse_window_max(t, w, ox * sw - pad_l, kw);
        for (int ox = hi; ox < ow; ox++) yr[ox] = pse_window_max(t, w, ox * sw - pad_l, kw);
    }
}

static const pse_impl maxpool_impls[] = {
#if defined(__x86_64__)
    {"avx512", PSE_CPU_AVX512F, {(pse_entry)pse_maxpool2d_f32_avx512}},
#endif
    {"portable", 0, {(pse_entry)pse_maxpool2d_f32_portable}},
};
static pse_dispatcher maxpool_dispatcher = PSE_DISPATCHER("PSEDGE_MAXPOOL_KERNEL", maxpool_impls);

int pse_maxpool_kernel_select(const char *name) { return pse_dispatch_select(&maxpool_dispatcher, name); }

void pse_maxpool2d_f32(PSE_MAXPOOL_PARAMS) {
    ((pse_maxpool_fn)pse_dispatch_chosen(&maxpool_dispatcher)->entries[0])(x, h, w, kh, kw, sh, sw, pad_t, pad_l, y, oh, ow, t);
}
