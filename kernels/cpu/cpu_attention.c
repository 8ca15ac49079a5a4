// cpu_attention.c — fused attention forward / backward, blocked over queries (see
// cpu_attention.inc). Heads or query blocks run in parallel on OpenMP threads, each calling a
// single-threaded OpenBLAS GEMM; with fewer tasks than threads, OpenBLAS threads the GEMMs instead.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include "kernels/cpu/cpu_internal.h"

#define CPU_ATTN_BQ 128  // queries per block: [128, Lk] scores per thread (64 measured ~5% slower)

// f32 row helpers are the vectorised ones; the mask row is f32 for both types
static inline void cpu_addmask_f32(float *x, const float *m, int64_t n) { cpu_addrow_f32(x, m, n); }

// f64 row helpers: plain double math (gradient checks)
static double cpu_rowmax_f64(const double *x, int64_t n) {
    double m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
static double cpu_expsub_f64(double *x, int64_t n, double sub) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (x[i] = exp(x[i] - sub));
    return s;
}
static void cpu_scale_f64(double *x, int64_t n, double s) {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}
static void cpu_addmask_f64(double *x, const float *m, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += m[i];
}
static double cpu_dot_f64(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static void cpu_dsoft_f64(double *ds, const double *p, const double *dp, int64_t n, double d) {
    for (int64_t i = 0; i < n; i++) ds[i] = p[i] * (dp[i] - d);
}

#define real float
#define SFX f32
#define GEMM cblas_sgemm
#include "kernels/cpu/cpu_attention.inc"
#undef real
#undef SFX
#undef GEMM
#define real double
#define SFX f64
#define GEMM cblas_dgemm
#include "kernels/cpu/cpu_attention.inc"
#undef real
#undef SFX
#undef GEMM

// X [B, H, L, D] with row stride < D (a broadcast over L): a contiguous copy BLAS can read
static void *contig_copy(cm_dtype dt, int64_t B, int64_t H, int64_t L, int64_t D, const void *X, const int64_t *s,
                         int64_t *cs) {
    size_t esz = dt == CM_F64 ? 8 : 4;
    char *c = malloc((size_t)(B * H * L * D) * esz);
    CM_CHECK(c, "attention", "out of memory copying [%lld, %lld, %lld, %lld]", (long long)B, (long long)H,
             (long long)L, (long long)D);
    const int64_t shape[4] = {B, H, L, D}, dst_s[4] = {H * L * D, L * D, D, 1}, src_s[4] = {s[0], s[1], s[2], 1};
    cpu_copy_strided(NULL, 4, shape, dt, c, dst_s, dt, X, src_s);
    cs[0] = dst_s[0], cs[1] = dst_s[1], cs[2] = dst_s[2];
    return c;
}

// runs the kernel with OpenBLAS on one thread when tasks fill the OpenMP threads (OpenBLAS's
// OpenMP build does that by itself inside a parallel region; the pthread build must be told)
#define ATTN_RUN(name, tasks, ...)                                             \
    do {                                                                       \
        int nthr = omp_get_max_threads(), par = nthr > 1 && (tasks) >= nthr;    \
        int pin = par && openblas_get_parallel() != 2;                         \
        int blas_thr = openblas_get_num_threads();                             \
        if (pin) openblas_set_num_threads(1);                                  \
        if (dt == CM_F32) name##_f32(__VA_ARGS__, par);                        \
        else name##_f64(__VA_ARGS__, par);                                     \
        if (pin) openblas_set_num_threads(blas_thr);                           \
    } while (0)

// copies of Q/K/V whose L stride BLAS cannot take
#define FIX_STRIDES()                                                                               \
    int64_t qc[3], kc[3], vc[3];                                                                    \
    void *qtmp = NULL, *ktmp = NULL, *vtmp = NULL;                                                  \
    if (Lq > 1 && qs[2] < D) qtmp = contig_copy(dt, B, H, Lq, D, Q, qs, qc), Q = qtmp, qs = qc;     \
    if (Lk > 1 && ks[2] < D) ktmp = contig_copy(dt, B, H, Lk, D, K, ks, kc), K = ktmp, ks = kc;     \
    if (Lk > 1 && vs[2] < D) vtmp = contig_copy(dt, B, H, Lk, D, V, vs, vc), V = vtmp, vs = vc

// os / gs strides of O or dO that are not plain [B, H, L, D] (NULL is)
static bool strided_out(const int64_t *s, int64_t H, int64_t L, int64_t D) {
    return s && L > 0 && !(s[0] == H * L * D && s[1] == L * D && s[2] == D);
}
// copies rows between contiguous c [B, H, L, D] and strided x (to_x: c -> x)
static void rows_move(cm_dtype dt, int64_t B, int64_t H, int64_t L, int64_t D, void *c, void *x, const int64_t *s,
                      int to_x) {
    const int64_t shape[4] = {B, H, L, D}, cs[4] = {H * L * D, L * D, D, 1}, xs[4] = {s[0], s[1], s[2], 1};
    if (to_x) cpu_copy_strided(NULL, 4, shape, dt, x, xs, dt, c, cs);
    else cpu_copy_strided(NULL, 4, shape, dt, c, cs, dt, x, xs);
}

// a strided O is computed contiguous and moved (the CPU pays one copy; the CUDA kernels write it in place)
void cpu_attn_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
                  double scale, void *O, const int64_t *os, float *lse, const void *Q, const int64_t *qs,
                  const void *K, const int64_t *ks, const void *V, const int64_t *vs, const float *mask, int64_t mb,
                  int64_t mh) {
    if (dt != CM_F32 && dt != CM_F64) cpu_bad_dtype("attn_fwd", dt);
    if (B * H * Lq * D == 0) return;
    CM_CHECK(Lk > 0, "attn_fwd", "Lk = 0: softmax over no keys");
    FIX_STRIDES();
    void *Oc = strided_out(os, H, Lq, D) ? cpu_scratch(dt, B * H * Lq * D, "attention") : O;
    int64_t tasks = B * H * ((Lq + CPU_ATTN_BQ - 1) / CPU_ATTN_BQ);
    ATTN_RUN(attn_fwd, tasks, B, H, Lq, Lk, D, scale, Oc, lse, Q, qs, K, ks, V, vs, mask, mb, mh);
    if (Oc != O) rows_move(dt, B, H, Lq, D, Oc, O, os, 1), free(Oc);
    free(qtmp), free(ktmp), free(vtmp);
}

