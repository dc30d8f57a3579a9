// Max pooling of one plane, per instruction set (internal; pse_maxpool2d_f32 dispatches). Max is exact and every
// path keeps the running maximum when a value is not greater (so a NaN never wins and equal zeros keep the first
// sign), comparing the window's values in the same order: all paths give the same bits.
#ifndef PSEDGE_MAXPOOL_IMPL_H
#define PSEDGE_MAXPOOL_IMPL_H
#include <math.h>

#define PSE_MAXPOOL_PARAMS                                                                                             \
    const float *x, int h, int w, int kh, int kw, int sh, int sw, int pad_t, int pad_l, float *y, int oh, int ow, float *t

typedef void (*pse_maxpool_fn)(PSE_MAXPOOL_PARAMS);

void pse_maxpool2d_f32_portable(PSE_MAXPOOL_PARAMS);
#if defined(__x86_64__)
void pse_maxpool2d_f32_avx512(PSE_MAXPOOL_PARAMS);
#endif

/// Max of t[x0 … x0+kw) clipped to [0, w) (−∞ when nothing is left).
static inline float pse_window_max(const float *t, int w, int x0, int kw) {
    const int c0 = x0 < 0 ? 0 : x0, c1 = x0 + kw > w ? w : x0 + kw;
    float best = -INFINITY;
    for (int c = c0; c < c1; c++) best = t[c] > best ? t[c] : best;
    return best;
}

/// Outputs [lo, hi) of a row whose windows lie wholly inside the w columns; the others go through pse_window_max.
static inline void pse_maxpool_inside(int w, int kw, int sw, int pad_l, int ow, int *lo, int *hi) {
    int l = (pad_l + sw - 1) / sw, u = w - kw + pad_l < 0 ? 0 : (w - kw + pad_l) / sw + 1;
    if (u > ow) u = ow;
    if (l > u) l = u;
    *lo = l, *hi = u;
}
#endif
