// Run-time choice of the small-head attention implementation (CPU features; PSEDGE_ATTENTION_KERNEL overrides).
#include "psedge_kernels.h"
#include "psedge_kernels_ops.h"
#include "attention_impl.h"
#include "kernel_dispatch.h"

static const pse_impl impls[] = {
#if defined(__x86_64__)
    {"avx512", PSE_CPU_AVX512F, {(pse_entry)pse_attention_rows_avx512}},
    {"avx2", PSE_CPU_AVX2 | PSE_CPU_FMA, {(pse_entry)pse_attention_rows_avx2}},
#endif
#if defined(__aarch64__)
    {"neon", PSE_CPU_NEON, {(pse_entry)pse_attention_rows_neon}},
#endif
    {"scalar", 0, {(pse_entry)pse_attention_rows_scalar}},
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_ATTENTION_KERNEL", impls);

int pse_attention_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_attention_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_attention_rows_f32(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                            int lk, int ldk, float scale, float *o, long o_stride, float *scratch) {
    if (rows <= 0 || d <= 0 || dv <= 0 || lk <= 0) return;
    const pse_attention_rows_fn fn = (pse_attention_rows_fn)pse_dispatch_chosen(&dispatcher)->entries[0];
    fn(q, q_stride, rows, d, dv, kt, vt, lk, ldk, scale * 1.44269504088896341f, o, o_stride, scratch);
}
