// Winograd F(4×4, 3×3) transforms, per instruction set (internal; the public entry points in psedge_kernels_ops.h
// dispatch to one of these). Every implementation computes each value with the same operations in the same order.
#ifndef PSEDGE_WINOGRAD_IMPL_H
#define PSEDGE_WINOGRAD_IMPL_H

#define PSE_WINOGRAD_INPUT_PARAMS                                                                                   \
    const float *x, int c_begin, int c_end, int channels, int height, int width, int pad_t, int pad_l, int ty_begin, \
        int ty_end, int tiles_w, float *v
#define PSE_WINOGRAD_OUTPUT_PARAMS                                                                                  \
    const float *mm, int m_begin, int m_end, int channels_out, int ty_begin, int ty_end, int tiles_w, int out_h,     \
        int out_w, const float *bias, const float *res, int relu, int residual_first, float *y

typedef void (*pse_winograd_input_fn)(PSE_WINOGRAD_INPUT_PARAMS);
typedef void (*pse_winograd_output_fn)(PSE_WINOGRAD_OUTPUT_PARAMS);

void pse_winograd_f43_input_portable(PSE_WINOGRAD_INPUT_PARAMS);
void pse_winograd_f43_output_portable(PSE_WINOGRAD_OUTPUT_PARAMS);
#if defined(__x86_64__)
void pse_winograd_f43_input_avx512(PSE_WINOGRAD_INPUT_PARAMS);
void pse_winograd_f43_output_avx512(PSE_WINOGRAD_OUTPUT_PARAMS);
#endif
#endif
