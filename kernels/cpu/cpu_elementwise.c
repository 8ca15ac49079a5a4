// cpu_elementwise.c — binary ops with broadcast strides, axpby, unary activations, GLU gates.
#include <tgmath.h>
#include "kernels/cpu/cpu_fastmath.h"
#include "kernels/cpu/cpu_internal.h"

#define CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// activations: f32 through the vectorisable approximations, f64 through libm (exact references)
#define real float
#define SFX f32
#define M_TANH cm_fast_tanhf
#define M_TANH_SECH2 cm_fast_tanh_sech2f
#define M_ERF cm_fast_erff
#define M_EXP cm_fast_expf
#include "kernels/cpu/cpu_elementwise.inc"
#undef real
#undef SFX
#undef M_TANH
#undef M_TANH_SECH2
#undef M_ERF
#undef M_EXP
#define real double
#define SFX f64
#define M_TANH tanh
#define M_TANH_SECH2 cm_tanh_sech2
#define M_ERF erf
#define M_EXP exp
#include "kernels/cpu/cpu_elementwise.inc"
#undef real
#undef SFX
#undef M_TANH
#undef M_TANH_SECH2
#undef M_ERF
#undef M_EXP

void cpu_binary(const cm_kctx *k, cm_binop op, cm_dtype dt, int ndim, const int64_t *shape, void *out,
                const void *a, const int64_t *a_stride, const void *b, const int64_t *b_stride) {
    // drop size-1 dims, merge dims that stay contiguous in a and b (out is contiguous)
    int64_t sh[CM_MAX_DIMS + 1], as[CM_MAX_DIMS + 1], bs[CM_MAX_DIMS + 1];
    int nd = 0;
    CM_CHECK(ndim >= 0 && ndim <= CM_MAX_DIMS, "binary", "ndim %d outside [0, %d]", ndim, CM_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) return;
        if (shape[i] == 1) continue;
        if (nd > 0 && as[nd - 1] == a_stride[i] * shape[i] && bs[nd - 1] == b_stride[i] * shape[i]) {
            sh[nd - 1] *= shape[i];
            as[nd - 1] = a_stride[i];
            bs[nd - 1] = b_stride[i];
            continue;
        }
        sh[nd] = shape[i], as[nd] = a_stride[i], bs[nd] = b_stride[i], nd++;
    }
    if (nd == 0) sh[0] = 1, as[0] = bs[0] = 0, nd = 1;
    CPU_DISPATCH("binary", dt, binary, op, nd, sh, out, a, as, b, bs);
}

void cpu_axpby(const cm_kctx *k, cm_dtype dt, int64_t n, double alpha, const void *x, double beta, void *y) {
    CPU_DISPATCH("axpby", dt, axpby, n, alpha, x, beta, y);
}
void cpu_unary_fwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *y, const void *x) {
    CPU_DISPATCH("unary_fwd", dt, unary_fwd, op, n, y, x);
}
void cpu_unary_bwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *dx, const void *x, const void *dy) {
    CPU_DISPATCH("unary_bwd", dt, unary_bwd, op, n, dx, x, dy);
}
void cpu_glu_fwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *y, const void *x) {
    CPU_DISPATCH("glu_fwd", dt, glu_fwd, op, rows, half, y, x);
}
void cpu_glu_bwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *dx, const void *x,
                 const void *dy) {
    CPU_DISPATCH("glu_bwd", dt, glu_bwd, op, rows, half, dx, x, dy);
}
