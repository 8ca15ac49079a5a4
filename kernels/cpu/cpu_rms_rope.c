// cpu_rms_rope.c — a FLUX q / k: RMSNorm per head, then RoPE, written head-major; and its
// backward. The CPU runs it as the composed kernels do (rmsnorm_fwd into a scratch copy, then the
// rotation; the transposed rotation into scratch, then rmsnorm_bwd), so its results are those of
// op_rmsnorm + op_rope bit for bit; the fusion pays on the GPU, where passes over memory cost.
#include <stdlib.h>
#include "kernels/cpu/cpu_internal.h"

// rotates every row (b, l, h) between the token-major t [B, Ls, H, D] and the head-major rows
// l0 + l of m [B, H, Ly, D]: forward t -> m, inverse m -> t. Pair arithmetic as cpu_rope.c
// (tables of type TT: T, or float under a double x).
#define ROPE_MOVE(T, TT)                                                                                   \
    do {                                                                                                   \
        T *tt = t, *mm = m;                                                                                \
        const TT *cc = cos, *ss = sin;                                                                     \
        _Pragma("omp parallel for schedule(static) if (B * Ls * H * D >= CPU_PAR_MIN && B * Ls * H > 1) num_threads(cpu_par_threads(B * Ls * H * D))") \
        for (int64_t r = 0; r < B * Ls * H; r++) {                                                         \
            int64_t b = r / (Ls * H), l = (r / H) % Ls, h = r % H;                                         \
            T *tr = tt + r * D, *mr = mm + ((b * H + h) * Ly + l0 + l) * D;                                \
            const TT *c = cc + (l0 + l) * D, *s = ss + (l0 + l) * D;                                       \
            if (!inverse)                                                                                  \
                for (int64_t j = 0; j + 1 < D; j += 2) {                                                   \
                    T x0 = tr[j], x1 = tr[j + 1];                                                          \
                    mr[j] = x0 * c[j] - x1 * s[j];                                                         \
                    mr[j + 1] = x1 * c[j + 1] + x0 * s[j + 1];                                             \
                }                                                                                          \
            else                                                                                           \
                for (int64_t j = 0; j + 1 < D; j += 2) {                                                   \
                    T x0 = mr[j], x1 = mr[j + 1];                                                          \
                    tr[j] = x0 * c[j] + x1 * s[j + 1];                                                     \
                    tr[j + 1] = x1 * c[j + 1] - x0 * s[j];                                                 \
                }                                                                                          \
        }                                                                                                  \
    } while (0)

static void rope_move(cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls, int64_t H, int64_t D, int64_t Ly, int64_t l0,
                      int inverse, void *t, void *m, const void *cos, const void *sin) {
    if (dt == CM_F32) ROPE_MOVE(float, float);
    else if (dt == CM_F64 && tdt == CM_F64) ROPE_MOVE(double, double);
    else if (dt == CM_F64) ROPE_MOVE(double, float);
    else cpu_bad_dtype("rms_rope", dt);
}

static void check_args(const char *op, cm_dtype dt, cm_dtype tdt, int64_t D, int64_t Ly, int64_t l0, int64_t Ls) {
    cpu_rope_check_tables(op, dt, tdt);
    CM_CHECK(D % 2 == 0, op, "head dim D=%lld must be even (adjacent pairs rotate)", (long long)D);
    CM_CHECK(l0 >= 0 && Ls >= 0 && l0 + Ls <= Ly, op, "rows [%lld, %lld) outside a sequence of %lld", (long long)l0,
             (long long)(l0 + Ls), (long long)Ly);
}

void cpu_rms_rope_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                      int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *y, float *inv, const void *x,
                      const void *w, const void *cos, const void *sin) {
    check_args("rms_rope_fwd", dt, tdt, D, Ly, l0, Ls);
    int64_t n = B * Ls * H * D;
    if (n == 0) return;
    void *t = cpu_scratch(dt, n, "rms_rope_fwd");  // [B, Ls, H, D] normalised
    cpu_rmsnorm_fwd(k, var, dt, B * Ls * H, D, eps, t, inv, x, w);
    rope_move(dt, tdt, B, Ls, H, D, Ly, l0, 0, t, y, cos, sin);
    free(t);
}

void cpu_rms_rope_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                      int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *dx, void *dw, const void *dy,
                      const void *x, const float *inv, const void *w, const void *cos, const void *sin) {
    check_args("rms_rope_bwd", dt, tdt, D, Ly, l0, Ls);
    int64_t n = B * Ls * H * D;
    if (n == 0) {  // no rows: a zero weight gradient
        if (dw) cpu_fill(k, dt, dw, D, 0.0);
        return;
    }
    void *g = cpu_scratch(dt, n, "rms_rope_bwd");  // [B, Ls, H, D]: the gradient of the normalised x
    rope_move(dt, tdt, B, Ls, H, D, Ly, l0, 1, g, (void *)dy, cos, sin);
    cpu_rmsnorm_bwd(k, var, dt, B * Ls * H, D, eps, dx, dw, g, x, inv, w);
    free(g);
}
