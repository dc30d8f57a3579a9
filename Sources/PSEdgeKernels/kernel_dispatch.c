// Run-time choice among per-ISA implementations (kernel_dispatch.h).
#include "psedge_kernels.h"
#include "kernel_dispatch.h"
#include <stdlib.h>
#include <string.h>

static unsigned cpu_mask(void) {
    const pse_cpu_features f = pse_cpu_detect();
    return (f.avx2 ? PSE_CPU_AVX2 : 0) | (f.fma ? PSE_CPU_FMA : 0) | (f.avx512f ? PSE_CPU_AVX512F : 0) |
           (f.avx512vnni ? PSE_CPU_AVX512VNNI : 0) | (f.neon ? PSE_CPU_NEON : 0) | (f.dotprod ? PSE_CPU_DOTPROD : 0) |
           (f.i8mm ? PSE_CPU_I8MM : 0);
}

static const pse_impl *runnable(const pse_dispatcher *d, const char *name) {
    if (!name) return NULL;
    const unsigned have = cpu_mask();
    for (int i = 0; i < d->count; i++)
        if (!strcmp(d->impls[i].name, name) && (d->impls[i].needs & have) == d->impls[i].needs) return &d->impls[i];
    return NULL;
}

const pse_impl *pse_dispatch_chosen(pse_dispatcher *d) {
    const pse_impl *c = atomic_load_explicit(&d->chosen, memory_order_acquire);
    if (c) return c;
    // First use: the forced one if it runs here, else the first that does (the last entry is always scalar).
    c = runnable(d, getenv(d->env));
    const unsigned have = cpu_mask();
    for (int i = 0; !c && i < d->count; i++)
        if ((d->impls[i].needs & have) == d->impls[i].needs) c = &d->impls[i];
    const pse_impl *expected = NULL;
    // Threads racing here compute the same choice; a select() that got in first wins.
    if (!atomic_compare_exchange_strong(&d->chosen, &expected, c)) return expected;
    return c;
}

int pse_dispatch_select(pse_dispatcher *d, const char *name) {
    const pse_impl *c = runnable(d, name);
    if (!c) return 0;
    atomic_store_explicit(&d->chosen, c, memory_order_release);
    return 1;
}
