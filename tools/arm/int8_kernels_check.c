// Checks the ARM int8 GEMM kernels (NEON, dotprod, i8mm) against the scalar reference, bit for bit, on random
// matrices of awkward sizes (k not a multiple of 4, n not a multiple of 16, extreme values). Cross-compiled
// and run under qemu-aarch64 by tools/arm/check.sh.
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 0x9E3779B97F4A7C15ull;
static unsigned rnd(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (unsigned)(state >> 11);
}
static int byte_value(int mode) { return mode == 0 ? (int)(rnd() & 0xFF) : (mode == 1 ? 0xFF : 0x80); }

typedef void (*u8s8_fn)(int, int, int, const uint8_t *, int, const int8_t *, int32_t *, int);
typedef void (*s8u8_fn)(int, int, int, const int8_t *, int, const uint8_t *, int32_t *, int);

int main(int argc, char **argv) {
    // --dotprod adds the dotprod kernels, --i8mm the i8mm ones too (the CPU must have them: qemu -cpu max).
    int nimpl = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dotprod") && nimpl < 2) nimpl = 2;
        if (!strcmp(argv[i], "--i8mm")) nimpl = 3;
    }
    struct { const char *name; u8s8_fn u8s8; s8u8_fn s8u8; } impls[3] = {
        {"neon", pse_gemm_u8s8_packed_neon, pse_gemm_s8u8_packed_neon},
        {"dotprod", pse_gemm_u8s8_packed_dotprod, pse_gemm_s8u8_packed_dotprod},
        {"i8mm", pse_gemm_u8s8_packed_i8mm, pse_gemm_s8u8_packed_i8mm},
    };
    int cases = 0, failures = 0;
    for (int t = 0; t < 300; t++) {
        const int m = 1 + rnd() % 9, n = 1 + rnd() % 70, k = 1 + rnd() % 150, mode = t < 280 ? 0 : (t < 290 ? 1 : 2);
        const int lda = k + rnd() % 5, ldc = n + rnd() % 3;
        uint8_t *a = malloc((size_t)m * lda), *b = malloc((size_t)k * n);
        for (int i = 0; i < m * lda; i++) a[i] = (uint8_t)byte_value(mode);
        for (int i = 0; i < k * n; i++) b[i] = (uint8_t)byte_value(mode);
        uint8_t *bp = malloc(pse_packed_b_size(k, n));
        pse_pack_b(b, n, k, n, bp);
        int32_t *ref = calloc((size_t)m * ldc, 4), *got = calloc((size_t)m * ldc, 4);
        for (int variant = 0; variant < 2; variant++) {
            if (variant == 0) pse_gemm_u8s8_packed_scalar(m, n, k, a, lda, (const int8_t *)bp, ref, ldc);
            else pse_gemm_s8u8_packed_scalar(m, n, k, (const int8_t *)a, lda, bp, ref, ldc);
            for (int p = 0; p < nimpl; p++) {
                memset(got, 0, (size_t)m * ldc * 4);
                if (variant == 0) impls[p].u8s8(m, n, k, a, lda, (const int8_t *)bp, got, ldc);
                else impls[p].s8u8(m, n, k, (const int8_t *)a, lda, bp, got, ldc);
                cases++;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                        if (got[i * ldc + j] != ref[i * ldc + j]) {
                            if (failures < 10)
                                fprintf(stderr, "%s %s m=%d n=%d k=%d: C[%d][%d] = %d, scalar %d\n", impls[p].name,
                                        variant ? "s8u8" : "u8s8", m, n, k, i, j, got[i * ldc + j], ref[i * ldc + j]);
                            failures++;
                            i = m; break;
                        }
            }
        }
        free(a); free(b); free(bp); free(ref); free(got);
    }
    const char *names[3] = {"neon", "neon, dotprod", "neon, dotprod, i8mm"};
    printf("%d kernel runs (%s) compared with the scalar reference: %d mismatches\n", cases, names[nimpl - 1], failures);
    return failures ? 1 : 0;
}
