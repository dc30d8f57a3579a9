// Run-time choice of the depthwise convolution implementation (CPU features; PSEDGE_DWCONV_KERNEL overrides).
#include "psedge_kernels.h"
#include "dwconv_impl.h"
#include "kernel_dispatch.h"

typedef void (*dwconv_fn)(const float *, int, int, const float *, int, int, int, int, int, int, int, int, float, float *,
                          int, int);

// AVX2 first: depthwise planes are narrow (56 → 7 columns in ShuffleNet), where 16-wide vectors mostly fall
// to the per-pixel borders; measured on ShuffleNet: AVX2 11.9 ms, AVX-512 13.5 ms, scalar 21.5 ms (BENCHMARKS.md).
static const pse_impl impls[] = {
#if defined(__x86_64__)
    {"avx2", PSE_CPU_AVX2 | PSE_CPU_FMA, {(pse_entry)pse_dwconv2d_f32_avx2}},
    {"avx512", PSE_CPU_AVX512F, {(pse_entry)pse_dwconv2d_f32_avx512}},
#endif
#if defined(__aarch64__)
    {"neon", PSE_CPU_NEON, {(pse_entry)pse_dwconv2d_f32_neon}},
#endif
    {"scalar", 0, {(pse_entry)pse_dwconv2d_f32_scalar}},
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_DWCONV_KERNEL", impls);

int pse_dwconv_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_dwconv_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_dwconv2d_f32(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l, int sh, int sw,
                      int dh, int dw, float bias, float *y, int oh, int ow) {
    ((dwconv_fn)pse_dispatch_chosen(&dispatcher)->entries[0])(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, oh, ow);
}
