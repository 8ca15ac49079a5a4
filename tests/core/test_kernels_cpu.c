// test_kernels_cpu.c — every CPU backend kernel against a naive double-precision reference
// written here, in f32 and f64; gradients also against finite differences in f64.
// Calls the backend table directly on malloc'd buffers (no tensors).
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "kernels/backend.h"
#include "kernels/cpu/cpu_internal.h"
#include "testutil.h"

extern const cm_backend cm_cpu_backend;
static const cm_backend *be = &cm_cpu_backend;
static const cm_kctx kc = {{CM_CPU, 0}, NULL, NULL};
static const cm_kctx *K_ = &kc;

// --- helpers: random data, dtype round trips, comparisons ---
static uint64_t rng = 88172645463325252ull;
static double urand(void) {  // uniform [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}
static double *randv(int64_t n) {
    double *v = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) v[i] = urand();
    return v;
}
static size_t esz(cm_dtype dt) { return dt == CM_F64 ? 8 : 4; }
// a dtype copy of a double array (the f32 values rounded)
static void *to_dt(cm_dtype dt, const double *v, int64_t n) {
    void *p = malloc((size_t)(n > 0 ? n : 1) * esz(dt));
    for (int64_t i = 0; i < n; i++) {
        if (dt == CM_F32) ((float *)p)[i] = (float)v[i];
        else ((double *)p)[i] = v[i];
    }
    return p;
}
static double getd(cm_dtype dt, const void *p, int64_t i) {
    return dt == CM_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
// the values the kernel really saw: v rounded to dt
static double *rounded(cm_dtype dt, const double *v, int64_t n) {
    double *r = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) r[i] = dt == CM_F32 ? (double)(float)v[i] : v[i];
    return r;
}
// max |got - ref| <= atol + rtol |ref| over n elements: one check per array
static void close_arr(const char *what, cm_dtype dt, const void *got, const double *ref, int64_t n, double atol,
                      double rtol) {
    int64_t bad = -1;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = getd(dt, got, i), e = fabs(g - ref[i]), lim = atol + rtol * fabs(ref[i]);
        if (!(e <= lim) && (bad < 0 || e - lim > worst)) bad = i, worst = e - lim;
    }
    TEST_CHECK(bad < 0, "%s (%s): element %lld got %.10g expected %.10g", what, dt == CM_F32 ? "f32" : "f64",
               (long long)bad, bad >= 0 ? getd(dt, got, bad) : 0.0, bad >= 0 ? ref[bad] : 0.0);
}
#define TOL(dt) ((dt) == CM_F32 ? 2e-5 : 1e-12)
static const cm_dtype FT[2] = {CM_F32, CM_F64};

// --- copy_strided, fill, conversions ---
static double dget(cm_dtype dt, const void *p, int64_t i) {
    switch (dt) {
    case CM_F32: return ((const float *)p)[i];
    case CM_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
    case CM_F16: return f16_to_f32(((const uint16_t *)p)[i]);
    case CM_F64: return ((const double *)p)[i];
    case CM_I32: return ((const int32_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}
static const size_t DSZ[CM_NDTYPES] = {4, 2, 2, 8, 4, 1};

static void test_copy_fill(void) {
    // src [3, 4, 5] contiguous; copied into dst through a permuted view: dst[i][j][k] at strides (5, 15, 1)
    const int64_t shape[3] = {3, 4, 5}, sst[3] = {20, 5, 1}, dstr[3] = {5, 15, 1};
    for (int s = 0; s < CM_NDTYPES; s++)
        for (int d = 0; d < CM_NDTYPES; d++) {
            uint8_t src[60 * 8], dst[60 * 8];
            for (int i = 0; i < 60; i++) {  // small integers: exact in every dtype
                double v = (i * 7) % 61 + 3;
                float f = (float)v;
                switch ((cm_dtype)s) {
                case CM_F32: ((float *)src)[i] = f; break;
                case CM_BF16: ((uint16_t *)src)[i] = f32_to_bf16(f); break;
                case CM_F16: ((uint16_t *)src)[i] = f32_to_f16(f); break;
                case CM_F64: ((double *)src)[i] = v; break;
                case CM_I32: ((int32_t *)src)[i] = (int32_t)v; break;
                default: ((uint8_t *)src)[i] = (uint8_t)v; break;
                }
            }
            memset(dst, 0xff, sizeof dst);
            be->copy_strided(K_, 3, shape, d, dst, dstr, s, src, sst);
            int ok = 1;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++)
                    for (int k = 0; k < 5; k++)
                        ok &= dget(d, dst, i * 5 + j * 15 + k) == (double)((((i * 20 + j * 5 + k) * 7) % 61) + 3);
            TEST_CHECK(ok, "copy_strided dst dtype %d from src dtype %d through a permuted view", d, s);
        }
    // broadcast source (stride 0) and a big parallel copy with a transpose
    {
        enum { R = 300, C = 200 };
        float *a = malloc(R * C * 4), *b = malloc(R * C * 4);
        for (int i = 0; i < R * C; i++) a[i] = (float)i;
        const int64_t sh[2] = {C, R}, ds[2] = {R, 1}, ss[2] = {1, C};
        be->copy_strided(K_, 2, sh, CM_F32, b, ds, CM_F32, a, ss);
        int ok = 1;
        for (int i = 0; i < C; i++)
            for (int j = 0; j < R; j++) ok &= b[i * R + j] == a[j * C + i];
        TEST_CHECK(ok, "copy_strided transpose [%d, %d]", R, C);
        const int64_t sh2[2] = {4, 3}, ds2[2] = {3, 1}, ss2[2] = {0, 1};
        be->copy_strided(K_, 2, sh2, CM_F32, b, ds2, CM_F32, a, ss2);
        TEST_CHECK(b[9] == 0 && b[10] == 1 && b[11] == 2, "copy_strided broadcast row");
        free(a), free(b);
    }
    // rounding: f32 -> bf16 / f16 round to nearest even; float -> int truncates
    {
        float in[6] = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, 1 + 0x1p-11f, 1 + 3 * 0x1p-11f, 65520.0f, 0x1p-24f};
        uint16_t bf[6], hf[6];
        const int64_t sh[1] = {6}, st[1] = {1};
        be->copy_strided(K_, 1, sh, CM_BF16, bf, st, CM_F32, in, st);
        be->copy_strided(K_, 1, sh, CM_F16, hf, st, CM_F32, in, st);
        TEST_CHECK(bf[0] == 0x3f80 && bf[1] == 0x3f82, "bf16 ties to even: %04x %04x", bf[0], bf[1]);
        TEST_CHECK(hf[2] == 0x3c00 && hf[3] == 0x3c02, "f16 ties to even: %04x %04x", hf[2], hf[3]);
        TEST_CHECK(hf[4] == 0x7c00 && hf[5] == 0x0001, "f16 overflow to inf, smallest subnormal: %04x %04x", hf[4],
                   hf[5]);
        float fi[3] = {-2.7f, 2.7f, 300.5f};
        int32_t ii[3];
        const int64_t sh3[1] = {3};
        be->copy_strided(K_, 1, sh3, CM_I32, ii, st, CM_F32, fi, st);
        TEST_CHECK(ii[0] == -2 && ii[1] == 2 && ii[2] == 300, "float -> i32 truncates: %d %d %d", ii[0], ii[1], ii[2]);
    }
    // fill every dtype
    for (int d = 0; d < CM_NDTYPES; d++) {
        uint8_t buf[1000 * 8];
        be->fill(K_, d, buf, 1000, 3.0);
        int ok = 1;
        for (int i = 0; i < 1000; i++) ok &= dget(d, buf, i) == 3.0;
        be->fill(K_, d, buf, 1000, 0.0);
        for (int i = 0; i < 1000; i++) ok &= dget(d, buf, i) == 0.0;
        TEST_CHECK(ok, "fill dtype %d", d);
        (void)DSZ;
    }
}

// --- elementwise ---
static double gelu_t(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_e(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double silu(double x) { return x / (1 + exp(-x)); }
static double un_ref(cm_unop op, double x) {
    switch (op) {
    case CM_UN_GELU_TANH: return gelu_t(x);
    case CM_UN_GELU_ERF: return gelu_e(x);
    case CM_UN_SILU: return silu(x);
    case CM_UN_SQUARE: return x * x;
    case CM_UN_EXP: return exp(x);
    default: return -x;
    }
}

static void test_elementwise(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        // binary: out [2, 3, 4]; a read transposed from a [4, 3, 2] buffer; b [2, 1, 4] broadcast over dim 1
        double *av = randv(24), *bv = randv(8);
        for (int i = 0; i < 8; i++) bv[i] += bv[i] > 0 ? 0.5 : -0.5;  // away from 0 for DIV
        void *a = to_dt(dt, av, 24), *b = to_dt(dt, bv, 8), *o = malloc(24 * 8);
        double *ar = rounded(dt, av, 24), *br = rounded(dt, bv, 8), ref[24];
        const int64_t sh[3] = {2, 3, 4}, as[3] = {1, 2, 6}, bs[3] = {4, 0, 1};
        for (int op = 0; op < 4; op++) {
            be->binary(K_, op, dt, 3, sh, o, a, as, b, bs);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++)
                    for (int k = 0; k < 4; k++) {
                        double x = ar[i + 2 * j + 6 * k], y = br[4 * i + k];
                        ref[(i * 3 + j) * 4 + k] = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
                    }
            close_arr("binary broadcast/strided", dt, o, ref, 24, 0, dt == CM_F32 ? 1e-6 : 1e-15);
        }
        free(av), free(bv), free(a), free(b), free(o), free(ar), free(br);

        // axpby, unary fwd/bwd, GLU on n = 50000 (parallel path)
        enum { N = 50000 };
        double *xv = randv(N), *yv = randv(N), *gv = randv(N);
        for (int i = 0; i < N; i++) xv[i] *= 4;
        void *x = to_dt(dt, xv, N), *y = to_dt(dt, yv, N), *g = to_dt(dt, gv, N), *out = malloc(N * 8);
        double *xr = rounded(dt, xv, N), *yr = rounded(dt, yv, N), *gr = rounded(dt, gv, N);
        double *r = malloc(N * sizeof(double));
        be->axpby(K_, dt, N, 0.5, x, -2.0, y);
        for (int i = 0; i < N; i++) r[i] = 0.5 * xr[i] - 2 * yr[i];
        close_arr("axpby", dt, y, r, N, 1e-6, TOL(dt));
        for (int op = 0; op < 6; op++) {
            be->unary_fwd(K_, op, dt, N, out, x);
            for (int i = 0; i < N; i++) r[i] = un_ref(op, xr[i]);
            close_arr("unary_fwd", dt, out, r, N, dt == CM_F32 ? 1e-6 : 1e-14, dt == CM_F32 ? 2e-6 : 1e-13);
            be->unary_bwd(K_, op, dt, N, out, x, g);
            for (int i = 0; i < N; i++) {  // central difference of the reference, h = 1e-5
                double h = 1e-5;
                r[i] = gr[i] * (un_ref(op, xr[i] + h) - un_ref(op, xr[i] - h)) / (2 * h);
            }
            close_arr("unary_bwd vs finite differences", dt, out, r, N, 1e-6, dt == CM_F32 ? 1e-5 : 1e-8);
        }
        // GLU: x [rows, 2*half], rows * half = N/2
        int64_t rows = 250, half = 100;
        for (int op = 0; op < 2; op++) {
            be->glu_fwd(K_, op, dt, rows, half, out, x);
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < half; j++) {
                    double av_ = xr[i * 2 * half + j], gv_ = xr[i * 2 * half + half + j];
                    r[i * half + j] = op == CM_GLU_GEGLU ? av_ * gelu_e(gv_) : silu(av_) * gv_;
                }
            close_arr("glu_fwd", dt, out, r, rows * half, 1e-6, dt == CM_F32 ? 2e-6 : 1e-13);
            be->glu_bwd(K_, op, dt, rows, half, out, x, g);
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < half; j++) {
                    double av_ = xr[i * 2 * half + j], gv_ = xr[i * 2 * half + half + j], d = gr[i * half + j];
                    double h = 1e-5;
                    double f = op == CM_GLU_GEGLU ? gelu_e(gv_) : silu(av_);
                    double fa = op == CM_GLU_GEGLU ? 0 : (silu(av_ + h) - silu(av_ - h)) / (2 * h);
                    double fg = op == CM_GLU_GEGLU ? (gelu_e(gv_ + h) - gelu_e(gv_ - h)) / (2 * h) : 0;
                    r[i * 2 * half + j] = op == CM_GLU_GEGLU ? d * f : d * gv_ * fa;
                    r[i * 2 * half + half + j] = op == CM_GLU_GEGLU ? d * av_ * fg : d * f;
                }
            close_arr("glu_bwd", dt, out, r, rows * 2 * half, 1e-6, dt == CM_F32 ? 1e-5 : 1e-8);
        }
        free(xv), free(yv), free(gv), free(x), free(y), free(g), free(out), free(xr), free(yr), free(gr), free(r);
    }
}

