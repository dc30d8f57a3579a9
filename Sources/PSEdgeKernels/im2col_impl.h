// Shared piece of the u8 and fp32 im2col row builders (internal).
#ifndef PSEDGE_IM2COL_IMPL_H
#define PSEDGE_IM2COL_IMPL_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

// Short copies and fills (a few to a few dozen bytes per output row) without a libc call each: 16-byte vector
// moves, the last one overlapping the previous; under 16 bytes, two overlapping moves of a fixed size.
#if defined(__x86_64__)
typedef __m128i bytes16;
static inline bytes16 load16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline void store16(uint8_t *p, bytes16 v) { _mm_storeu_si128((__m128i *)p, v); }
static inline bytes16 splat16(uint8_t b) { return _mm_set1_epi8((char)b); }
#elif defined(__aarch64__)
typedef uint8x16_t bytes16;
static inline bytes16 load16(const uint8_t *p) { return vld1q_u8(p); }
static inline void store16(uint8_t *p, bytes16 v) { vst1q_u8(p, v); }
static inline bytes16 splat16(uint8_t b) { return vdupq_n_u8(b); }
#endif

static inline void copy_bytes(uint8_t *d, const uint8_t *s, size_t n) {
#if defined(__x86_64__) || defined(__aarch64__)
    if (n >= 16) {
        for (size_t i = 0; i + 16 < n; i += 16) store16(d + i, load16(s + i));
        store16(d + n - 16, load16(s + n - 16));
        return;
    }
#else
    if (n >= 16) { memcpy(d, s, n); return; }
#endif
    if (n >= 8) { memcpy(d, s, 8); memcpy(d + n - 8, s + n - 8, 8); return; }
    if (n >= 4) { memcpy(d, s, 4); memcpy(d + n - 4, s + n - 4, 4); return; }
    if (n > 0) { d[0] = s[0]; d[n / 2] = s[n / 2]; d[n - 1] = s[n - 1]; }
}

static inline void fill_bytes(uint8_t *d, uint8_t value, size_t n) {
#if defined(__x86_64__) || defined(__aarch64__)
    if (n >= 16) {
        const bytes16 v = splat16(value);
        for (size_t i = 0; i + 16 < n; i += 16) store16(d + i, v);
        store16(d + n - 16, v);
        return;
    }
#else
    if (n >= 16) { memset(d, value, n); return; }
#endif
    const uint64_t v8 = value * 0x0101010101010101ull;
    if (n >= 8) { memcpy(d, &v8, 8); memcpy(d + n - 8, &v8, 8); return; }
    if (n >= 4) { memcpy(d, &v8, 4); memcpy(d + n - 4, &v8, 4); return; }
    if (n > 0) { d[0] = value; d[n / 2] = value; d[n - 1] = value; }
}


/// For kernel column kx: the input column x0 of output column 0, and the output columns [lo, hi) whose input
/// column x0 + ox·stride_w lies inside [0, width) (the rest read padding).
static inline void pse_im2col_inside(int width, int pad_l, int kx, int dil_w, int stride_w, int out_w, int *x0, int *lo,
                                     int *hi) {
    const int x = -pad_l + kx * dil_w;
    int l = x >= 0 ? 0 : (-x + stride_w - 1) / stride_w;
    int h = width - x <= 0 ? 0 : (width - x - 1) / stride_w + 1;
    if (h > out_w) h = out_w;
    if (l > h) l = h;
    *x0 = x;
    *lo = l;
    *hi = h;
}

/// One im2col row at stride 1 whose output rows are as wide as the input's (elements of `elem` bytes, padding the
/// byte `pad`: the zero point for u8, 0 for floats). Output position oy·w + ox reads input (oy + dy)·w + ox + x0,
/// so the rows whose input row exists are one shifted block copy; then the few columns that fall outside the input
/// (they picked up the neighbouring row's edge) and the rows above and below are padding. `dy` is the input row
/// offset of output row 0 (ky·dil_h − pad_t); [lo, hi) from pse_im2col_inside. Returns 0, writing nothing, for
/// any other row.
static inline int pse_im2col_block_row(const uint8_t *src, size_t elem, int height, int width, int dy, int stride_h,
                                       int stride_w, int out_h, int out_w, int x0, int lo, int hi, uint8_t pad, uint8_t *dst) {
    if (!(stride_h == 1 && stride_w == 1 && out_w == width && hi > lo)) return 0;
    int oy0 = -dy < 0 ? 0 : -dy, oy1 = height - dy < out_h ? height - dy : out_h;
    if (oy0 > out_h) oy0 = out_h;
    if (oy1 < oy0) oy1 = oy0;
    const size_t row = (size_t)out_w * elem;
    fill_bytes(dst, pad, (size_t)oy0 * row);
    if (oy1 > oy0) {
        const size_t first = (size_t)oy0 * out_w + lo, last = (size_t)(oy1 - 1) * out_w + hi;
        memcpy(dst + first * elem, src + ((size_t)(oy0 + dy) * width + lo + x0) * elem, (last - first) * elem);
        for (int oy = oy0; oy < oy1; oy++) {
            uint8_t *d = dst + (size_t)oy * row;
            fill_bytes(d, pad, (size_t)lo * elem);
            fill_bytes(d + (size_t)hi * elem, pad, (size_t)(out_w - hi) * elem);
        }
    }
    fill_bytes(dst + (size_t)oy1 * row, pad, (size_t)(out_h - oy1) * row);
    return 1;
}
#endif
