// cpu_reduce.c — sum over the middle axis of [outer, red, inner]; sum of squares (gradient norms).
#include <stdlib.h>
#include "kernels/cpu/cpu_internal.h"

#define real float
#define SFX f32
#include "kernels/cpu/cpu_reduce.inc"
#undef real
#undef SFX
#define real double
#define SFX f64
#include "kernels/cpu/cpu_reduce.inc"
#undef real
#undef SFX

void cpu_reduce_sum(const cm_kctx *k, cm_dtype dt, int64_t outer, int64_t red, int64_t inner, void *y, const void *x) {
    CPU_DISPATCH("reduce_sum", dt, reduce_sum, outer, red, inner, y, x);
}

double cpu_sumsq_multi(const cm_kctx *k, cm_dtype dt, int nt, const void *const *x, const int64_t *n) {
    double s = 0;
    for (int i = 0; i < nt; i++) s += cpu_sumsq(k, dt, n[i], x[i]);
    return s;
}

double cpu_sumsq(const cm_kctx *k, cm_dtype dt, int64_t n, const void *x) {
    if (dt == CM_F32) return sum_sq_diff_f32(n, x, NULL);
    if (dt == CM_F64) return sum_sq_diff_f64(n, x, NULL);
    cpu_bad_dtype("sumsq", dt);
}

double cpu_sum_sq_diff(cm_dtype dt, int64_t n, const void *a, const void *b) {
    if (dt == CM_F32) return sum_sq_diff_f32(n, a, b);
    if (dt == CM_F64) return sum_sq_diff_f64(n, a, b);
    cpu_bad_dtype("mse_fwd", dt);
}