// --- reductions, loss ---
static void test_reduce(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        const int64_t cases[3][3] = {{3, 1000, 1}, {2, 17, 300}, {1, 5000, 7}};
        for (int c = 0; c < 3; c++) {
            int64_t O = cases[c][0], R = cases[c][1], I = cases[c][2], n = O * R * I;
            double *xv = randv(n), *xr = rounded(dt, xv, n), *ref = calloc((size_t)(O * I), sizeof(double));
            void *x = to_dt(dt, xv, n), *y = malloc((size_t)(O * I) * 8);
            for (int64_t o = 0; o < O; o++)
                for (int64_t r = 0; r < R; r++)
                    for (int64_t i = 0; i < I; i++) ref[o * I + i] += xr[(o * R + r) * I + i];
            be->reduce_sum(K_, dt, O, R, I, y, x);
            close_arr("reduce_sum", dt, y, ref, O * I, 1e-5, TOL(dt));
            free(xv), free(xr), free(ref), free(x), free(y);
        }
        enum { N = 200001 };
        double *av = randv(N), *bv = randv(N), *ar = rounded(dt, av, N), *br = rounded(dt, bv, N), ss = 0, ms = 0;
        void *a = to_dt(dt, av, N), *b = to_dt(dt, bv, N), *da = malloc(N * 8);
        for (int i = 0; i < N; i++) ss += ar[i] * ar[i], ms += (ar[i] - br[i]) * (ar[i] - br[i]);
        TEST_NEAR(be->sumsq(K_, dt, N, a), ss, 0, 1e-12, "sumsq");
        TEST_CHECK(be->sumsq(K_, dt, N, a) == be->sumsq(K_, dt, N, a), "sumsq is deterministic");
        double md = 0, gp = 0.25;  // the loss lands in one element of dt; the upstream gradient comes from one
        float mf = 0;
        be->mse_fwd(K_, dt, N, a, b, dt == CM_F32 ? (void *)&mf : (void *)&md);
        TEST_NEAR(dt == CM_F32 ? mf : md, ms / N, 0, dt == CM_F32 ? 1e-7 : 1e-12, "mse_fwd");
        void *gpt = to_dt(dt, &gp, 1);
        be->mse_bwd(K_, dt, N, 0.5, NULL, da, a, b);
        double *r2 = malloc(N * sizeof *r2);
        for (int i = 0; i < N; i++) r2[i] = -0.5 * 0.25 * 2 * (ar[i] - br[i]) / N, ar[i] = 0.5 * 2 * (ar[i] - br[i]) / N;
        close_arr("mse_bwd", dt, da, ar, N, 0, TOL(dt));
        be->mse_bwd(K_, dt, N, -0.5, gpt, da, a, b);
        close_arr("mse_bwd with a device gradient", dt, da, r2, N, 0, TOL(dt));
        free(r2), free(gpt);
        free(av), free(bv), free(ar), free(br), free(a), free(b), free(da);
    }
}

// --- gemm ---
static void test_gemm(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        const int64_t M = 37, N = 29, Kd = 41, batch = 3, lda = 50, ldb = 60, ldc = 33;
        const int64_t sA = 50 * 50, sB = 60 * 60, sC = 40 * 33;
        double *Av = randv(batch * sA), *Bv = randv(batch * sB), *Cv = randv(batch * sC);
        double *Ar = rounded(dt, Av, batch * sA), *Br = rounded(dt, Bv, batch * sB), *Cr = rounded(dt, Cv, batch * sC);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                void *A = to_dt(dt, Av, batch * sA), *B = to_dt(dt, Bv, batch * sB), *C = to_dt(dt, Cv, batch * sC);
                double *ref = malloc((size_t)(batch * sC) * sizeof(double));
                memcpy(ref, Cr, (size_t)(batch * sC) * sizeof(double));
                for (int64_t b = 0; b < batch; b++)
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double s = 0;
                            for (int64_t k = 0; k < Kd; k++)
                                s += Ar[b * sA + (ta ? k * lda + i : i * lda + k)] *
                                     Br[b * sB + (tb ? j * ldb + k : k * ldb + j)];
                            ref[b * sC + i * ldc + j] = 1.5 * s + 0.5 * Cr[b * sC + i * ldc + j];
                        }
                int64_t calls = cm_gemm_calls;
                be->gemm(K_, dt, ta, tb, M, N, Kd, 1.5, A, lda, sA, B, ldb, sB, 0.5, C, ldc, sC, batch);
                TEST_CHECK(cm_gemm_calls == calls + 1, "gemm counts one call per batched gemm");
                close_arr("gemm (trans, ld, batch, alpha, beta)", dt, C, ref, batch * sC, 1e-5, TOL(dt));
                free(A), free(B), free(C), free(ref);
            }
        free(Av), free(Bv), free(Cv), free(Ar), free(Br), free(Cr);
    }
}

