// A fixed-size thread pool for parallel-for loops. Indices are claimed with an atomic counter so uneven work
// balances itself. Between jobs a thread spins briefly before sleeping on a condition variable: a network runs
// hundreds of short parallel regions back to back, and a futex wake-up per region costs more than the region's
// own work on small layers. The spin is bounded (~tens of µs), so an idle pool sleeps. pse_pool_parallel_threads
// instead gives index t to thread t (the caller is 0): work split that way lands on the same core every call.
#include "psedge_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { SPIN_ITERATIONS = 4000 };

struct pse_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    // Current job: written by the caller before `generation` is bumped (release), read after (acquire).
    pse_task_fn fn;
    void *ctx;
    size_t count;
    size_t grain;                 // indices per claim
    atomic_size_t next;
    atomic_int active;            // workers still inside the current job
    atomic_ulong generation;
    atomic_int quit;
    int fixed;                    // the current job gives index t to thread t (caller 0, worker w → w + 1)
    struct pse_worker { pse_pool *pool; int index; } *ids;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Indices are claimed a few at a time: each claim moves the counter's cache line between cores, which costs far
// more when the two cores sit on different chiplets (as a VM's vCPUs sometimes do) than a small index's work.
static void run_job(pse_pool *p, int self) {
    if (p->fixed) {
        if ((size_t)self < p->count) p->fn(p->ctx, (size_t)self);
        return;
    }
    const size_t grain = p->grain;
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&p->next, grain, memory_order_relaxed);
        if (i >= p->count) break;
        const size_t end = i + grain < p->count ? i + grain : p->count;
        for (; i < end; i++) p->fn(p->ctx, i);
    }
}

static void *worker_main(void *arg) {
    const struct pse_worker *me = arg;
    pse_pool *p = me->pool;
    unsigned long seen = 0;
    for (;;) {
        // Spin for a new job, then sleep until one is posted.
        int spins = 0;
        while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen && !atomic_load(&p->quit)
               && spins < SPIN_ITERATIONS) {
            cpu_relax();
            spins++;
        }
        if (atomic_load_explicit(&p->generation, memory_order_acquire) == seen && !atomic_load(&p->quit)) {
            pthread_mutex_lock(&p->mutex);
            while (!atomic_load(&p->quit) && atomic_load_explicit(&p->generation, memory_order_acquire) == seen)
                pthread_cond_wait(&p->wake, &p->mutex);
            pthread_mutex_unlock(&p->mutex);
        }
        if (atomic_load(&p->quit)) break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        run_job(p, me->index);
        if (atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel) == 1) {
            // Last one out: wake the caller if it went to sleep (under the mutex, so the wake cannot be lost).
            pthread_mutex_lock(&p->mutex);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mutex);
        }
    }
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
    atomic_init(&p->next, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->quit, 0);
    p->workers = calloc((size_t)threads, sizeof(pthread_t));
    p->ids = calloc((size_t)threads, sizeof *p->ids);
    if (!p->workers || !p->ids) { p->threads = 1; return p; }
    for (int i = 0; i < threads - 1; i++) {
        p->ids[i] = (struct pse_worker){p, i + 1};
        if (pthread_create(&p->workers[i], NULL, worker_main, &p->ids[i]) != 0) { p->threads = i + 1; break; }
    }
    return p;
}

void pse_pool_destroy(pse_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 0; i < p->threads - 1; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p->ids);
    free(p);
}

int pse_pool_threads(const pse_pool *p) { return p ? p->threads : 1; }

static void run_parallel(pse_pool *p, size_t count, pse_task_fn fn, void *ctx, int fixed) {
    // Workers are all outside a job here (the previous call waited for them), so the fields can be rewritten.
    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    p->fixed = fixed;
    // About eight claims per thread: enough to even out uneven items, few enough to keep the counter quiet.
    p->grain = count / ((size_t)p->threads * 8) > 1 ? count / ((size_t)p->threads * 8) : 1;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, p->threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    run_job(p, 0);
    // Spin for the workers to finish, then sleep.
    for (int spins = 0; atomic_load_explicit(&p->active, memory_order_acquire) > 0 && spins < SPIN_ITERATIONS; spins++)
        cpu_relax();
    if (atomic_load_explicit(&p->active, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mutex);
        while (atomic_load_explicit(&p->active, memory_order_acquire) > 0) pthread_cond_wait(&p->done, &p->mutex);
        pthread_mutex_unlock(&p->mutex);
    }
}

void pse_pool_parallel_for(pse_pool *p, size_t count, pse_task_fn fn, void *ctx) {
    if (count == 0) return;
    if (!p || p->threads == 1 || count == 1) {
        for (size_t i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    run_parallel(p, count, fn, ctx, 0);
}

void pse_pool_parallel_threads(pse_pool *p, pse_task_fn fn, void *ctx) {
    if (!p || p->threads == 1) {
        fn(ctx, 0);
        return;
    }
    run_parallel(p, (size_t)p->threads, fn, ctx, 1);
}
