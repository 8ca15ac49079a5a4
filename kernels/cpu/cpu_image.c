// cpu_image.c — im2col / col2im (convolutions as GEMMs) and PyTorch-exact bicubic resize.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/cpu_internal.h"

#define real float
#define SFX f32
#include "kernels/cpu/cpu_image.inc"
#undef real
#undef SFX
#define real double
#define SFX f64
#include "kernels/cpu/cpu_image.inc"
#undef real
#undef SFX

void cpu_im2col(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *col, const void *x) {
    CPU_DISPATCH("im2col", dt, im2col, C, H, W, kh, kw, stride, pad, OH, OW, col, x);
}
void cpu_col2im(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *x, const void *col) {
    CPU_DISPATCH("col2im", dt, col2im, C, H, W, kh, kw, stride, pad, OH, OW, x, col);
}
void cpu_bicubic_fwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                     void *y, const void *x) {
    CM_CHECK((IH > 0 && IW > 0) || NC * OH * OW == 0, "bicubic_fwd", "input plane [%lld, %lld] is empty",
             (long long)IH, (long long)IW);
    CPU_DISPATCH("bicubic_fwd", dt, bicubic_fwd, NC, IH, IW, OH, OW, y, x);
}
void cpu_bicubic_bwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                     void *dx, const void *dy) {
    CM_CHECK((IH > 0 && IW > 0) || NC * OH * OW == 0, "bicubic_bwd", "input plane [%lld, %lld] is empty",
             (long long)IH, (long long)IW);
    CPU_DISPATCH("bicubic_bwd", dt, bicubic_bwd, NC, IH, IW, OH, OW, dx, dy);
}
