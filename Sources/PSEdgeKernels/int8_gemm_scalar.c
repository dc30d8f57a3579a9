// Scalar reference for the packed int8 GEMMs: every SIMD path must equal it bit for bit.
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"

void pse_gemm_u8s8_packed_scalar(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc) {
    const int kg = (k + 3) / 4;
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (size_t)i * lda;
        for (int col = 0; col < n; col++) {
            const int8_t *blk = bp + (size_t)(col / 16) * kg * 64 + (col % 16) * 4;
            int32_t acc = 0;
            for (int p = 0; p < k; p++) acc += (int32_t)ar[p] * (int32_t)blk[(size_t)(p / 4) * 64 + (p % 4)];
            c[(size_t)i * ldc + col] = acc;
        }
    }
}

void pse_gemm_s8u8_packed_scalar(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc) {
    const int kg = (k + 3) / 4;
    for (int i = 0; i < m; i++) {
        const int8_t *ar = a + (size_t)i * lda;
        for (int col = 0; col < n; col++) {
            const uint8_t *blk = bp + (size_t)(col / 16) * kg * 64 + (col % 16) * 4;
            int32_t acc = 0;
            for (int p = 0; p < k; p++) acc += (int32_t)ar[p] * (int32_t)blk[(size_t)(p / 4) * 64 + (p % 4)];
            c[(size_t)i * ldc + col] = acc;
        }
    }
}
