// Run-time choice of the packed int8 GEMM implementation (CPU features; PSEDGE_INT8_KERNEL overrides).
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include "kernel_dispatch.h"

typedef void (*u8s8_fn)(int, int, int, const uint8_t *, int, const int8_t *, int32_t *, int);
typedef void (*s8u8_fn)(int, int, int, const int8_t *, int, const uint8_t *, int32_t *, int);

#define IMPL(name, needs, isa) {name, needs, {(pse_entry)pse_gemm_u8s8_packed_##isa, (pse_entry)pse_gemm_s8u8_packed_##isa}}
static const pse_impl impls[] = {
#if defined(__x86_64__)
    IMPL("avx512vnni", PSE_CPU_AVX512F | PSE_CPU_AVX512VNNI, avx512vnni),
    IMPL("avx2", PSE_CPU_AVX2, avx2),
#endif
#if defined(__aarch64__)
    IMPL("i8mm", PSE_CPU_NEON | PSE_CPU_I8MM, i8mm),
    IMPL("dotprod", PSE_CPU_NEON | PSE_CPU_DOTPROD, dotprod),
    IMPL("neon", PSE_CPU_NEON, neon),
#endif
    IMPL("scalar", 0, scalar),
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_INT8_KERNEL", impls);

int pse_int8_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_int8_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_gemm_u8s8_packed(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc) {
    ((u8s8_fn)pse_dispatch_chosen(&dispatcher)->entries[0])(m, n, k, a, lda, bp, c, ldc);
}

void pse_gemm_s8u8_packed(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc) {
    ((s8u8_fn)pse_dispatch_chosen(&dispatcher)->entries[1])(m, n, k, a, lda, bp, c, ldc);
}
