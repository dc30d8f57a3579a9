// Dequantization of int32 convolution rows with the epilogue fused (internal; see psedge_kernels_int8.h).
// Per element, in this order and without fused multiply-adds, on every path (so all equal the scalar one bit for
// bit):  v = (float)(acc − zp·wsum[r]) · (x_scale · wscale[r])  (the matmul form indexes the weight terms by column
// and the activation terms by row);  v = v + bias[r];  v = v + residual (when it
// comes first);  v = v > 0 ? v : 0 (relu);  v = v + residual (when it comes last).
#ifndef PSEDGE_REQUANT_IMPL_H
#define PSEDGE_REQUANT_IMPL_H
#include <stddef.h>
#include <stdint.h>

#define PSE_DEQUANT_PARAMS                                                                                       \
    const int32_t *acc, int ldacc, int rows, int n, float x_scale, int32_t zp, const float *wscale,              \
        const int32_t *wsum, const float *bias, const float *residual, int ldres, int relu, int residual_first,  \
        float *y, int ldy

// The matmul form: weight scale, sum and bias per column, activation scale and zero point per row.
#define PSE_DEQUANT_COLS_PARAMS                                                                                  \
    const int32_t *acc, int ldacc, int rows, int n, const float *x_scale, const int32_t *zp, const float *wscale, \
        const int32_t *wsum, const float *bias, const float *residual, int ldres, int relu, int residual_first,   \
        float *y, int ldy

typedef void (*pse_dequant_rows_fn)(PSE_DEQUANT_PARAMS);
typedef void (*pse_dequant_cols_fn)(PSE_DEQUANT_COLS_PARAMS);

void pse_dequant_rows_scalar(PSE_DEQUANT_PARAMS);
void pse_dequant_cols_scalar(PSE_DEQUANT_COLS_PARAMS);
#if defined(__x86_64__)
void pse_dequant_rows_avx2(PSE_DEQUANT_PARAMS);
void pse_dequant_cols_avx2(PSE_DEQUANT_COLS_PARAMS);
void pse_dequant_rows_avx512(PSE_DEQUANT_PARAMS);
void pse_dequant_cols_avx512(PSE_DEQUANT_COLS_PARAMS);
#endif

/// Row r's constants and pointers.
typedef struct {
    float scale;
    int32_t corr;
    const int32_t *acc;
    const float *res;
    float *y;
} pse_dequant_row;

static inline pse_dequant_row pse_dequant_row_at(int r, const int32_t *acc, int ldacc, float x_scale, int32_t zp,
                                                 const float *wscale, const int32_t *wsum, const float *residual,
                                                 int ldres, float *y, int ldy) {
    return (pse_dequant_row){x_scale * wscale[r], (int32_t)((uint32_t)zp * (uint32_t)wsum[r]), acc + (size_t)r * ldacc,
                             residual ? residual + (size_t)r * ldres : NULL, y + (size_t)r * ldy};
}

/// The reference's per-element step (vector paths use it for their tails).
static inline float pse_dequant_one(int32_t a, int32_t corr, float scale, const float *bias, const float *res, int relu,
                                    int residual_first) {
    float v = (float)(int32_t)((uint32_t)a - (uint32_t)corr);  // wraps like the vector subtract, never UB
    v = v * scale;
    if (bias) v = v + *bias;
    if (res && residual_first) v = v + *res;
    if (relu) v = v > 0.0f ? v : 0.0f;
    if (res && !residual_first) v = v + *res;
    return v;
}
#endif