// --- norms: references in double; gradients of sum(y * R) by central differences ---
typedef void (*norm_ref_fn)(const double *x, double *y, int64_t rows, int64_t cols, const double *w,
                            const double *b, double eps, int var);
static void ln_ref(const double *x, double *y, int64_t rows, int64_t cols, const double *w, const double *b,
                   double eps, int var) {
    for (int64_t r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < cols; j++) m += x[r * cols + j];
        m /= cols;
        for (int64_t j = 0; j < cols; j++) v += (x[r * cols + j] - m) * (x[r * cols + j] - m);
        double rs = 1 / sqrt(v / cols + eps);
        for (int64_t j = 0; j < cols; j++)
            y[r * cols + j] = (x[r * cols + j] - m) * rs * (w ? w[j] : 1) + (b ? b[j] : 0);
    }
}
static void rms_ref(const double *x, double *y, int64_t rows, int64_t cols, const double *w, const double *b,
                    double eps, int var) {
    for (int64_t r = 0; r < rows; r++) {
        double ms = 0;
        for (int64_t j = 0; j < cols; j++) ms += x[r * cols + j] * x[r * cols + j];
        ms /= cols;
        double inv = var == CM_RMS_IC ? 1 / (sqrt(ms) + eps) : 1 / sqrt(ms + eps);
        for (int64_t j = 0; j < cols; j++) y[r * cols + j] = x[r * cols + j] * inv * (w ? w[j] : 1);
    }
}
// groupnorm as a norm over rows = N*G, cols = cg*HW, with per-channel affine: cols/HW channels
static int64_t gn_HW, gn_G;
static void gn_ref(const double *x, double *y, int64_t rows, int64_t cols, const double *w, const double *b,
                   double eps, int var) {
    ln_ref(x, y, rows, cols, NULL, NULL, eps, 0);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) {
            int64_t ch = (r % gn_G) * (cols / gn_HW) + j / gn_HW;
            y[r * cols + j] = y[r * cols + j] * (w ? w[ch] : 1) + (b ? b[ch] : 0);
        }
}
// d/dp sum(f(x, w, b) * R) for p = x, w, b by central differences
static void fd_norm(norm_ref_fn f, double *x, double *w, double *b, int64_t rows, int64_t cols, int64_t nw,
                    double eps, int var, const double *R, double *gx, double *gw, double *gb) {
    int64_t n = rows * cols;
    double *y = malloc((size_t)n * sizeof(double)), h = 1e-6;
    double *ps[3] = {x, w, b}, *gs[3] = {gx, gw, gb};
    int64_t lens[3] = {n, nw, nw};
    for (int p = 0; p < 3; p++) {
        if (!ps[p] || !gs[p]) continue;
        for (int64_t i = 0; i < lens[p]; i++) {
            double keep = ps[p][i], lp = 0, lm = 0;
            ps[p][i] = keep + h;
            f(x, y, rows, cols, w, b, eps, var);
            for (int64_t j = 0; j < n; j++) lp += y[j] * R[j];
            ps[p][i] = keep - h;
            f(x, y, rows, cols, w, b, eps, var);
            for (int64_t j = 0; j < n; j++) lm += y[j] * R[j];
            ps[p][i] = keep;
            gs[p][i] = (lp - lm) / (2 * h);
        }
    }
    free(y);
}

static void test_norms(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        const double gtol = dt == CM_F32 ? 3e-5 : 1e-6;  // FD in double; f32 kernels have f32 rounding
        // layernorm and rmsnorm: rows 5, cols 37 (small: FD); plus a big parallel forward
        for (int kind = 0; kind < 3; kind++)
            for (int affine = 0; affine < 2; affine++) {
                int64_t rows = 5, cols = 37, n = rows * cols;
                double *xv = randv(n), *wv = randv(cols), *bv = randv(cols), *R = randv(n);
                for (int64_t j = 0; j < cols; j++) wv[j] += 1.5;
                double *xr = rounded(dt, xv, n), *wr = rounded(dt, wv, cols), *br = rounded(dt, bv, cols);
                void *x = to_dt(dt, xv, n), *w = to_dt(dt, wv, cols), *b = to_dt(dt, bv, cols), *g = to_dt(dt, R, n);
                void *y = malloc(n * 8), *dx = malloc(n * 8), *dw = malloc(cols * 8), *db = malloc(cols * 8);
                float mean[5], rstd[5];
                double *ref = malloc(n * sizeof(double)), *gx = malloc(n * sizeof(double));
                double *gw = malloc(cols * sizeof(double)), *gb = malloc(cols * sizeof(double));
                double *Rr = rounded(dt, R, n), eps = 1e-5;
                const char *name = kind == 0 ? "layernorm" : kind == 1 ? "rmsnorm diffusers" : "rmsnorm ic";
                int var = kind == 2 ? CM_RMS_IC : CM_RMS_DIFFUSERS;
                norm_ref_fn f = kind == 0 ? ln_ref : rms_ref;
                const double *W = affine ? wr : NULL, *Bb = affine ? br : NULL;
                if (kind == 0) be->layernorm_fwd(K_, dt, rows, cols, eps, y, mean, rstd, x, affine ? w : NULL, affine ? b : NULL);
                else be->rmsnorm_fwd(K_, var, dt, rows, cols, eps, y, rstd, x, affine ? w : NULL);
                f(xr, ref, rows, cols, W, kind == 0 ? Bb : NULL, eps, var);
                close_arr(name, dt, y, ref, n, 1e-5, TOL(dt));
                fd_norm(f, xr, affine ? wr : NULL, (affine && kind == 0) ? br : NULL, rows, cols, cols, eps, var, Rr, gx,
                        gw, gb);
                if (kind == 0)
                    be->layernorm_bwd(K_, dt, rows, cols, dx, affine ? dw : NULL, affine ? db : NULL, g, x, mean, rstd,
                                      affine ? w : NULL);
                else be->rmsnorm_bwd(K_, var, dt, rows, cols, eps, dx, affine ? dw : NULL, g, x, rstd, affine ? w : NULL);
                close_arr(name, dt, dx, gx, n, gtol, gtol);
                if (affine) close_arr(name, dt, dw, gw, cols, gtol, gtol);
                if (affine && kind == 0) close_arr(name, dt, db, gb, cols, gtol, gtol);
                free(xv), free(wv), free(bv), free(R), free(xr), free(wr), free(br), free(x), free(w), free(b), free(g);
                free(y), free(dx), free(dw), free(db), free(ref), free(gx), free(gw), free(gb), free(Rr);
            }
        // groupnorm: N 2, C 6, HW 5, G 3
        {
            int64_t N = 2, C = 6, HW = 5, G = 3, n = N * C * HW;
            gn_HW = HW, gn_G = G;
            double *xv = randv(n), *wv = randv(C), *bv = randv(C), *R = randv(n);
            double *xr = rounded(dt, xv, n), *wr = rounded(dt, wv, C), *br = rounded(dt, bv, C), *Rr = rounded(dt, R, n);
            void *x = to_dt(dt, xv, n), *w = to_dt(dt, wv, C), *b = to_dt(dt, bv, C), *g = to_dt(dt, R, n);
            void *y = malloc(n * 8), *dx = malloc(n * 8), *dw = malloc(C * 8), *db = malloc(C * 8);
            float mean[6], rstd[6];
            double ref[60], gx[60], gw[6], gb[6];
            be->groupnorm_fwd(K_, dt, N, C, HW, G, 1e-5, y, mean, rstd, x, w, b);
            gn_ref(xr, ref, N * G, n / (N * G), wr, br, 1e-5, 0);
            close_arr("groupnorm", dt, y, ref, n, 1e-5, TOL(dt));
            fd_norm(gn_ref, xr, wr, br, N * G, n / (N * G), C, 1e-5, 0, Rr, gx, gw, gb);
            be->groupnorm_bwd(K_, dt, N, C, HW, G, dx, dw, db, g, x, mean, rstd, w);
            close_arr("groupnorm dx", dt, dx, gx, n, gtol, gtol);
            close_arr("groupnorm dw", dt, dw, gw, C, gtol, gtol);
            close_arr("groupnorm db", dt, db, gb, C, gtol, gtol);
            free(xv), free(wv), free(bv), free(R), free(xr), free(wr), free(br), free(Rr);
            free(x), free(w), free(b), free(g), free(y), free(dx), free(dw), free(db);
        }
        // a big layernorm (parallel path, chunked dw) still matches
        {
            int64_t rows = 300, cols = 200, n = rows * cols;
            double *xv = randv(n), *xr = rounded(dt, xv, n), *ref = malloc(n * sizeof(double));
            void *x = to_dt(dt, xv, n), *y = malloc(n * 8), *dw = malloc(cols * 8);
            float *mean = malloc(rows * 4), *rstd = malloc(rows * 4);
            be->layernorm_fwd(K_, dt, rows, cols, 1e-6, y, mean, rstd, x, NULL, NULL);
            ln_ref(xr, ref, rows, cols, NULL, NULL, 1e-6, 0);
            close_arr("layernorm [300, 200]", dt, y, ref, n, 1e-5, TOL(dt));
            // dw = sum_rows dy * xhat with dy = 1: sum over rows of xhat
            double *sw = calloc(cols, sizeof(double));
            for (int64_t i = 0; i < n; i++) sw[i % cols] += ref[i];
            void *ones = malloc(n * 8);
            be->fill(K_, dt, ones, n, 1.0);
            be->layernorm_bwd(K_, dt, rows, cols, NULL, dw, NULL, ones, x, mean, rstd, NULL);
            close_arr("layernorm dw [300, 200]", dt, dw, sw, cols, 1e-4, 1e-5);
            free(xv), free(xr), free(ref), free(x), free(y), free(dw), free(mean), free(rstd), free(sw), free(ones);
        }
    }
}

