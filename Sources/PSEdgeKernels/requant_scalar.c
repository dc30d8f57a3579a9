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
