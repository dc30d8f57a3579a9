// Portable elementwise math. Accurate libm calls: these set the fp32 reference the SIMD files are tested against.
#include "psedge_kernels.h"
#include <math.h>

void pse_vexp(const float *x, float *y, size_t n) { for (size_t i = 0; i < n; i++) y[i] = expf(x[i]); }
void pse_verf(const float *x, float *y, size_t n) { for (size_t i = 0; i < n; i++) y[i] = erff(x[i]); }
void pse_vtanh(const float *x, float *y, size_t n) { for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]); }
