// test_cpu_numerics.c — CPU kernels at the edges of the float range, called through the backend
// table on plain buffers: the GELU derivatives (unary, GEGLU, the GEMM's DGELU epilogue) at
// |x| up to 3e38, where they are exactly 1 (x > 0) or 0 (x < 0); SiLU and SwiGLU far below -88;
// the kernels that sum (norm backwards, reductions, softmax, attention, scatter, bicubic backward)
// give the same bits on 1, 2 and 3 threads (docs/configs.md: only OpenBLAS's GEMM splits vary).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "kernels/backend.h"
#include "testutil.h"

extern const cm_backend cm_cpu_backend;
static const cm_backend *be = &cm_cpu_backend;
static const cm_kctx kc = {{CM_CPU, 0}, NULL, NULL};

// GELU' of large |x|: 1 for x > 0, 0 for x < 0 (the f32 exp's floor exp(-87) times x^3 made
// gelu_tanh' 1.96 at 1e13 and -3.5 at -1e13; gelu_erf' 1.6 at 1e38; x^2 -> inf gave NaN)
static void test_gelu_large(void) {
    enum { N = 12 };
    const double xs[N] = {40, -40, 1e6, -1e6, 1e12, -1e12, 1e13, -1e13, 1e20, -1e20, 3e38, -3e38};
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = t ? CM_F64 : CM_F32;
        const char *dn = t ? "f64" : "f32";
        float xf[N], gf[N], df[N];
        double xd[N], gd[N], dd[N];
        for (int i = 0; i < N; i++) xf[i] = (float)xs[i], xd[i] = xs[i], gf[i] = 1, gd[i] = 1;
        void *x = t ? (void *)xd : (void *)xf, *g = t ? (void *)gd : (void *)gf, *d = t ? (void *)dd : (void *)df;
        for (int op = 0; op < 2; op++) {
            cm_unop u = op ? CM_UN_GELU_ERF : CM_UN_GELU_TANH;
            be->unary_bwd(&kc, u, dt, N, d, x, g);
            for (int i = 0; i < N; i++) {
                double got = t ? dd[i] : df[i], want = xs[i] > 0 ? 1.0 : 0.0;
                TEST_CHECK(fabs(got - want) <= 1e-6, "%s %s' at x = %g: got %.9g expected %g", dn,
                           op ? "gelu_erf" : "gelu_tanh", xs[i], got, want);
            }
        }
        // GEGLU: x [1, 2N] = [a | g], a = 1: dg = gelu_erf'(g)
        float xgf[2 * N], dxf[2 * N];
        double xgd[2 * N], dxd[2 * N];
        for (int i = 0; i < N; i++) xgf[i] = 1, xgd[i] = 1, xgf[N + i] = (float)xs[i], xgd[N + i] = xs[i];
        be->glu_bwd(&kc, CM_GLU_GEGLU, dt, 1, N, t ? (void *)dxd : (void *)dxf, t ? (void *)xgd : (void *)xgf, g);
        for (int i = 0; i < N; i++) {
            double got = t ? dxd[N + i] : dxf[N + i], want = xs[i] > 0 ? 1.0 : 0.0;
            TEST_CHECK(fabs(got - want) <= 1e-6, "%s geglu dg at g = %g: got %.9g expected %g", dn, xs[i], got, want);
        }
        // DGELU epilogue: C [1, N] = (A [1, 1] = 1) (B [1, N] = 1) * gelu_tanh'(aux = x)
        float onef[N], cf[N], af = 1;
        double oned[N], cd[N], ad = 1;
        for (int i = 0; i < N; i++) onef[i] = 1, oned[i] = 1;
        be->gemm_ex(&kc, dt, 0, 0, 1, N, 1, 1.0, t ? (void *)&ad : (void *)&af, 1, 0, t ? (void *)oned : (void *)onef,
                    N, 0, 0.0, t ? (void *)cd : (void *)cf, N, 0, 1, NULL, CM_ACT_DGELU_TANH, x);
        for (int i = 0; i < N; i++) {
            double got = t ? cd[i] : cf[i], want = xs[i] > 0 ? 1.0 : 0.0;
            TEST_CHECK(fabs(got - want) <= 1e-6, "%s DGELU epilogue at aux = %g: got %.9g expected %g", dn, xs[i], got,
                       want);
        }
    }
}

