// Run-time choice of the fp32 convolution GEMM (CPU features; PSEDGE_SCONV_KERNEL overrides).
#include "psedge_kernels.h"
#include "psedge_kernels_ops.h"
#include "sconv_impl.h"
#include "kernel_dispatch.h"

static const pse_impl impls[] = {
#if defined(__x86_64__)
    {"avx512", PSE_CPU_AVX512F, {(pse_entry)pse_sconv_gemm_avx512, (pse_entry)pse_sconv_rows_avx512}},
    {"avx2", PSE_CPU_AVX2 | PSE_CPU_FMA, {(pse_entry)pse_sconv_gemm_avx2, (pse_entry)pse_sconv_rows_avx2}},
#endif
    {"scalar", 0, {(pse_entry)pse_sconv_gemm_scalar, (pse_entry)pse_sconv_rows_scalar}},
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_SCONV_KERNEL", impls);

int pse_sconv_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_sconv_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_sconv_gemm(PSE_SCONV_PARAMS) {
    ((pse_sconv_fn)pse_dispatch_chosen(&dispatcher)->entries[0])(m, n, k, a, lda, bp, ldb, pstride, bias, res, ldres, relu, residual_first, c, ldc);
}

void pse_sconv_rows(PSE_SCONV_ROWS_PARAMS) {
    ((pse_sconv_rows_fn)pse_dispatch_chosen(&dispatcher)->entries[1])(m, n, k, ap, apstride, bp, ldb, pstride, bias, res, ldres, relu,
                                                                   residual_first, c, ldc);
}

size_t pse_sconv_row_panels_floats(int m, int k) { return (size_t)((m + PSE_SCONV_PANEL - 1) / PSE_SCONV_PANEL) * k * PSE_SCONV_PANEL; }

void pse_sconv_pack_row_panels(const float *w, int m, int k, float *out) {
    for (int r0 = 0; r0 < m; r0 += PSE_SCONV_PANEL) {
        float *panel = out + (size_t)(r0 / PSE_SCONV_PANEL) * k * PSE_SCONV_PANEL;
        for (int kk = 0; kk < k; kk++)
            for (int i = 0; i < PSE_SCONV_PANEL; i++)
                panel[(size_t)kk * PSE_SCONV_PANEL + i] = r0 + i < m ? w[(size_t)(r0 + i) * k + kk] : 0.0f;
    }
}
