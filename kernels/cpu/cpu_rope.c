// cpu_rope.c — rotary position embedding on adjacent pairs (FLUX / diffusers layout), and its
// transpose for the backward.
#include "kernels/cpu/cpu_internal.h"

// x, y [outer, L, D]; cos, sin [L, D]. Per pair (x0, x1) at columns (2i, 2i+1):
//   forward  y0 = x0 c0 - x1 s0,  y1 = x1 c1 + x0 s1
//   inverse  y0 = x0 c0 + x1 s1,  y1 = x1 c1 - x0 s0   (the transposed 2x2 matrix)
// y may alias x: each pair is read before it is written. Tables of type TT (T, or float under a
// double x): the products in T, as diffusers' f32 rotation of an upcast x.
#define ROPE(T, TT)                                                                                    \
    do {                                                                                               \
        T *yy = y;                                                                                     \
        const T *xx = x;                                                                               \
        const TT *cc = cos, *ss = sin;                                                                 \
        _Pragma("omp parallel for schedule(static) if (outer * L * D >= CPU_PAR_MIN && outer * L > 1) num_threads(cpu_par_threads(outer * L * D))") \
        for (int64_t r = 0; r < outer * L; r++) {                                                      \
            const T *xr = xx + r * D;                                                                  \
            const TT *c = cc + (r % L) * D, *s = ss + (r % L) * D;                                     \
            T *yr = yy + r * D;                                                                        \
            if (!inverse)                                                                              \
                for (int64_t j = 0; j + 1 < D; j += 2) {                                               \
                    T x0 = xr[j], x1 = xr[j + 1];                                                      \
                    yr[j] = x0 * c[j] - x1 * s[j];                                                     \
                    yr[j + 1] = x1 * c[j + 1] + x0 * s[j + 1];                                         \
                }                                                                                      \
            else                                                                                       \
                for (int64_t j = 0; j + 1 < D; j += 2) {                                               \
                    T x0 = xr[j], x1 = xr[j + 1];                                                      \
                    yr[j] = x0 * c[j] + x1 * s[j + 1];                                                 \
                    yr[j + 1] = x1 * c[j + 1] - x0 * s[j];                                             \
                }                                                                                      \
        }                                                                                              \
    } while (0)

void cpu_rope_check_tables(const char *op, cm_dtype dt, cm_dtype tdt) {
    CM_CHECK(tdt == dt || tdt == CM_F32, op, "cos/sin tables of dtype %s with x %s (allowed: x's dtype, or f32)",
             dtype_name(tdt), dtype_name(dt));
}

void cpu_rope(const cm_kctx *k, cm_dtype dt, cm_dtype tdt, int64_t outer, int64_t L, int64_t D, int inverse,
              void *y, const void *x, const void *cos, const void *sin) {
    CM_CHECK(D % 2 == 0, "rope", "head dim D=%lld must be even (adjacent pairs rotate)", (long long)D);
    cpu_rope_check_tables("rope", dt, tdt);
    if (dt == CM_F32) ROPE(float, float);
    else if (dt == CM_F64 && tdt == CM_F64) ROPE(double, double);
    else if (dt == CM_F64) ROPE(double, float);
    else cpu_bad_dtype("rope", dt);
}
