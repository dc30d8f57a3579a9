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
/// The u8 range covering [min(lo, 0), max(hi, 0)]: scale (hi − lo)/255 and the zero point that makes 0.0 exact
/// (rounded half to even, clamped to 0…255); scale 1, zero point 0 when the range is empty or not finite.
void pse_u8_range(float lo, float hi, float *scale, int32_t *zero_point);
/// Dynamic quantization of `rows` contiguous rows of k floats, each with the range of its own min and max.
void pse_quantize_rows_dynamic(const float *x, int rows, int k, uint8_t *q, float *scales, int32_t *zero_points);
/// Which implementation the two above dispatch to ("scalar", "avx2", "avx512"; PSEDGE_QUANTIZE_KERNEL forces one);
/// select returns 0 if this CPU cannot run it. Every path equals the scalar one bit for bit.
int pse_quantize_kernel_select(const char *name);
const char *pse_quantize_kernel_name(void);

/// Output rows of a quantized convolution: y[r][j] = (acc[r][j] − zp·wsum[r]) · x_scale·wscale[r], then + bias[r]
/// (bias may be NULL), + residual[r][j] if residual_first, relu if relu, + residual[r][j] otherwise (residual may be
/// NULL); rows of n elements with their own strides. Dispatched ("scalar", "avx2", "avx512"; PSEDGE_DEQUANT_KERNEL
/// forces one); every path equals the scalar one bit for bit.
void pse_dequant_rows(const int32_t *acc, int ldacc, int rows, int n, float x_scale, int32_t zp, const float *wscale,
                      const int32_t *wsum, const float *bias, const float *residual, int ldres, int relu, int residual_first,
                      float *y, int ldy);
/// The matmul form: y[r][j] = (acc[r][j] − zp[r]·wsum[j]) · x_scale[r]·wscale[j], + bias[j], then the residual and
/// relu as above.
void pse_dequant_cols(const int32_t *acc, int ldacc, int rows, int n, const float *x_scale, const int32_t *zp,
                      const float *wscale, const int32_t *wsum, const float *bias, const float *residual, int ldres, int relu,
                      int residual_first, float *y, int ldy);
int pse_dequant_kernel_select(const char *name);
const char *pse_dequant_kernel_name(void);

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

// ---- Packed int8 GEMM (the dispatched kernels). ----
// B is packed in blocks of 16 columns × 4 consecutive k: for column block j and k-group g, 64 bytes hold
// lanes l = 0..15, each lane the 4 bytes B[4g..4g+3][16j+l] (zero beyond K or N). This is the operand layout
// of AVX-512 VNNI's vpdpbusd (and of NEON sdot on 4-lane halves); A stays row-major, k contiguous.

/// Bytes of a packed B for k×n.
size_t pse_packed_b_size(int k, int n);
/// Packs a row-major k×n int8 (or uint8: the bytes are copied as they are) matrix.
void pse_pack_b(const void *b, int ldb, int k, int n, void *packed);
/// Column sums of a packed int8 B (what the u8 zero-point correction needs), read from the packed layout
/// itself so a model can ship only the packed weight.
void pse_packed_b_column_sums_s8(const void *packed, int k, int n, int32_t *sums);
/// k-groups [group_begin, group_end) (rows 4g..4g+3) of pse_pack_b; groups are independent (parallel callers).
void pse_pack_b_groups(const void *b, int ldb, int k, int n, void *packed, int group_begin, int group_end);
/// Packs the u8 im2col columns of a convolution straight into the packed-B layout (no [K,P] copy); `scratch`
/// holds 4 im2col rows (4·out_h·out_w bytes).
void pse_im2col_u8_packed(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                          int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, uint8_t pad_value,
                          uint8_t *packed, uint8_t *scratch);
/// k-groups [group_begin, group_end) of pse_im2col_u8_packed: every byte of those groups is written, so parallel
/// callers split the groups and need no clearing; each caller needs its own `scratch`.
void pse_im2col_u8_packed_groups(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t,
                                 int pad_l, int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w,
                                 uint8_t pad_value, uint8_t *packed, int group_begin, int group_end, uint8_t *scratch);

/// C[m,n] (int32, row stride ldc) = A[m,k] (uint8 activations) · packed B (int8 weights).
void pse_gemm_u8s8_packed(int m, int n, int k, const uint8_t *a, int lda, const int8_t *bp, int32_t *c, int ldc);
/// C[m,n] = A[m,k] (int8 weights) · packed B (uint8 activations).
void pse_gemm_s8u8_packed(int m, int n, int k, const int8_t *a, int lda, const uint8_t *bp, int32_t *c, int ldc);

/// Which implementation the packed GEMMs dispatch to: "scalar", "avx2", "avx512vnni".
/// Chosen once from the CPU's features; the environment variable PSEDGE_INT8_KERNEL forces one (tests).
const char *pse_int8_kernel_name(void);
/// Forces an implementation by name for this process (returns 0 if the CPU cannot run it).
int pse_int8_kernel_select(const char *name);