// SiLU, its derivative and SwiGLU for x far below -88: 0 (the f32 sigmoid stopped at 4.5e-39, so
// silu(-3e38) was -1.4), and silu(x) = x, silu' = 1 far above
static void test_silu_large(void) {
    enum { N = 8 };
    const double xs[N] = {-100, -1e10, -1e30, -3e38, 100, 1e10, 1e30, 3e38};
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = t ? CM_F64 : CM_F32;
        const char *dn = t ? "f64" : "f32";
        float xf[N], yf[N], df[N], gf[N], xgf[2 * N], swf[N];
        double xd[N], yd[N], dd[N], gd[N], xgd[2 * N], swd[N];
        for (int i = 0; i < N; i++) {
            xf[i] = (float)xs[i], xd[i] = xs[i], gf[i] = 1, gd[i] = 1;
            xgf[i] = xf[i], xgd[i] = xd[i], xgf[N + i] = 1, xgd[N + i] = 1;  // [a | g]: silu(a) * 1
        }
        void *x = t ? (void *)xd : (void *)xf, *y = t ? (void *)yd : (void *)yf, *d = t ? (void *)dd : (void *)df;
        be->unary_fwd(&kc, CM_UN_SILU, dt, N, y, x);
        be->unary_bwd(&kc, CM_UN_SILU, dt, N, d, x, t ? (void *)gd : (void *)gf);
        be->glu_fwd(&kc, CM_GLU_SWIGLU, dt, 1, N, t ? (void *)swd : (void *)swf, t ? (void *)xgd : (void *)xgf);
        for (int i = 0; i < N; i++) {
            double y0 = t ? yd[i] : yf[i], d0 = t ? dd[i] : df[i], s0 = t ? swd[i] : swf[i];
            double wy = xs[i] > 0 ? (t ? xd[i] : xf[i]) : 0.0, wd = xs[i] > 0 ? 1.0 : 0.0;
            TEST_CHECK(fabs(y0 - wy) <= 1e-30 + 1e-6 * fabs(wy), "%s silu(%g): got %.9g expected %.9g", dn, xs[i], y0, wy);
            TEST_CHECK(fabs(s0 - wy) <= 1e-30 + 1e-6 * fabs(wy), "%s swiglu silu(%g) * 1: got %.9g expected %.9g", dn, xs[i],
                       s0, wy);
            TEST_CHECK(fabs(d0 - wd) <= 1e-6, "%s silu'(%g): got %.9g expected %g", dn, xs[i], d0, wd);
        }
    }
}

// FNV-1a of n bytes, folded into h
static uint64_t fold(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float *randf(int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        p[i] = (float)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
    }
    return p;
}

