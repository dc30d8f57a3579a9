// Packing into the 16-column × 4-k layout the int8 GEMMs read.
#include "psedge_kernels.h"
#include "im2col_impl.h"
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

size_t pse_packed_b_size(int k, int n) {
    size_t nb = ((size_t)n + 15) / 16, kg = ((size_t)k + 3) / 4;
    return nb * kg * 64;
}

// Interleaves 4 rows of n bytes (row q = byte q of each 4-byte word) into the packed blocks of one k-group:
// block (col >> 4), lane (col & 15). Missing rows (past k) read as `fill`.
static void interleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, const uint8_t *r3, int n, uint8_t *group,
                        size_t block) {
    int col0 = 0;
    // Whole blocks of 16 columns: a 4×16 byte transpose (SSE2 unpacks / NEON vst4 are both baseline ISA).
    for (; col0 + 16 <= n; col0 += 16) {
        uint8_t *dst = group + (size_t)(col0 >> 4) * block;
#if defined(__x86_64__)
        const __m128i a = _mm_loadu_si128((const __m128i *)(r0 + col0)), b = _mm_loadu_si128((const __m128i *)(r1 + col0));
        const __m128i c = _mm_loadu_si128((const __m128i *)(r2 + col0)), d = _mm_loadu_si128((const __m128i *)(r3 + col0));
        const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
        const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
        _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(ab_lo, cd_lo));
        _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(ab_lo, cd_lo));
        _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(ab_hi, cd_hi));
        _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(ab_hi, cd_hi));
#elif defined(__aarch64__)
        uint8x16x4_t v = {{vld1q_u8(r0 + col0), vld1q_u8(r1 + col0), vld1q_u8(r2 + col0), vld1q_u8(r3 + col0)}};
        vst4q_u8(dst, v);
#else
        uint32_t *w = (uint32_t *)dst;
        for (int l = 0; l < 16; l++) {
            const int col = col0 + l;
            w[l] = (uint32_t)r0[col] | (uint32_t)r1[col] << 8 | (uint32_t)r2[col] << 16 | (uint32_t)r3[col] << 24;
        }
#endif
    }
    for (; col0 < n; col0 += 16) {
        uint32_t *dst = (uint32_t *)(group + (size_t)(col0 >> 4) * block);
        const int end = n - col0 < 16 ? n - col0 : 16;
        for (int l = 0; l < end; l++) {
            const int col = col0 + l;
            dst[l] = (uint32_t)r0[col] | (uint32_t)r1[col] << 8 | (uint32_t)r2[col] << 16 | (uint32_t)r3[col] << 24;
        }
        for (int l = end; l < 16; l++) dst[l] = 0;
    }
}

void pse_pack_b_groups(const void *bv, int ldb, int k, int n, void *packedv, int group_begin, int group_end) {
    const uint8_t *b = bv;
    uint8_t *p = packedv;
    const size_t block = (size_t)((k + 3) / 4) * 64;
    static const uint8_t zeros[64] = {0};
    for (int g = group_begin; g < group_end; g++) {
        const uint8_t *rows[4];
        for (int q = 0; q < 4; q++) rows[q] = 4 * g + q < k ? b + (size_t)(4 * g + q) * ldb : NULL;
        if (rows[1] && rows[2] && rows[3]) {
            interleave4(rows[0], rows[1], rows[2], rows[3], n, p + (size_t)g * 64, block);
            continue;
        }
        // Last group with fewer than 4 rows: the missing ones are zero.
        for (int col = 0; col < n; col++) {
            uint32_t w = 0;
            for (int q = 0; q < 4; q++) w |= (uint32_t)(rows[q] ? rows[q][col] : zeros[0]) << (8 * q);
            *(uint32_t *)(p + (size_t)(col >> 4) * block + (size_t)g * 64 + (col & 15) * 4) = w;
        }
        for (int col = n; col < ((n + 15) & ~15); col++)
            *(uint32_t *)(p + (size_t)(col >> 4) * block + (size_t)g * 64 + (col & 15) * 4) = 0;
    }
}

void pse_pack_b(const void *bv, int ldb, int k, int n, void *packedv) {
    pse_pack_b_groups(bv, ldb, k, n, packedv, 0, (k + 3) / 4);
}

void pse_im2col_u8_packed(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t, int pad_l,
                          int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w, uint8_t pad_value,
                          uint8_t *packed, uint8_t *scratch) {
    const int k = channels * kh * kw;
    pse_im2col_u8_packed_groups(img, channels, height, width, kh, kw, pad_t, pad_l, stride_h, stride_w, dil_h, dil_w,
                                out_h, out_w, pad_value, packed, 0, (k + 3) / 4, scratch);
}

