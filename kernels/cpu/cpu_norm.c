// cpu_norm.c — layernorm, layernorm fused with the adaLN modulation, rmsnorm (diffusers and
// InstantCharacter variants), groupnorm: forward saves f32 statistics, backward writes dx and (not
// accumulates) dw, db (and the modulation's dscale, dshift).
#include <math.h>
#include <stdlib.h>
#include "kernels/cpu/cpu_internal.h"

// row reductions (dw, db, dscale, dshift) run in at most this many fixed chunks of rows
#define CPU_NORM_CHUNKS 64

// the fused norm's rows [B, L] in chunks that never cross a batch: nc chunks of per rows per batch
// (at least 32 rows where L allows: fewer partial sums to add), fixed by the shape alone (never by
// the thread count), so the column sums are deterministic
static void cpu_lnmod_tasks(int64_t B, int64_t L, int64_t *nc, int64_t *per) {
    int64_t n = B > 0 ? CPU_NORM_CHUNKS / B : 1;
    if (n > (L + 31) / 32) n = (L + 31) / 32;
    if (n < 1) n = 1;
    *nc = n;
    *per = (L + n - 1) / n;
}

// a weight gradient [n] of a norm over no rows: zero (the interface writes dw, db whenever given;
// the row chunking below divides by the row count)
static void cpu_norm_zero(cm_dtype dt, void *d, int64_t n) {
    if (d) cpu_fill(NULL, dt, d, n, 0.0);
}

#define real float
#define SFX f32
#include "kernels/cpu/cpu_norm.inc"
#undef real
#undef SFX
#define real double
#define SFX f64
#include "kernels/cpu/cpu_norm.inc"
#undef real
#undef SFX

void cpu_layernorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, double eps, void *y, float *mean,
                       float *rstd, const void *x, const void *w, const void *b) {
    CPU_DISPATCH("layernorm_fwd", dt, layernorm_fwd, rows, cols, eps, y, mean, rstd, x, w, b);
}
void cpu_layernorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, void *dw, void *db,
                       const void *dy, const void *x, const float *mean, const float *rstd, const void *w) {
    if (rows <= 0 || cols <= 0) {
        cpu_norm_zero(dt, dw, cols), cpu_norm_zero(dt, db, cols);
        return;
    }
    CPU_DISPATCH("layernorm_bwd", dt, layernorm_bwd, rows, cols, dx, dw, db, dy, x, mean, rstd, w);
}
void cpu_layernorm_mod_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, double eps, void *y,
                           float *mean, float *rstd, const void *x, const void *w, const void *b, const void *scale,
                           const void *shift) {
    CM_CHECK(!b || w, "layernorm_mod_fwd", "a bias needs a weight");
    if (B <= 0 || L <= 0 || C <= 0) return;
    CPU_DISPATCH("layernorm_mod_fwd", dt, layernorm_mod_fwd, B, L, C, eps, y, mean, rstd, x, w, b, scale, shift);
}
void cpu_layernorm_mod_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dw,
                           void *db, void *dscale, void *dshift, const void *dy, const void *x, const float *mean,
                           const float *rstd, const void *w, const void *b, const void *scale) {
    CM_CHECK(!b || w, "layernorm_mod_bwd", "a bias needs a weight");
    if (B <= 0 || C <= 0) {  // no rows: dw, db zero (dscale, dshift [B, C] are empty)
        cpu_norm_zero(dt, dw, C), cpu_norm_zero(dt, db, C);
        return;
    }
    CPU_DISPATCH("layernorm_mod_bwd", dt, layernorm_mod_bwd, B, L, C, dx, dw, db, dscale, dshift, dy, x, mean, rstd,
                 w, b, scale);
}
void cpu_rmsnorm_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                     void *y, float *inv, const void *x, const void *w) {
    CPU_DISPATCH("rmsnorm_fwd", dt, rmsnorm_fwd, var, rows, cols, eps, y, inv, x, w);
}
void cpu_rmsnorm_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                     void *dx, void *dw, const void *dy, const void *x, const float *inv, const void *w) {
    if (rows <= 0 || cols <= 0) {
        cpu_norm_zero(dt, dw, cols);
        return;
    }
    CPU_DISPATCH("rmsnorm_bwd", dt, rmsnorm_bwd, var, rows, cols, eps, dx, dw, dy, x, inv, w);
}
void cpu_groupnorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, double eps,
                       void *y, float *mean, float *rstd, const void *x, const void *w, const void *b) {
    CM_CHECK(G > 0 && C % G == 0, "groupnorm_fwd", "C=%lld is not a multiple of G=%lld", (long long)C, (long long)G);
    CPU_DISPATCH("groupnorm_fwd", dt, groupnorm_fwd, N, C, HW, G, eps, y, mean, rstd, x, w, b);
}
void cpu_groupnorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, void *dx,
                       void *dw, void *db, const void *dy, const void *x, const float *mean, const float *rstd,
                       const void *w) {
    CM_CHECK(G > 0 && C % G == 0, "groupnorm_bwd", "C=%lld is not a multiple of G=%lld", (long long)C, (long long)G);
    CPU_DISPATCH("groupnorm_bwd", dt, groupnorm_bwd, N, C, HW, G, dx, dw, db, dy, x, mean, rstd, w);
}
