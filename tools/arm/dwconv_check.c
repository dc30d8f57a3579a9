// Checks the ARM NEON depthwise convolution against the scalar reference, bit for bit, on random planes,
// filters and geometries (strides 1-3, dilation, asymmetric padding, planes narrower than a vector).
// Cross-compiled and run under qemu-aarch64 by tools/arm/check.sh.
#include "psedge_kernels.h"
#include "dwconv_impl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 0x2545F4914F6CDD1Dull;
static unsigned rnd(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (unsigned)(state >> 11);
}
static float value(void) { return (float)((int)(rnd() % 20001) - 10000) / 4999.0f; }

int main(void) {
    int cases = 0, failures = 0;
    for (int t = 0; t < 400; t++) {
        const int kh = 1 + rnd() % 5, kw = 1 + rnd() % 5, dh = 1 + rnd() % 2, dw = 1 + rnd() % 2;
        const int h = dh * (kh - 1) + 1 + rnd() % 30, w = dw * (kw - 1) + 1 + rnd() % 70;
        const int pt = rnd() % 3, pl = rnd() % 3, pb = rnd() % 3, pr = rnd() % 3, sh = 1 + rnd() % 3, sw = 1 + rnd() % 3;
        const int oh = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1, ow = (w + pl + pr - dw * (kw - 1) - 1) / sw + 1;
        float *x = malloc(sizeof(float) * h * w), *f = malloc(sizeof(float) * kh * kw);
        float *ref = malloc(sizeof(float) * oh * ow), *got = malloc(sizeof(float) * oh * ow);
        for (int i = 0; i < h * w; i++) x[i] = value();
        for (int i = 0; i < kh * kw; i++) f[i] = value();
        const float bias = value();
        pse_dwconv2d_f32_scalar(x, h, w, f, kh, kw, pt, pl, sh, sw, dh, dw, bias, ref, oh, ow);
        pse_dwconv2d_f32_neon(x, h, w, f, kh, kw, pt, pl, sh, sw, dh, dw, bias, got, oh, ow);
        cases++;
        if (memcmp(ref, got, sizeof(float) * oh * ow) != 0) {
            if (failures < 10) fprintf(stderr, "neon dwconv h=%d w=%d k=%dx%d s=%d,%d d=%d,%d differs from scalar\n", h, w, kh, kw, sh, sw, dh, dw);
            failures++;
        }
        free(x); free(f); free(ref); free(got);
    }
    printf("%d depthwise runs (neon) compared with the scalar reference: %d mismatches\n", cases, failures);
    return failures ? 1 : 0;
}