// --- layernorm fused with the modulation: against a double reference of layernorm then modulate ---
// x [B, L, C], sc, sh [B, C], w, b [C] or NULL; y, and with g = dy: dx, dw, db, ds, dh (all double)
static void lnmod_ref(int64_t B, int64_t L, int64_t C, double eps, const double *x, const double *w, const double *b,
                      const double *sc, const double *sh, const double *g, double *y, double *dx, double *dw,
                      double *db, double *ds, double *dh) {
    double *n = malloc(C * sizeof(double)), *gw = malloc(C * sizeof(double));
    memset(dw, 0, C * sizeof(double)), memset(db, 0, C * sizeof(double));
    memset(ds, 0, B * C * sizeof(double)), memset(dh, 0, B * C * sizeof(double));
    for (int64_t r = 0; r < B * L; r++) {
        const double *xr = x + r * C, *gr = g + r * C, *s = sc + (r / L) * C, *h = sh + (r / L) * C;
        double m = 0, v = 0, c1 = 0, c2 = 0;
        for (int64_t j = 0; j < C; j++) m += xr[j];
        m /= C;
        for (int64_t j = 0; j < C; j++) v += (xr[j] - m) * (xr[j] - m);
        double rs = 1 / sqrt(v / C + eps);
        for (int64_t j = 0; j < C; j++) {
            n[j] = (xr[j] - m) * rs;
            double a = n[j] * (w ? w[j] : 1) + (b ? b[j] : 0), da = gr[j] * (1 + s[j]);
            y[r * C + j] = a * (1 + s[j]) + h[j];
            gw[j] = da * (w ? w[j] : 1);
            c1 += gw[j], c2 += gw[j] * n[j];
            dw[j] += da * n[j], db[j] += da;
            ds[(r / L) * C + j] += gr[j] * a, dh[(r / L) * C + j] += gr[j];
        }
        for (int64_t j = 0; j < C; j++) dx[r * C + j] = rs * (gw[j] - c1 / C - n[j] * c2 / C);
    }
    free(n), free(gw);
}

static void lnmod_case(cm_dtype dt, int64_t B, int64_t L, int64_t C, int affine) {
    int64_t n = B * L * C;
    double eps = 1e-6, *xv = randv(n), *wv = randv(C), *bv = randv(C), *sv = randv(B * C), *hv = randv(B * C);
    double *gv = randv(n);
    for (int64_t i = 0; i < n; i++) xv[i] = 2 * xv[i] + 0.5;
    double *xr = rounded(dt, xv, n), *wr = rounded(dt, wv, C), *br = rounded(dt, bv, C), *sr = rounded(dt, sv, B * C);
    double *hr = rounded(dt, hv, B * C), *gr = rounded(dt, gv, n);
    double *y = malloc(n * 8), *dx = malloc(n * 8), *dw = malloc(C * 8), *db = malloc(C * 8), *ds = malloc(B * C * 8);
    double *dh = malloc(B * C * 8);
    lnmod_ref(B, L, C, eps, xr, affine ? wr : NULL, affine ? br : NULL, sr, hr, gr, y, dx, dw, db, ds, dh);
    void *X = to_dt(dt, xv, n), *W = to_dt(dt, wv, C), *Bb = to_dt(dt, bv, C), *S = to_dt(dt, sv, B * C);
    void *H = to_dt(dt, hv, B * C), *G = to_dt(dt, gv, n);
    void *Y = malloc(n * 8), *DX = malloc(n * 8), *DW = malloc(C * 8), *DB = malloc(C * 8), *DS = malloc(B * C * 8);
    void *DH = malloc(B * C * 8);
    float *mean = malloc(B * L * 4), *rstd = malloc(B * L * 4);
    be->layernorm_mod_fwd(K_, dt, B, L, C, eps, Y, mean, rstd, X, affine ? W : NULL, affine ? Bb : NULL, S, H);
    be->layernorm_mod_bwd(K_, dt, B, L, C, DX, affine ? DW : NULL, affine ? DB : NULL, DS, DH, G, X, mean, rstd,
                          affine ? W : NULL, affine ? Bb : NULL, S);
    // backward tolerances: the saved rstd is f32 in both dtypes (f64: ~1e-7 relative)
    double gtol = dt == CM_F32 ? 3e-5 : 1e-6;
    char what[80];
    snprintf(what, sizeof what, "layernorm_mod [%lld, %lld, %lld]%s", (long long)B, (long long)L, (long long)C,
             affine ? " w,b" : "");
    close_arr(what, dt, Y, y, n, 1e-5, TOL(dt));
    close_arr("layernorm_mod dx", dt, DX, dx, n, gtol, gtol);
    close_arr("layernorm_mod dscale", dt, DS, ds, B * C, gtol, gtol);
    close_arr("layernorm_mod dshift", dt, DH, dh, B * C, 1e-5, TOL(dt));
    if (affine) {
        close_arr("layernorm_mod dw", dt, DW, dw, C, gtol, gtol);
        close_arr("layernorm_mod db", dt, DB, db, C, gtol, gtol);
    }
#ifdef _OPENMP
    // the column sums are the same bits for any thread count
    if (dt == CM_F32) {
        void *DS1 = malloc(B * C * 4), *DW1 = malloc(C * 4), *DX1 = malloc(n * 4);
        int keep = omp_get_max_threads();
        omp_set_num_threads(1);
        be->layernorm_mod_bwd(K_, dt, B, L, C, DX1, affine ? DW1 : NULL, NULL, DS1, NULL, G, X, mean, rstd,
                              affine ? W : NULL, affine ? Bb : NULL, S);
        omp_set_num_threads(keep > 1 ? keep : 3);
        TEST_CHECK(!memcmp(DS1, DS, B * C * 4) && (!affine || !memcmp(DW1, DW, C * 4)) && !memcmp(DX1, DX, n * 4),
                   "%s: one thread and %d threads give different bits", what, keep > 1 ? keep : 3);
        omp_set_num_threads(keep);
        free(DS1), free(DW1), free(DX1);
    }
#endif
    free(xv), free(wv), free(bv), free(sv), free(hv), free(gv), free(xr), free(wr), free(br), free(sr), free(hr);
    free(gr), free(y), free(dx), free(dw), free(db), free(ds), free(dh), free(X), free(W), free(Bb), free(S), free(H);
    free(G), free(Y), free(DX), free(DW), free(DB), free(DS), free(DH), free(mean), free(rstd);
}

