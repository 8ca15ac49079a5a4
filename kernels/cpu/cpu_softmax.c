// cpu_softmax.c — softmax over the last axis and its backward (f32 through the vectorised row
// helpers, f64 in plain double).
#include <math.h>
#include "kernels/cpu/cpu_internal.h"

void cpu_softmax_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *y, const void *x) {
    if (dt == CM_F32) {
#pragma omp parallel for schedule(static) if (rows * cols >= CPU_PAR_MIN / 4 && rows > 1) num_threads(cpu_par_threads(4.0 * (rows * cols)))
        for (int64_t r = 0; r < rows; r++) {
            float *yr = (float *)y + r * cols;
            if (yr != (const float *)x + r * cols) memcpy(yr, (const float *)x + r * cols, (size_t)cols * 4);
            double s = cpu_expsub_f32(yr, cols, cpu_rowmax_f32(yr, cols));
            cpu_scale_f32(yr, cols, (float)(1.0 / s));
        }
    } else if (dt == CM_F64) {
#pragma omp parallel for schedule(static) if (rows * cols >= CPU_PAR_MIN / 4 && rows > 1) num_threads(cpu_par_threads(4.0 * (rows * cols)))
        for (int64_t r = 0; r < rows; r++) {
            const double *xr = (const double *)x + r * cols;
            double *yr = (double *)y + r * cols, m = -INFINITY, s = 0;
            for (int64_t j = 0; j < cols; j++) m = xr[j] > m ? xr[j] : m;
            for (int64_t j = 0; j < cols; j++) s += (yr[j] = exp(xr[j] - m));
            for (int64_t j = 0; j < cols; j++) yr[j] /= s;
        }
    } else cpu_bad_dtype("softmax_fwd", dt);
}

// dx = y * (dy - sum(dy * y))
void cpu_softmax_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, const void *y,
                     const void *dy) {
    if (dt == CM_F32) {
#pragma omp parallel for schedule(static) if (rows * cols >= CPU_PAR_MIN / 4 && rows > 1) num_threads(cpu_par_threads(4.0 * (rows * cols)))
        for (int64_t r = 0; r < rows; r++) {
            const float *yr = (const float *)y + r * cols, *gr = (const float *)dy + r * cols;
            cpu_dsoft_f32((float *)dx + r * cols, yr, gr, cols, (float)cpu_dot_f32(gr, yr, cols));
        }
    } else if (dt == CM_F64) {
#pragma omp parallel for schedule(static) if (rows * cols >= CPU_PAR_MIN / 4 && rows > 1) num_threads(cpu_par_threads(4.0 * (rows * cols)))
        for (int64_t r = 0; r < rows; r++) {
            const double *yr = (const double *)y + r * cols, *gr = (const double *)dy + r * cols;
            double *dr = (double *)dx + r * cols, d = 0;
            for (int64_t j = 0; j < cols; j++) d += gr[j] * yr[j];
            for (int64_t j = 0; j < cols; j++) dr[j] = yr[j] * (gr[j] - d);
        }
    } else cpu_bad_dtype("softmax_bwd", dt);
}
