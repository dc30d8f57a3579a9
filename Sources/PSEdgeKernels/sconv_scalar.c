// fp32 convolution GEMM over packed panels, portable reference: one output element at a time (sconv_impl.h).
#include "psedge_kernels.h"
#include "sconv_impl.h"

void pse_sconv_gemm_scalar(PSE_SCONV_PARAMS) {
    for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++)
            c[(size_t)r * ldc + j] = pse_sconv_element(r, j, k, a, lda, bp, ldb, pstride, bias, res, ldres, relu, residual_first);
}

void pse_sconv_rows_scalar(PSE_SCONV_ROWS_PARAMS) {
    for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++)
            c[(size_t)r * ldc + j] = pse_sconv_rows_element(r, j, k, ap, apstride, bp, ldb, pstride, bias, res, ldres, relu, residual_first);
}
