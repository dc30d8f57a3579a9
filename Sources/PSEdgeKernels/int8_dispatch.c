// Run-time choice of the packed int8 GEMM implementation (CPU features; PSEDGE_INT8_KERNEL overrides).
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef void (*u8s8_fn)(int, int, int, const uint8_t *, int, const int8_t *, int32_t *, int);
typedef void (*s8u8_fn)(int, int, int, const int8_t *, int, const uint8_t *, int32_t *, int);

static struct {
    const char *name;
    u8s8_fn u8s8;
    s8u8_fn s8u8;
} chosen = {NULL, NULL, NULL};

static int cpu_can(const char *name) {
    pse_cpu_features f = pse_cpu_detect();
    if (!strcmp(name, "scalar")) return 1;
#if defined(__x86_64__)
    if (!strcmp(name, "avx2")) return f.avx2;
    if (!strcmp(name, "avx512vnni")) return f.avx512f && f.avx512vnni;
#endif
#if defined(__aarch64__)
    if (!strcmp(name, "neon")) return f.neon;
    if (!strcmp(name, "dotprod")) return f.dotprod;
#endif
    (void)f;
    return 0;
}

static int select_impl(const char *name) {
    if (!name || !cpu_can(name)) return 0;
#if defined(__x86_64__)
    if (!strcmp(name, "avx512vnni")) {
        chosen.u8s8 = pse_gemm_u8s8_packed_avx512vnni; chosen.s8u8 = pse_gemm_s8u8_packed_avx512vnni;
        chosen.name = "avx512vnni";
        return 1;
    }
    if (!strcmp(name, "avx2")) {
        chosen.u8s8 = pse_gemm_u8s8_packed_avx2; chosen.s8u8 = pse_gemm_s8u8_packed_avx2;
        chosen.name = "avx2";
        return 1;
    }
#endif
#if defined(__aarch64__)
    if (!strcmp(name, "dotprod")) {
        chosen.u8s8 = pse_gemm_u8s8_packed_dotprod; chosen.s8u8 = pse_gemm_s8u8_packed_dotprod;
        chosen.name = "dotprod";
        return 1;
    }
    if (!strcmp(name, "neon")) {
        chosen.u8s8 = pse_gemm_u8s8_packed_neon; chosen.s8u8 = pse_gemm_s8u8_packed_neon;
        chosen.name = "neon";
        return 1;
    }
#endif
    chosen.u8s8 = pse_gemm_u8s8_packed_scalar; chosen.s8u8 = pse_gemm_s8u8_packed_scalar;
    chosen.name = "scalar";
    return 1;
}

static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose_default(void) {
    const char *forced = getenv("PSEDGE_INT8_KERNEL");
    if (forced && select_impl(forced)) return;
    if (select_impl("avx512vnni")) return;
    if (select_impl("avx2")) return;
    if (select_impl("dotprod")) return;
    if (select_impl("neon")) return;
    select_impl("scalar");
}

static void ensure_chosen(void) { pthread_once(&chosen_once, choose_default); }

int pse_int8_kernel_select(const char *name) {
    ensure_chosen();
    return select_impl(name);
}

const char *pse_int8_kernel_name(void) { ensure_chosen(); return chosen.name; }

void pse_gemm_u8s8_packed(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc) {
    ensure_chosen();
    chosen.u8s8(m, n, k, a, lda, bp, c, ldc);
}

void pse_gemm_s8u8_packed(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc) {
    ensure_chosen();
    chosen.s8u8(m, n, k, a, lda, bp, c, ldc);
}
