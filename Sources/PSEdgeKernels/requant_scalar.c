// Dequantization with the fused epilogue, portable reference (requant_impl.h).
#include "psedge_kernels.h"
#include "requant_impl.h"

void pse_dequant_rows_scalar(PSE_DEQUANT_PARAMS) {
    for (int r = 0; r < rows; r++) {
        const pse_dequant_row row = pse_dequant_row_at(r, acc, ldacc, x_scale, zp, wscale, wsum, residual, ldres, y, ldy);
        const float scale = row.scale;
        const int32_t corr = row.corr, *a = row.acc;
        const float *res = row.res;
        float *o = row.y;
        for (int j = 0; j < n; j++)
            o[j] = pse_dequant_one(a[j], corr, scale, bias ? bias + r : NULL, res ? res + j : NULL, relu, residual_first);
    }
}

void pse_dequant_cols_scalar(PSE_DEQUANT_COLS_PARAMS) {
    for (int r = 0; r < rows; r++) {
        const int32_t *a = acc + (size_t)r * ldacc;
        const float *res = residual ? residual + (size_t)r * ldres : NULL;
        float *o = y + (size_t)r * ldy;
        for (int j = 0; j < n; j++) {
            const int32_t corr = (int32_t)((uint32_t)zp[r] * (uint32_t)wsum[j]);
            o[j] = pse_dequant_one(a[j], corr, x_scale[r] * wscale[j], bias ? bias + j : NULL, res ? res + j : NULL, relu,
                                   residual_first);
        }
    }
}
