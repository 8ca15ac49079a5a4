// test_cpu_numerics.c — CPU kernels at the edges of the float range, called through the backend
// table on plain buffers: the GELU derivatives (unary, GEGLU, the GEMM's DGELU epilogue) at
// |x| up to 3e38, where they are exactly 1 (x > 0) or 0 (x < 0); SiLU and SwiGLU far below -88.
#include <math.h>
#include <string.h>
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

int main(void) {
    test_gelu_large();
    test_silu_large();
    return test_summary("test_cpu_numerics");
}
