// A fixed-size thread pool for parallel-for loops. Workers sleep on a condition variable between jobs;
// indices are claimed with an atomic counter so uneven work balances itself.
#include "psedge_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct pse_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    // Current job.
    pse_task_fn fn;
    void *ctx;
    size_t count;
    atomic_size_t next;
    int active;          // workers still inside the current job
    unsigned long generation;
    int quit;
};

static void run_job(pse_pool *p) {
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->count) break;
        p->fn(p->ctx, i);
    }
}

static void *worker_main(void *arg) {
    pse_pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mutex);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mutex);
        run_job(p);
        pthread_mutex_lock(&p->mutex);
        if (--p->active == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mutex);
    return NULL;
}

pse_pool *pse_pool_create(int threads) {
    if (threads < 1) threads = 1;
    pse_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->workers = calloc((size_t)threads, sizeof(pthread_t));
    for (int i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) { p->threads = i + 1; break; }
    }
    return p;
}

void pse_pool_destroy(pse_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 0; i < p->threads - 1; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int pse_pool_threads(const pse_pool *p) { return p ? p->threads : 1; }

void pse_pool_parallel_for(pse_pool *p, size_t count, pse_task_fn fn, void *ctx) {
    if (count == 0) return;
    if (!p || p->threads == 1 || count == 1) {
        for (size_t i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mutex);
    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    atomic_store(&p->next, 0);
    p->active = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    run_job(p);
    pthread_mutex_lock(&p->mutex);
    while (p->active > 0) pthread_cond_wait(&p->done, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}
