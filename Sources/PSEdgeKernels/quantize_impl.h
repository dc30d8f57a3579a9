// Activation quantization (u8) and min/max, per-ISA entry points (internal; see psedge_kernels_int8.h).
// Every path does the scalar reference's operations per element in the same order — multiply by 1/scale, clamp
// to ±512 (NaN becomes −512), round half-even by adding and subtracting 1.5·2^23, add the zero point, clamp to
// [0, 255] — so all paths equal it bit for bit; min/max are exact in any order.
#ifndef PSEDGE_QUANTIZE_IMPL_H
#define PSEDGE_QUANTIZE_IMPL_H
#include <stddef.h>
#include <stdint.h>

#define PSE_QUANT_MAGIC 12582912.0f

void pse_quantize_u8_scalar(const float *x, uint8_t *q, size_t n, float scale, int zero_point);
void pse_minmax_scalar(const float *x, size_t n, float *min_out, float *max_out);
#if defined(__x86_64__)
void pse_quantize_u8_avx2(const float *x, uint8_t *q, size_t n, float scale, int zero_point);
void pse_minmax_avx2(const float *x, size_t n, float *min_out, float *max_out);
void pse_quantize_u8_avx512(const float *x, uint8_t *q, size_t n, float scale, int zero_point);
void pse_minmax_avx512(const float *x, size_t n, float *min_out, float *max_out);
#endif

/// The reference's per-element step (vector paths use it for their tails).
static inline uint8_t pse_quantize_one(float x, float inv, float zp) {
    float v = x * inv;
    v = v > -512.0f ? v : -512.0f;
    v = v < 512.0f ? v : 512.0f;
    v = (v + PSE_QUANT_MAGIC) - PSE_QUANT_MAGIC + zp;
    v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
    return (uint8_t)(int)v;
}

/// Folds x[from..n) into a running min and max the reference's way (a NaN never replaces a number).
static inline void pse_minmax_tail(const float *x, size_t from, size_t n, float *lo, float *hi) {
    for (size_t i = from; i < n; i++) {
        *lo = x[i] < *lo ? x[i] : *lo;
        *hi = x[i] > *hi ? x[i] : *hi;
    }
}
#endif
