// Run-time choice of the dequantize-with-epilogue implementation (CPU features; PSEDGE_DEQUANT_KERNEL overrides).
#include "psedge_kernels.h"
#include "psedge_kernels_int8.h"
#include "requant_impl.h"
#include "kernel_dispatch.h"

static const pse_impl impls[] = {
#if defined(__x86_64__)
    {"avx512", PSE_CPU_AVX512F, {(pse_entry)pse_dequant_rows_avx512, (pse_entry)pse_dequant_cols_avx512}},
    {"avx2", PSE_CPU_AVX2, {(pse_entry)pse_dequant_rows_avx2, (pse_entry)pse_dequant_cols_avx2}},
#endif
    {"scalar", 0, {(pse_entry)pse_dequant_rows_scalar, (pse_entry)pse_dequant_cols_scalar}},  // on ARM the compiler vectorizes it with NEON
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_DEQUANT_KERNEL", impls);

int pse_dequant_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_dequant_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_dequant_rows(PSE_DEQUANT_PARAMS) {
    ((pse_dequant_rows_fn)pse_dispatch_chosen(&dispatcher)->entries[0])(acc, ldacc, rows, n, x_scale, zp, wscale, wsum, bias,
                                                                        residual, ldres, relu, residual_first, y, ldy);
}

void pse_dequant_cols(PSE_DEQUANT_COLS_PARAMS) {
    ((pse_dequant_cols_fn)pse_dispatch_chosen(&dispatcher)->entries[1])(acc, ldacc, rows, n, x_scale, zp, wscale, wsum, bias,
                                                                        residual, ldres, relu, residual_first, y, ldy);
}
