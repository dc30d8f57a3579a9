// Depthwise convolution, portable reference (one output pixel at a time).
#include "psedge_kernels.h"
#include "dwconv_impl.h"

void pse_dwconv2d_f32_scalar(const float *x, int h, int w, const float *f, int kh, int kw, int pad_t, int pad_l,
                             int sh, int sw, int dh, int dw, float bias, float *y, int oh, int ow) {
    for (int oy = 0; oy < oh; oy++) pse_dw_pixels(x, h, w, f, kh, kw, pad_t, pad_l, sh, sw, dh, dw, bias, y, ow, oy, 0, ow);
}
