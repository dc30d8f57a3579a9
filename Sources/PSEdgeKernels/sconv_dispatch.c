// Run-time choice of the fp32 convolution GEMM (CPU features; PSEDGE_SCONV_KERNEL overrides).
#include "psedge_kernels.h"
#include "psedge_kernels_ops.h"
#include "sconv_impl.h"
#include "kernel_dispatch.h"

static const pse_impl impls[] = {
#if defined(__x86_64__)
    {"avx512", PSE_CPU_AVX512F, {(pse_entry)pse_sconv_gemm_avx512}},
    {"avx2", PSE_CPU_AVX2 | PSE_CPU_FMA, {(pse_entry)pse_sconv_gemm_avx2}},
#endif
    {"scalar", 0, {(pse_entry)pse_sconv_gemm_scalar}},
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_SCONV_KERNEL", impls);

int pse_sconv_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_sconv_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_sconv_gemm(PSE_SCONV_PARAMS) {
    ((pse_sconv_fn)pse_dispatch_chosen(&dispatcher)->entries[0])(m, n, k, a, lda, bp, ldb, pstride, bias, res, ldres, relu, residual_first, c, ldc);
}