// d[ox] = s[2·ox] for ox in [lo, hi), 16 at a time while the 32 bytes read stay below `limit`; returns where it
// stopped.
static inline int gather_even(uint8_t *d, const uint8_t *s, int lo, int hi, int limit) {
    int ox = lo;
#if defined(__x86_64__)
    const __m128i low = _mm_set1_epi16(0x00FF);
    for (; ox + 16 <= hi && 2 * ox + 32 <= limit; ox += 16) {
        const __m128i a = _mm_and_si128(load16(s + 2 * ox), low), b = _mm_and_si128(load16(s + 2 * ox + 16), low);
        store16(d + ox, _mm_packus_epi16(a, b));
    }
#elif defined(__aarch64__)
    for (; ox + 16 <= hi && 2 * ox + 32 <= limit; ox += 16) vst1q_u8(d + ox, vld2q_u8(s + 2 * ox).val[0]);
#endif
    (void)d; (void)s; (void)hi; (void)limit;
    return ox;
}

// One im2col row (contiguous n = out_h·out_w bytes) for k-index `row`. Per output row, the columns whose input
// lies inside the image are found first, so only the padding is filled and the inside is copied without checks.
static void im2col_row(const uint8_t *img, int height, int width, int kh, int kw, int pad_t, int pad_l, int stride_h,
                       int stride_w, int dil_h, int dil_w, int out_h, int out_w, uint8_t pad_value, int row, uint8_t *dst) {
    const int c = row / (kh * kw), ky = (row / kw) % kh, kx = row % kw;
    const uint8_t *src = img + (size_t)c * height * width;
    int x0, lo, hi;
    pse_im2col_inside(width, pad_l, kx, dil_w, stride_w, out_w, &x0, &lo, &hi);
    if (pse_im2col_block_row(src, 1, height, width, ky * dil_h - pad_t, stride_h, stride_w, out_h, out_w, x0, lo, hi,
                             pad_value, dst))
        return;
    for (int oy = 0; oy < out_h; oy++) {
        const int iy = oy * stride_h - pad_t + ky * dil_h;
        uint8_t *d = dst + (size_t)oy * out_w;
        if (iy < 0 || iy >= height) { fill_bytes(d, pad_value, (size_t)out_w); continue; }
        const uint8_t *srow = src + (size_t)iy * width + x0;
        fill_bytes(d, pad_value, (size_t)lo);
        if (stride_w == 1) {
            copy_bytes(d + lo, srow + lo, (size_t)(hi - lo));
        } else {
            int ox = lo;
            if (stride_w == 2) ox = gather_even(d, srow, lo, hi, width - x0);
            for (; ox < hi; ox++) d[ox] = srow[(ptrdiff_t)ox * stride_w];
        }
        fill_bytes(d + hi, pad_value, (size_t)(out_w - hi));
    }
}

void pse_im2col_u8_packed_groups(const uint8_t *img, int channels, int height, int width, int kh, int kw, int pad_t,
                                 int pad_l, int stride_h, int stride_w, int dil_h, int dil_w, int out_h, int out_w,
                                 uint8_t pad_value, uint8_t *packed, int group_begin, int group_end, uint8_t *scratch) {
    const int k = channels * kh * kw, n = out_h * out_w;
    const size_t block = (size_t)((k + 3) / 4) * 64;
    for (int g = group_begin; g < group_end; g++) {
        for (int q = 0; q < 4; q++) {
            uint8_t *row = scratch + (size_t)q * n;
            if (4 * g + q < k) im2col_row(img, height, width, kh, kw, pad_t, pad_l, stride_h, stride_w, dil_h, dil_w, out_h, out_w,
                                          pad_value, 4 * g + q, row);
            else memset(row, 0, (size_t)n);  // rows past k multiply zero weights; 0 keeps the layout deterministic
        }
        interleave4(scratch, scratch + n, scratch + 2 * (size_t)n, scratch + 3 * (size_t)n, n, packed + (size_t)g * 64, block);
    }
}

void pse_packed_b_column_sums_s8(const void *packedv, int k, int n, int32_t *sums) {
    const int8_t *p = packedv;
    const size_t groups = (size_t)(k + 3) / 4, block = groups * 64;
    for (int col = 0; col < n; col++) {
        const int8_t *lane = p + (size_t)(col >> 4) * block + (size_t)(col & 15) * 4;
        int32_t s = 0;
        for (size_t g = 0; g < groups; g++, lane += 64) s += lane[0] + lane[1] + lane[2] + lane[3];
        sums[col] = s;  // padding bytes (past k) are zero, so they add nothing
    }
}
