// Run-time choice of the activation quantization implementation (CPU features; PSEDGE_QUANTIZE_KERNEL overrides).
#include "psedge_kernels.h"
#include "psedge_kernels_int8.h"
#include "quantize_impl.h"
#include "kernel_dispatch.h"

typedef void (*quantize_fn)(const float *, uint8_t *, size_t, float, int);
typedef void (*minmax_fn)(const float *, size_t, float *, float *);

#define IMPL(name, needs, isa) {name, needs, {(pse_entry)pse_quantize_u8_##isa, (pse_entry)pse_minmax_##isa}}
static const pse_impl impls[] = {
#if defined(__x86_64__)
    IMPL("avx512", PSE_CPU_AVX512F, avx512),
    IMPL("avx2", PSE_CPU_AVX2, avx2),
#endif
    IMPL("scalar", 0, scalar),  // on ARM the compiler vectorizes it with NEON
};
static pse_dispatcher dispatcher = PSE_DISPATCHER("PSEDGE_QUANTIZE_KERNEL", impls);

int pse_quantize_kernel_select(const char *name) { return pse_dispatch_select(&dispatcher, name); }

const char *pse_quantize_kernel_name(void) { return pse_dispatch_chosen(&dispatcher)->name; }

void pse_quantize_u8(const float *x, uint8_t *q, size_t n, float scale, int zero_point) {
    ((quantize_fn)pse_dispatch_chosen(&dispatcher)->entries[0])(x, q, n, scale, zero_point);
}

void pse_minmax(const float *x, size_t n, float *min_out, float *max_out) {
    ((minmax_fn)pse_dispatch_chosen(&dispatcher)->entries[1])(x, n, min_out, max_out);
}

void pse_quantize_rows_dynamic(const float *x, int rows, int k, uint8_t *q, float *scales, int32_t *zero_points) {
    const pse_impl *impl = pse_dispatch_chosen(&dispatcher);
    const quantize_fn quantize = (quantize_fn)impl->entries[0];
    const minmax_fn minmax = (minmax_fn)impl->entries[1];
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * k;
        float lo, hi;
        minmax(xr, (size_t)k, &lo, &hi);
        pse_u8_range(lo, hi, &scales[r], &zero_points[r]);
        quantize(xr, q + (size_t)r * k, (size_t)k, scales[r], zero_points[r]);
    }
}
