// cpu_modulate.c — adaptive-norm modulation y = x * (1 + scale) + shift (DiT / FLUX AdaLN), and
// the gated residual res + gate * y that closes each FLUX sub-block.
#include <string.h>
#include "kernels/cpu/cpu_internal.h"

// x, y [B, L, C]; scale, shift [B, C] (either may be NULL: 0)
#define MOD_FWD(T)                                                                                     \
    do {                                                                                               \
        T *yy = y;                                                                                     \
        const T *xx = x, *sc = scale, *sh = shift;                                                     \
        _Pragma("omp parallel for schedule(static) if (B * L * C >= CPU_PAR_MIN && B * L > 1) num_threads(cpu_par_threads(B * L * C))")        \
        for (int64_t r = 0; r < B * L; r++) {                                                          \
            int64_t b = r / L;                                                                         \
            const T *xr = xx + r * C, *s = sc ? sc + b * C : NULL, *t = sh ? sh + b * C : NULL;        \
            T *yr = yy + r * C;                                                                        \
            for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * ((T)1 + (s ? s[c] : (T)0)) + (t ? t[c] : (T)0); \
        }                                                                                              \
    } while (0)

// dx = dy (1 + scale); dscale[b, c] = sum_l dy x; dshift[b, c] = sum_l dy. The sums run over l in
// order in double, one task per (b, block of 256 channels): deterministic for any thread count.
#define MOD_BWD(T)                                                                                     \
    do {                                                                                               \
        T *ddx = dx, *dsc = dscale, *dsh = dshift;                                                     \
        const T *g = dy, *xx = x, *sc = scale;                                                         \
        if (ddx) {                                                                                     \
            _Pragma("omp parallel for schedule(static) if (B * L * C >= CPU_PAR_MIN && B * L > 1) num_threads(cpu_par_threads(B * L * C))")    \
            for (int64_t r = 0; r < B * L; r++) {                                                      \
                const T *s = sc ? sc + (r / L) * C : NULL, *gr = g + r * C;                            \
                for (int64_t c = 0; c < C; c++) ddx[r * C + c] = gr[c] * ((T)1 + (s ? s[c] : (T)0));   \
            }                                                                                          \
        }                                                                                              \
        if (!dsc && !dsh) break;                                                                       \
        int64_t nch = (C + 255) / 256;                                                                 \
        _Pragma("omp parallel for schedule(static) if (B * L * C >= CPU_PAR_MIN && B * nch > 1) num_threads(cpu_par_threads(B * L * C))")      \
        for (int64_t t = 0; t < B * nch; t++) {                                                        \
            int64_t b = t / nch, c0 = (t % nch) * 256, nc = C - c0 < 256 ? C - c0 : 256;               \
            double as[256], ah[256];                                                                   \
            for (int64_t c = 0; c < nc; c++) as[c] = ah[c] = 0;                                        \
            for (int64_t l = 0; l < L; l++) {                                                          \
                const T *gr = g + (b * L + l) * C + c0, *xr = xx + (b * L + l) * C + c0;               \
                for (int64_t c = 0; c < nc; c++) as[c] += (double)gr[c] * xr[c], ah[c] += gr[c];       \
            }                                                                                          \
            for (int64_t c = 0; c < nc; c++) {                                                         \
                if (dsc) dsc[b * C + c0 + c] = (T)as[c];                                               \
                if (dsh) dsh[b * C + c0 + c] = (T)ah[c];                                               \
            }                                                                                          \
        }                                                                                              \
    } while (0)

void cpu_modulate_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *y, const void *x,
                      const void *scale, const void *shift) {
    if (dt == CM_F32) MOD_FWD(float);
    else if (dt == CM_F64) MOD_FWD(double);
    else cpu_bad_dtype("modulate_fwd", dt);
}

void cpu_modulate_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dscale,
                      void *dshift, const void *dy, const void *x, const void *scale) {
    if (dt == CM_F32) MOD_BWD(float);
    else if (dt == CM_F64) MOD_BWD(double);
    else cpu_bad_dtype("modulate_bwd", dt);
}

// out = res + gate[b] * y; the product rounds before the sum, as op_mul then op_add do
#define GATED_ADD(T)                                                                                   \
    do {                                                                                               \
        T *oo = out;                                                                                   \
        const T *rr = res, *gg = gate, *yy = y;                                                        \
        _Pragma("omp parallel for schedule(static) if (B * L * C >= CPU_PAR_MIN && B * L > 1) num_threads(cpu_par_threads(B * L * C))")        \
        for (int64_t r = 0; r < B * L; r++) {                                                          \
            const T *g = gg + (r / L) * C, *rw = rr + r * C, *yr = yy + r * C;                         \
            T *orow = oo + r * C;                                                                      \
            for (int64_t c = 0; c < C; c++) {                                                          \
                T p = g[c] * yr[c];                                                                    \
                orow[c] = rw[c] + p;                                                                   \
            }                                                                                          \
        }                                                                                              \
    } while (0)

void cpu_gated_add(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *out, const void *res,
                   const void *gate, const void *y) {
    if (dt == CM_F32) GATED_ADD(float);
    else if (dt == CM_F64) GATED_ADD(double);
    else cpu_bad_dtype("gated_add", dt);
}

// out = a + alpha * b on rows row0 .. row0+Lb of each batch, a elsewhere; the product rounds before
// the sum, as op_scale then op_add do
#define ADD_ROWS(T)                                                                                    \
    do {                                                                                               \
        T *oo = out;                                                                                   \
        const T *aa = a, *bb = b, al = (T)alpha;                                                       \
        _Pragma("omp parallel for schedule(static) if (B * L * C >= CPU_PAR_MIN && B * L > 1) num_threads(cpu_par_threads(B * L * C))")        \
        for (int64_t r = 0; r < B * L; r++) {                                                          \
            int64_t l = r % L, bi = r / L;                                                             \
            const T *ar = aa + r * C;                                                                  \
            T *orow = oo + r * C;                                                                      \
            if (l < row0 || l >= row0 + Lb) {                                                          \
                memcpy(orow, ar, (size_t)C * sizeof(T));                                               \
                continue;                                                                              \
            }                                                                                          \
            const T *br = bb + (bi * Lb + l - row0) * C;                                               \
            for (int64_t c = 0; c < C; c++) {                                                          \
                T p = al * br[c];                                                                      \
                orow[c] = ar[c] + p;                                                                   \
            }                                                                                          \
        }                                                                                              \
    } while (0)

void cpu_add_rows(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, int64_t row0, int64_t Lb,
                  double alpha, void *out, const void *a, const void *b) {
    CM_CHECK(row0 >= 0 && Lb >= 0 && row0 + Lb <= L, "add_rows", "rows [%lld, %lld) outside %lld", (long long)row0,
             (long long)(row0 + Lb), (long long)L);
    if (dt == CM_F32) ADD_ROWS(float);
    else if (dt == CM_F64) ADD_ROWS(double);
    else cpu_bad_dtype("add_rows", dt);
}
