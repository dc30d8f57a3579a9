// Checks the ARM NEON small-head attention against the scalar reference, bit for bit, on random heads (1-16 dims,
// 1-300 keys, ragged last blocks, scores far below the exp floor).
// Cross-compiled and run under qemu-aarch64 by tools/arm/check.sh.
#include "psedge_kernels.h"
#include "attention_impl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 0x9E3779B97F4A7C15ull;
static unsigned rnd(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (unsigned)(state >> 11);
}
static float value(float spread) { return spread * (float)((int)(rnd() % 20001) - 10000) / 10000.0f; }

int main(void) {
    int cases = 0, failures = 0;
    for (int t = 0; t < 300; t++) {
        const int rows = 1 + rnd() % 12, d = 1 + rnd() % 16, dv = 1 + rnd() % 16, lk = 1 + rnd() % 300;
        const int ldk = (lk + 15) / 16 * 16;
        const float spread = 0.5f + (float)(rnd() % 8), c = (0.1f + (float)(rnd() % 20) / 10.0f) * 1.44269504088896341f;
        float *q = malloc(sizeof(float) * rows * d), *kt = calloc((size_t)d * ldk, sizeof(float));
        float *vt = calloc((size_t)dv * ldk, sizeof(float)), *s = malloc(sizeof(float) * ldk);
        float *ref = malloc(sizeof(float) * rows * dv), *got = malloc(sizeof(float) * rows * dv);
        for (int i = 0; i < rows * d; i++) q[i] = value(spread);
        for (int e = 0; e < d; e++) for (int j = 0; j < lk; j++) kt[e * ldk + j] = value(spread);
        for (int e = 0; e < dv; e++) for (int j = 0; j < lk; j++) vt[e * ldk + j] = value(2);
        pse_attention_rows_scalar(q, d, rows, d, dv, kt, vt, lk, ldk, c, ref, dv, s);
        pse_attention_rows_neon(q, d, rows, d, dv, kt, vt, lk, ldk, c, got, dv, s);
        cases++;
        if (memcmp(ref, got, sizeof(float) * rows * dv) != 0) {
            if (failures < 10) fprintf(stderr, "neon attention rows=%d d=%d dv=%d lk=%d differs from scalar\n", rows, d, dv, lk);
            failures++;
        }
        free(q); free(kt); free(vt); free(s); free(ref); free(got);
    }
    printf("%d attention runs (neon) compared with the scalar reference: %d mismatches\n", cases, failures);
    return failures ? 1 : 0;
}
