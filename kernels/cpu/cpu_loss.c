// cpu_loss.c — mean squared error forward (a host scalar) and backward.
#include "kernels/cpu/cpu_internal.h"

void cpu_mse_fwd(const cm_kctx *k, cm_dtype dt, int64_t n, const void *a, const void *b, void *out) {
    double v = n > 0 ? cpu_sum_sq_diff(dt, n, a, b) / (double)n : 0.0;
    if (dt == CM_F32) *(float *)out = (float)v;
    else if (dt == CM_F64) *(double *)out = v;
    else cpu_bad_dtype("mse_fwd", dt);
}

// da = g * gp[0] * 2 (a - b) / n
#define MSE_BWD(T)                                                              \
    do {                                                                        \
        double gs = g * (gp ? (double)*(const T *)gp : 1.0);                    \
        T *d = da, c = (T)(2.0 * gs / (double)n);                               \
        const T *x = a, *y = b;                                                 \
        _Pragma("omp parallel for schedule(static) if (n >= CPU_PAR_MIN) num_threads(cpu_par_threads(n))")      \
        for (int64_t i = 0; i < n; i++) d[i] = c * (x[i] - y[i]);               \
    } while (0)

void cpu_mse_bwd(const cm_kctx *k, cm_dtype dt, int64_t n, double g, const void *gp, void *da, const void *a,
                 const void *b) {
    if (n <= 0) return;
    if (dt == CM_F32) MSE_BWD(float);
    else if (dt == CM_F64) MSE_BWD(double);
    else cpu_bad_dtype("mse_bwd", dt);
}