static void test_layernorm_mod(void) {
    for (int t = 0; t < 2; t++)
        for (int affine = 0; affine < 2; affine++) {
            lnmod_case(FT[t], 3, 5, 37, affine);    // one chunk per batch, serial
            lnmod_case(FT[t], 2, 300, 260, affine);  // parallel path, 10 chunks of 30 rows per batch
        }
}

// norms over no rows: the backward writes zero dw, db (backend.h), whatever the buffers held.
// layernorm_bwd / rmsnorm_bwd divided by zero chunks (SIGFPE); layernorm_mod_bwd with B = 0
// returned leaving them as they were
static void test_norms_no_rows(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        const int64_t C = 5;
        double junk[5] = {3, 3, 3, 3, 3};
        void *dw = to_dt(dt, junk, C), *db = to_dt(dt, junk, C), *x = to_dt(dt, junk, C);
        double worst = 0;
        be->layernorm_bwd(K_, dt, 0, C, x, dw, db, x, x, NULL, NULL, x);
        for (int64_t j = 0; j < C; j++) worst = test_max(worst, fabs(getd(dt, dw, j)) + fabs(getd(dt, db, j)));
        TEST_CHECK(worst == 0, "%s layernorm_bwd over 0 rows: dw, db zero (worst %g)", dtype_name(dt), worst);
        free(dw), free(db), dw = to_dt(dt, junk, C), db = to_dt(dt, junk, C);
        worst = 0;
        for (int v = 0; v < 2; v++) {
            be->rmsnorm_bwd(K_, (cm_rmsvariant)v, dt, 0, C, 1e-6, x, dw, x, x, NULL, x);
            for (int64_t j = 0; j < C; j++) worst = test_max(worst, fabs(getd(dt, dw, j)));
            free(dw), dw = to_dt(dt, junk, C);
        }
        TEST_CHECK(worst == 0, "%s rmsnorm_bwd over 0 rows: dw zero (worst %g)", dtype_name(dt), worst);
        worst = 0;
        for (int64_t L = 0; L < 2; L++) {  // B = 0 (no batches), then B = 1 with L = 0 (no tokens)
            be->layernorm_mod_bwd(K_, dt, L ? 1 : 0, L ? 0 : 3, C, NULL, dw, db, NULL, NULL, x, x, NULL, NULL, x, x, NULL);
            for (int64_t j = 0; j < C; j++) worst = test_max(worst, fabs(getd(dt, dw, j)) + fabs(getd(dt, db, j)));
            free(dw), free(db), dw = to_dt(dt, junk, C), db = to_dt(dt, junk, C);
        }
        TEST_CHECK(worst == 0, "%s layernorm_mod_bwd over 0 rows: dw, db zero (worst %g)", dtype_name(dt), worst);
        free(dw), free(db), free(x);
    }
}

// --- the vectorised row max (softmax, attention): a fully masked (all -inf) row must read -inf,
// or attention takes it for a live row and writes 0/0 (clang's max reduction starts at -FLT_MAX) ---
static void test_rowmax(void) {
    float x[100];  // [n]
    const int ns[] = {1, 7, 16, 33, 100};
    for (int t = 0; t < 5; t++) {
        int n = ns[t];
        for (int i = 0; i < n; i++) x[i] = -INFINITY;
        float m = cpu_rowmax_f32(x, n);
        TEST_CHECK(m == -INFINITY, "rowmax of %d x -inf: got %g, want -inf", n, m);
        x[n / 2] = -FLT_MAX;
        m = cpu_rowmax_f32(x, n);
        TEST_CHECK(m == -FLT_MAX, "rowmax of -FLT_MAX among %d x -inf: got %g", n, m);
        x[n - 1] = -3.5f;
        m = cpu_rowmax_f32(x, n);
        TEST_CHECK(m == -3.5f, "rowmax with -3.5 last of %d: got %g", n, m);
    }
}

// --- softmax ---
static void test_softmax(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        int64_t rows = 40, cols = 1000, n = rows * cols;
        double *xv = randv(n), *gv = randv(n);
        for (int64_t i = 0; i < n; i++) xv[i] *= 20;
        double *xr = rounded(dt, xv, n), *gr = rounded(dt, gv, n), *ref = malloc(n * sizeof(double));
        void *x = to_dt(dt, xv, n), *g = to_dt(dt, gv, n), *y = malloc(n * 8), *dx = malloc(n * 8);
        for (int64_t r = 0; r < rows; r++) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < cols; j++) m = fmax(m, xr[r * cols + j]);
            for (int64_t j = 0; j < cols; j++) s += exp(xr[r * cols + j] - m);
            for (int64_t j = 0; j < cols; j++) ref[r * cols + j] = exp(xr[r * cols + j] - m) / s;
        }
        be->softmax_fwd(K_, dt, rows, cols, y, x);
        close_arr("softmax_fwd", dt, y, ref, n, 1e-7, dt == CM_F32 ? 1e-5 : 1e-12);
        double *yr = malloc(n * sizeof(double));
        for (int64_t i = 0; i < n; i++) yr[i] = getd(dt, y, i);
        for (int64_t r = 0; r < rows; r++) {
            double d = 0;
            for (int64_t j = 0; j < cols; j++) d += gr[r * cols + j] * yr[r * cols + j];
            for (int64_t j = 0; j < cols; j++) ref[r * cols + j] = yr[r * cols + j] * (gr[r * cols + j] - d);
        }
        be->softmax_bwd(K_, dt, rows, cols, dx, y, g);
        close_arr("softmax_bwd", dt, dx, ref, n, 1e-7, dt == CM_F32 ? 1e-4 : 1e-11);
        free(xv), free(gv), free(xr), free(gr), free(ref), free(x), free(g), free(y), free(dx), free(yr);
    }
}

// --- attention ---
// naive reference: Q [B, H, Lq, D] etc. contiguous doubles; O, lse out; dQ, dK, dV from dO when given
static void attn_ref(int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale, const double *Q,
                     const double *Kx, const double *V, const float *mask, int64_t mb, int64_t mh, double *O,
                     double *lse, const double *dO, double *dQ, double *dK, double *dV) {
    double *P = malloc((size_t)Lk * sizeof(double)), *dP = malloc((size_t)Lk * sizeof(double));
    if (dO) memset(dK, 0, (size_t)(B * H * Lk * D) * sizeof(double)), memset(dV, 0, (size_t)(B * H * Lk * D) * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            int64_t bh = b * H + h;
            const double *q = Q + bh * Lq * D, *k = Kx + bh * Lk * D, *v = V + bh * Lk * D;
            for (int64_t i = 0; i < Lq; i++) {
                double m = -INFINITY, s = 0;
                for (int64_t j = 0; j < Lk; j++) {
                    double d = 0;
                    for (int64_t c = 0; c < D; c++) d += q[i * D + c] * k[j * D + c];
                    P[j] = scale * d + (mask ? mask[b * mb + h * mh + i * Lk + j] : 0);
                    m = fmax(m, P[j]);
                }
                double *o = O + (bh * Lq + i) * D;
                if (m == -INFINITY) {
                    for (int64_t c = 0; c < D; c++) o[c] = 0;
                    lse[bh * Lq + i] = -INFINITY;
                    if (dO) for (int64_t c = 0; c < D; c++) dQ[(bh * Lq + i) * D + c] = 0;
                    continue;
                }
                for (int64_t j = 0; j < Lk; j++) s += (P[j] = exp(P[j] - m));
                for (int64_t j = 0; j < Lk; j++) P[j] /= s;
                lse[bh * Lq + i] = m + log(s);
                for (int64_t c = 0; c < D; c++) {
                    double a = 0;
                    for (int64_t j = 0; j < Lk; j++) a += P[j] * v[j * D + c];
                    o[c] = a;
                }
                if (!dO) continue;
                const double *go = dO + (bh * Lq + i) * D;
                double Dr = 0;
                for (int64_t c = 0; c < D; c++) Dr += go[c] * o[c];
                for (int64_t j = 0; j < Lk; j++) {
                    double a = 0;
                    for (int64_t c = 0; c < D; c++) a += go[c] * v[j * D + c];
                    dP[j] = P[j] * (a - Dr);  // dS
                }
                for (int64_t c = 0; c < D; c++) {
                    double a = 0;
                    for (int64_t j = 0; j < Lk; j++) a += dP[j] * k[j * D + c];
                    dQ[(bh * Lq + i) * D + c] = scale * a;
                }
                for (int64_t j = 0; j < Lk; j++)
                    for (int64_t c = 0; c < D; c++) {
                        dK[(bh * Lk + j) * D + c] += scale * dP[j] * q[i * D + c];
                        dV[(bh * Lk + j) * D + c] += P[j] * go[c];
                    }
            }
        }
    free(P), free(dP);
}

