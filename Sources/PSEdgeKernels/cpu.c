// CPU feature detection and the BLAS bridge.
#include "psedge_kernels.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static int xgetbv_ymm_zmm(int want_zmm) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    unsigned int need = want_zmm ? 0xE6u : 0x6u;
    return (eax & need) == need;
}
#endif

pse_cpu_features pse_cpu_detect(void) {
    pse_cpu_features f = {0};
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1;
        f.fma = (c >> 12) & 1;
        if (osxsave && xgetbv_ymm_zmm(0) && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            f.avx2 = (b >> 5) & 1;
            if (xgetbv_ymm_zmm(1)) {
                f.avx512f = (b >> 16) & 1;
                f.avx512vnni = (c >> 11) & 1;
            }
        }
    }
#elif defined(__aarch64__)
    f.neon = 1;
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP);
    f.dotprod = (hw >> 20) & 1;  // HWCAP_ASIMDDP
    f.i8mm = (getauxval(AT_HWCAP2) >> 13) & 1;  // HWCAP2_I8MM
#endif
#endif
    return f;
}

const char *pse_cpu_kernel_family(void) {
    pse_cpu_features f = pse_cpu_detect();
    if (f.avx512f) return "avx512";
    if (f.avx2 && f.fma) return "avx2";
    if (f.neon) return f.i8mm ? "neon-i8mm" : f.dotprod ? "neon-dotprod" : "neon";
    return "scalar";
}

void pse_blas_set_threads(int threads) { openblas_set_num_threads(threads); }

void pse_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void pse_sgemm_row_uniform(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    int main_rows = m / PSE_ROW_BLOCK * PSE_ROW_BLOCK;
    if (main_rows > 0) pse_sgemm(0, 0, main_rows, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    int tail = m - main_rows;
    if (tail == 0) return;
    float *pa = calloc((size_t)PSE_ROW_BLOCK * k, sizeof(float));
    float *pc = malloc((size_t)PSE_ROW_BLOCK * n * sizeof(float));
    if (!pa || !pc) {  // out of memory: fall back to a plain call (still correct, just not row-uniform)
        free(pa); free(pc);
        pse_sgemm(0, 0, tail, n, k, 1.0f, a + (size_t)main_rows * lda, lda, b, ldb, 0.0f, c + (size_t)main_rows * ldc, ldc);
        return;
    }
    for (int r = 0; r < tail; r++) memcpy(pa + (size_t)r * k, a + (size_t)(main_rows + r) * lda, sizeof(float) * k);
    pse_sgemm(0, 0, PSE_ROW_BLOCK, n, k, 1.0f, pa, k, b, ldb, 0.0f, pc, n);
    for (int r = 0; r < tail; r++) memcpy(c + (size_t)(main_rows + r) * ldc, pc + (size_t)r * n, sizeof(float) * n);
    free(pa);
    free(pc);
}
