// PSEdge C kernels: a thin layer Swift calls into. One ISA per source file; the dispatcher picks at run time.
#ifndef PSEDGE_KERNELS_H
#define PSEDGE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- Thread pool: a fixed set of worker threads that run parallel-for loops. ----
typedef struct pse_pool pse_pool;
typedef void (*pse_task_fn)(void *ctx, size_t index);

/// Creates a pool that runs work on `threads` threads in total (the caller's thread counts as one).
pse_pool *pse_pool_create(int threads);
void pse_pool_destroy(pse_pool *pool);
int pse_pool_threads(const pse_pool *pool);
/// Calls fn(ctx, i) for every i in [0, count), spread over the pool; returns when all are done.
void pse_pool_parallel_for(pse_pool *pool, size_t count, pse_task_fn fn, void *ctx);
/// Runs fn(ctx, t) once on each thread t of the pool (the caller is thread 0): work split this way goes to the same
/// core every time, so data a core wrote in one call is where the same core looks for it in the next.
void pse_pool_parallel_threads(pse_pool *pool, pse_task_fn fn, void *ctx);

// ---- CPU features and BLAS. ----
typedef struct {
    int avx2, fma, avx512f, avx512vnni, neon, dotprod, i8mm;
} pse_cpu_features;
pse_cpu_features pse_cpu_detect(void);
/// Name of the kernel family chosen for this CPU ("avx2", "avx512", "neon", "scalar").
const char *pse_cpu_kernel_family(void);
void pse_blas_set_threads(int threads);
/// pse_sgemm split over `pool` (N at multiples of 16 columns, or M at multiples of PSE_ROW_BLOCK rows), each part a
/// single-threaded BLAS call: same results as one call. Small products run in one call.
void pse_sgemm_pool(pse_pool *pool, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc);
/// pse_sgemm_row_uniform split over `pool` along N.
void pse_sgemm_row_uniform_pool(pse_pool *pool, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                                float *c, int ldc);

/// C[m,n] = alpha * op(A) * op(B) + beta * C, row-major, fp32 (OpenBLAS).
void pse_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/// C[m,n] = A[m,k] * B[k,n] (row-major, no transposes, beta = 0) computed so that every row of C goes
/// through the same full-width micro-kernel: the rows past the last multiple of PSE_ROW_BLOCK are padded
/// with zero rows in a scratch copy. Rows with equal inputs then give bit-identical outputs, whatever their
/// position (a convolution's output channels do not depend on where the channel sits).
#define PSE_ROW_BLOCK 32
void pse_sgemm_row_uniform(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc);

// ---- Convolution helpers. ----
/// Unfolds one image (C,H,W) into columns [C*KH*KW, OH*OW] for a GEMM-based convolution (N-d via 2-d).
void pse_im2col(const float *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, float *cols);
/// The adjoint of im2col: accumulates columns back into an image (used by ConvTranspose).
void pse_col2im(const float *cols, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                int stride_h, int stride_w, int dil_h, int dil_w, int in_h, int in_w, float *img);

// ---- Elementwise math: libm per element (the Exp, Erf and Tanh operators; activations are in psedge_kernels_ops.h). ----
void pse_vexp(const float *x, float *y, size_t n);
void pse_verf(const float *x, float *y, size_t n);
void pse_vtanh(const float *x, float *y, size_t n);

#ifdef __cplusplus
}
#endif

#include "psedge_kernels_int8.h"
#endif

#include "psedge_kernels_ops.h"
