// fp32 GEMM split over the PSEdge pool, each part a single-threaded BLAS call. OpenBLAS's own threads would spin
// beside the pool's (and starve both on a busy 2-core board); with one pool there is one set of threads.
// Splits keep every C element's computation unchanged: N is split at multiples of 16 columns, M at multiples of
// PSE_ROW_BLOCK rows, so each element goes through the same micro-kernel and K order as in one call.
#include "psedge_kernels.h"
#include <stdlib.h>

typedef struct {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, parts, split_n, step, row_uniform;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_job;

static void run_part(void *ctx, size_t index) {
    const gemm_job *j = ctx;
    const int begin = (int)index * j->step;
    if (j->split_n) {
        if (begin >= j->n) return;
        const int cols = j->n - begin < j->step ? j->n - begin : j->step;
        const float *b = j->trans_b ? j->b + (size_t)begin * j->ldb : j->b + begin;
        if (j->row_uniform) pse_sgemm_row_uniform(j->m, cols, j->k, j->a, j->lda, b, j->ldb, j->c + begin, j->ldc);
        else pse_sgemm(j->trans_a, j->trans_b, j->m, cols, j->k, j->alpha, j->a, j->lda, b, j->ldb, j->beta, j->c + begin, j->ldc);
    } else {
        if (begin >= j->m) return;
        const int rows = j->m - begin < j->step ? j->m - begin : j->step;
        const float *a = j->trans_a ? j->a + begin : j->a + (size_t)begin * j->lda;
        pse_sgemm(j->trans_a, j->trans_b, rows, j->n, j->k, j->alpha, a, j->lda, j->b, j->ldb, j->beta,
                  j->c + (size_t)begin * j->ldc, j->ldc);
    }
}

// Columns per part of a matrix-vector product.
#define GEMV_COLUMNS 128

static void run(pse_pool *pool, gemm_job *j) {
    const int threads = pool ? pse_pool_threads(pool) : 1;
    const double work = (double)j->m * j->n * j->k;
    // Small products: one call (a dispatch costs more than it saves). Fewer rows than a row block is a
    // matrix-vector product, for which OpenBLAS's kernels round a column differently depending on how many
    // columns the call has; one call keeps the result independent of the thread count.
    if (work < 2.0e5) { j->parts = 1; j->split_n = 1; j->step = j->n; run_part(j, 0); return; }
    if (j->m < PSE_ROW_BLOCK) {
        // Matrix-vector products (a classifier's last layer: ~8 MB of weights read once) are bandwidth-bound; they
        // are cut into parts of a fixed column count whatever the thread count, so results do not depend on it.
        j->split_n = 1;
        j->step = GEMV_COLUMNS;
        size_t parts = (size_t)((j->n + GEMV_COLUMNS - 1) / GEMV_COLUMNS);
        if (threads < 2) for (size_t p = 0; p < parts; p++) run_part(j, p);
        else pse_pool_parallel_for(pool, parts, run_part, j);
        return;
    }
    if (threads < 2) { j->parts = 1; j->split_n = 1; j->step = j->n; run_part(j, 0); return; }
    // Split the larger of M and N (the other operand is packed once per part).
    const int unit = j->split_n ? 16 : PSE_ROW_BLOCK;
    const int extent = j->split_n ? j->n : j->m;
    int parts = threads;
    int step = (extent + parts - 1) / parts;
    step = (step + unit - 1) / unit * unit;
    parts = (extent + step - 1) / step;
    if (parts < 2) { j->step = extent; run_part(j, 0); return; }
    j->step = step;
    pse_pool_parallel_for(pool, (size_t)parts, run_part, j);
}

void pse_sgemm_pool(pse_pool *pool, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc) {
    gemm_job j = {trans_a, trans_b, m, n, k, lda, ldb, ldc, 0, n >= m, 0, 0, alpha, beta, a, b, c};
    // Row splits would need PSE_ROW_BLOCK-aligned parts; split N unless M is clearly the long side.
    j.split_n = n >= m || m < 2 * PSE_ROW_BLOCK;
    run(pool, &j);
}

void pse_sgemm_row_uniform_pool(pse_pool *pool, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                                float *c, int ldc) {
    gemm_job j = {0, 0, m, n, k, lda, ldb, ldc, 0, 1, 0, 1, 1.0f, 0.0f, a, b, c};
    run(pool, &j);
}
