// What it costs one core to rewrite memory the other core has just read, against memory only it touched, with
// ordinary and with non-temporal stores (1 MiB, 200 rounds, threads pinned to CPUs 0 and 1). On the 2-vCPU host of
// BENCHMARKS.md this is the cost behind its slow phase. Build and run: bash tools/host/shared_lines.sh
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FLOATS (1 << 18)
#define ROUNDS 200

static float *buf;
static atomic_int turn;  // 1: the other core reads the buffer; 0: done; 2: stop
static int other_reads;
static volatile float sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *reader(void *arg) {
    (void)arg;
    pin(1);
    for (;;) {
        int t;
        while ((t = atomic_load(&turn)) == 0) {}
        if (t == 2) return NULL;
        if (other_reads) {
            float s = 0;
            for (int i = 0; i < FLOATS; i += 16) s += buf[i];
            sink = s;
        }
        atomic_store(&turn, 0);
    }
}

int main(void) {
    buf = aligned_alloc(64, FLOATS * sizeof(float));
    pin(0);
    pthread_t th;
    pthread_create(&th, NULL, reader, NULL);
    static const char *names[4] = {"ordinary stores, only this core touched it  ", "ordinary stores, after the other core read it",
                                   "streaming stores, only this core touched it ", "streaming stores, after the other core read it"};
    for (int mode = 0; mode < 4; mode++) {
        other_reads = mode & 1;
        double total = 0;
        for (int r = 0; r < ROUNDS; r++) {
            const double t0 = now();
            if (mode < 2) {
                for (int i = 0; i < FLOATS; i++) buf[i] = (float)(r + i);
            } else {
                for (int i = 0; i < FLOATS; i += 4) _mm_stream_ps(buf + i, _mm_set1_ps((float)(r + i)));
                _mm_sfence();
            }
            total += now() - t0;
            atomic_store(&turn, 1);
            while (atomic_load(&turn) != 0) {}
        }
        printf("rewrite 1 MiB, %s: %6.1f us\n", names[mode], total / ROUNDS * 1e6);
    }
    atomic_store(&turn, 2);
    pthread_join(th, NULL);
    return 0;
}