void cpu_attn_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
                  double scale, void *dQ, void *dK, void *dV, const void *dO, const int64_t *gs, const void *O,
                  const int64_t *os, const float *lse, const void *Q, const int64_t *qs, const void *K,
                  const int64_t *ks, const void *V, const int64_t *vs, const float *mask, int64_t mb, int64_t mh) {
    if (dt != CM_F32 && dt != CM_F64) cpu_bad_dtype("attn_bwd", dt);
    if (B * H * D == 0) return;
    if (Lq == 0) {  // no queries: no gradient reaches K, V
        memset(dK, 0, (size_t)(B * H * Lk * D) * (dt == CM_F64 ? 8 : 4));
        memset(dV, 0, (size_t)(B * H * Lk * D) * (dt == CM_F64 ? 8 : 4));
        return;
    }
    FIX_STRIDES();
    void *gc = NULL, *oc = NULL;
    if (strided_out(gs, H, Lq, D)) {
        gc = cpu_scratch(dt, B * H * Lq * D, "attention");
        rows_move(dt, B, H, Lq, D, gc, (void *)dO, gs, 0);
        dO = gc;
    }
    if (strided_out(os, H, Lq, D)) {
        oc = cpu_scratch(dt, B * H * Lq * D, "attention");
        rows_move(dt, B, H, Lq, D, oc, (void *)O, os, 0);
        O = oc;
    }
    ATTN_RUN(attn_bwd, B * H, B, H, Lq, Lk, D, scale, dQ, dK, dV, dO, O, lse, Q, qs, K, ks, V, vs, mask, mb, mh);
    free(gc), free(oc);
    free(qtmp), free(ktmp), free(vtmp);
}