// Q stored as [B, Lq, H, D] (the layout a fused qkv projection leaves), read through strides
static void attn_case(cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, int masked,
                      int strided_q) {
    double scale = 1 / sqrt((double)D);
    int64_t nq = B * H * Lq * D, nk = B * H * Lk * D;
    double *qv = randv(nq), *kv = randv(nk), *vv = randv(nk), *gv = randv(nq);
    for (int64_t i = 0; i < nq; i++) qv[i] *= 3;  // peaky softmax rows
    double *qr = rounded(dt, qv, nq), *kr = rounded(dt, kv, nk), *vr = rounded(dt, vv, nk), *gr = rounded(dt, gv, nq);
    float *mask = NULL;
    int64_t mb = 0, mh = 0;
    if (masked) {  // [B, 1, Lq, Lk] broadcast over heads: a causal-ish pattern, -inf and finite biases, one dead row
        mb = Lq * Lk;
        mask = malloc((size_t)(B * Lq * Lk) * sizeof(float));
        for (int64_t i = 0; i < B * Lq * Lk; i++) {
            int64_t r = (i / Lk) % Lq, c = i % Lk;
            mask[i] = c > r + 2 ? -INFINITY : (float)(0.5 * urand());
        }
        for (int64_t c = 0; c < Lk; c++) mask[(Lq - 1) * Lk + c] = -INFINITY;  // b = 0, last row: fully masked
    }
    void *Q = malloc(nq * 8), *Kt = to_dt(dt, kv, nk), *V = to_dt(dt, vv, nk), *dO = to_dt(dt, gv, nq);
    int64_t qs[3] = {H * Lq * D, Lq * D, D};
    if (strided_q) qs[0] = Lq * H * D, qs[1] = D, qs[2] = H * D;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < Lq; l++)
                for (int64_t c = 0; c < D; c++) {
                    int64_t src = ((b * H + h) * Lq + l) * D + c, dst = b * qs[0] + h * qs[1] + l * qs[2] + c;
                    if (dt == CM_F32) ((float *)Q)[dst] = (float)qv[src];
                    else ((double *)Q)[dst] = qv[src];
                }
    const int64_t ks[3] = {H * Lk * D, Lk * D, D};
    void *O = malloc(nq * 8), *dQ = malloc(nq * 8), *dK = malloc(nk * 8), *dV = malloc(nk * 8);
    float *lse = malloc((size_t)(B * H * Lq) * sizeof(float));
    double *Or = malloc(nq * sizeof(double)), *lr = malloc((size_t)(B * H * Lq) * sizeof(double));
    double *dQr = malloc(nq * sizeof(double)), *dKr = malloc(nk * sizeof(double)), *dVr = malloc(nk * sizeof(double));
    attn_ref(B, H, Lq, Lk, D, scale, qr, kr, vr, mask, mb, mh, Or, lr, gr, dQr, dKr, dVr);
    be->attn_fwd(K_, dt, B, H, Lq, Lk, D, scale, O, NULL, lse, Q, qs, Kt, ks, V, ks, mask, mb, mh);
    char what[160];
    snprintf(what, sizeof what, "attention B%lld H%lld Lq%lld Lk%lld D%lld%s%s", (long long)B, (long long)H,
             (long long)Lq, (long long)Lk, (long long)D, masked ? " masked" : "", strided_q ? " strided-q" : "");
    double tol = dt == CM_F32 ? 2e-5 : 1e-12;
    close_arr(what, dt, O, Or, nq, tol, tol);
    int lse_ok = 1;
    for (int64_t i = 0; i < B * H * Lq; i++)
        lse_ok &= isinf(lr[i]) ? (isinf(lse[i]) && lse[i] < 0) : fabs(lse[i] - lr[i]) <= 1e-5 * (1 + fabs(lr[i]));
    TEST_CHECK(lse_ok, "%s: lse", what);
    be->attn_bwd(K_, dt, B, H, Lq, Lk, D, scale, dQ, dK, dV, dO, NULL, O, NULL, lse, Q, qs, Kt, ks, V, ks, mask, mb, mh);
    double gt = dt == CM_F32 ? 1e-4 : 1e-11;
    close_arr(what, dt, dQ, dQr, nq, gt, gt);
    close_arr(what, dt, dK, dKr, nk, gt, gt);
    close_arr(what, dt, dV, dVr, nk, gt, gt);
    // the same call twice gives the same bits
    void *O2 = malloc(nq * 8);
    be->attn_fwd(K_, dt, B, H, Lq, Lk, D, scale, O2, NULL, lse, Q, qs, Kt, ks, V, ks, mask, mb, mh);
    TEST_CHECK(memcmp(O, O2, (size_t)nq * esz(dt)) == 0, "%s: deterministic", what);
    free(O2);
    free(qv), free(kv), free(vv), free(gv), free(qr), free(kr), free(vr), free(gr), free(mask);
    free(Q), free(Kt), free(V), free(dO), free(O), free(dQ), free(dK), free(dV), free(lse);
    free(Or), free(lr), free(dQr), free(dKr), free(dVr);
}

// f64: the kernel's backward against central differences of the kernel's own forward
static void attn_fd(void) {
    const int64_t B = 1, H = 2, Lq = 3, Lk = 4, D = 64, nq = B * H * Lq * D, nk = B * H * Lk * D;
    const double scale = 0.125, h = 1e-6;
    double *Q = randv(nq), *Kx = randv(nk), *V = randv(nk), *R = randv(nq);
    double *O = malloc(nq * 8), *dQ = malloc(nq * 8), *dK = malloc(nk * 8), *dV = malloc(nk * 8);
    float *lse = malloc(B * H * Lq * 4), mask[12];
    for (int i = 0; i < 12; i++) mask[i] = i == 3 ? -INFINITY : (float)urand();
    const int64_t qs[3] = {H * Lq * D, Lq * D, D}, ks[3] = {H * Lk * D, Lk * D, D};
    be->attn_fwd(K_, CM_F64, B, H, Lq, Lk, D, scale, O, NULL, lse, Q, qs, Kx, ks, V, ks, mask, 0, 0);
    be->attn_bwd(K_, CM_F64, B, H, Lq, Lk, D, scale, dQ, dK, dV, R, NULL, O, NULL, lse, Q, qs, Kx, ks, V, ks, mask, 0, 0);
    double *ps[3] = {Q, Kx, V}, *gs[3] = {dQ, dK, dV}, worst = 0;
    int64_t lens[3] = {nq, nk, nk};
    for (int p = 0; p < 3; p++)
        for (int64_t i = 0; i < lens[p]; i++) {
            double keep = ps[p][i], lp = 0, lm = 0;
            ps[p][i] = keep + h;
            be->attn_fwd(K_, CM_F64, B, H, Lq, Lk, D, scale, O, NULL, lse, Q, qs, Kx, ks, V, ks, mask, 0, 0);
            for (int64_t j = 0; j < nq; j++) lp += O[j] * R[j];
            ps[p][i] = keep - h;
            be->attn_fwd(K_, CM_F64, B, H, Lq, Lk, D, scale, O, NULL, lse, Q, qs, Kx, ks, V, ks, mask, 0, 0);
            for (int64_t j = 0; j < nq; j++) lm += O[j] * R[j];
            ps[p][i] = keep;
            worst = test_max(worst, fabs((lp - lm) / (2 * h) - gs[p][i]));
        }
    TEST_CHECK(worst < 1e-8, "attention f64 backward vs finite differences: max error %.3g", worst);
    free(Q), free(Kx), free(V), free(R), free(O), free(dQ), free(dK), free(dV), free(lse);
}

static void test_attention(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        attn_case(dt, 2, 3, 5, 7, 64, 0, 0);
        attn_case(dt, 2, 2, 140, 33, 72, 1, 0);  // Lq crosses 128-query blocks; mask
        attn_case(dt, 1, 2, 9, 130, 128, 1, 1);  // Lk > Lq, strided Q
        attn_case(dt, 1, 1, 1, 5, 64, 0, 1);     // one query
    }
    attn_fd();
}

