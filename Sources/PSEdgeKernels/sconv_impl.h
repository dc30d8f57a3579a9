// fp32 convolution as a GEMM over packed activation panels (internal; see psedge_kernels_ops.h).
//
// Activations (im2col columns, or the input itself for 1×1 convolutions) are packed in panels of 16 columns: panel p
// holds, for each k, columns 16p … 16p+15 contiguously (K × 16 floats; columns past n are 0). Weights are read as
// they are stored, row-major [M][K].
//
// Every output element is computed in this order on every path, so all paths equal the scalar one bit for bit:
//   acc = bias[r] (0 without bias);  acc = fma(a[r][kk], b[kk][j], acc) for kk = 0 … K−1;
//   acc = acc + residual (when it comes first);  acc = acc > 0 ? acc : 0 (relu);  acc = acc + residual (when last).
#ifndef PSEDGE_SCONV_IMPL_H
#define PSEDGE_SCONV_IMPL_H
#include <math.h>
#include <stddef.h>

#define PSE_SCONV_PANEL 16

// B is addressed as bp[(j / 16)·pstride + kk·ldb + j % 16]: packed panels have ldb = 16, pstride = K·16; a 1×1
// convolution's input read in place has ldb = its row length, pstride = 16 (columns past n are never read).
#define PSE_SCONV_PARAMS                                                                                          \
    int m, int n, int k, const float *a, int lda, const float *bp, int ldb, size_t pstride, const float *bias,    \
        const float *res, int ldres, int relu, int residual_first, float *c, int ldc

typedef void (*pse_sconv_fn)(PSE_SCONV_PARAMS);

void pse_sconv_gemm_scalar(PSE_SCONV_PARAMS);
#if defined(__x86_64__)
void pse_sconv_gemm_avx2(PSE_SCONV_PARAMS);
void pse_sconv_gemm_avx512(PSE_SCONV_PARAMS);
#endif

// The same products with the weights packed in 16-row panels instead (the "rows" form, for outputs so narrow that
// 16-column activation panels would be mostly padding, e.g. ResNet's 7×7 stage: 49 columns in 64): A[r][kk] =
// ap[(r/16)·apstride + kk·16 + r%16] (apstride = K·16, rows past m zero), vectors run down 16 output channels and
// each activation is broadcast. Every element is summed in the same order as above, so both forms agree bit for bit.
#define PSE_SCONV_ROWS_PARAMS                                                                                     \
    int m, int n, int k, const float *ap, size_t apstride, const float *bp, int ldb, size_t pstride, const float *bias, \
        const float *res, int ldres, int relu, int residual_first, float *c, int ldc

typedef void (*pse_sconv_rows_fn)(PSE_SCONV_ROWS_PARAMS);

void pse_sconv_rows_scalar(PSE_SCONV_ROWS_PARAMS);
#if defined(__x86_64__)
void pse_sconv_rows_avx2(PSE_SCONV_ROWS_PARAMS);
void pse_sconv_rows_avx512(PSE_SCONV_ROWS_PARAMS);
#endif

/// The epilogue of one finished sum.
static inline float pse_sconv_finish(float acc, const float *res, int relu, int residual_first) {
    if (res && residual_first) acc = acc + *res;
    if (relu) acc = acc > 0.0f ? acc : 0.0f;
    if (res && !residual_first) acc = acc + *res;
    return acc;
}

/// One output element the reference way (vector paths use it for ragged edges).
static inline float pse_sconv_element(int r, int j, int k, const float *a, int lda, const float *bp, int ldb, size_t pstride,
                                      const float *bias, const float *res, int ldres, int relu, int residual_first) {
    const float *ar = a + (size_t)r * lda;
    const float *b = bp + (size_t)(j / PSE_SCONV_PANEL) * pstride + j % PSE_SCONV_PANEL;
    float acc = bias ? bias[r] : 0.0f;
    for (int kk = 0; kk < k; kk++) acc = fmaf(ar[kk], b[(size_t)kk * ldb], acc);
    return pse_sconv_finish(acc, res ? res + (size_t)r * ldres + j : NULL, relu, residual_first);
}

/// One output element of the rows form the reference way.
static inline float pse_sconv_rows_element(int r, int j, int k, const float *ap, size_t apstride, const float *bp, int ldb,
                                           size_t pstride, const float *bias, const float *res, int ldres, int relu,
                                           int residual_first) {
    const float *ar = ap + (size_t)(r / PSE_SCONV_PANEL) * apstride + r % PSE_SCONV_PANEL;
    const float *b = bp + (size_t)(j / PSE_SCONV_PANEL) * pstride + j % PSE_SCONV_PANEL;
    float acc = bias ? bias[r] : 0.0f;
    for (int kk = 0; kk < k; kk++) acc = fmaf(ar[(size_t)kk * PSE_SCONV_PANEL], b[(size_t)kk * ldb], acc);
    return pse_sconv_finish(acc, res ? res + (size_t)r * ldres + j : NULL, relu, residual_first);
}
#endif
