// Throughput of the packed int8 GEMM (the microkernel psedge.QConv/QMatMul call) against the machine's measured
// AVX-512 VNNI peak, on one core.
//   bash tools/kernels/int8_gemm_throughput.sh
// Peak: a loop of independent vpdpbusd (24 accumulators, no loads), i.e. what the core can retire. GEMM: ResNet-50
// layer shapes (M = output channels, N = output pixels, K = input channels x kernel), packed B as at run time.
#include "psedge_kernels.h"
#include "int8_gemm_impl.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

__attribute__((target("avx512f,avx512vnni"), noinline)) static int peak_loop(long iters) {
    __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x05060708);
    __m512i c[24];
    for (int i = 0; i < 24; i++) c[i] = _mm512_set1_epi32(i);
    for (long it = 0; it < iters; it++) {
#define DP(i) c[i] = _mm512_dpbusd_epi32(c[i], a, b);
        DP(0) DP(1) DP(2) DP(3) DP(4) DP(5) DP(6) DP(7) DP(8) DP(9) DP(10) DP(11)
        DP(12) DP(13) DP(14) DP(15) DP(16) DP(17) DP(18) DP(19) DP(20) DP(21) DP(22) DP(23)
        __asm__ volatile("" : "+v"(a));
    }
    __m512i s = c[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_epi32(s, c[i]);
    return _mm512_reduce_add_epi32(s);
}

int main(void) {
    // Peak: 24 vpdpbusd per iteration, each 16 lanes x 4 multiply-adds = 64 MACs.
    const long iters = 20000000;
    peak_loop(1000000);
    double t0 = now();
    volatile int sink = peak_loop(iters);
    (void)sink;
    double peak = 24.0 * 64 * iters / (now() - t0) / 1e9;  // GMAC/s
    printf("VNNI peak (measured, 1 core): %.1f GMAC/s\n", peak);
    const int shapes[][3] = {{64, 3136, 576}, {256, 3136, 64}, {128, 784, 1152}, {512, 784, 128}, {256, 196, 2304}, {1024, 196, 256},
                             {512, 49, 4608}, {2048, 49, 512}};
    double total_macs = 0, total_time = 0;
    for (size_t s_i = 0; s_i < sizeof shapes / sizeof shapes[0]; s_i++) {
        const int m = shapes[s_i][0], n = shapes[s_i][1], k = shapes[s_i][2];
        int8_t *a = malloc((size_t)m * k);
        uint8_t *b = malloc((size_t)k * n), *bp = malloc(pse_packed_b_size(k, n));
        int32_t *c = malloc((size_t)m * n * 4);
        for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (int8_t)(rand() & 0xFF);
        for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (uint8_t)rand();
        pse_pack_b(b, n, k, n, bp);
        pse_gemm_s8u8_packed_avx512vnni(m, n, k, a, k, bp, c, n);
        int reps = (int)(2e9 / ((double)m * n * k)) + 1;
        double t = now();
        for (int r = 0; r < reps; r++) pse_gemm_s8u8_packed_avx512vnni(m, n, k, a, k, bp, c, n);
        t = (now() - t) / reps;
        double g = (double)m * n * k / t / 1e9;
        total_macs += (double)m * n * k; total_time += t;
        printf("  M=%4d N=%4d K=%4d: %6.1f GMAC/s = %4.1f %% of peak\n", m, n, k, g, 100 * g / peak);
        free(a); free(b); free(bp); free(c);
    }
    printf("ResNet-50 layer mix: %.1f GMAC/s = %.1f %% of the VNNI peak\n", total_macs / total_time / 1e9,
           100 * total_macs / total_time / 1e9 / peak);
    return 0;
}
