// Per-ISA implementations of the packed int8 GEMMs (internal; see psedge_kernels_int8.h).
#ifndef PSEDGE_INT8_GEMM_IMPL_H
#define PSEDGE_INT8_GEMM_IMPL_H
#include <stdint.h>

void pse_gemm_u8s8_packed_scalar(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc);
void pse_gemm_s8u8_packed_scalar(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc);
#if defined(__x86_64__)
void pse_gemm_u8s8_packed_avx2(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc);
void pse_gemm_s8u8_packed_avx2(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc);
void pse_gemm_u8s8_packed_avx512vnni(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc);
void pse_gemm_s8u8_packed_avx512vnni(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc);
#endif
#if defined(__aarch64__)
void pse_gemm_u8s8_packed_neon(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc);
void pse_gemm_s8u8_packed_neon(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc);
void pse_gemm_u8s8_packed_dotprod(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc);
void pse_gemm_s8u8_packed_dotprod(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc);
void pse_gemm_u8s8_packed_i8mm(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc);
void pse_gemm_s8u8_packed_i8mm(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc);
#endif

/// Reads A[row][4g..4g+3] as one 32-bit word, zero-filling past k (so callers need no padding).
static inline uint32_t pse_load_k4(const void *row, int g, int k) {
    const uint8_t *r = (const uint8_t *)row + 4 * g;
    int left = k - 4 * g;
    if (left >= 4) { uint32_t v; __builtin_memcpy(&v, r, 4); return v; }
    uint32_t v = 0;
    for (int q = 0; q < left; q++) v |= (uint32_t)r[q] << (8 * q);
    return v;
}
#endif
