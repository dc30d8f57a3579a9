// Hot loops of the normalization / pooling / resize / reduction operators (Sources/PSEdgeRuntime/Ops).
#ifndef PSEDGE_KERNELS_OPS_H
#define PSEDGE_KERNELS_OPS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// y[i] = exp(x[i]) with a fast polynomial (relative error < 1e-6; 0 below -87.3, +inf above 88.7,
/// NaN stays NaN). x may equal y.
void pse_ops_exp(const float *x, float *y, size_t n);

/// y[i] = exp(x[i] - shift); returns the sum of the y[i]. x may equal y.
float pse_ops_exp_shift_sum(const float *x, float *y, size_t n, float shift);

/// Largest element of x[0..n) (n >= 1).
float pse_ops_max(const float *x, size_t n);

/// Softmax (log_mode = 0) or log-softmax (log_mode = 1) of one contiguous row. x may equal y.
void pse_ops_softmax_row(const float *x, float *y, size_t n, int log_mode);

/// Sum of x[0..n) with several partial sums (more accurate and faster than one running sum).
float pse_ops_sum(const float *x, size_t n);

/// Activations with the fast exp (x may equal y): sigmoid and x·sigmoid(x) (relative error < 1e-6), and the
/// exact-form GELU 0.5·x·(1 + erf(x/√2)) with a polynomial erf (absolute error ≤ 1.5e-7 · |x| plus rounding).
void pse_ops_sigmoid(const float *x, float *y, size_t n);
void pse_ops_silu(const float *x, float *y, size_t n);
void pse_ops_gelu(const float *x, float *y, size_t n);

/// Max pooling of one h×w plane (no dilation): rows of the window folded into column maxima (t: w floats of
/// scratch), then the window along them; padding and NaN never win, an all-padding window gives −∞.
void pse_maxpool2d_f32(const float *x, int h, int w, int kh, int kw, int sh, int sw, int pad_t, int pad_l, float *y, int oh,
                       int ow, float *t);
/// Its implementation: "avx512" or "portable" (same bits; PSEDGE_MAXPOOL_KERNEL forces one). 0 if this CPU cannot run it.
int pse_maxpool_kernel_select(const char *name);

/// Mean and biased variance of x[0..n) (two passes).
void pse_ops_mean_var(const float *x, size_t n, float *mean, float *var);

/// Depthwise 2-D convolution of one channel plane (row-major h×w → oh×ow) with one kh×kw filter: every output is
/// `bias`, then a fused multiply-add per tap in ky-major, kx-minor order, padding read as 0. Dispatched on the CPU
/// (scalar, avx2, avx512, neon; PSEDGE_DWCONV_KERNEL forces one); every path equals the scalar one bit for bit.
void pse_dwconv2d_f32(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l, int sh, int sw,
                      int dh, int dw, float bias, float *y, int oh, int ow);
/// Forces an implementation by name; returns 0 if this CPU cannot run it.
int pse_dwconv_kernel_select(const char *name);
/// The implementation in use.
const char *pse_dwconv_kernel_name(void);

/// Scaled dot-product attention of `rows` query rows of one head (q: rows × d, row stride q_stride) over lk keys
/// stored transposed and zero-padded to ldk (a multiple of 16) columns: kt is d × ldk, vt is dv × ldk. Writes
/// o[i·o_stride + e] = Σ_j softmax_j(scale · q_i·k_j) v_j[e]. scratch holds PSE_ATTN_SCRATCH_ROWS·ldk floats (paths
/// may score several rows at once). Needs d, dv, lk ≥ 1.
/// Softmax in base 2 with a fixed reduction order (attention_impl.h), dispatched on the CPU (scalar, avx2,
/// avx512, neon; PSEDGE_ATTENTION_KERNEL forces one); every path equals the scalar one bit for bit.
#define PSE_ATTN_SCRATCH_ROWS 4
void pse_attention_rows_f32(const float *q, long q_stride, int rows, int d, int dv, const float *kt, const float *vt,
                            int lk, int ldk, float scale, float *o, long o_stride, float *scratch);
/// Forces an implementation by name; returns 0 if this CPU cannot run it.
int pse_attention_kernel_select(const char *name);
/// The implementation in use.
const char *pse_attention_kernel_name(void);

