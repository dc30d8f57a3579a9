// int8 kernels: activation quantization and integer GEMMs with int32 accumulation.
// Scalar reference implementations (the SIMD paths of later work must match them bit for bit).
#ifndef PSEDGE_KERNELS_INT8_H
#define PSEDGE_KERNELS_INT8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// q[i] = clamp(round_half_even(x[i] / scale) + zero_point, 0, 255).
void pse_quantize_u8(const float *x, uint8_t *q, size_t n, float scale, int zero_point);

/// Min and max of x[0..n) (0 and 0 for n == 0).
void pse_minmax(const float *x, size_t n, float *min_out, float *max_out);

/// u8 im2col: like pse_im2col, padding with `pad_value` (the zero point, i.e. quantized 0.0).
void pse_im2col_u8(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                   int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, uint8_t pad_value,
                   uint8_t *cols);

/// C[m,n] = sum_k A[m,k] * B[k,n]; A int8 [m,k] (weights, row stride lda), B uint8 [k,n] (activations,
/// row stride ldb), C int32 (row stride ldc). The convolution form: weights times im2col columns.
void pse_gemm_s8u8_s32(int m, int n, int k, const int8_t *a, int lda, const uint8_t *b, int ldb, int32_t *c, int ldc);

/// C[m,n] = sum_k A[m,k] * B[k,n]; A uint8 [m,k] (activations), B int8 [k,n] (weights). The matmul form.
void pse_gemm_u8s8_s32(int m, int n, int k, const uint8_t *a, int lda, const int8_t *b, int ldb, int32_t *c, int ldc);

#ifdef __cplusplus
}
#endif
#endif