// --- rope, modulate, timestep ---
static void test_rope_mod_time(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        // rope: x [3, 4, 8]; independent cos/sin per column (general case); check the forward against
        // the formula and the inverse as the transpose: <rope(x), y> = <x, rope_inv(y)>
        int64_t outer = 3, L = 4, D = 8, n = outer * L * D;
        double *xv = randv(n), *yv = randv(n), *cv = randv(L * D), *sv = randv(L * D);
        double *xr = rounded(dt, xv, n), *cr = rounded(dt, cv, L * D), *sr = rounded(dt, sv, L * D), *ref = malloc(n * 8);
        void *x = to_dt(dt, xv, n), *yb = to_dt(dt, yv, n), *c = to_dt(dt, cv, L * D), *s = to_dt(dt, sv, L * D);
        void *o = malloc(n * 8), *oi = malloc(n * 8);
        for (int64_t r = 0; r < outer * L; r++)
            for (int64_t j = 0; j < D; j += 2) {
                const double *cc = cr + (r % L) * D, *ss = sr + (r % L) * D, *xx = xr + r * D;
                ref[r * D + j] = xx[j] * cc[j] - xx[j + 1] * ss[j];
                ref[r * D + j + 1] = xx[j + 1] * cc[j + 1] + xx[j] * ss[j + 1];
            }
        be->rope(K_, dt, dt, outer, L, D, 0, o, x, c, s);
        close_arr("rope", dt, o, ref, n, 1e-6, TOL(dt));
        be->rope(K_, dt, dt, outer, L, D, 1, oi, yb, c, s);
        double l1 = 0, l2 = 0;
        for (int64_t i = 0; i < n; i++) l1 += getd(dt, o, i) * getd(dt, yb, i), l2 += xr[i] * getd(dt, oi, i);
        TEST_NEAR(l1, l2, 1e-5, 1e-5, "rope inverse is the transpose");
        free(xv), free(yv), free(cv), free(sv), free(xr), free(cr), free(sr), free(ref);
        free(x), free(yb), free(c), free(s), free(o), free(oi);

        // modulate: x [2, 300, 260] (crosses the 256-channel block)
        int64_t B = 2, Lm = 300, C = 260, nm = B * Lm * C;
        double *mx = randv(nm), *msc = randv(B * C), *msh = randv(B * C), *mg = randv(nm);
        double *mxr = rounded(dt, mx, nm), *mscr = rounded(dt, msc, B * C), *mshr = rounded(dt, msh, B * C);
        double *mgr = rounded(dt, mg, nm), *mref = malloc(nm * 8), *dsr = calloc(B * C, 8), *dhr = calloc(B * C, 8);
        void *X = to_dt(dt, mx, nm), *SC = to_dt(dt, msc, B * C), *SH = to_dt(dt, msh, B * C), *G = to_dt(dt, mg, nm);
        void *Y = malloc(nm * 8), *DX = malloc(nm * 8), *DS = malloc(B * C * 8), *DH = malloc(B * C * 8);
        for (int64_t i = 0; i < nm; i++) {
            int64_t bc = (i / (Lm * C)) * C + i % C;
            mref[i] = mxr[i] * (1 + mscr[bc]) + mshr[bc];
            dsr[bc] += mgr[i] * mxr[i], dhr[bc] += mgr[i];
        }
        be->modulate_fwd(K_, dt, B, Lm, C, Y, X, SC, SH);
        close_arr("modulate_fwd", dt, Y, mref, nm, 1e-6, TOL(dt));
        be->modulate_bwd(K_, dt, B, Lm, C, DX, DS, DH, G, X, SC);
        for (int64_t i = 0; i < nm; i++) mref[i] = mgr[i] * (1 + mscr[(i / (Lm * C)) * C + i % C]);
        close_arr("modulate_bwd dx", dt, DX, mref, nm, 1e-6, TOL(dt));
        close_arr("modulate_bwd dscale", dt, DS, dsr, B * C, 1e-5, TOL(dt));
        close_arr("modulate_bwd dshift", dt, DH, dhr, B * C, 1e-5, TOL(dt));
        free(mx), free(msc), free(msh), free(mg), free(mxr), free(mscr), free(mshr), free(mgr), free(mref), free(dsr);
        free(dhr), free(X), free(SC), free(SH), free(G), free(Y), free(DX), free(DS), free(DH);

        // timestep: dim 9 (odd: zero pad), shift 1 (diffusers' downscale_freq_shift), both orders
        for (int flip = 0; flip < 2; flip++) {
            int64_t Bt = 3, dim = 9, half = 4;
            double tv[3] = {0.0, 250.5, 999.0}, ref2[27], dref[3], gvv[27];
            for (int i = 0; i < 27; i++) gvv[i] = urand();
            void *tt = to_dt(dt, tv, 3), *yy = malloc(27 * 8), *gg = to_dt(dt, gvv, 27), *dtt = malloc(3 * 8);
            double *gr2 = rounded(dt, gvv, 27);
            for (int b = 0; b < 3; b++) {
                dref[b] = 0;
                for (int j = 0; j < half; j++) {
                    double f = exp(-log(10000.0) * j / (half - 1.0)), a = tv[b] * f;
                    ref2[b * dim + (flip ? half : 0) + j] = sin(a);
                    ref2[b * dim + (flip ? 0 : half) + j] = cos(a);
                    dref[b] += f * (gr2[b * dim + (flip ? half : 0) + j] * cos(a) - gr2[b * dim + (flip ? 0 : half) + j] * sin(a));
                }
                ref2[b * dim + 8] = 0;
            }
            be->timestep_fwd(K_, dt, Bt, dim, flip, 1.0, 10000.0, yy, tt);
            close_arr("timestep_fwd", dt, yy, ref2, 27, dt == CM_F32 ? 2e-4 : 1e-12, 0);  // f32: t*freq ~ 1e3
            be->timestep_bwd(K_, dt, Bt, dim, flip, 1.0, 10000.0, dtt, tt, gg);
            close_arr("timestep_bwd", dt, dtt, dref, 3, 1e-9, dt == CM_F32 ? 1e-5 : 1e-12);
            free(tt), free(yy), free(gg), free(dtt), free(gr2);
        }
    }
    // timestep backward against finite differences of the forward (f64)
    {
        double t[2] = {3.7, 0.25}, y1[16], y2[16], g[16], d[2];
        for (int i = 0; i < 16; i++) g[i] = urand();
        be->timestep_bwd(K_, CM_F64, 2, 8, 1, 0.0, 10000.0, d, t, g);
        for (int b = 0; b < 2; b++) {
            double keep = t[b], lp = 0, lm = 0;
            t[b] = keep + 1e-6;
            be->timestep_fwd(K_, CM_F64, 2, 8, 1, 0.0, 10000.0, y1, t);
            t[b] = keep - 1e-6;
            be->timestep_fwd(K_, CM_F64, 2, 8, 1, 0.0, 10000.0, y2, t);
            t[b] = keep;
            for (int i = 0; i < 16; i++) lp += y1[i] * g[i], lm += y2[i] * g[i];
            TEST_NEAR(d[b], (lp - lm) / 2e-6, 1e-7, 1e-7, "timestep_bwd vs finite differences");
        }
    }
}