/// fp32 convolution as a GEMM over activation panels (sconv_impl.h): floats a packed K×n activation matrix takes.
size_t pse_sconv_packed_floats(int k, int n);
/// Packs k-rows [k_begin, k_end) of a convolution's im2col matrix (the input itself for 1×1 stride-1 unpadded) into
/// 16-column panels; `row` is scratch for out_h·out_w floats. Rows may be packed in parallel.
void pse_sconv_pack(const float *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l, int sh,
                    int sw, int dh, int dw, int out_h, int out_w, float *panels, int k_begin, int k_end, float *row);
/// Packs every k-row of a convolution's im2col matrix, for output columns [c0, c1) only (c = oy·out_w + ox), into
/// 16-column panels (pstride = K·16; c1 − c0 columns): a band small enough to stay in cache between packing and its
/// GEMM. `row` is scratch for the whole output rows the columns touch (at most c1 − c0 + 2·out_w floats).
void pse_sconv_pack_cols(const float *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l, int sh,
                         int sw, int dh, int dw, int out_w, int c0, int c1, float *panels, float *row);
/// c[m×n] (row stride ldc) = a[m×k] (weights, row stride lda) × B, B[kk][j] = bp[(j/16)·pstride + kk·ldb + j%16]
/// (packed panels: ldb = 16, pstride = k·16; a row-major [k][ldb] matrix read in place: pstride = 16), each element
/// started at bias[r] (bias may be NULL) and summed with fused multiply-adds in k order; then + res (row stride
/// ldres, may be NULL) if residual_first, relu if relu, + res otherwise. Dispatched ("scalar", "avx2", "avx512";
/// PSEDGE_SCONV_KERNEL forces one); every path equals the scalar one bit for bit.
void pse_sconv_gemm(int m, int n, int k, const float *a, int lda, const float *bp, int ldb, size_t pstride, const float *bias,
                    const float *res, int ldres, int relu, int residual_first, float *c, int ldc);
/// The same product with the weights in 16-row panels (pse_sconv_pack_row_panels; A[r][kk] = ap[(r/16)·apstride +
/// kk·16 + r%16], apstride = k·16, the first row at a panel start): vectors run down output channels, for outputs
/// with few columns. Bit-identical to pse_sconv_gemm on the same operands; dispatched with it.
void pse_sconv_rows(int m, int n, int k, const float *ap, size_t apstride, const float *bp, int ldb, size_t pstride, const float *bias,
                    const float *res, int ldres, int relu, int residual_first, float *c, int ldc);
/// Floats of an m×k weight matrix in 16-row panels, and the packing (rows past m are 0).
size_t pse_sconv_row_panels_floats(int m, int k);
void pse_sconv_pack_row_panels(const float *w, int m, int k, float *out);
int pse_sconv_kernel_select(const char *name);
const char *pse_sconv_kernel_name(void);

/// Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions (winograd.c): 36 GEMMs M[ξ] = U[ξ] · V[ξ] between the
/// transforms. Weights w [m][c][3][3] → u [36][m][c] (computed in double, rounded once).
void pse_winograd_f43_weights(const float *w, int m, int c, float *u);
/// Input channels [c_begin, c_end) of x [channels][height][width], zero-padded by pad_t/pad_l (and as needed at the
/// bottom/right), cut into 6×6 patches 4 apart; tile rows [ty_begin, ty_end) of tiles_w tiles each →
/// v [36][channels][(ty_end − ty_begin)·tiles_w].
void pse_winograd_f43_input(const float *x, int c_begin, int c_end, int channels, int height, int width, int pad_t, int pad_l,
                            int ty_begin, int ty_end, int tiles_w, float *v);
/// Output channels [m_begin, m_end) of tile rows [ty_begin, ty_end) from mm [36][channels_out][(ty_end − ty_begin)·tiles_w]
/// → y [channels_out][out_h][out_w] (tiles past the edge are cut): + bias (may be NULL), then the residual / ReLU as
/// pse_sconv_gemm does (res may be NULL; y and res are whole planes).
void pse_winograd_f43_output(const float *mm, int m_begin, int m_end, int channels_out, int ty_begin, int ty_end, int tiles_w,
                             int out_h, int out_w, const float *bias, const float *res, int relu, int residual_first, float *y);
/// The transforms' implementation: "avx512" or "portable" (same bits; PSEDGE_WINOGRAD_KERNEL forces one). Returns 0 if
/// this CPU cannot run `name`.
int pse_winograd_kernel_select(const char *name);
const char *pse_winograd_kernel_name(void);

#ifdef __cplusplus
}
#endif
#endif