// every summing kernel once, f32, shapes big enough for their parallel paths; a hash of all outputs
static uint64_t run_summing_kernels(void) {
    enum { B = 2, L = 160, C = 260, N = B * L * C, HD = 64, TQ = 200 };
    static float *x, *dy, *w, *bb, *sc, *sh;
    static int32_t idx[300];  // 300 rows of 256 from dy [N]
    if (!x) {
        x = randf(N), dy = randf(N), w = randf(C), bb = randf(C), sc = randf(B * C), sh = randf(B * C);
        for (int i = 0; i < 300; i++) idx[i] = (i * 7919) % 40;
    }
    float *y = malloc(N * 4), *dx = malloc(N * 4), *mean = malloc(B * L * 4), *rstd = malloc(B * L * 4);
    float *dw = malloc(C * 4), *db = malloc(C * 4), *ds = malloc(B * C * 4), *dh = malloc(B * C * 4);
    float *tab = calloc(40 * 256, 4), *r = malloc(N * 4), *bx = malloc(4 * 32 * 32 * 4);
    uint64_t h = 1469598103934665603ull;
    be->layernorm_mod_fwd(&kc, CM_F32, B, L, C, 1e-6, y, mean, rstd, x, w, bb, sc, sh);
    be->layernorm_mod_bwd(&kc, CM_F32, B, L, C, dx, dw, db, ds, dh, dy, x, mean, rstd, w, bb, sc);
    h = fold(fold(fold(fold(h, dx, N * 4), dw, C * 4), db, C * 4), ds, B * C * 4);
    be->layernorm_bwd(&kc, CM_F32, B * L, C, dx, dw, db, dy, x, mean, rstd, w);
    h = fold(fold(fold(h, dx, N * 4), dw, C * 4), db, C * 4);
    be->rmsnorm_bwd(&kc, CM_RMS_IC, CM_F32, B * L, C, 1e-6, dx, dw, dy, x, rstd, w);
    h = fold(fold(h, dx, N * 4), dw, C * 4);
    be->groupnorm_fwd(&kc, CM_F32, B, C, L, 5, 1e-6, y, mean, rstd, x, w, bb);
    be->groupnorm_bwd(&kc, CM_F32, B, C, L, 5, dx, dw, db, dy, x, mean, rstd, w);
    h = fold(fold(fold(fold(h, y, N * 4), dx, N * 4), dw, C * 4), db, C * 4);
    be->modulate_bwd(&kc, CM_F32, B, L, C, dx, ds, dh, dy, x, sc);
    h = fold(fold(h, ds, B * C * 4), dh, B * C * 4);
    be->scatter_add_rows(&kc, CM_F32, 300, 256, tab, dy, idx);
    h = fold(h, tab, 40 * 256 * 4);
    be->reduce_sum(&kc, CM_F32, 1, B * L, C, r, x);
    h = fold(h, r, C * 4);
    be->reduce_sum(&kc, CM_F32, B * L, C, 1, r, x);
    h = fold(h, r, B * L * 4);
    be->bicubic_bwd(&kc, CM_F32, 4, 32, 32, 90, 110, bx, dy);
    h = fold(h, bx, 4 * 32 * 32 * 4);
    be->softmax_fwd(&kc, CM_F32, B * L, C, y, x);
    be->softmax_bwd(&kc, CM_F32, B * L, C, dx, y, dy);
    h = fold(fold(h, y, N * 4), dx, N * 4);
    double s = be->sumsq(&kc, CM_F32, N, x);
    h = fold(h, &s, sizeof s);
    // attention [1, 3, TQ, HD] (x's rows as Q, K, V): fewer tasks than threads on 3 (BLAS threaded) and not on 1
    const int64_t st[3] = {3 * TQ * HD, TQ * HD, HD};
    float *O = malloc(3 * TQ * HD * 4), *lse = malloc(3 * TQ * 4), *dQ = malloc(3 * TQ * HD * 4);
    float *dK = malloc(3 * TQ * HD * 4), *dV = malloc(3 * TQ * HD * 4);
    be->attn_fwd(&kc, CM_F32, 1, 3, TQ, TQ, HD, 0.125, O, NULL, lse, x, st, dy, st, x + 3 * TQ * HD, st, NULL, 0, 0);
    be->attn_bwd(&kc, CM_F32, 1, 3, TQ, TQ, HD, 0.125, dQ, dK, dV, dy + 3 * TQ * HD, NULL, O, NULL, lse, x, st, dy, st,
                 x + 3 * TQ * HD, st, NULL, 0, 0);
    h = fold(fold(fold(fold(fold(h, O, 3 * TQ * HD * 4), lse, 3 * TQ * 4), dQ, 3 * TQ * HD * 4), dK, 3 * TQ * HD * 4),
             dV, 3 * TQ * HD * 4);
    free(y), free(dx), free(mean), free(rstd), free(dw), free(db), free(ds), free(dh), free(tab), free(r), free(bx);
    free(O), free(lse), free(dQ), free(dK), free(dV);
    return h;
}

static void test_thread_counts(void) {
#ifdef _OPENMP
    int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    uint64_t h1 = run_summing_kernels();
    for (int t = 2; t <= 3; t++) {
        omp_set_num_threads(t);
        uint64_t ht = run_summing_kernels();
        TEST_CHECK(ht == h1, "the summing kernels on %d threads: not the bits of 1 thread", t);
    }
    omp_set_num_threads(keep);
#endif
}

int main(void) {
    test_gelu_large();
    test_silu_large();
    test_thread_counts();
    return test_summary("test_cpu_numerics");
}
