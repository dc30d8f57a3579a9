// Run-time choice of the depthwise convolution implementation (CPU features; PSEDGE_DWCONV_KERNEL overrides).
#include "psedge_kernels.h"
#include "dwconv_impl.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef void (*dwconv_fn)(const float *, int, int, const float *, int, int, int, int, int, int, int, int, float, float *,
                          int, int);

static struct {
    const char *name;
    dwconv_fn fn;
} chosen = {NULL, NULL};

static int select_impl(const char *name) {
    if (!name) return 0;
    pse_cpu_features f = pse_cpu_detect();
    (void)f;
#if defined(__x86_64__)
    if (!strcmp(name, "avx512") && f.avx512f) { chosen.fn = pse_dwconv2d_f32_avx512; chosen.name = "avx512"; return 1; }
    if (!strcmp(name, "avx2") && f.avx2 && f.fma) { chosen.fn = pse_dwconv2d_f32_avx2; chosen.name = "avx2"; return 1; }
#endif
#if defined(__aarch64__)
    if (!strcmp(name, "neon") && f.neon) { chosen.fn = pse_dwconv2d_f32_neon; chosen.name = "neon"; return 1; }
#endif
    if (!strcmp(name, "scalar")) { chosen.fn = pse_dwconv2d_f32_scalar; chosen.name = "scalar"; return 1; }
    return 0;
}

static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose_default(void) {
    const char *forced = getenv("PSEDGE_DWCONV_KERNEL");
    if (forced && select_impl(forced)) return;
    // AVX2 first: depthwise planes are narrow (56 → 7 columns in ShuffleNet), where 16-wide vectors mostly fall
    // to the per-pixel borders; measured on ShuffleNet: AVX2 11.9 ms, AVX-512 13.5 ms, scalar 21.5 ms (BENCHMARKS.md).
    if (select_impl("avx2")) return;
    if (select_impl("avx512")) return;
    if (select_impl("neon")) return;
    select_impl("scalar");
}

static void ensure_chosen(void) { pthread_once(&chosen_once, choose_default); }

int pse_dwconv_kernel_select(const char *name) {
    ensure_chosen();
    return select_impl(name);
}

const char *pse_dwconv_kernel_name(void) { ensure_chosen(); return chosen.name; }

void pse_dwconv2d_f32(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l, int sh, int sw,
                      int dh, int dw, float bias, float *y, int oh, int ow) {
    ensure_chosen();
    chosen.fn(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, oh, ow);
}
