// Shared piece of the u8 and fp32 im2col row builders (internal).
#ifndef PSEDGE_IM2COL_IMPL_H
#define PSEDGE_IM2COL_IMPL_H

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
#endif
