// cpu_timestep.c — sinusoidal timestep embedding (diffusers get_timestep_embedding) and its
// derivative with respect to the timesteps.
#include <math.h>
#include "kernels/cpu/cpu_internal.h"

// t [B] -> y [B, dim]: half = dim/2, freq_j = exp(-ln(max_period) j / (half - shift)), a = t freq_j,
// y = [sin a, cos a] ([cos a, sin a] when flip), a zero column appended when dim is odd.
// f32 follows diffusers' float32 arithmetic step by step; f64 is all double.
void cpu_timestep_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift,
                      double max_period, void *y, const void *t) {
    int64_t half = dim / 2;
    if (dt == CM_F32) {
        const float *tt = t;
        float *yy = y, c = (float)-log(max_period), den = (float)((double)half - shift);
        for (int64_t b = 0; b < B; b++) {
            float *yr = yy + b * dim, *s = yr + (flip ? half : 0), *co = yr + (flip ? 0 : half);
            for (int64_t j = 0; j < half; j++) {
                float a = tt[b] * expf(c * (float)j / den);
                s[j] = sinf(a);
                co[j] = cosf(a);
            }
            if (dim % 2) yr[dim - 1] = 0;
        }
    } else if (dt == CM_F64) {
        const double *tt = t;
        double *yy = y;
        for (int64_t b = 0; b < B; b++) {
            double *yr = yy + b * dim, *s = yr + (flip ? half : 0), *co = yr + (flip ? 0 : half);
            for (int64_t j = 0; j < half; j++) {
                double a = tt[b] * exp(-log(max_period) * (double)j / ((double)half - shift));
                s[j] = sin(a);
                co[j] = cos(a);
            }
            if (dim % 2) yr[dim - 1] = 0;
        }
    } else cpu_bad_dtype("timestep_fwd", dt);
}

// dtime[b] = sum_j freq_j (dy_sin_j cos a_j - dy_cos_j sin a_j), in double
void cpu_timestep_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift,
                      double max_period, void *dtime, const void *t, const void *dy) {
    int64_t half = dim / 2;
    if (dt != CM_F32 && dt != CM_F64) cpu_bad_dtype("timestep_bwd", dt);
    for (int64_t b = 0; b < B; b++) {
        double tb = dt == CM_F32 ? ((const float *)t)[b] : ((const double *)t)[b], acc = 0;
        for (int64_t j = 0; j < half; j++) {
            double f = exp(-log(max_period) * (double)j / ((double)half - shift)), a = tb * f;
            int64_t js = b * dim + (flip ? half : 0) + j, jc = b * dim + (flip ? 0 : half) + j;
            double gs = dt == CM_F32 ? ((const float *)dy)[js] : ((const double *)dy)[js];
            double gc = dt == CM_F32 ? ((const float *)dy)[jc] : ((const double *)dy)[jc];
            acc += f * (gs * cos(a) - gc * sin(a));
        }
        if (dt == CM_F32) ((float *)dtime)[b] = (float)acc;
        else ((double *)dtime)[b] = acc;
    }
}