// --- images ---
static void test_image(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        // im2col: C 3, 7x6, 3x2 kernel, stride 2, pad 1
        int64_t C = 3, H = 7, W = 6, kh = 3, kw = 2, st = 2, pad = 1;
        int64_t OH = (H + 2 * pad - kh) / st + 1, OW = (W + 2 * pad - kw) / st + 1, nx = C * H * W, nc = C * kh * kw * OH * OW;
        double *xv = randv(nx), *cv = randv(nc), *xr = rounded(dt, xv, nx), *ref = malloc(nc * 8);
        void *x = to_dt(dt, xv, nx), *col = malloc(nc * 8), *cb = to_dt(dt, cv, nc), *xb = calloc(nx, 8);
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++)
                    for (int64_t oh = 0; oh < OH; oh++)
                        for (int64_t ow = 0; ow < OW; ow++) {
                            int64_t ih = oh * st - pad + i, iw = ow * st - pad + j;
                            ref[((c * kh + i) * kw + j) * OH * OW + oh * OW + ow] =
                                ih >= 0 && ih < H && iw >= 0 && iw < W ? xr[(c * H + ih) * W + iw] : 0;
                        }
        be->im2col(K_, dt, C, H, W, kh, kw, st, pad, OH, OW, col, x);
        close_arr("im2col", dt, col, ref, nc, 0, 0);
        be->col2im(K_, dt, C, H, W, kh, kw, st, pad, OH, OW, xb, cb);  // adjoint: <im2col x, c> = <x, col2im c>
        double l1 = 0, l2 = 0;
        for (int64_t i = 0; i < nc; i++) l1 += ref[i] * getd(dt, cb, i);
        for (int64_t i = 0; i < nx; i++) l2 += xr[i] * getd(dt, xb, i);
        TEST_NEAR(l1, l2, 1e-5, 1e-5, "col2im is the adjoint of im2col");
        free(xv), free(cv), free(xr), free(ref), free(x), free(col), free(cb), free(xb);

        // bicubic, hand-computed: row [1, 2, 4, 8] upsampled 4 -> 8. Output 0: src -0.25, t 0.75, taps
        // (0,0,0,1) weights (-0.03515625, 0.26171875, 0.87890625, -0.10546875) -> 0.89453125;
        // output 3: src 1.25, t 0.25, taps (0,1,2,3) weights (-0.10546875, 0.87890625, 0.26171875,
        // -0.03515625) -> 2.41796875. Height 1 -> 1 has weights (0, 1, 0, 0).
        double row[4] = {1, 2, 4, 8};
        void *xi = to_dt(dt, row, 4), *yo = malloc(8 * 8);
        be->bicubic_fwd(K_, dt, 1, 1, 4, 1, 8, yo, xi);
        TEST_NEAR(getd(dt, yo, 0), 0.89453125, 1e-7, 0, "bicubic hand value [0]");
        TEST_NEAR(getd(dt, yo, 3), 2.41796875, 1e-7, 0, "bicubic hand value [3]");
        be->bicubic_fwd(K_, dt, 1, 4, 1, 8, 1, yo, xi);  // the same along the height
        TEST_NEAR(getd(dt, yo, 0), 0.89453125, 1e-7, 0, "bicubic hand value, vertical [0]");
        TEST_NEAR(getd(dt, yo, 3), 2.41796875, 1e-7, 0, "bicubic hand value, vertical [3]");
        free(xi), free(yo);
        // separable: x = r c^T resizes to (resize r)(resize c)^T; up (5x6 -> 9x13) and down (8x9 -> 3x4)
        const int64_t sz[2][4] = {{5, 6, 9, 13}, {8, 9, 3, 4}};
        for (int s = 0; s < 2; s++) {
            int64_t IH = sz[s][0], IW = sz[s][1], OHh = sz[s][2], OWw = sz[s][3];
            double *rv = randv(IH), *cvv = randv(IW), *img = malloc(IH * IW * 8), *g = randv(2 * OHh * OWw);
            for (int64_t i = 0; i < IH; i++)
                for (int64_t j = 0; j < IW; j++) img[i * IW + j] = rv[i] * cvv[j];
            void *ib = to_dt(dt, img, IH * IW), *rb = to_dt(dt, rv, IH), *cb2 = to_dt(dt, cvv, IW);
            void *ob = malloc(OHh * OWw * 8), *ro = malloc(OHh * 8), *co = malloc(OWw * 8);
            be->bicubic_fwd(K_, dt, 1, IH, IW, OHh, OWw, ob, ib);
            be->bicubic_fwd(K_, dt, 1, IH, 1, OHh, 1, ro, rb);
            be->bicubic_fwd(K_, dt, 1, 1, IW, 1, OWw, co, cb2);
            double *sref = malloc(OHh * OWw * 8);
            for (int64_t i = 0; i < OHh; i++)
                for (int64_t j = 0; j < OWw; j++) sref[i * OWw + j] = getd(dt, ro, i) * getd(dt, co, j);
            close_arr("bicubic separable", dt, ob, sref, OHh * OWw, 1e-6, TOL(dt));
            // backward is the adjoint: <bicubic(x), g> = <x, bicubic_bwd(g)>, two planes
            double *x2 = randv(2 * IH * IW);
            void *x2b = to_dt(dt, x2, 2 * IH * IW), *gb = to_dt(dt, g, 2 * OHh * OWw), *y2 = malloc(2 * OHh * OWw * 8);
            void *dx2 = malloc(2 * IH * IW * 8);
            be->bicubic_fwd(K_, dt, 2, IH, IW, OHh, OWw, y2, x2b);
            be->bicubic_bwd(K_, dt, 2, IH, IW, OHh, OWw, dx2, gb);
            double a1 = 0, a2 = 0;
            for (int64_t i = 0; i < 2 * OHh * OWw; i++) a1 += getd(dt, y2, i) * getd(dt, gb, i);
            for (int64_t i = 0; i < 2 * IH * IW; i++) a2 += getd(dt, x2b, i) * getd(dt, dx2, i);
            TEST_NEAR(a1, a2, 1e-5, 1e-5, "bicubic_bwd is the adjoint of bicubic_fwd");
            free(rv), free(cvv), free(img), free(g), free(ib), free(rb), free(cb2), free(ob), free(ro), free(co);
            free(sref), free(x2), free(x2b), free(gb), free(y2), free(dx2);
        }
    }
}

// --- gather / scatter, adamw ---
static void test_gather_adamw(void) {
    for (int t = 0; t < 2; t++) {
        cm_dtype dt = FT[t];
        int64_t rows = 10, D = 130, n = 7;
        int32_t idx[7] = {3, 0, 9, 3, 3, 5, 0};
        double *tv = randv(rows * D), *gv = randv(n * D), *tr = rounded(dt, tv, rows * D), *gr = rounded(dt, gv, n * D);
        void *tb = to_dt(dt, tv, rows * D), *gb = to_dt(dt, gv, n * D), *y = malloc(n * D * 8);
        double *ref = malloc(rows * D * 8);
        be->gather_rows(K_, dt, n, D, y, tb, idx);
        for (int64_t i = 0; i < n; i++) memcpy(ref + i * D, tr + idx[i] * D, D * 8);
        close_arr("gather_rows", dt, y, ref, n * D, 0, 0);
        memcpy(ref, tr, rows * D * 8);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < D; j++) ref[idx[i] * D + j] += gr[i * D + j];
        be->scatter_add_rows(K_, dt, n, D, tb, gb, idx);
        close_arr("scatter_add_rows (repeated indices)", dt, tb, ref, rows * D, 1e-6, TOL(dt));
        free(tv), free(gv), free(tr), free(gr), free(tb), free(gb), free(y), free(ref);
    }
    // adamw, three steps, f32 and bf16 gradients against a double reference
    for (int gi = 0; gi < 2; gi++) {
        enum { N = 40000 };
        float *p = malloc(N * 4), *m = calloc(N, 4), *v = calloc(N, 4), *gf = malloc(N * 4);
        uint16_t *gh = malloc(N * 2);
        double *pr = malloc(N * 8), *mr = calloc(N, 8), *vr = calloc(N, 8);
        for (int i = 0; i < N; i++) pr[i] = p[i] = (float)urand();
        const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, gsc = 0.5;
        for (int step = 1; step <= 3; step++) {
            for (int i = 0; i < N; i++) {
                gf[i] = (float)urand();
                gh[i] = f32_to_bf16(gf[i]);
            }
            double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
            be->adamw(K_, N, p, gi ? CM_BF16 : CM_F32, gi ? (void *)gh : (void *)gf, m, v, lr, b1, b2, eps, wd, bc1,
                      bc2, gsc);
            for (int i = 0; i < N; i++) {
                double g = (gi ? bf16_to_f32(gh[i]) : gf[i]) * gsc;
                mr[i] = b1 * mr[i] + (1 - b1) * g;
                vr[i] = b2 * vr[i] + (1 - b2) * g * g;
                pr[i] -= lr * wd * pr[i];
                pr[i] -= lr * (mr[i] / bc1) / (sqrt(vr[i] / bc2) + eps);
            }
        }
        double worst = 0;
        for (int i = 0; i < N; i++) worst = test_max(worst, fabs(p[i] - pr[i]));
        TEST_CHECK(worst < 1e-5, "adamw (%s grads) vs double reference: max error %.3g", gi ? "bf16" : "f32", worst);
        free(p), free(m), free(v), free(gf), free(gh), free(pr), free(mr), free(vr);
    }
}

static void test_memory(void) {
    void *p = be->alloc(1000);
    TEST_CHECK(p && ((uintptr_t)p & 63) == 0, "alloc is 64-byte aligned");
    char src[1000];
    for (int i = 0; i < 1000; i++) src[i] = (char)i;
    be->memcpy_h2d(K_, p, src, 1000);
    char back[1000];
    be->memcpy_d2h(K_, back, p, 1000);
    TEST_CHECK(memcmp(src, back, 1000) == 0, "memcpy round trip");
    be->sync(K_);
    be->free(p);
    TEST_CHECK(be->mem_free(K_) > 0, "mem_free reports memory");
}

int main(void) {
    test_memory();
    test_copy_fill();
    test_elementwise();
    test_reduce();
    test_gemm();
    test_norms();
    test_layernorm_mod();
    test_norms_no_rows();
    test_rowmax();
    test_softmax();
    test_attention();
    test_rope_mod_time();
    test_image();
    test_gather_adamw();
    return test_summary("test_kernels_cpu");
}
