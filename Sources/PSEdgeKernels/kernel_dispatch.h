// Run-time choice among the per-ISA implementations of one kernel (internal). A dispatcher lists its
// implementations in order of preference with the CPU features each needs; the first this CPU runs is used, unless
// the dispatcher's environment variable names another one it can run (tests force paths this way).
#ifndef PSEDGE_KERNEL_DISPATCH_H
#define PSEDGE_KERNEL_DISPATCH_H
#include <stdatomic.h>

/// Feature bits of pse_cpu_feature_mask().
enum { PSE_CPU_AVX2 = 1, PSE_CPU_FMA = 2, PSE_CPU_AVX512F = 4, PSE_CPU_AVX512VNNI = 8, PSE_CPU_NEON = 16, PSE_CPU_DOTPROD = 32,
       PSE_CPU_I8MM = 64 };

/// Entry points are stored as this type and cast back to their own type at the call.
typedef void (*pse_entry)(void);

typedef struct {
    const char *name;
    unsigned needs;        // PSE_CPU_* bits
    pse_entry entries[2];  // the kernel's entry points (most kernels have one)
} pse_impl;

typedef struct {
    const char *env;
    const pse_impl *impls;
    int count;
    _Atomic(const pse_impl *) chosen;
} pse_dispatcher;

#define PSE_DISPATCHER(env, impls) {env, impls, (int)(sizeof(impls) / sizeof((impls)[0])), NULL}

/// The implementation in use (chosen on first use).
const pse_impl *pse_dispatch_chosen(pse_dispatcher *d);
/// Switches to the implementation `name`; returns 0 (and changes nothing) if there is none or this CPU cannot run it.
int pse_dispatch_select(pse_dispatcher *d, const char *name);
#endif
