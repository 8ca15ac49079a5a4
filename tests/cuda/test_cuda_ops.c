// test_cuda_ops.c — every cm_backend function on the GPU (f32 and bf16) against the CPU backend
// (f32) on random inputs. For bf16 the inputs are rounded to bf16 first, so the CPU reference
// sees exactly what the GPU sees and the difference is the GPU's own arithmetic and output
// rounding. Outputs are poisoned with NaN before each GPU run, so an unwritten element fails.
//
// Error measure: max |gpu - cpu| / max(max |cpu|, 1e-6) over the output (normwise relative).
// Tolerances (see docs/cuda.md): f32 1e-5 elementwise, 1e-4 reductions / norms / GEMM / attention
// forward, 3e-4 attention backward; bf16 1e-2 elementwise, 2e-2 GEMM / norms / softmax /
// attention forward, 4e-2 attention and norm backward.
// Skips (exit 77) where CUDA is not built or no GPU is present.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>  // close (mkstemp)
#include "autograd/alloc.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "kernels/sr_round.h"
#include "testutil.h"

#ifndef CAMEO_HAVE_CUDA
int main(void) { test_skip("cameo was built without CUDA (CAMEO_CUDA=OFF): nothing to test"); }
#else

extern const cm_backend cm_cpu_backend;
int cuda_device_count(void);
const char *cuda_unavailable_reason(void);
int64_t cuda_attn_fallbacks(void);  // bf16 attention calls the generic kernels took (cuda_attention.cu)
int64_t cuda_attn_wgws_runs(int which);  // launches of the warp-specialised kernels: 0 forward, 1 dQ, 2 dK dV, 3 pairs,
                                         // 4 fused backward, 5 forwards of 128 keys a step
int64_t cuda_side_forks(void);           // side streams forked (kernels/cuda/cuda_common.cuh)

static const cm_backend *G, *C;
static const cm_kctx *gk, *ck;

// ---------------------------------------------------------------------------------------------
// host helpers: rng, bf16 rounding, device buffers (tracked, freed per case)
// ---------------------------------------------------------------------------------------------
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) {  // [0, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return f;
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}
static uint16_t bf16_bits(float f) {
    f = bf16_round(f);
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
static float bf16_val(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// every buffer a test makes, freed by release_all: lists that grow (a fixed 256 once dropped the
// rest silently — a test of 230 tensors leaked them)
static void **dev_track, **host_track;
static int n_dev, n_host, cap_dev, cap_host;
static void track(void ***list, int *n, int *cap, void *p) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        void **l = realloc(*list, (size_t)*cap * sizeof *l);
        if (!l) {
            fprintf(stderr, "out of host memory\n");
            exit(1);
        }
        *list = l;
    }
    (*list)[(*n)++] = p;
}
static void *hmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    track(&host_track, &n_host, &cap_host, p);
    return p;
}
static void release_all(void) {
    G->sync(gk);
    for (int i = 0; i < n_dev; i++) G->free(dev_track[i]);
    for (int i = 0; i < n_host; i++) free(host_track[i]);
    n_dev = n_host = 0;
}
static size_t dsize(cm_dtype dt) { return dt == CM_BF16 ? 2 : dt == CM_F64 ? 8 : dt == CM_U8 ? 1 : 4; }

// random host values in [lo, hi), rounded to bf16 when dt is bf16 (the values both sides see)
static float *hrand(int64_t n, double lo, double hi, cm_dtype dt) {
    float *h = hmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        float v = (float)(lo + (hi - lo) * urand());
        h[i] = dt == CM_BF16 ? bf16_round(v) : v;
    }
    return h;
}
static float *hcopy(const float *src, int64_t n) {
    float *h = hmalloc((size_t)n * sizeof(float));
    memcpy(h, src, (size_t)n * sizeof(float));
    return h;
}
static float *hnan(int64_t n) {
    float *h = hmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) h[i] = NAN;
    return h;
}
static void *dalloc(cm_dtype dt, int64_t n) {
    void *p = G->alloc((size_t)(n > 0 ? n : 1) * dsize(dt));
    if (!p) {
        fprintf(stderr, "cuda alloc of %lld elements failed\n", (long long)n);
        exit(1);
    }
    track(&dev_track, &n_dev, &cap_dev, p);
    return p;
}
// device copy of host f32 values in dtype dt (f32 or bf16)
static void *up(cm_dtype dt, const float *h, int64_t n) {
    void *d = dalloc(dt, n);
    if (dt == CM_F32) G->memcpy_h2d(gk, d, h, (size_t)n * 4);
    else {
        uint16_t *t = hmalloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++) t[i] = bf16_bits(h[i]);
        G->memcpy_h2d(gk, d, t, (size_t)n * 2);
    }
    return d;
}
// an output buffer filled with NaN (through the backend's own fill)
static void *dnan(cm_dtype dt, int64_t n) {
    void *d = dalloc(dt, n);
    G->fill(gk, dt, d, n, NAN);
    return d;
}
static float *down(cm_dtype dt, const void *d, int64_t n) {
    float *h = hmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    G->sync(gk);
    if (dt == CM_F32) G->memcpy_d2h(gk, h, d, (size_t)n * 4);
    else {
        uint16_t *t = hmalloc((size_t)n * 2);
        G->memcpy_d2h(gk, t, d, (size_t)n * 2);
        for (int64_t i = 0; i < n; i++) h[i] = bf16_val(t[i]);
    }
    return h;
}

// normwise relative error of got against ref; any NaN / inf where ref is finite fails
static void cmp(const char *what, cm_dtype dt, const float *got, const float *ref, int64_t n, double tol) {
    double mx = 0, err = 0;
    int64_t bad = -1, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(ref[i]) && fabs(ref[i]) > mx) mx = fabs(ref[i]);
        if (!isfinite(got[i]) && isfinite(ref[i]) && bad < 0) bad = i;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(ref[i])) continue;
        double e = fabs((double)got[i] - ref[i]);
        if (e > err) err = e, worst = i;
    }
    double rel = err / (mx > 1e-6 ? mx : 1e-6);
    test_checks++;
    if (bad >= 0) {
        test_failures++;
        fprintf(stderr, "FAIL %-34s %-4s element %lld is %g (reference %g): unwritten or non-finite\n", what,
                dtype_name(dt), (long long)bad, got[bad], ref[bad]);
    } else if (!(rel <= tol)) {
        test_failures++;
        fprintf(stderr, "FAIL %-34s %-4s rel err %.3g > tol %.1g (element %lld: got %.7g, ref %.7g)\n", what,
                dtype_name(dt), rel, tol, (long long)worst, got[worst], ref[worst]);
    } else {
        printf("ok   %-34s %-4s rel err %.3g (tol %.1g, n %lld)\n", what, dtype_name(dt), rel, tol, (long long)n);
    }
}
static void cmp_scalar(const char *what, cm_dtype dt, double got, double ref, double tol) {
    float g = (float)got, r = (float)ref;
    cmp(what, dt, &g, &r, 1, tol);
}

#define TOL(dt, f32tol, bf16tol) ((dt) == CM_F32 ? (f32tol) : (bf16tol))
static const cm_dtype DTS[2] = {CM_F32, CM_BF16};

// ---------------------------------------------------------------------------------------------
// memory, fill, copy
// ---------------------------------------------------------------------------------------------
static void t_fill(void) {
    const cm_dtype dts[4] = {CM_F32, CM_BF16, CM_I32, CM_F64};
    for (int d = 0; d < 4; d++) {
        cm_dtype dt = dts[d];
        int64_t n = 1237;
        void *g = dalloc(dt, n);
        G->fill(gk, dt, g, n, -3.75);
        unsigned char *h = hmalloc((size_t)n * dsize(dt));
        G->sync(gk);
        G->memcpy_d2h(gk, h, g, (size_t)n * dsize(dt));
        int okc = 1;
        for (int64_t i = 0; i < n; i++) {
            double v = dt == CM_F32   ? ((float *)h)[i]
                       : dt == CM_BF16 ? bf16_val(((uint16_t *)h)[i])
                       : dt == CM_I32  ? ((int32_t *)h)[i]
                                       : ((double *)h)[i];
            double want = dt == CM_I32 ? -3.0 : -3.75;
            if (v != want) okc = 0;
        }
        TEST_CHECK(okc, "fill %s", dtype_name(dt));
        G->fill(gk, dt, g, n, 0.0);  // zero: the memset path
        G->sync(gk);
        G->memcpy_d2h(gk, h, g, (size_t)n * dsize(dt));
        int zero = 1;
        for (size_t i = 0; i < (size_t)n * dsize(dt); i++) zero &= h[i] == 0;
        TEST_CHECK(zero, "fill %s with 0: every byte zero", dtype_name(dt));
    }
    // d2d copy
    float *h = hrand(1000, -1, 1, CM_F32);
    void *a = up(CM_F32, h, 1000), *b = dnan(CM_F32, 1000);
    G->memcpy_d2d(gk, b, a, 4000);
    cmp("memcpy_d2d", CM_F32, down(CM_F32, b, 1000), h, 1000, 0);
    TEST_CHECK(G->mem_free(gk) > 0, "mem_free reports free bytes");
    release_all();
}

static void t_copy_strided(void) {
    // read a [5, 4, 3] contiguous source as [3, 4, 5] (a permutation), write contiguous
    const int64_t shape[3] = {3, 4, 5}, sst[3] = {1, 3, 12}, dst_st[3] = {20, 5, 1};
    const int64_t n = 60;
    const cm_dtype pairs[6][2] = {{CM_F32, CM_F32},  {CM_BF16, CM_BF16}, {CM_F32, CM_BF16},
                                  {CM_BF16, CM_F32}, {CM_I32, CM_F32},   {CM_F32, CM_I32}};
    for (int p = 0; p < 6; p++) {
        cm_dtype ddt = pairs[p][0], sdt = pairs[p][1];
        float *h = hrand(n, -20, 20, sdt == CM_BF16 ? CM_BF16 : CM_F32);
        if (sdt == CM_I32)
            for (int64_t i = 0; i < n; i++) h[i] = truncf(h[i]);
        float *ref = hnan(n);
        C->copy_strided(ck, 3, shape, CM_F32, ref, dst_st, CM_F32, h, sst);
        for (int64_t i = 0; i < n; i++) ref[i] = ddt == CM_BF16 ? bf16_round(ref[i]) : ddt == CM_I32 ? truncf(ref[i]) : ref[i];
        void *src;
        if (sdt == CM_I32) {
            int32_t *hi = hmalloc(n * 4);
            for (int64_t i = 0; i < n; i++) hi[i] = (int32_t)h[i];
            src = dalloc(CM_I32, n);
            G->memcpy_h2d(gk, src, hi, n * 4);
        } else src = up(sdt, h, n);
        void *dst = dalloc(ddt, n);
        G->fill(gk, ddt, dst, n, ddt == CM_I32 ? -999 : NAN);
        G->copy_strided(gk, 3, shape, ddt, dst, dst_st, sdt, src, sst);
        float *got;
        if (ddt == CM_I32) {
            int32_t *hi = hmalloc(n * 4);
            G->sync(gk);
            G->memcpy_d2h(gk, hi, dst, n * 4);
            got = hmalloc(n * 4);
            for (int64_t i = 0; i < n; i++) got[i] = (float)hi[i];
        } else got = down(ddt, dst, n);
        char what[64];
        snprintf(what, sizeof what, "copy_strided %s<-%s", dtype_name(ddt), dtype_name(sdt));
        cmp(what, ddt == CM_I32 ? CM_F32 : ddt, got, ref, n, 0);
        release_all();
    }
    // same dtype, last axis contiguous: [2, 5, 3, 16] token-major read as head-major (the 16-byte
    // path), and a 16-column slice of 17-wide rows (a stride that is not a whole vector: scalar)
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        const int64_t sh[4] = {2, 3, 5, 16}, src_st[4] = {240, 16, 48, 1}, dst_st[4] = {240, 80, 16, 1};
        float *h = hrand(480, -1, 1, dt), *ref = hnan(480);
        C->copy_strided(ck, 4, sh, CM_F32, ref, dst_st, CM_F32, h, src_st);
        void *sd = up(dt, h, 480), *dd = dnan(dt, 480);
        G->copy_strided(gk, 4, sh, dt, dd, dst_st, dt, sd, src_st);
        cmp("copy_strided permute, last axis kept", dt, down(dt, dd, 480), ref, 480, 0);
        const int64_t sh2[2] = {9, 16}, s17[2] = {17, 1}, s16[2] = {16, 1};
        float *h2 = hrand(9 * 17, -1, 1, dt), *ref2 = hnan(144);
        C->copy_strided(ck, 2, sh2, CM_F32, ref2, s16, CM_F32, h2, s17);
        void *sd2 = up(dt, h2, 9 * 17), *dd2 = dnan(dt, 144);
        G->copy_strided(gk, 2, sh2, dt, dd2, s16, dt, sd2, s17);
        cmp("copy_strided slice of 17-wide rows", dt, down(dt, dd2, 144), ref2, 144, 0);
        release_all();
    }
    // a contiguous same-dtype copy (the memcpy path) and a 0-dim copy
    {
        const int64_t sh[2] = {7, 9}, st[2] = {9, 1};
        float *h = hrand(63, -1, 1, CM_BF16);
        void *s = up(CM_BF16, h, 63), *d = dnan(CM_BF16, 63);
        G->copy_strided(gk, 2, sh, CM_BF16, d, st, CM_BF16, s, st);
        cmp("copy_strided contiguous", CM_BF16, down(CM_BF16, d, 63), h, 63, 0);
        float *h1 = hrand(1, -1, 1, CM_F32);
        void *s1 = up(CM_F32, h1, 1), *d1 = dnan(CM_F32, 1);
        G->copy_strided(gk, 0, sh, CM_F32, d1, st, CM_F32, s1, st);
        cmp("copy_strided 0-dim", CM_F32, down(CM_F32, d1, 1), h1, 1, 0);
        release_all();
    }
}

// ---------------------------------------------------------------------------------------------
// elementwise
// ---------------------------------------------------------------------------------------------
// shape [4, 6, 40]: contiguous and row-broadcast take 16-byte vectors throughout; [3, 5, 41]: vectors
// and a tail (contiguous), the scalar path (a 41-wide row)
static void t_binary(void) {
  for (int sv = 0; sv < 2; sv++) {
    const int64_t W = sv ? 41 : 40, R = sv ? 5 : 6, P = sv ? 3 : 4;
    const int64_t shape[3] = {P, R, W};
    const int64_t n = P * R * W;
    const int64_t contig[3] = {R * W, W, 1};
    const int64_t a_tr[3] = {1, P, P * R};    // a stored as [W, R, P]
    const int64_t b_row[3] = {0, 0, 1};       // b [W] broadcast
    const int64_t b_mid[3] = {W, 0, 1};       // b [P, 1, W]
    const int64_t b_one[3] = {0, 0, 0};       // b one value (op_scale)
    const int64_t *bst[5] = {contig, b_row, b_mid, contig, b_one};
    const int64_t *ast[5] = {contig, contig, contig, a_tr, contig};
    const char *names[5] = {"contiguous", "row-broadcast", "mid-broadcast", "strided a", "scalar b"};
    const char *opn[4] = {"add", "sub", "mul", "div"};
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int v = 0; v < 5; v++)
            for (int op = 0; op < 4; op++) {
                float *ha = hrand(n, -2, 2, dt), *hb = hrand(n, 0.5, 2, dt);
                float *ref = hnan(n);
                C->binary(ck, (cm_binop)op, CM_F32, 3, shape, ref, ha, ast[v], hb, bst[v]);
                void *ga = up(dt, ha, n), *gb = up(dt, hb, n), *go = dnan(dt, n);
                G->binary(gk, (cm_binop)op, dt, 3, shape, go, ga, ast[v], gb, bst[v]);
                char what[64];
                snprintf(what, sizeof what, "binary %s %s W=%lld", opn[op], names[v], (long long)W);
                cmp(what, dt, down(dt, go, n), ref, n, TOL(dt, 1e-6, 8e-3));
                release_all();
            }
    }
  }
}

static void t_axpby(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t n = 3001;
        for (int b0 = 0; b0 < 2; b0++) {
            double beta = b0 ? 0.0 : -0.7;
            float *hx = hrand(n, -1, 1, dt), *hy = b0 ? hnan(n) : hrand(n, -1, 1, dt);
            float *ref = hcopy(hy, n);
            C->axpby(ck, CM_F32, n, 1.3, hx, beta, ref);
            void *gx = up(dt, hx, n), *gy = b0 ? dnan(dt, n) : up(dt, hy, n);
            G->axpby(gk, dt, n, 1.3, gx, beta, gy);
            cmp(b0 ? "axpby beta=0 (y unread)" : "axpby", dt, down(dt, gy, n), ref, n, TOL(dt, 1e-6, 8e-3));
            release_all();
        }
        // x one element off 16-byte alignment: the scalar path
        float *hx = hrand(n + 1, -1, 1, dt), *hy = hrand(n, -1, 1, dt), *ref = hcopy(hy, n);
        C->axpby(ck, CM_F32, n, 1.3, hx + 1, -0.7, ref);
        void *gx = up(dt, hx, n + 1), *gy = up(dt, hy, n);
        G->axpby(gk, dt, n, 1.3, (char *)gx + dsize(dt), -0.7, gy);
        cmp("axpby x misaligned", dt, down(dt, gy, n), ref, n, TOL(dt, 1e-6, 8e-3));
        release_all();
    }
}

static void t_unary(void) {
    const char *opn[6] = {"gelu_tanh", "gelu_erf", "silu", "square", "exp", "neg"};
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int op = 0; op < 6; op++) {
            int64_t n = 4099;
            float *hx = hrand(n, -4, 4, dt), *hdy = hrand(n, -1, 1, dt);
            float *ry = hnan(n), *rdx = hnan(n);
            C->unary_fwd(ck, (cm_unop)op, CM_F32, n, ry, hx);
            C->unary_bwd(ck, (cm_unop)op, CM_F32, n, rdx, hx, hdy);
            void *gx = up(dt, hx, n), *gdy = up(dt, hdy, n), *gy = dnan(dt, n), *gdx = dnan(dt, n);
            G->unary_fwd(gk, (cm_unop)op, dt, n, gy, gx);
            G->unary_bwd(gk, (cm_unop)op, dt, n, gdx, gx, gdy);
            char what[64];
            snprintf(what, sizeof what, "unary_fwd %s", opn[op]);
            cmp(what, dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 8e-3));
            snprintf(what, sizeof what, "unary_bwd %s", opn[op]);
            cmp(what, dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-5, 8e-3));
            release_all();
        }
    }
    // the activations' derivatives far out (a diverged run): exactly 1 or 0 as the CPU's, where
    // x³ overflowed to inf and inf · 0 made gelu_tanh' NaN past |x| = 1.8e19
    static const float far[8] = {-3e38f, -1e20f, -1e5f, -40.f, 40.f, 1e5f, 1e20f, 3e38f};
    for (int op = 0; op < 3; op++) {
        float *hx = hcopy(far, 8), *hdy = hrand(8, 1, 1, CM_F32), *rdx = hnan(8);
        C->unary_bwd(ck, (cm_unop)op, CM_F32, 8, rdx, hx, hdy);
        void *gx = up(CM_F32, hx, 8), *gdy = up(CM_F32, hdy, 8), *gdx = dnan(CM_F32, 8);
        G->unary_bwd(gk, (cm_unop)op, CM_F32, 8, gdx, gx, gdy);
        char what[64];
        snprintf(what, sizeof what, "unary_bwd %s at |x| up to 3e38", opn[op]);
        cmp(what, CM_F32, down(CM_F32, gdx, 8), rdx, 8, 1e-6);
        release_all();
    }
    // ... and NaN stays NaN, as on the CPU: a clamp by fminf/fmaxf (which return the other operand)
    // made gelu'(NaN) gelu'(-30) = 0, a finite gradient out of a NaN activation (cmp skips a NaN reference)
    static const float nanx[2] = {NAN, -NAN};
    for (int op = 0; op < 3; op++) {
        float *hx = hcopy(nanx, 2), *hdy = hrand(2, 1, 1, CM_F32), *rdx = hnan(2);
        C->unary_bwd(ck, (cm_unop)op, CM_F32, 2, rdx, hx, hdy);
        void *gx = up(CM_F32, hx, 2), *gdy = up(CM_F32, hdy, 2), *gdx = dnan(CM_F32, 2);
        G->unary_bwd(gk, (cm_unop)op, CM_F32, 2, gdx, gx, gdy);
        const float *g = down(CM_F32, gdx, 2);
        test_checks++;
        for (int i = 0; i < 2; i++)
            if (isnan(rdx[i]) != isnan(g[i])) {
                test_failures++;
                fprintf(stderr, "FAIL unary_bwd %s at x = NaN: %g, the CPU's %g\n", opn[op], g[i], rdx[i]);
                break;
            }
        release_all();
    }
}

static void t_glu(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int op = 0; op < 2; op++) {
            int64_t rows = 7, half = 33, nx = rows * 2 * half, ny = rows * half;
            float *hx = hrand(nx, -3, 3, dt), *hdy = hrand(ny, -1, 1, dt);
            float *ry = hnan(ny), *rdx = hnan(nx);
            C->glu_fwd(ck, (cm_gluop)op, CM_F32, rows, half, ry, hx);
            C->glu_bwd(ck, (cm_gluop)op, CM_F32, rows, half, rdx, hx, hdy);
            void *gx = up(dt, hx, nx), *gdy = up(dt, hdy, ny), *gy = dnan(dt, ny), *gdx = dnan(dt, nx);
            G->glu_fwd(gk, (cm_gluop)op, dt, rows, half, gy, gx);
            G->glu_bwd(gk, (cm_gluop)op, dt, rows, half, gdx, gx, gdy);
            cmp(op ? "glu_fwd swiglu" : "glu_fwd geglu", dt, down(dt, gy, ny), ry, ny, TOL(dt, 1e-5, 8e-3));
            cmp(op ? "glu_bwd swiglu" : "glu_bwd geglu", dt, down(dt, gdx, nx), rdx, nx, TOL(dt, 1e-5, 8e-3));
            release_all();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// reductions, losses, optimizer
// ---------------------------------------------------------------------------------------------
static void t_reduce(void) {
    const int64_t cases[4][3] = {{3, 50, 1}, {2, 37, 70}, {1, 300, 5}, {5, 0, 3}};
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int c = 0; c < 4; c++) {
            int64_t o = cases[c][0], r = cases[c][1], in = cases[c][2];
            float *hx = hrand(o * r * in + 1, -1, 1, dt), *ry = hnan(o * in);
            C->reduce_sum(ck, CM_F32, o, r, in, ry, hx);
            void *gx = up(dt, hx, o * r * in + 1), *gy = dnan(dt, o * in);
            G->reduce_sum(gk, dt, o, r, in, gy, gx);
            char what[64];
            snprintf(what, sizeof what, "reduce_sum [%lld,%lld,%lld]", (long long)o, (long long)r, (long long)in);
            cmp(what, dt, down(dt, gy, o * in), ry, o * in, TOL(dt, 1e-5, 8e-3));
            release_all();
        }
        int64_t n = 100003;
        float *ha = hrand(n, -1, 1, dt), *hb = hrand(n, -1, 1, dt), *hdy = hnan(n);
        void *ga = up(dt, ha, n), *gb = up(dt, hb, n), *gda = dnan(dt, n);
        cmp_scalar("sumsq", dt, G->sumsq(gk, dt, n, ga), C->sumsq(ck, CM_F32, n, ha), 1e-6);
        float cm = 0, hg = -0.75f, *gm = (float *)dnan(dt, 1), *gg = (float *)up(dt, &hg, 1);
        C->mse_fwd(ck, CM_F32, n, ha, hb, &cm);
        G->mse_fwd(gk, dt, n, ga, gb, gm);
        cmp("mse_fwd (a device scalar)", dt, down(dt, gm, 1), &cm, 1, TOL(dt, 1e-6, 8e-3));
        C->mse_bwd(ck, CM_F32, n, 0.5, NULL, hdy, ha, hb);
        G->mse_bwd(gk, dt, n, 0.5, NULL, gda, ga, gb);
        cmp("mse_bwd", dt, down(dt, gda, n), hdy, n, TOL(dt, 1e-6, 8e-3));
        C->mse_bwd(ck, CM_F32, n, 0.5, &hg, hdy, ha, hb);
        G->mse_bwd(gk, dt, n, 0.5, gg, gda, ga, gb);
        cmp("mse_bwd (gradient on the device)", dt, down(dt, gda, n), hdy, n, TOL(dt, 1e-6, 8e-3));
        release_all();
    }
}

static void t_softmax(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t rows = 9, cols = 300, n = rows * cols;
        float *hx = hrand(n, -6, 6, dt), *hdy = hrand(n, -1, 1, dt), *ry = hnan(n), *rdx = hnan(n);
        C->softmax_fwd(ck, CM_F32, rows, cols, ry, hx);
        float *hy = hcopy(ry, n);  // backward from the (dtype-rounded) forward output
        if (dt == CM_BF16)
            for (int64_t i = 0; i < n; i++) hy[i] = bf16_round(hy[i]);
        C->softmax_bwd(ck, CM_F32, rows, cols, rdx, hy, hdy);
        void *gx = up(dt, hx, n), *gy = dnan(dt, n), *gyin = up(dt, hy, n), *gdy = up(dt, hdy, n), *gdx = dnan(dt, n);
        G->softmax_fwd(gk, dt, rows, cols, gy, gx);
        G->softmax_bwd(gk, dt, rows, cols, gdx, gyin, gdy);
        cmp("softmax_fwd", dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 1e-2));
        cmp("softmax_bwd", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-5, 1e-2));
        release_all();
    }
}

static void t_adamw(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype gdt = DTS[d];
        int64_t n = 5003;
        float *hp = hrand(n, -1, 1, CM_F32), *hg = hrand(n, -1, 1, gdt), *hm = hrand(n, -0.1, 0.1, CM_F32),
              *hv = hrand(n, 0, 0.01, CM_F32);
        float *rp = hcopy(hp, n), *rm = hcopy(hm, n), *rv = hcopy(hv, n);
        double b1 = 0.9, b2 = 0.999, t = 7;
        C->adamw(ck, n, rp, CM_F32, hg, rm, rv, 1e-3, b1, b2, 1e-8, 0.01, 1 - pow(b1, t),
                 1 - pow(b2, t), 0.5);
        float *gp = up(CM_F32, hp, n), *gm = up(CM_F32, hm, n), *gv = up(CM_F32, hv, n);
        void *gg = up(gdt, hg, n);
        G->adamw(gk, n, gp, gdt, gg, gm, gv, 1e-3, b1, b2, 1e-8, 0.01, 1 - pow(b1, t), 1 - pow(b2, t), 0.5);
        cmp(gdt == CM_F32 ? "adamw p (g f32)" : "adamw p (g bf16)", CM_F32, down(CM_F32, gp, n), rp, n, 1e-6);
        cmp("adamw m", CM_F32, down(CM_F32, gm, n), rm, n, 1e-6);
        cmp("adamw v", CM_F32, down(CM_F32, gv, n), rv, n, 1e-6);
        release_all();
    }
}

// the bf16 copies the updates wrote: tensor i (even i) holds exactly bf16(p) of its own backend's
// updated master, every element; odd tensors had none (their part stays NaN)
static void check_w(const char *what, const float *gw, const uint16_t *cw, const float *gp, const float *cp, int nt,
                    const int64_t *n, const int64_t *off) {
    int64_t bad_g = 0, bad_c = 0, tot = 0;
    for (int i = 0; i < nt; i++)
        for (int64_t e = off[i]; e < off[i] + n[i]; e++, tot++) {
            bool has = i % 2 == 0;
            bad_g += has ? gw[e] != bf16_val(bf16_bits(gp[e])) : !isnan(gw[e]);
            bad_c += has ? cw[e] != bf16_bits(cp[e]) : cw[e] != 0x7fc0;
        }
    TEST_CHECK(bad_g == 0 && bad_c == 0, "%s: the bf16 copies are bf16(p) where asked, untouched elsewhere (%lld / %lld "
               "of %lld elements wrong on the GPU / CPU)", what, (long long)bad_g, (long long)bad_c, (long long)tot);
}

// the weight averages the updates made (t.ema, tensor i with i % 3 != 1): the GPU's against the
// CPU's, and untouched (the start's bits) where a tensor had none
static void check_ema(const char *what, const float *ge, const float *ce, const float *start, int nt, const int64_t *n,
                      const int64_t *off) {
    int64_t untouched_bad = 0, moved = 0, tot = off[nt];
    for (int i = 0; i < nt; i++)
        for (int64_t e = off[i]; e < off[i] + n[i]; e++) {
            if (i % 3 == 1) untouched_bad += memcmp(&ge[e], &start[e], 4) != 0 || memcmp(&ce[e], &start[e], 4) != 0;
            else moved += ge[e] != start[e];
        }
    char name[64];
    snprintf(name, sizeof name, "%s ema", what);
    cmp(name, CM_F32, ge, ce, tot, 1e-6);
    TEST_CHECK(untouched_bad == 0 && moved > 0, "%s: averages made where asked (%lld moved), none elsewhere (%lld wrong)", what,
               (long long)moved, (long long)untouched_bad);
}

// adamw_multi: 70 tensors (two launches of <= 56), sizes around the 8192-element chunk and 0,
// as views into one buffer per array; against adamw per tensor on the GPU (the same element
// function: bit for bit) and the CPU's adamw_multi; every third tensor without a weight average
static void t_adamw_multi(void) {
    enum { NT = 70 };
    int64_t n[NT], off[NT + 1];
    off[0] = 0;
    for (int i = 0; i < NT; i++) {
        n[i] = i % 7 == 3 ? 0 : i % 5 == 0 ? 8192 * (i % 3 + 1) + (i % 2) : 37 * i + 1;
        off[i + 1] = off[i] + n[i];
    }
    const int64_t tot = off[NT];
    const double b1 = 0.9, b2 = 0.999, t = 3, bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    for (int d = 0; d < 2; d++) {
        cm_dtype gdt = DTS[d];
        float *hp = hrand(tot, -1, 1, CM_F32), *hg = hrand(tot, -1, 1, gdt), *hm = hrand(tot, -0.1, 0.1, CM_F32),
              *hv = hrand(tot, 0, 0.01, CM_F32);
        float *rp = hcopy(hp, tot), *rm = hcopy(hm, tot), *rv = hcopy(hv, tot);
        float *sp = up(CM_F32, hp, tot), *sm = up(CM_F32, hm, tot), *sv = up(CM_F32, hv, tot);  // per tensor
        float *mp = up(CM_F32, hp, tot), *mm = up(CM_F32, hm, tot), *mv = up(CM_F32, hv, tot);  // multi
        char *gg = up(gdt, hg, tot);
        size_t gs = dsize(gdt);
        // the bf16 copies written by the update (w) for every other tensor, poisoned before
        uint16_t *gw = dnan(CM_BF16, tot), *cw = hmalloc((size_t)tot * 2 + 2);
        for (int64_t e = 0; e < tot; e++) cw[e] = 0x7fc0;  // NaN
        float *he = hrand(tot, -1, 1, CM_F32), *ce = hcopy(he, tot), *ge = up(CM_F32, he, tot);
        cm_adamw_tensor list[NT], clist[NT];
        for (int i = 0; i < NT; i++) {
            clist[i] = (cm_adamw_tensor){rp + off[i], hg + off[i], rm + off[i], rv + off[i], n[i], 0, i % 2 ? NULL : cw + off[i],
                                         i % 3 == 1 ? NULL : ce + off[i]};
            list[i] = (cm_adamw_tensor){mp + off[i], gg + off[i] * gs, mm + off[i], mv + off[i], n[i], 0, i % 2 ? NULL : gw + off[i],
                                        i % 3 == 1 ? NULL : ge + off[i]};
            G->adamw(gk, n[i], sp + off[i], gdt, gg + off[i] * gs, sm + off[i], sv + off[i], 1e-3, b1, b2, 1e-8, 0.01,
                     bc1, bc2, 0.5);
        }
        C->adamw_multi(ck, NT, clist, CM_F32, CM_F32, 1e-3, b1, b2, 1e-8, 0.01, bc1, bc2, 0.5, 0.9);
        G->adamw_multi(gk, NT, list, gdt, CM_F32, 1e-3, b1, b2, 1e-8, 0.01, bc1, bc2, 0.5, 0.9);
        float *gp = down(CM_F32, mp, tot), *gm = down(CM_F32, mm, tot), *gv = down(CM_F32, mv, tot);
        float *qp = down(CM_F32, sp, tot), *qm = down(CM_F32, sm, tot), *qv = down(CM_F32, sv, tot);
        TEST_CHECK(!memcmp(gp, qp, tot * 4) && !memcmp(gm, qm, tot * 4) && !memcmp(gv, qv, tot * 4),
                   "adamw_multi (g %s, %d tensors) == adamw per tensor on the GPU, bit for bit", dtype_name(gdt), NT);
        cmp(gdt == CM_F32 ? "adamw_multi p (g f32)" : "adamw_multi p (g bf16)", CM_F32, gp, rp, tot, 1e-6);
        cmp("adamw_multi m", CM_F32, gm, rm, tot, 1e-6);
        cmp("adamw_multi v", CM_F32, gv, rv, tot, 1e-6);
        check_w("adamw_multi", down(CM_BF16, gw, tot), cw, gp, rp, NT, n, off);
        check_ema("adamw_multi", down(CM_F32, ge, tot), ce, he, NT, n, off);
        release_all();
    }
}

// bf16 moments (optimizer.state_dtype: bf16): the GPU rounds each stored moment with the CPU's
// random bits (kernels/sr_round.h); its f32 arithmetic before the rounding is the CPU's, so the
// moments agree to the bit except where a rounding falls on the other side of its threshold
static void t_adamw_bf16_state(void) {
    enum { NT = 5 };
    const int64_t n[NT] = {8193, 1, 30000, 0, 777};
    int64_t off[NT + 1] = {0};
    for (int i = 0; i < NT; i++) off[i + 1] = off[i] + n[i];
    const int64_t tot = off[NT];
    const double b1 = 0.9, b2 = 0.999, bc1 = 1 - pow(b1, 5), bc2 = 1 - pow(b2, 5);
    for (int d = 0; d < 2; d++) {
        cm_dtype gdt = DTS[d];
        float *hp = hrand(tot, -1, 1, CM_F32), *hg = hrand(tot, -1, 1, gdt), *hm = hrand(tot, -0.1, 0.1, CM_BF16),
              *hv = hrand(tot, 0, 0.01, CM_BF16);
        uint16_t *cm = hmalloc((size_t)tot * 2 + 2), *cv = hmalloc((size_t)tot * 2 + 2), *cg16 = hmalloc((size_t)tot * 2 + 2);
        for (int64_t i = 0; i < tot; i++) cm[i] = bf16_bits(hm[i]), cv[i] = bf16_bits(hv[i]), cg16[i] = bf16_bits(hg[i]);
        float *rp = hcopy(hp, tot);
        float *mp = up(CM_F32, hp, tot);
        void *mm = up(CM_BF16, hm, tot), *mv = up(CM_BF16, hv, tot), *gg = up(gdt, hg, tot);
        uint16_t *gw = dnan(CM_BF16, tot), *cw = hmalloc((size_t)tot * 2 + 2);
        for (int64_t e = 0; e < tot; e++) cw[e] = 0x7fc0;  // NaN
        float *he = hrand(tot, -1, 1, CM_F32), *ce = hcopy(he, tot), *ge = up(CM_F32, he, tot);
        cm_adamw_tensor list[NT], clist[NT];
        for (int i = 0; i < NT; i++) {
            uint64_t key = cm_sr_key((uint64_t)i, 4);
            clist[i] = (cm_adamw_tensor){rp + off[i], gdt == CM_F32 ? (void *)(hg + off[i]) : (void *)(cg16 + off[i]), cm + off[i],
                                         cv + off[i], n[i], key, i % 2 ? NULL : cw + off[i], i % 3 == 1 ? NULL : ce + off[i]};
            list[i] = (cm_adamw_tensor){mp + off[i], (char *)gg + off[i] * dsize(gdt), (uint16_t *)mm + off[i],
                                        (uint16_t *)mv + off[i], n[i], key, i % 2 ? NULL : gw + off[i], i % 3 == 1 ? NULL : ge + off[i]};
        }
        C->adamw_multi(ck, NT, clist, gdt, CM_BF16, 1e-3, b1, b2, 1e-8, 0.01, bc1, bc2, 0.5, 0.95);
        G->adamw_multi(gk, NT, list, gdt, CM_BF16, 1e-3, b1, b2, 1e-8, 0.01, bc1, bc2, 0.5, 0.95);
        float *gp = down(CM_F32, mp, tot), *gm = down(CM_BF16, mm, tot), *gv = down(CM_BF16, mv, tot);
        float *rm = hmalloc((size_t)tot * 4 + 4), *rv = hmalloc((size_t)tot * 4 + 4);
        int64_t same = 0;
        for (int64_t i = 0; i < tot; i++) {
            rm[i] = bf16_val(cm[i]), rv[i] = bf16_val(cv[i]);
            same += gm[i] == rm[i] && gv[i] == rv[i];
        }
        printf("     adamw bf16 state (g %s): %lld of %lld elements' moments bit-equal to the CPU's\n", dtype_name(gdt),
               (long long)same, (long long)tot);
        cmp("adamw bf16 state p", CM_F32, gp, rp, tot, 1e-6);
        check_w("adamw bf16 state", down(CM_BF16, gw, tot), cw, gp, rp, NT, n, off);
        check_ema("adamw bf16 state", down(CM_F32, ge, tot), ce, he, NT, n, off);
        cmp("adamw bf16 state m", CM_BF16, gm, rm, tot, 8e-3);
        cmp("adamw bf16 state v", CM_BF16, gv, rv, tot, 8e-3);
        TEST_CHECK(same > tot * 99 / 100, "the GPU's bf16 moments are the CPU's bits for >= 99%% of the elements (%lld of %lld)",
                   (long long)same, (long long)tot);
        release_all();
    }
}

// many tensors (more block partials than the buffer holds: the running total is folded), empty ones
static void t_sumsq_multi(void) {
    enum { NT = 40 };
    int64_t n[NT], off[NT + 1];
    off[0] = 0;
    for (int i = 0; i < NT; i++) n[i] = i % 9 == 4 ? 0 : i % 6 == 0 ? 100000 + 17 * i : 31 * i + 3, off[i + 1] = off[i] + n[i];
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        float *h = hrand(off[NT], -1, 1, dt);
        char *g = up(dt, h, off[NT]);
        const void *hx[NT], *gx[NT];
        for (int i = 0; i < NT; i++) hx[i] = h + off[i], gx[i] = g + off[i] * dsize(dt);
        double ref = C->sumsq_multi(ck, CM_F32, NT, hx, n), got = G->sumsq_multi(gk, dt, NT, gx, n);
        cmp_scalar("sumsq_multi (40 tensors, partials folded)", dt, got, ref, 1e-6);
        double one = 0;
        for (int i = 0; i < NT; i++) one += G->sumsq(gk, dt, n[i], gx[i]);
        cmp_scalar("sumsq_multi == sumsq per tensor", dt, got, one, 1e-9);
        release_all();
    }
    // 230 tensors (three launches of <= 96) in buffers of their own, so 16-byte aligned: the
    // vector loads, chunk tails (sizes around 8192 and odd) and empty tensors; the same bits twice
    enum { NB = 230 };
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t nb[NB];
        const void *hb[NB], *gb[NB];
        for (int i = 0; i < NB; i++) {
            nb[i] = i % 11 == 5 ? 0 : i % 7 == 0 ? 8192 * (1 + i % 3) + (i % 5) - 2 : 13 * i + 1;
            float *h = hrand(nb[i] > 0 ? nb[i] : 1, -1, 1, dt);
            hb[i] = h, gb[i] = up(dt, h, nb[i] > 0 ? nb[i] : 1);
        }
        double ref = C->sumsq_multi(ck, CM_F32, NB, hb, nb), got = G->sumsq_multi(gk, dt, NB, gb, nb),
               again = G->sumsq_multi(gk, dt, NB, gb, nb);
        cmp_scalar("sumsq_multi (230 aligned tensors)", dt, got, ref, 1e-6);
        TEST_CHECK(memcmp(&got, &again, sizeof got) == 0, "sumsq_multi %s: the same bits twice (%.17g, %.17g)",
                   dtype_name(dt), got, again);
        release_all();
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// asynchronous uploads: pinned memory, the copy stream, events both ways, and autograd's
// upload ring (op_to_device) while the compute stream is busy
static void t_upload(void) {
    // 1. a DMA from pinned memory on the copy stream, a kernel on the compute stream after its event
    int64_t n = 1 << 20;
    float *pin = G->host_alloc((size_t)n * 4);
    TEST_CHECK(pin != NULL, "host_alloc: pinned memory");
    if (!pin) return;
    float *h = hrand(n, -1, 1, CM_F32);
    memcpy(pin, h, (size_t)n * 4);
    float *d = dalloc(CM_F32, n), *y = dnan(CM_F32, n);
    uint64_t filled = G->event_record(gk, CM_STREAM_COMPUTE);  // (the copy stream may wait for compute work)
    G->event_wait(gk, CM_STREAM_COPY, filled);
    G->memcpy_h2d_async(gk, d, pin, (size_t)n * 4);
    uint64_t e = G->event_record(gk, CM_STREAM_COPY);
    TEST_CHECK(e != 0 && filled != 0 && e != filled, "events are non-zero and distinct");
    G->event_wait(gk, CM_STREAM_COMPUTE, e);
    G->unary_fwd(gk, CM_UN_NEG, CM_F32, n, y, d);
    G->event_sync(gk, e);
    memset(pin, 0, (size_t)n * 4);  // the DMA is done: the pinned buffer may be refilled
    float *ref = hmalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) ref[i] = -h[i];
    cmp("memcpy_h2d_async, event, kernel", CM_F32, down(CM_F32, y, n), ref, n, 0);
    // 2. the other way: the copy stream waits for compute work still reading its destination
    float *z = dnan(CM_F32, n);
    for (int64_t i = 0; i < n; i++) pin[i] = 2.f;
    G->unary_fwd(gk, CM_UN_NEG, CM_F32, n, z, d);  // reads d (= h) on the compute stream
    uint64_t read = G->event_record(gk, CM_STREAM_COMPUTE);
    G->event_wait(gk, CM_STREAM_COPY, read);
    G->memcpy_h2d_async(gk, d, pin, (size_t)n * 4);  // overwrites d after that read
    uint64_t e2 = G->event_record(gk, CM_STREAM_COPY);
    G->event_wait(gk, CM_STREAM_COMPUTE, e2);
    cmp("copy stream waits for a compute read", CM_F32, down(CM_F32, z, n), ref, n, 0);
    for (int64_t i = 0; i < n; i++) ref[i] = 2.f;
    cmp("... then overwrites", CM_F32, down(CM_F32, d, n), ref, n, 0);
    G->event_sync(gk, e2);
    G->host_free(pin);
    release_all();

    // 3. op_to_device through autograd's upload ring (32 MiB pieces, 8 slots): two 96 MiB
    //    uploads issued behind 100 queued 4096^3 GEMMs, then checked; the time of the uploads
    //    alone, the GEMMs alone and both (overlapped: both ~ the larger, not the sum)
    int64_t big = 24 << 20;  // floats
    cm_tensor *hostt = tensor_empty(CM_F32, 1, &big, CM_DEV_CPU);
    float *hv = tensor_data(hostt), *back = malloc((size_t)big * 4);
#ifdef CAMEO_CUDA_EMU
    const int64_t gm = 256, n_mm = 10;  // the CPU emulator: the same steps, small
#else
    const int64_t gm = 4096, n_mm = 100;
#endif
    void *ga = dalloc(CM_BF16, gm * gm), *gc = dalloc(CM_BF16, gm * gm);
    G->fill(gk, CM_BF16, ga, gm * gm, 0.01);
    cm_device dev = {CM_CUDA, 0};
    double t_mode[3] = {0};
    const int modes[4] = {0, 0, 1, 2};  // 0: uploads (the first run allocates the ring), 1: GEMMs, 2: both
    for (int mi = 0; mi < 4; mi++) {
        int mode = modes[mi];
        cm_tensor *dts[2] = {NULL, NULL};
        G->sync(gk);
        double t0 = now_s();
        if (mode >= 1)
            for (int r = 0; r < n_mm; r++) G->gemm(gk, CM_BF16, 0, 0, gm, gm, gm, 1.0, ga, gm, 0, ga, gm, 0, 0.0, gc, gm, 0, 1);
        if (mode != 1)
            for (int r = 0; r < 2; r++) {
                for (int64_t i = 0; i < big; i++) hv[i] = (float)((i * 7 + r * 13 + mode) % 1000);
                dts[r] = op_to_device(hostt, dev);
            }
        G->sync(gk);
        t_mode[mode] = now_s() - t0;
        for (int r = 0; r < 2 && mode != 1; r++) {
            G->memcpy_d2h(gk, back, tensor_data(dts[r]), (size_t)big * 4);
            int ok = 1;
            for (int64_t i = 0; i < big && ok; i++) ok = back[i] == (float)((i * 7 + r * 13 + mode) % 1000);
            TEST_CHECK(ok, "op_to_device through the upload ring: 96 MiB upload %d arrives (%s)", r,
                       mode ? "behind the GEMMs" : "alone");
            tensor_release(dts[r]);
        }
    }
    printf("info upload ring: 2 x 96 MiB uploads %.1f ms, %lld GEMMs %lld^3 bf16 %.1f ms, both %.1f ms (sum %.1f)\n",
           t_mode[0] * 1e3, (long long)n_mm, (long long)gm, t_mode[1] * 1e3, t_mode[2] * 1e3,
           (t_mode[0] + t_mode[1]) * 1e3);
    free(back);
    tensor_release(hostt);
    release_all();

    // 4. more uploads than the ring has slots, none waited for in between: each slot's pinned
    //    buffer is refilled while its last DMA may be pending (CUDA_EMU_DEFER=1 holds it back
    //    until an event or a sync asks for it: a refill before event_sync shows as wrong data)
    enum { NU = 19 };
    int64_t nu = 40000;  // floats: 160 KB a piece, one slot each
    cm_tensor *hs = tensor_empty(CM_F32, 1, &nu, CM_DEV_CPU), *ds[NU];
    float *hp = tensor_data(hs), *bk = malloc((size_t)nu * 4);
    for (int u = 0; u < NU; u++) {
        for (int64_t i = 0; i < nu; i++) hp[i] = (float)(u * 100000 + i);
        ds[u] = op_to_device(hs, dev);
    }
    int bad = -1;
    for (int u = 0; u < NU; u++) {
        G->memcpy_d2h(gk, bk, tensor_data(ds[u]), (size_t)nu * 4);
        for (int64_t i = 0; i < nu && bad < 0; i++)
            if (bk[i] != (float)(u * 100000 + i)) bad = u;
        tensor_release(ds[u]);
    }
    TEST_CHECK(bad < 0, "%d back-to-back uploads through the %d-slot ring: upload %d arrived wrong", NU, 8, bad);
    free(bk);
    tensor_release(hs);
    release_all();
}

// ---------------------------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------------------------
// CAMEO_GEMM_TUNE=1: new plans time the heuristic's first algorithms on scratch outputs and keep the
// fastest (cuda_gemm.cu). The comparisons above are the proof that the trials leave C alone (a
// beta = 0.5 sum run twice, or into C, would fail them); here, that tuning ran at all
int64_t cuda_gemm_tuned(int64_t *changed);
static void gemm_tune_check(const char *group) {
    const char *e = getenv("CAMEO_GEMM_TUNE");
    if (!e || !*e || !strcmp(e, "0")) return;
    int64_t changed = 0, tuned = cuda_gemm_tuned(&changed);
    printf("%s  %s: CAMEO_GEMM_TUNE: %lld plans tuned so far, %lld of them not the heuristic's first\n",
           tuned > 0 ? "ok " : "FAIL", group, (long long)tuned, (long long)changed);
    TEST_CHECK(tuned > 0, "CAMEO_GEMM_TUNE=1: no GEMM plan was tuned");
}

static void t_gemm(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++)
                for (int v = 0; v < 3; v++) {  // 0: beta 0, 1: beta 0.5 with padded ld, 2: batched
                    int64_t M = 37, N = 45, K = 29, batch = v == 2 ? 3 : 1;
                    int64_t pad = v == 1 ? 3 : 0;
                    int64_t ar = tA ? K : M, ac = tA ? M : K, br = tB ? N : K, bc = tB ? K : N;
                    int64_t lda = ac + pad, ldb = bc + pad, ldc = N + pad;
                    int64_t sA = ar * lda, sB = br * ldb, sC = M * ldc;
                    double beta = v == 1 ? 0.5 : 0.0;
                    float *hA = hrand(sA * batch, -1, 1, dt), *hB = hrand(sB * batch, -1, 1, dt);
                    float *hC = v == 1 ? hrand(sC * batch, -1, 1, dt) : hnan(sC * batch);
                    float *rC = hcopy(hC, sC * batch);
                    if (beta == 0)
                        for (int64_t i = 0; i < sC * batch; i++) rC[i] = 0;  // the CPU may read C
                    C->gemm(ck, CM_F32, tA, tB, M, N, K, 1.25, hA, lda, sA, hB, ldb, sB, beta, rC, ldc, sC, batch);
                    void *gA = up(dt, hA, sA * batch), *gB = up(dt, hB, sB * batch);
                    void *gC = v == 1 ? up(dt, hC, sC * batch) : dnan(dt, sC * batch);
                    int64_t calls = cm_gemm_calls;
                    G->gemm(gk, dt, tA, tB, M, N, K, 1.25, gA, lda, sA, gB, ldb, sB, beta, gC, ldc, sC, batch);
                    TEST_CHECK(cm_gemm_calls == calls + 1, "gemm counts its calls");
                    float *got = down(dt, gC, sC * batch);
                    if (pad)  // padding columns are not part of the result
                        for (int64_t i = 0; i < sC * batch; i++)
                            if (i % ldc >= N) got[i] = rC[i];
                    char what[64];
                    snprintf(what, sizeof what, "gemm tA=%d tB=%d %s", tA, tB,
                             v == 0 ? "beta=0" : v == 1 ? "beta=.5 ld+3" : "batch=3");
                    cmp(what, dt, got, rC, sC * batch, TOL(dt, 1e-5, 1e-2));
                    release_all();
                }
    }
    gemm_tune_check("gemm");
}

// gemm_ex: the bias / GELU / GELU_AUX / DGELU epilogues (cuBLASLt BIAS, GELU, GELU_BIAS,
// GELU_AUX(_BIAS), DGELU; with cuda_gemm_force_fallback(1) the fallback GEMM + epilogue kernel)
// against the CPU's bias-prefill + GEMM + GELU (+ aux copy, or times GELU's derivative). The bias
// and aux are C's dtype. A bias along the wrong dimension (cuBLAS's M vs N after the row-/column-
// major swap) fails by O(1): N != M here. ldc = 45 or a batch stride 37 * 45 is not a multiple of
// 8, so cuBLASLt cannot keep aux there and the plan falls back even without forcing; ld + 3 = 48
// and the linear shapes below take cuBLASLt's own aux epilogues.
void cuda_gemm_force_fallback(int on);
static const char *const EPI_NAMES[6] = {"bias", "gelu", "bias+gelu", "bias+gelu+aux", "gelu+aux", "dgelu"};
static void t_gemm_ex(void) {
    for (int fb = 0; fb < 2; fb++) {
        cuda_gemm_force_fallback(fb);
        for (int d = 0; d < 2; d++) {
            cm_dtype dt = DTS[d];
            for (int tA = 0; tA < 2; tA++)
                for (int tB = 0; tB < 2; tB++)
                    for (int v = 0; v < 4; v++)  // 0: beta 0; 1: beta .5, ld + 3; 2: batch 3; 3: K = 0, beta .5
                        for (int e = 0; e < 6; e++) {
                            if (v == 3 && (tA || tB)) continue;
                            double beta = v == 1 || v == 3 ? 0.5 : 0.0;
                            if (e == 5 && beta != 0) continue;  // DGELU takes beta 0
                            int64_t M = 37, N = 45, K = v == 3 ? 0 : 29, batch = v == 2 ? 3 : 1;
                            int64_t pad = v == 1 ? 3 : 0;
                            int64_t ar = tA ? K : M, ac = tA ? M : K, br = tB ? N : K, bc = tB ? K : N;
                            int64_t lda = ac + pad + (K == 0), ldb = bc + pad + (K == 0), ldc = N + pad;
                            int64_t sA = ar * lda, sB = br * ldb, sC = M * ldc;
                            int with_bias = e == 0 || e == 2 || e == 3, with_aux = e >= 3;
                            cm_act act = e == 0 ? CM_ACT_NONE : e == 5 ? CM_ACT_DGELU_TANH : CM_ACT_GELU_TANH;
                            float *hA = hrand(sA * batch + 1, -1, 1, dt), *hB = hrand(sB * batch + 1, -1, 1, dt);
                            float *hbias = hrand(N, -1, 1, dt);
                            float *hC = beta != 0 ? hrand(sC * batch, -1, 1, dt) : hnan(sC * batch);
                            float *rC = hcopy(hC, sC * batch);
                            if (beta == 0)
                                for (int64_t i = 0; i < sC * batch; i++) rC[i] = 0;
                            // aux: GELU's input, read by DGELU (random, exact in dt) or written by GELU_AUX
                            float *hAux = e == 5 ? hrand(sC * batch, -3, 3, dt) : hnan(sC * batch);
                            float *rAux = hcopy(hAux, sC * batch);
                            C->gemm_ex(ck, CM_F32, tA, tB, M, N, K, 1.25, hA, lda, sA, hB, ldb, sB, beta, rC, ldc, sC, batch,
                                       with_bias ? hbias : NULL, act, with_aux ? rAux : NULL);
                            void *gA = up(dt, hA, sA * batch + 1), *gB = up(dt, hB, sB * batch + 1);
                            void *gbias = up(dt, hbias, N);
                            void *gC = beta != 0 ? up(dt, hC, sC * batch) : dnan(dt, sC * batch);
                            void *gAux = e == 5 ? up(dt, hAux, sC * batch) : dnan(dt, sC * batch);
                            int64_t calls = cm_gemm_calls;
                            G->gemm_ex(gk, dt, tA, tB, M, N, K, 1.25, gA, lda, sA, gB, ldb, sB, beta, gC, ldc, sC, batch,
                                       with_bias ? gbias : NULL, act, with_aux ? gAux : NULL);
                            TEST_CHECK(cm_gemm_calls == calls + 1, "gemm_ex counts its call");
                            float *got = down(dt, gC, sC * batch), *gotAux = down(dt, gAux, sC * batch);
                            if (pad)
                                for (int64_t i = 0; i < sC * batch; i++)
                                    if (i % ldc >= N) got[i] = rC[i], gotAux[i] = rAux[i];
                            char what[96];
                            snprintf(what, sizeof what, "gemm_ex%s tA=%d tB=%d %s %s", fb ? " fallback" : "", tA, tB,
                                     v == 0 ? "beta=0" : v == 1 ? "beta=.5 ld+3" : v == 2 ? "batch=3" : "K=0", EPI_NAMES[e]);
                            // cuBLASLt's GELU may use the hardware tanh approximation (2^-11 relative)
                            cmp(what, dt, got, rC, sC * batch, act ? TOL(dt, 1e-3, 1.5e-2) : TOL(dt, 1e-5, 1e-2));
                            if (e == 3 || e == 4) {
                                snprintf(what, sizeof what, "gemm_ex%s tA=%d tB=%d %s aux", fb ? " fallback" : "", tA, tB,
                                         v == 0 ? "beta=0" : v == 1 ? "beta=.5 ld+3" : v == 2 ? "batch=3" : "K=0");
                                cmp(what, dt, gotAux, rAux, sC * batch, TOL(dt, 1e-5, 1e-2));
                            }
                            release_all();
                        }
        }
        // a linear layer's shapes (x [T, K] @ w [N, K]^T + b), bf16, large enough for tensor-core
        // tiles, N and H multiples of 8 (cuBLASLt keeps aux itself): forward with the pre-activation
        // kept, and the hidden gradient of an MLP's backward, dh = (g [T, N] @ w [N, H]) * gelu'(h)
        {
            int64_t T = 300, K = 256, N = 520;
            float *hx = hrand(T * K, -1, 1, CM_BF16), *hw = hrand(N * K, -0.1, 0.1, CM_BF16), *hb = hrand(N, -1, 1, CM_BF16);
            float *r = hnan(T * N), *raux = hnan(T * N);
            C->gemm_ex(ck, CM_F32, 0, 1, T, N, K, 1.0, hx, K, 0, hw, K, 0, 0.0, r, N, 0, 1, hb, CM_ACT_GELU_TANH, raux);
            void *gx = up(CM_BF16, hx, T * K), *gw = up(CM_BF16, hw, N * K), *gb = up(CM_BF16, hb, N),
                 *gy = dnan(CM_BF16, T * N), *gaux = dnan(CM_BF16, T * N);
            G->gemm_ex(gk, CM_BF16, 0, 1, T, N, K, 1.0, gx, K, 0, gw, K, 0, 0.0, gy, N, 0, 1, gb, CM_ACT_GELU_TANH, NULL);
            cmp(fb ? "gemm_ex fallback linear+gelu 300x256->520" : "gemm_ex linear+gelu 300x256->520", CM_BF16,
                down(CM_BF16, gy, T * N), r, T * N, 1.5e-2);
            G->fill(gk, CM_BF16, gy, T * N, NAN);
            G->gemm_ex(gk, CM_BF16, 0, 1, T, N, K, 1.0, gx, K, 0, gw, K, 0, 0.0, gy, N, 0, 1, gb, CM_ACT_GELU_TANH, gaux);
            cmp(fb ? "gemm_ex fallback linear+gelu, aux kept" : "gemm_ex linear+gelu, aux kept (GELU_AUX_BIAS)", CM_BF16,
                down(CM_BF16, gy, T * N), r, T * N, 1.5e-2);
            cmp(fb ? "gemm_ex fallback linear+gelu: aux" : "gemm_ex linear+gelu: aux = x w^T + b", CM_BF16,
                down(CM_BF16, gaux, T * N), raux, T * N, 1e-2);
            // backward through the MLP's second layer: g [T, N2] @ w2 [N2, N], DGELU at aux
            int64_t N2 = 136;
            float *hg = hrand(T * N2, -1, 1, CM_BF16), *hw2 = hrand(N2 * N, -0.2, 0.2, CM_BF16), *hh = hrand(T * N, -3, 3, CM_BF16);
            float *rdh = hnan(T * N);
            C->gemm_ex(ck, CM_F32, 0, 0, T, N, N2, 1.0, hg, N2, 0, hw2, N, 0, 0.0, rdh, N, 0, 1, NULL, CM_ACT_DGELU_TANH, hh);
            void *gg = up(CM_BF16, hg, T * N2), *gw2 = up(CM_BF16, hw2, N2 * N), *gh = up(CM_BF16, hh, T * N),
                 *gdh = dnan(CM_BF16, T * N);
            G->gemm_ex(gk, CM_BF16, 0, 0, T, N, N2, 1.0, gg, N2, 0, gw2, N, 0, 0.0, gdh, N, 0, 1, NULL, CM_ACT_DGELU_TANH, gh);
            cmp(fb ? "gemm_ex fallback dgelu 300x136->520" : "gemm_ex dgelu 300x136->520 (DGELU)", CM_BF16,
                down(CM_BF16, gdh, T * N), rdh, T * N, 1.5e-2);
            // batched, aux batch stride a multiple of 8: GELU_AUX through cuBLASLt's batch stride
            {
                int64_t Mb = 40, Nb = 64, Kb = 48, nb = 3;
                float *ha = hrand(nb * Mb * Kb, -1, 1, CM_BF16), *hbb = hrand(nb * Kb * Nb, -1, 1, CM_BF16);
                float *rc = hnan(nb * Mb * Nb), *ra = hnan(nb * Mb * Nb);
                C->gemm_ex(ck, CM_F32, 0, 0, Mb, Nb, Kb, 0.5, ha, Kb, Mb * Kb, hbb, Nb, Kb * Nb, 0.0, rc, Nb, Mb * Nb, nb, NULL,
                           CM_ACT_GELU_TANH, ra);
                void *ga = up(CM_BF16, ha, nb * Mb * Kb), *gbb = up(CM_BF16, hbb, nb * Kb * Nb),
                     *gc2 = dnan(CM_BF16, nb * Mb * Nb), *ga2 = dnan(CM_BF16, nb * Mb * Nb);
                G->gemm_ex(gk, CM_BF16, 0, 0, Mb, Nb, Kb, 0.5, ga, Kb, Mb * Kb, gbb, Nb, Kb * Nb, 0.0, gc2, Nb, Mb * Nb, nb,
                           NULL, CM_ACT_GELU_TANH, ga2);
                cmp(fb ? "gemm_ex fallback batch=3 gelu+aux" : "gemm_ex batch=3 gelu+aux (GELU_AUX)", CM_BF16,
                    down(CM_BF16, gc2, nb * Mb * Nb), rc, nb * Mb * Nb, 1.5e-2);
                cmp(fb ? "gemm_ex fallback batch=3 aux" : "gemm_ex batch=3 aux", CM_BF16, down(CM_BF16, ga2, nb * Mb * Nb), ra,
                    nb * Mb * Nb, 1e-2);
            }
            // gemm == gemm_ex without an epilogue: the same plan, the same bits
            void *g1 = dnan(CM_BF16, T * N), *g2 = dnan(CM_BF16, T * N);
            G->gemm(gk, CM_BF16, 0, 1, T, N, K, 1.0, gx, K, 0, gw, K, 0, 0.0, g1, N, 0, 1);
            G->gemm_ex(gk, CM_BF16, 0, 1, T, N, K, 1.0, gx, K, 0, gw, K, 0, 0.0, g2, N, 0, 1, NULL, CM_ACT_NONE, NULL);
            cmp("gemm == gemm_ex(no epilogue)", CM_BF16, down(CM_BF16, g2, T * N), down(CM_BF16, g1, T * N), T * N, 0);
            release_all();
        }
    }
    cuda_gemm_force_fallback(0);
    gemm_tune_check("gemm_ex");
}

// ---------------------------------------------------------------------------------------------
// norms
// ---------------------------------------------------------------------------------------------
static void t_layernorm(void) {
    const int64_t colss[2] = {256, 77};
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int c = 0; c < 2; c++)
            for (int affine = 0; affine < 2; affine++) {
                int64_t rows = 19, cols = colss[c], n = rows * cols;
                float *hx = hrand(n, -2, 3, dt), *hw = hrand(cols, 0.5, 1.5, dt), *hb = hrand(cols, -1, 1, dt);
                float *hdy = hrand(n, -1, 1, dt);
                float *ry = hnan(n), *rm = hnan(rows), *rr = hnan(rows), *rdx = hnan(n), *rdw = hnan(cols),
                      *rdb = hnan(cols);
                C->layernorm_fwd(ck, CM_F32, rows, cols, 1e-5, ry, rm, rr, hx, affine ? hw : NULL, affine ? hb : NULL);
                C->layernorm_bwd(ck, CM_F32, rows, cols, rdx, affine ? rdw : NULL, affine ? rdb : NULL, hdy, hx, rm,
                                 rr, affine ? hw : NULL);
                void *gx = up(dt, hx, n), *gw = up(dt, hw, cols), *gb = up(dt, hb, cols), *gdy = up(dt, hdy, n);
                void *gy = dnan(dt, n), *gdx = dnan(dt, n), *gdw = dnan(dt, cols), *gdb = dnan(dt, cols);
                float *gm = dnan(CM_F32, rows), *gr = dnan(CM_F32, rows);
                G->layernorm_fwd(gk, dt, rows, cols, 1e-5, gy, gm, gr, gx, affine ? gw : NULL, affine ? gb : NULL);
                G->layernorm_bwd(gk, dt, rows, cols, gdx, affine ? gdw : NULL, affine ? gdb : NULL, gdy, gx, gm, gr,
                                 affine ? gw : NULL);
                char what[64];
                snprintf(what, sizeof what, "layernorm_fwd cols=%lld%s", (long long)cols, affine ? " w,b" : "");
                cmp(what, dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 1e-2));
                cmp("layernorm mean", CM_F32, down(CM_F32, gm, rows), rm, rows, 1e-5);
                cmp("layernorm rstd", CM_F32, down(CM_F32, gr, rows), rr, rows, 1e-5);
                snprintf(what, sizeof what, "layernorm_bwd dx cols=%lld%s", (long long)cols, affine ? " w,b" : "");
                cmp(what, dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
                if (affine) {
                    cmp("layernorm_bwd dw", dt, down(dt, gdw, cols), rdw, cols, TOL(dt, 1e-4, 2e-2));
                    cmp("layernorm_bwd db", dt, down(dt, gdb, cols), rdb, cols, TOL(dt, 1e-5, 1e-2));
                }
                release_all();
            }
    }
}

static void t_rmsnorm(void) {
    const int64_t colss[2] = {256, 77};
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int var = 0; var < 2; var++)
            for (int c = 0; c < 2; c++) {
                int64_t rows = 21, cols = colss[c], n = rows * cols;
                double eps = 1e-6;
                float *hx = hrand(n, -2, 2, dt), *hw = hrand(cols, 0.5, 1.5, dt), *hdy = hrand(n, -1, 1, dt);
                float *ry = hnan(n), *ri = hnan(rows), *rdx = hnan(n), *rdw = hnan(cols);
                C->rmsnorm_fwd(ck, (cm_rmsvariant)var, CM_F32, rows, cols, eps, ry, ri, hx, hw);
                C->rmsnorm_bwd(ck, (cm_rmsvariant)var, CM_F32, rows, cols, eps, rdx, rdw, hdy, hx, ri, hw);
                void *gx = up(dt, hx, n), *gw = up(dt, hw, cols), *gdy = up(dt, hdy, n);
                void *gy = dnan(dt, n), *gdx = dnan(dt, n), *gdw = dnan(dt, cols);
                float *gi = dnan(CM_F32, rows);
                G->rmsnorm_fwd(gk, (cm_rmsvariant)var, dt, rows, cols, eps, gy, gi, gx, gw);
                G->rmsnorm_bwd(gk, (cm_rmsvariant)var, dt, rows, cols, eps, gdx, gdw, gdy, gx, gi, gw);
                char what[64];
                snprintf(what, sizeof what, "rmsnorm_fwd %s cols=%lld", var ? "IC" : "diffusers", (long long)cols);
                cmp(what, dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 1e-2));
                cmp("rmsnorm inv", CM_F32, down(CM_F32, gi, rows), ri, rows, 1e-5);
                snprintf(what, sizeof what, "rmsnorm_bwd dx %s cols=%lld", var ? "IC" : "diffusers", (long long)cols);
                cmp(what, dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
                cmp("rmsnorm_bwd dw", dt, down(dt, gdw, cols), rdw, cols, TOL(dt, 1e-4, 2e-2));
                release_all();
            }
    }
}

static void t_groupnorm(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t N = 2, Cc = 8, HW = 30, Gg = 4, n = N * Cc * HW;
        float *hx = hrand(n, -2, 3, dt), *hw = hrand(Cc, 0.5, 1.5, dt), *hb = hrand(Cc, -1, 1, dt),
              *hdy = hrand(n, -1, 1, dt);
        float *ry = hnan(n), *rm = hnan(N * Gg), *rr = hnan(N * Gg), *rdx = hnan(n), *rdw = hnan(Cc), *rdb = hnan(Cc);
        C->groupnorm_fwd(ck, CM_F32, N, Cc, HW, Gg, 1e-6, ry, rm, rr, hx, hw, hb);
        C->groupnorm_bwd(ck, CM_F32, N, Cc, HW, Gg, rdx, rdw, rdb, hdy, hx, rm, rr, hw);
        void *gx = up(dt, hx, n), *gw = up(dt, hw, Cc), *gb = up(dt, hb, Cc), *gdy = up(dt, hdy, n);
        void *gy = dnan(dt, n), *gdx = dnan(dt, n), *gdw = dnan(dt, Cc), *gdb = dnan(dt, Cc);
        float *gm = dnan(CM_F32, N * Gg), *gr = dnan(CM_F32, N * Gg);
        G->groupnorm_fwd(gk, dt, N, Cc, HW, Gg, 1e-6, gy, gm, gr, gx, gw, gb);
        G->groupnorm_bwd(gk, dt, N, Cc, HW, Gg, gdx, gdw, gdb, gdy, gx, gm, gr, gw);
        cmp("groupnorm_fwd", dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 1e-2));
        cmp("groupnorm mean", CM_F32, down(CM_F32, gm, N * Gg), rm, N * Gg, 1e-5);
        cmp("groupnorm rstd", CM_F32, down(CM_F32, gr, N * Gg), rr, N * Gg, 1e-5);
        cmp("groupnorm_bwd dx", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
        cmp("groupnorm_bwd dw", dt, down(dt, gdw, Cc), rdw, Cc, TOL(dt, 1e-4, 2e-2));
        cmp("groupnorm_bwd db", dt, down(dt, gdb, Cc), rdb, Cc, TOL(dt, 1e-5, 1e-2));
        release_all();
    }
}

// ---------------------------------------------------------------------------------------------
// attention: tensor-core head dims (64, 72, 128; 40 and 20 padded to 64, 20 without 16-byte
// rows), one past them (136: the warp-per-row kernels in bf16 too), the VAE's single head of 512,
// a [B, L, H, D] strided layout, a mask with a head stride, Lq / Lk not multiples of the 64-row tile
// ---------------------------------------------------------------------------------------------
// [B, H, L, D] rows <-> token-major [B, L, H, D] (a new host array)
static float *hm_to_tok(const float *x, int64_t B, int64_t H, int64_t L, int64_t D, int back) {
    float *y = hmalloc((size_t)(B * H * L * D) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < L; l++) {
                const int64_t hm = ((b * H + h) * L + l) * D, tk = ((b * L + l) * H + h) * D;
                memcpy(y + (back ? hm : tk), x + (back ? tk : hm), (size_t)D * sizeof(float));
            }
    return y;
}

// otok: the GPU writes O and reads O, dO token-major ([B, Lq, H, D], op_sdpa_tokens' layout).
// picked_only (the group attention_picked): the bf16 cases of head dim <= 128 alone, the only ones
// CAMEO_ATTN / CAMEO_ATTN_BWD choose kernels for (cu_attn_fwd, cu_attn_bwd); f32 and wider heads
// take the same warp-per-row kernels whatever is set. The attn_KIND tests run it.
static void attention_cases(bool picked_only) {
    struct { int64_t B, H, Lq, Lk, D; int mask, blhd, otok; } cases[] = {
        {2, 3, 70, 90, 64, 0, 0, 0}, {1, 2, 65, 130, 72, 1, 1, 1}, {2, 2, 100, 77, 128, 1, 0, 1},
        {1, 3, 33, 50, 40, 1, 1, 0}, {1, 1, 200, 7, 128, 0, 1, 1}, {2, 3, 80, 96, 128, 0, 1, 1},
        {1, 1, 70, 200, 128, 0, 1, 1},  // four key tiles (each double buffer refilled twice), a part-empty block
        {1, 1, 40, 420, 128, 1, 0, 0},  // seven: wgmma3's ring of four stages refilled (its "empty" barriers)
        {1, 2, 21, 30, 136, 1, 0, 1}, {2, 1, 45, 70, 20, 1, 1, 0},
        {1, 1, 40, 48, 512, 0, 1, 1},  // the FLUX VAE's mid-block attention: one head of 512
        // the same through GEMMs (B H Lq Lk >= ATT_GEMM_MIN: cuda_attention_gemm.cu), fully masked rows,
        // two samples (its loop over the batch: a training step's VAE encodes B targets)
        {2, 1, 130, 132, 512, 2, 1, 1},
        // mask 2: -inf keys and every 5th query row fully masked (lse -inf, O 0, P 0 in the backward)
        {2, 2, 70, 33, 72, 2, 1, 1}, {1, 2, 100, 32, 128, 2, 0, 0},
    };
    const int64_t wg0 = cm_attn_wgmma_runs, mf0 = cm_attn_mma_fused_runs, fb0 = cuda_attn_fallbacks(),
                  gm0 = cm_attn_gemm_runs,
                  ws0[6] = {cuda_attn_wgws_runs(0), cuda_attn_wgws_runs(1), cuda_attn_wgws_runs(2), 0, cuda_attn_wgws_runs(4),
                            cuda_attn_wgws_runs(5)},
                  fk0 = cuda_side_forks();
    int64_t picked = 0;
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            int64_t B = cases[c].B, H = cases[c].H, Lq = cases[c].Lq, Lk = cases[c].Lk, D = cases[c].D;
            if (picked_only && (dt != CM_BF16 || D > 128)) continue;
            picked++;
            double scale = 1.0 / sqrt((double)D);
            int64_t nq = B * H * Lq * D, nk = B * H * Lk * D;
            int64_t qs[3], ks[3];
            if (cases[c].blhd) {  // [B, L, H, D] storage, read through strides
                qs[0] = Lq * H * D, qs[1] = D, qs[2] = H * D;
                ks[0] = Lk * H * D, ks[1] = D, ks[2] = H * D;
            } else {
                qs[0] = H * Lq * D, qs[1] = Lq * D, qs[2] = D;
                ks[0] = H * Lk * D, ks[1] = Lk * D, ks[2] = D;
            }
            float *hq = hrand(nq, -2, 2, dt), *hk = hrand(nk, -2, 2, dt), *hv = hrand(nk, -1, 1, dt);
            float *hdo = hrand(nq, -1, 1, dt);
            int64_t mh = cases[c].mask ? Lq * Lk : 0;
            float *hm = NULL;
            if (cases[c].mask) {
                hm = hrand(H * Lq * Lk, -2, 0, CM_F32);
                for (int64_t i = 0; i < H * Lq * Lk; i += 7) hm[i] = -1e9f;  // masked-out keys
                if (cases[c].mask == 2)
                    for (int64_t i = 0; i < H * Lq * Lk; i++)
                        if ((i / Lk) % Lq % 5 == 3 || i % 11 == 0) hm[i] = -INFINITY;
            }
            float *ro = hnan(nq), *rl = hnan(B * H * Lq), *rdq = hnan(nq), *rdk = hnan(nk), *rdv = hnan(nk);
            C->attn_fwd(ck, CM_F32, B, H, Lq, Lk, D, scale, ro, NULL, rl, hq, qs, hk, ks, hv, ks, hm, 0, mh);
            float *hoin = hcopy(ro, nq);  // backward reads O in the storage dtype
            if (dt == CM_BF16)
                for (int64_t i = 0; i < nq; i++) hoin[i] = bf16_round(hoin[i]);
            C->attn_bwd(ck, CM_F32, B, H, Lq, Lk, D, scale, rdq, rdk, rdv, hdo, NULL, hoin, NULL, rl, hq, qs, hk, ks, hv,
                        ks, hm, 0, mh);
            const int otok = cases[c].otok;
            int64_t tos[3] = {Lq * H * D, D, H * D}, *os = otok ? tos : NULL;
            void *gq = up(dt, hq, nq), *gkk = up(dt, hk, nk), *gv = up(dt, hv, nk);
            void *gdo = up(dt, otok ? hm_to_tok(hdo, B, H, Lq, D, 0) : hdo, nq);
            void *goin = up(dt, otok ? hm_to_tok(hoin, B, H, Lq, D, 0) : hoin, nq);
            float *gm = hm ? up(CM_F32, hm, H * Lq * Lk) : NULL;
            void *go = dnan(dt, nq), *gdq = dnan(dt, nq), *gdk = dnan(dt, nk), *gdv = dnan(dt, nk);
            float *gl = dnan(CM_F32, B * H * Lq);
            G->attn_fwd(gk, dt, B, H, Lq, Lk, D, scale, go, os, gl, gq, qs, gkk, ks, gv, ks, gm, 0, mh);
            float *glse = down(CM_F32, gl, B * H * Lq);
            // backward from the CPU's lse so that forward and backward errors stay apart
            void *glin = up(CM_F32, rl, B * H * Lq);
            G->attn_bwd(gk, dt, B, H, Lq, Lk, D, scale, gdq, gdk, gdv, gdo, os, goin, os, glin, gq, qs, gkk, ks, gv, ks,
                        gm, 0, mh);
            char what[80];
            const char *tag = cases[c].blhd ? (otok ? "BLHD, O BLHD" : "BLHD") : (otok ? "BHLD, O BLHD" : "BHLD");
            snprintf(what, sizeof what, "attn_fwd O D=%lld %s%s", (long long)D, tag, cases[c].mask ? " mask" : "");
            float *gof = down(dt, go, nq);
            cmp(what, dt, otok ? hm_to_tok(gof, B, H, Lq, D, 1) : gof, ro, nq, TOL(dt, 1e-4, 2e-2));
            snprintf(what, sizeof what, "attn_fwd lse D=%lld", (long long)D);
            cmp(what, CM_F32, glse, rl, B * H * Lq, TOL(dt, 1e-5, 1e-2));
            int64_t inf_off = 0;  // cmp skips the reference's -inf: a fully masked row must give -inf too
            for (int64_t i = 0; i < B * H * Lq; i++) inf_off += isinf(rl[i]) != isinf(glse[i]);
            TEST_CHECK(inf_off == 0, "attn_fwd lse D=%lld: %lld rows -inf on one side only", (long long)D, (long long)inf_off);
            snprintf(what, sizeof what, "attn_bwd dQ D=%lld %s", (long long)D, tag);
            cmp(what, dt, down(dt, gdq, nq), rdq, nq, TOL(dt, 3e-4, 4e-2));
            snprintf(what, sizeof what, "attn_bwd dK D=%lld %s", (long long)D, tag);
            cmp(what, dt, down(dt, gdk, nk), rdk, nk, TOL(dt, 3e-4, 4e-2));
            snprintf(what, sizeof what, "attn_bwd dV D=%lld %s", (long long)D, tag);
            cmp(what, dt, down(dt, gdv, nk), rdv, nk, TOL(dt, 3e-4, 4e-2));
            release_all();
        }
    }
    if (picked_only) TEST_CHECK(picked >= 8, "attention_picked: %lld bf16 cases of head dim <= 128 ran", (long long)picked);
    // the forwards through GEMMs: the D = 512 case in both dtypes and the larger f32 ones (none
    // where CAMEO_ATTN=generic asks for the warp-per-row kernels alone)
    const char *att = getenv("CAMEO_ATTN"), *gen = getenv("CAMEO_ATTN_GENERIC");
    const bool generic = (att && !strcmp(att, "generic")) || (gen && *gen && gen[0] != '0');
    if (!picked_only) {
        int64_t runs = cm_attn_gemm_runs - gm0;
        printf("%s  attention: forwards through GEMMs: %lld\n", (runs >= 4) != generic ? "ok " : "FAIL", (long long)runs);
        TEST_CHECK(generic ? runs == 0 : runs >= 4, "attention through GEMMs ran %lld times (CAMEO_ATTN=%s)", (long long)runs,
                   att ? att : "");
    }
    // every bf16 case at a head dim up to 128 ran on tensor-core kernels, none on the generic ones
    // (whose only cause there: kernels wanting more shared memory than the device gives; the
    // emulator gives a block what CUDA_EMU_CC's GPU does — test_cuda_ops_attn_mma8 and _mma_fused:
    // an A100's, test_cuda_ops_attn_mma8_reverse: an sm_86's)
    if (!generic) {
        int64_t fb = cuda_attn_fallbacks() - fb0;
        printf("%s  attention: bf16 calls on the generic kernels at head dims <= 128: %lld\n", fb ? "FAIL" : "ok ",
               (long long)fb);
        TEST_CHECK(fb == 0, "%lld bf16 attention calls fell back to the generic kernels (shared memory)", (long long)fb);
    }
    // wgmma's split backward (the default family's): dK dV on a side stream beside dQ
    const char *bwd_env = getenv("CAMEO_ATTN_BWD"), *sse = getenv("CAMEO_SIDE_STREAMS");
    if (cm_attn_wgmma_runs > wg0 && !(bwd_env && !strcmp(bwd_env, "fused")) && !(sse && !strcmp(sse, "0"))) {
        const int64_t forks = cuda_side_forks() - fk0;
        printf("%s  attention: the split backward forked dK dV onto a side stream %lld times\n", forks > 0 ? "ok " : "FAIL",
               (long long)forks);
        TEST_CHECK(forks > 0, "the wgmma kernels ran, but no backward forked its dK dV kernel onto a side stream");
    }
    // CAMEO_ATTN=wgmma: its forward must have run for the head-dim-128 cases (not mma's fallback),
    // except on a GPU that is not a Hopper
    if (att && (!strcmp(att, "wgmma") || !strcmp(att, "wgmma3"))) {
        int64_t runs = cm_attn_wgmma_runs - wg0;
        const char *off = cm_attn_wgmma_off;
        bool other_gpu = off && strstr(off, "not an sm_90");
        printf("%s  attention: the wgmma kernels ran %lld times%s%s\n", runs > 0 || other_gpu ? "ok " : "FAIL",
               (long long)runs, off ? ": " : "", off ? off : "");
        if (!other_gpu) TEST_CHECK(runs > 0, "CAMEO_ATTN=wgmma: the wgmma kernels never ran (%s)", off ? off : "?");
        const char *keys = getenv("CAMEO_WGMMA3_KEYS");
        const bool fused = bwd_env && !strcmp(bwd_env, "fused"), k128 = keys && !strcmp(keys, "128");
        if (!strcmp(att, "wgmma3"))  // and its kernels were the warp-specialised ones (fused: one backward)
            for (int w = 0; w < 6; w++) {
                static const char *const nm[6] = {"forward", "dQ", "dK dV", "", "fused backward", "forward of 128 keys a step"};
                if (w == 3 || (fused ? w == 1 || w == 2 : w == 4) || (w == 5 && !k128)) continue;
                int64_t ws = cuda_attn_wgws_runs(w) - ws0[w];
                printf("%s  attention: the warp-specialised %s ran %lld times\n", ws > 0 || other_gpu ? "ok " : "FAIL",
                       nm[w], (long long)ws);
                if (!other_gpu) TEST_CHECK(ws > 0, "CAMEO_ATTN=wgmma3: the warp-specialised %s never ran", nm[w]);
            }
    }
    // CAMEO_ATTN_BWD=fused with an mma kernel: its fused backward ran (head dims 64 and 128)
    const char *bwd = getenv("CAMEO_ATTN_BWD");
    if (bwd && !strcmp(bwd, "fused") && (!att || !*att || !strncmp(att, "mma", 3))) {
        int64_t runs = cm_attn_mma_fused_runs - mf0;
        printf("%s  attention: the mma fused backward ran %lld times\n", runs > 0 ? "ok " : "FAIL", (long long)runs);
        TEST_CHECK(runs > 0, "CAMEO_ATTN_BWD=fused: the mma fused backward never ran");
    }
}
// two problems at once (attn_fwd_group / attn_bwd_group: the FLUX blocks' joint and IP attention),
// head dim 128, outputs token-major in one [B, L1 + L2, H, D] buffer, against the CPU's per problem.
// bf16 only in the attention_picked run (CAMEO_ATTN=wgmma3 runs them as one launch each way and
// must have: the pair launches counted); f32 too in the full run (the second problem on a side
// stream; in f32 both go through GEMMs, B H Lq Lk >= ATT_GEMM_MIN: a side stream's cuBLASLt call).
static void attention_pair(bool picked_only) {
    // B = 2: a pair launch's blocks decode (problem, b * H + h, tile), and a FLUX step at batch 8
    // runs them so (b * H + h is split as in the single launches, checked at H > 1 there);
    // 136: two query tiles of 128 and three key tiles of 64, both ragged; 72: one and two
    const int64_t B = 2, H = 1, D = 128, Lq[2] = {136, 72}, Lk[2] = {136, 72}, L = Lq[0] + Lq[1];
    const int64_t pairs0 = cuda_attn_wgws_runs(3);
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        if (picked_only && dt != CM_BF16) continue;
        const double scale = 1.0 / sqrt((double)D);
        const int64_t os[3] = {L * H * D, D, H * D}, no = B * L * H * D;
        float *hq[2], *hk[2], *hv[2];
        int64_t qs[2][3], ks[2][3];
        for (int w = 0; w < 2; w++) {
            hq[w] = hrand(B * H * Lq[w] * D, -2, 2, dt), hk[w] = hrand(B * H * Lk[w] * D, -2, 2, dt);
            hv[w] = hrand(B * H * Lk[w] * D, -1, 1, dt);
            qs[w][0] = H * Lq[w] * D, qs[w][1] = Lq[w] * D, qs[w][2] = D;
            ks[w][0] = H * Lk[w] * D, ks[w][1] = Lk[w] * D, ks[w][2] = D;
        }
        float *hdo = hrand(no, -1, 1, dt), *ro = hnan(no), *rl = hnan(B * H * L);
        float *rdq[2], *rdk[2], *rdv[2];
        for (int w = 0; w < 2; w++) {  // the CPU, one problem at a time, into the shared buffers
            const int64_t off = w ? Lq[0] * H * D : 0, loff = w ? B * H * Lq[0] : 0;
            C->attn_fwd(ck, CM_F32, B, H, Lq[w], Lk[w], D, scale, ro + off, os, rl + loff, hq[w], qs[w], hk[w], ks[w], hv[w],
                        ks[w], NULL, 0, 0);
        }
        float *hoin = hcopy(ro, no);  // the backward reads O in the storage dtype
        if (dt == CM_BF16)
            for (int64_t i = 0; i < no; i++) hoin[i] = bf16_round(hoin[i]);
        for (int w = 0; w < 2; w++) {
            const int64_t off = w ? Lq[0] * H * D : 0, loff = w ? B * H * Lq[0] : 0;
            rdq[w] = hnan(B * H * Lq[w] * D), rdk[w] = hnan(B * H * Lk[w] * D), rdv[w] = hnan(B * H * Lk[w] * D);
            C->attn_bwd(ck, CM_F32, B, H, Lq[w], Lk[w], D, scale, rdq[w], rdk[w], rdv[w], hdo + off, os, hoin + off, os,
                        rl + loff, hq[w], qs[w], hk[w], ks[w], hv[w], ks[w], NULL, 0, 0);
        }
        void *go = dnan(dt, no), *gdo = up(dt, hdo, no), *goin = up(dt, hoin, no);
        float *gl = dnan(CM_F32, B * H * L), *glin = up(CM_F32, rl, B * H * L);
        cm_attn_problem pf[2], pb[2];
        void *gdq[2], *gdk[2], *gdv[2];
        for (int w = 0; w < 2; w++) {
            const int64_t off = (w ? Lq[0] * H * D : 0) * dsize(dt), loff = w ? B * H * Lq[0] : 0;
            cm_attn_problem p = {B, H, Lq[w], Lk[w], D, scale, NULL, os, NULL, up(dt, hq[w], B * H * Lq[w] * D),
                                 up(dt, hk[w], B * H * Lk[w] * D), up(dt, hv[w], B * H * Lk[w] * D), qs[w], ks[w], ks[w],
                                 NULL, 0, 0, NULL, NULL, NULL, NULL, os};
            pf[w] = p, pf[w].O = (char *)go + off, pf[w].lse = gl + loff;
            gdq[w] = dnan(dt, B * H * Lq[w] * D), gdk[w] = dnan(dt, B * H * Lk[w] * D), gdv[w] = dnan(dt, B * H * Lk[w] * D);
            pb[w] = p, pb[w].O = (char *)goin + off, pb[w].lse = glin + loff;  // the CPU's lse: errors kept apart
            pb[w].dQ = gdq[w], pb[w].dK = gdk[w], pb[w].dV = gdv[w], pb[w].dO = (char *)gdo + off;
        }
        const int64_t forks0 = cuda_side_forks(), pl0 = cuda_attn_wgws_runs(3);
        G->attn_fwd_group(gk, dt, 2, pf);
        G->attn_bwd_group(gk, dt, 2, pb);
        // no pair launch: the second problem on a side stream each way (under CUDA_EMU_DEFER its
        // kernels wait in that stream's queue: a consumer that did not wait for them reads NaN)
        const char *sse = getenv("CAMEO_SIDE_STREAMS");
        if (cuda_attn_wgws_runs(3) == pl0 && !(sse && !strcmp(sse, "0"))) {
            const int64_t forks = cuda_side_forks() - forks0;
            printf("%s  attention %s pair: %lld side-stream forks (want >= 2: one each way)\n", forks >= 2 ? "ok " : "FAIL",
                   dtype_name(dt), (long long)forks);
            TEST_CHECK(forks >= 2, "attention pair (%s): %lld side-stream forks, want >= 2", dtype_name(dt), (long long)forks);
        }
        cmp("attn pair O (both, token-major)", dt, down(dt, go, no), ro, no, TOL(dt, 1e-4, 2e-2));
        cmp("attn pair lse", CM_F32, down(CM_F32, gl, B * H * L), rl, B * H * L, TOL(dt, 1e-5, 1e-2));
        for (int w = 0; w < 2; w++) {
            char what[64];
            snprintf(what, sizeof what, "attn pair %d dQ", w + 1);
            cmp(what, dt, down(dt, gdq[w], B * H * Lq[w] * D), rdq[w], B * H * Lq[w] * D, TOL(dt, 3e-4, 4e-2));
            snprintf(what, sizeof what, "attn pair %d dK", w + 1);
            cmp(what, dt, down(dt, gdk[w], B * H * Lk[w] * D), rdk[w], B * H * Lk[w] * D, TOL(dt, 3e-4, 4e-2));
            snprintf(what, sizeof what, "attn pair %d dV", w + 1);
            cmp(what, dt, down(dt, gdv[w], B * H * Lk[w] * D), rdv[w], B * H * Lk[w] * D, TOL(dt, 3e-4, 4e-2));
        }
        release_all();
    }
    const char *att = getenv("CAMEO_ATTN");
    if (att && !strcmp(att, "wgmma3")) {  // both passes as pair launches, except off Hopper
        const int64_t runs = cuda_attn_wgws_runs(3) - pairs0;
        const char *off = cm_attn_wgmma_off;
        const bool other_gpu = off && strstr(off, "not an sm_90");
        printf("%s  attention: pair launches %lld (want 2: forward, backward)\n", runs == 2 || other_gpu ? "ok " : "FAIL",
               (long long)runs);
        if (!other_gpu) TEST_CHECK(runs == 2, "CAMEO_ATTN=wgmma3: %lld pair launches, want 2", (long long)runs);
    }
}
static void t_attention(void) {
    attention_cases(false);
    attention_pair(false);
}
static void t_attention_picked(void) {
    attention_cases(true);
    attention_pair(true);
}

// the wgmma self-test (cuda_attention_wgmma.cu) passes with the kernels' descriptor strides, and
// with one product's strides swapped it fails and its stride sweep names the kernels' own among
// the pairs that make that product exact (what a Hopper that reads descriptors otherwise would
// report in the same run)
const char *cuda_wgmma_selftest(const cm_kctx *k, int skew);
static void t_wgmma_selftest(void) {
    const char *r = cuda_wgmma_selftest(gk, -1);
    if (r && strstr(r, "no wgmma code")) {
        printf("skip wgmma self-test: %s\n", r);
        return;
    }
    TEST_CHECK(r == NULL, "the wgmma self-test fails with the kernels' strides: %s", r ? r : "");
    static const char *const own[4] = {"(16, 1024)", "(8192, 1024)", "(16, 1024)", "(8192, 1024)"};
    for (int m = 0; m < 4; m++) {
        char msg[700];
        r = cuda_wgmma_selftest(gk, m);
        snprintf(msg, sizeof msg, "%s", r ? r : "(passed)");
        bool ok = r && strstr(r, "exact with") && strstr(strstr(r, "exact with"), own[m]) && !strstr(r, "none of");
        printf("%s  wgmma self-test, product %d with its strides swapped: %s\n", ok ? "ok " : "FAIL", m, msg);
        TEST_CHECK(ok, "wgmma self-test, product %d skewed: the sweep must find %s: %s", m, own[m], msg);
    }
}

// ---------------------------------------------------------------------------------------------
// position, conditioning, images, lookup
// ---------------------------------------------------------------------------------------------
static void t_rope(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t outer = 6, L = 17, D = 24, n = outer * L * D;
        float *hx = hrand(n, -2, 2, dt), *hc = hrand(L * D, -1, 1, dt), *hs = hrand(L * D, -1, 1, dt);
        for (int inv = 0; inv < 2; inv++) {
            float *ry = hnan(n);
            C->rope(ck, CM_F32, CM_F32, outer, L, D, inv, ry, hx, hc, hs);
            void *gx = up(dt, hx, n), *gc = up(dt, hc, L * D), *gs = up(dt, hs, L * D), *gy = dnan(dt, n);
            G->rope(gk, dt, dt, outer, L, D, inv, gy, gx, gc, gs);
            cmp(inv ? "rope inverse" : "rope", dt, down(dt, gy, n), ry, n, TOL(dt, 1e-6, 8e-3));
        }
        release_all();
    }
}

// rms_rope: two streams (text rows first) written into one head-major y; y poisoned, so a row
// either call misses fails; D = 128 (FLUX: two pairs per lane) and 24 (a partial warp of pairs)
static void t_rms_rope(void) {
    const int64_t Ds[2] = {128, 24};
    for (int d = 0; d < 2; d++)
        for (int di = 0; di < 2; di++)
            for (int var = 0; var < 2; var++)
                for (int hw = 0; hw < 2; hw++) {
                    cm_dtype dt = DTS[d];
                    int64_t B = 2, H = 3, D = Ds[di], Ls[2] = {5, 13}, L = Ls[0] + Ls[1], ny = B * H * L * D;
                    double eps = 1e-6;
                    float *hc = hrand(L * D, -1, 1, dt), *hs = hrand(L * D, -1, 1, dt), *hdy = hrand(ny, -1, 1, dt);
                    float *ry = hnan(ny), *rx[2], *ri[2], *rdx[2], *rdw[2], *hwt[2];
                    void *gc = up(dt, hc, L * D), *gs = up(dt, hs, L * D), *gdy = up(dt, hdy, ny), *gy = dnan(dt, ny);
                    void *gx[2], *gw[2], *gdx[2], *gdw[2];
                    float *gi[2];
                    for (int s = 0, l0 = 0; s < 2; l0 += (int)Ls[s], s++) {
                        int64_t n = B * Ls[s] * H * D, rows = B * Ls[s] * H;
                        rx[s] = hrand(n, -2, 2, dt), hwt[s] = hw ? hrand(D, 0.5, 1.5, dt) : NULL;
                        ri[s] = hnan(rows), rdx[s] = hnan(n), rdw[s] = hnan(D);
                        C->rms_rope_fwd(ck, (cm_rmsvariant)var, CM_F32, CM_F32, B, Ls[s], H, D, eps, L, l0, ry, ri[s],
                                        rx[s], hwt[s], hc, hs);
                        C->rms_rope_bwd(ck, (cm_rmsvariant)var, CM_F32, CM_F32, B, Ls[s], H, D, eps, L, l0, rdx[s],
                                        hw ? rdw[s] : NULL, hdy, rx[s], ri[s], hwt[s], hc, hs);
                        gx[s] = up(dt, rx[s], n), gw[s] = hw ? up(dt, hwt[s], D) : NULL;
                        gi[s] = dnan(CM_F32, rows), gdx[s] = dnan(dt, n), gdw[s] = dnan(dt, D);
                        G->rms_rope_fwd(gk, (cm_rmsvariant)var, dt, dt, B, Ls[s], H, D, eps, L, l0, gy, gi[s], gx[s],
                                        gw[s], gc, gs);
                        G->rms_rope_bwd(gk, (cm_rmsvariant)var, dt, dt, B, Ls[s], H, D, eps, L, l0, gdx[s],
                                        hw ? gdw[s] : NULL, gdy, gx[s], gi[s], gw[s], gc, gs);
                    }
                    char what[80];
                    snprintf(what, sizeof what, "rms_rope_fwd D=%lld %s%s", (long long)D, var ? "IC" : "diffusers",
                             hw ? "" : " no w");
                    cmp(what, dt, down(dt, gy, ny), ry, ny, TOL(dt, 1e-5, 1e-2));
                    for (int s = 0; s < 2; s++) {
                        int64_t n = B * Ls[s] * H * D, rows = B * Ls[s] * H;
                        cmp("rms_rope inv", CM_F32, down(CM_F32, gi[s], rows), ri[s], rows, 1e-5);
                        snprintf(what, sizeof what, "rms_rope_bwd dx D=%lld %s seg %d", (long long)D,
                                 var ? "IC" : "diffusers", s);
                        cmp(what, dt, down(dt, gdx[s], n), rdx[s], n, TOL(dt, 1e-4, 2e-2));
                        if (hw) cmp("rms_rope_bwd dw", dt, down(dt, gdw[s], D), rdw[s], D, TOL(dt, 1e-4, 2e-2));
                    }
                    release_all();
                }
}

// bf16 q / k with f32 tables (the FLUX model's, as diffusers' apply_rotary_emb: x upcast, rotated
// in f32, rounded once): each output must be the bf16 rounding of the f32 reference, bar the few a
// contracted multiply-add tips across a rounding boundary, and never a step off. The old path, the
// tables rounded to bf16 first, moves about 1 output in 9 by a step (printed for comparison).
// slack: an absolute error always allowed. 0 for rope (the inputs are the reference's, bit for
// bit); for rms_rope the normalised x differs from the CPU's in its last f32 bits (rsqrt, the sum's
// order), and where the rotation x1 c - x2 s cancels to near 0 that is several bf16 steps of the
// tiny output (the H200 run of session 22: 1 of 13824) — a few f32 ulps of the terms (|x̂ w| < 3,
// |c|, |s| < 1: ~1e-6) is the bound, far below the 2^-8 relative step a wrong rounding makes.
static int64_t off_once_rounded(const float *got, const float *ref, int64_t n, int64_t *far, float slack) {
    int64_t off = 0;
    *far = 0;
    for (int64_t i = 0; i < n; i++) {
        float want = bf16_round(ref[i]);
        if (got[i] == want) continue;
        off++;
        float lo = fminf(got[i], want), hi = fmaxf(got[i], want);
        uint16_t lb = bf16_bits(lo), hb = bf16_bits(hi);
        // adjacent bf16 values of one sign differ by one in their bits (zero's two signs aside)
        bool adjacent = (lb ^ hb) < 0x8000u ? abs((int)lb - (int)hb) == 1 : (lb & 0x7fffu) + (hb & 0x7fffu) <= 1;
        if (!adjacent && fabsf(got[i] - ref[i]) > slack) (*far)++;
    }
    return off;
}
static void check_once_rounded(const char *what, const float *got, const float *ref, int64_t n, float slack) {
    int64_t far, off = off_once_rounded(got, ref, n, &far, slack);
    bool ok = far == 0 && off * 100 <= n;
    test_checks++;
    if (!ok) test_failures++;
    fprintf(ok ? stdout : stderr,
            "%s %-34s bf16 %lld of %lld off the once-rounded f32 result, %lld by more than a step (at most 1%% "
            "off, none by more)\n", ok ? "ok  " : "FAIL", what, (long long)off, (long long)n, (long long)far);
}
static void t_rope_f32_tables(void) {
    const cm_dtype dt = CM_BF16;
    int64_t outer = 6, L = 37, D = 24, n = outer * L * D;
    float *hx = hrand(n, -2, 2, dt), *hc = hrand(L * D, -1, 1, CM_F32), *hs = hrand(L * D, -1, 1, CM_F32);
    for (int inv = 0; inv < 2; inv++) {
        float *ry = hnan(n);
        C->rope(ck, CM_F32, CM_F32, outer, L, D, inv, ry, hx, hc, hs);
        void *gx = up(dt, hx, n), *gy = dnan(dt, n), *gyb = dnan(dt, n);
        G->rope(gk, dt, CM_F32, outer, L, D, inv, gy, gx, up(CM_F32, hc, L * D), up(CM_F32, hs, L * D));
        G->rope(gk, dt, dt, outer, L, D, inv, gyb, gx, up(dt, hc, L * D), up(dt, hs, L * D));
        int64_t far, old = off_once_rounded(down(dt, gyb, n), ry, n, &far, 0);
        printf("     %-34s bf16 tables: %lld of %lld outputs off the once-rounded result\n",
               inv ? "rope inverse" : "rope", (long long)old, (long long)n);
        TEST_CHECK(old * 100 > n, "the check tells tables rounded to bf16 apart (%lld of %lld off)", (long long)old,
                   (long long)n);
        check_once_rounded(inv ? "rope inverse, f32 tables" : "rope, f32 tables", down(dt, gy, n), ry, n, 0);
    }
    release_all();
    // rms_rope: the f32-table kernels forward (once rounded) and backward (as t_rms_rope), two streams
    for (int var = 0; var < 2; var++) {
        int64_t B = 2, H = 3, Dr = 128, Ls[2] = {5, 13}, Lr = Ls[0] + Ls[1], ny = B * H * Lr * Dr;
        float *rc = hrand(Lr * Dr, -1, 1, CM_F32), *rs = hrand(Lr * Dr, -1, 1, CM_F32), *hdy = hrand(ny, -1, 1, dt);
        float *ry = hnan(ny);
        void *gc = up(CM_F32, rc, Lr * Dr), *gs = up(CM_F32, rs, Lr * Dr), *gdy = up(dt, hdy, ny), *gy = dnan(dt, ny);
        for (int s = 0, l0 = 0; s < 2; l0 += (int)Ls[s], s++) {
            int64_t nx = B * Ls[s] * H * Dr, rows = B * Ls[s] * H;
            float *rx = hrand(nx, -2, 2, dt), *hw = hrand(Dr, 0.5, 1.5, dt), *ri = hnan(rows), *rdx = hnan(nx),
                  *rdw = hnan(Dr);
            C->rms_rope_fwd(ck, (cm_rmsvariant)var, CM_F32, CM_F32, B, Ls[s], H, Dr, 1e-6, Lr, l0, ry, ri, rx, hw, rc,
                            rs);
            C->rms_rope_bwd(ck, (cm_rmsvariant)var, CM_F32, CM_F32, B, Ls[s], H, Dr, 1e-6, Lr, l0, rdx, rdw, hdy, rx,
                            ri, hw, rc, rs);
            void *gx = up(dt, rx, nx), *gw = up(dt, hw, Dr), *gdx = dnan(dt, nx), *gdw = dnan(dt, Dr);
            float *gi = dnan(CM_F32, rows);
            G->rms_rope_fwd(gk, (cm_rmsvariant)var, dt, CM_F32, B, Ls[s], H, Dr, 1e-6, Lr, l0, gy, gi, gx, gw, gc, gs);
            G->rms_rope_bwd(gk, (cm_rmsvariant)var, dt, CM_F32, B, Ls[s], H, Dr, 1e-6, Lr, l0, gdx, gdw, gdy, gx, gi,
                            gw, gc, gs);
            cmp(var ? "rms_rope_bwd dx, f32 tables IC" : "rms_rope_bwd dx, f32 tables", dt, down(dt, gdx, nx), rdx,
                nx, 2e-2);
            cmp("rms_rope_bwd dw, f32 tables", dt, down(dt, gdw, Dr), rdw, Dr, 2e-2);
        }
        check_once_rounded(var ? "rms_rope_fwd, f32 tables IC" : "rms_rope_fwd, f32 tables", down(dt, gy, ny), ry,
                           ny, 4e-6f);
        release_all();
    }
}

// kernel scratch on a device full of cached tensor blocks (the caching allocator's free memory):
// the scratch allocation fails, the cache is given back, the scratch taken — the op runs and
// matches the CPU. Opt-in (`--only scratch_cache`): it fills the device, so it runs on the
// emulator capped (CUDA_EMU_MEM, tests/cuda/extra.cmake) or alone on a GPU
static void t_scratch_cache(void) {
    const cm_device dev = {CM_CUDA, 0};
    const int64_t B = 1, Ls = 2048, H = 8, D = 128, n = B * Ls * H * D, rows = B * Ls * H;  // 8 MiB of f32 scratch
    float *hx = hrand(n, -2, 2, CM_F32), *hdy = hrand(n, -1, 1, CM_F32), *hc = hrand(Ls * D, -1, 1, CM_F32),
          *hs = hrand(Ls * D, -1, 1, CM_F32), *hy = hnan(n), *ri = hnan(rows), *rdx = hnan(n);
    C->rms_rope_fwd(ck, CM_RMS_DIFFUSERS, CM_F32, CM_F32, B, Ls, H, D, 1e-6, Ls, 0, hy, ri, hx, NULL, hc, hs);
    C->rms_rope_bwd(ck, CM_RMS_DIFFUSERS, CM_F32, CM_F32, B, Ls, H, D, 1e-6, Ls, 0, rdx, NULL, hdy, hx, ri, NULL, hc,
                    hs);
    void *gx = up(CM_F32, hx, n), *gdy = up(CM_F32, hdy, n), *gc = up(CM_F32, hc, Ls * D), *gs = up(CM_F32, hs, Ls * D);
    void *gi = up(CM_F32, ri, rows), *gdx = dnan(CM_F32, n);
    enum { MAXB = 1 << 16 };
    static void *blk[MAXB];
    const size_t bs = 4 << 20;
    int nb = 0;
    while (nb < MAXB && (blk[nb] = alloc_try(dev, bs))) nb++;
    size_t fr = G->mem_free(gk);
    for (int i = 0; i < nb; i++) alloc_put(dev, blk[i], bs);
    TEST_CHECK(nb > 0 && fr < (size_t)n * 4 && alloc_stats(dev).cached >= (size_t)nb * bs,
               "the device filled with %d cached 4 MiB blocks (%zu bytes left free, the scratch needs %lld)", nb, fr,
               (long long)n * 4);
    G->rms_rope_bwd(gk, CM_RMS_DIFFUSERS, CM_F32, CM_F32, B, Ls, H, D, 1e-6, Ls, 0, gdx, NULL, gdy, gx, gi, NULL, gc,
                    gs);
    cmp("rms_rope_bwd dx, scratch after the cache", CM_F32, down(CM_F32, gdx, n), rdx, n, 1e-4);
    TEST_CHECK(alloc_stats(dev).cached == 0, "the cache was given back for the scratch (%zu bytes still cached)",
               alloc_stats(dev).cached);
    release_all();
}

static void t_modulate(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t B = 2, L = 33, Cc = 70, n = B * L * Cc;
        float *hx = hrand(n, -2, 2, dt), *hsc = hrand(B * Cc, -1, 1, dt), *hsh = hrand(B * Cc, -1, 1, dt),
              *hdy = hrand(n, -1, 1, dt);
        float *ry = hnan(n), *rdx = hnan(n), *rds = hnan(B * Cc), *rdh = hnan(B * Cc);
        C->modulate_fwd(ck, CM_F32, B, L, Cc, ry, hx, hsc, hsh);
        C->modulate_bwd(ck, CM_F32, B, L, Cc, rdx, rds, rdh, hdy, hx, hsc);
        void *gx = up(dt, hx, n), *gsc = up(dt, hsc, B * Cc), *gsh = up(dt, hsh, B * Cc), *gdy = up(dt, hdy, n);
        void *gy = dnan(dt, n), *gdx = dnan(dt, n), *gds = dnan(dt, B * Cc), *gdh = dnan(dt, B * Cc);
        G->modulate_fwd(gk, dt, B, L, Cc, gy, gx, gsc, gsh);
        G->modulate_bwd(gk, dt, B, L, Cc, gdx, gds, gdh, gdy, gx, gsc);
        cmp("modulate_fwd", dt, down(dt, gy, n), ry, n, TOL(dt, 1e-6, 8e-3));
        cmp("modulate_bwd dx", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-6, 8e-3));
        cmp("modulate_bwd dscale", dt, down(dt, gds, B * Cc), rds, B * Cc, TOL(dt, 1e-5, 1e-2));
        cmp("modulate_bwd dshift", dt, down(dt, gdh, B * Cc), rdh, B * Cc, TOL(dt, 1e-5, 1e-2));
        release_all();
    }
}

// LayerNorm fused with the modulation: [2, 300, 136] (16-byte rows; 300 rows per batch: two
// weight-gradient chunks each, 5 column blocks of 32) and [3, 19, 77] (scalar rows, rows of a block
// across batches), with and without w, b
// gated_add: C = 256 takes the 16-byte path, C = 70 the scalar one; out poisoned
static void t_gated_add(void) {
    const int64_t Cs[2] = {256, 70};
    for (int d = 0; d < 2; d++)
        for (int ci = 0; ci < 2; ci++) {
            cm_dtype dt = DTS[d];
            int64_t B = 2, L = 33, Cc = Cs[ci], n = B * L * Cc;
            float *hr = hrand(n, -1, 1, dt), *hg = hrand(B * Cc, -1, 1, dt), *hy = hrand(n, -2, 2, dt), *ro = hnan(n);
            C->gated_add(ck, CM_F32, B, L, Cc, ro, hr, hg, hy);
            void *gr = up(dt, hr, n), *gg = up(dt, hg, B * Cc), *gy = up(dt, hy, n), *go = dnan(dt, n);
            G->gated_add(gk, dt, B, L, Cc, go, gr, gg, gy);
            char what[64];
            snprintf(what, sizeof what, "gated_add C=%lld", (long long)Cc);
            float *hout = down(dt, go, n);
            cmp(what, dt, hout, ro, n, TOL(dt, 1e-6, 8e-3));
            if (dt == CM_BF16) {  // diffusers' bf16 `res + gate * y`: the product rounded, then the sum
                int64_t off = 0;
                for (int64_t i = 0; i < n; i++) {
                    float p = bf16_val(bf16_bits(hg[(i / (L * Cc)) * Cc + i % Cc] * hy[i]));
                    off += hout[i] != bf16_val(bf16_bits(hr[i] + p));
                }
                TEST_CHECK(off == 0, "%s: %lld of %lld outputs not bf16(res + bf16(gate * y))", what, (long long)off,
                           (long long)n);
            }
            release_all();
        }
}

// add_rows: b on the last rows and on all rows, C = 256 (16-byte path) and 70 (scalar); out poisoned
static void t_add_rows(void) {
    const int64_t Cs[2] = {256, 70};
    for (int d = 0; d < 2; d++)
        for (int ci = 0; ci < 2; ci++)
            for (int all = 0; all < 2; all++) {
                cm_dtype dt = DTS[d];
                int64_t B = 2, L = 29, Cc = Cs[ci], Lb = all ? L : 21, row0 = L - Lb, n = B * L * Cc;
                float *ha = hrand(n, -1, 1, dt), *hb = hrand(B * Lb * Cc, -2, 2, dt), *ro = hnan(n);
                C->add_rows(ck, CM_F32, B, L, Cc, row0, Lb, 0.7, ro, ha, hb);
                void *ga = up(dt, ha, n), *gb = up(dt, hb, B * Lb * Cc), *go = dnan(dt, n);
                G->add_rows(gk, dt, B, L, Cc, row0, Lb, 0.7, go, ga, gb);
                char what[64];
                snprintf(what, sizeof what, "add_rows C=%lld rows %lld..%lld", (long long)Cc, (long long)row0,
                         (long long)L);
                float *hout = down(dt, go, n);
                cmp(what, dt, hout, ro, n, TOL(dt, 1e-6, 8e-3));
                if (dt == CM_BF16) {  // InstantCharacter's bf16 `hs + ip_out * scale`: the product rounded, then the sum
                    int64_t off = 0;
                    for (int64_t i = 0; i < n; i++) {
                        int64_t r = i / Cc, l = r % L, bi = r / L;
                        float want = ha[i];
                        if (l >= row0)
                            want = bf16_val(bf16_bits(ha[i] + bf16_val(bf16_bits(0.7f * hb[(bi * Lb + l - row0) * Cc + i % Cc]))));
                        off += hout[i] != want;
                    }
                    TEST_CHECK(off == 0, "%s: %lld of %lld outputs not bf16(a + bf16(alpha * b))", what, (long long)off,
                               (long long)n);
                }
                release_all();
            }
}

static void t_layernorm_mod(void) {
    const int64_t shapes[2][3] = {{2, 300, 136}, {3, 19, 77}};
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int sI = 0; sI < 2; sI++)
            for (int affine = 0; affine < 2; affine++) {
                int64_t B = shapes[sI][0], L = shapes[sI][1], Cc = shapes[sI][2], n = B * L * Cc, rows = B * L;
                float *hx = hrand(n, -2, 3, dt), *hw = hrand(Cc, 0.5, 1.5, dt), *hb = hrand(Cc, -1, 1, dt);
                float *hsc = hrand(B * Cc, -1, 1, dt), *hsh = hrand(B * Cc, -1, 1, dt), *hdy = hrand(n, -1, 1, dt);
                const float *w = affine ? hw : NULL, *b = affine ? hb : NULL;
                float *ry = hnan(n), *rm = hnan(rows), *rr = hnan(rows), *rdx = hnan(n), *rdw = hnan(Cc),
                      *rdb = hnan(Cc), *rds = hnan(B * Cc), *rdh = hnan(B * Cc);
                C->layernorm_mod_fwd(ck, CM_F32, B, L, Cc, 1e-6, ry, rm, rr, hx, w, b, hsc, hsh);
                C->layernorm_mod_bwd(ck, CM_F32, B, L, Cc, rdx, affine ? rdw : NULL, affine ? rdb : NULL, rds, rdh, hdy,
                                     hx, rm, rr, w, b, hsc);
                void *gx = up(dt, hx, n), *gw = affine ? up(dt, hw, Cc) : NULL, *gb = affine ? up(dt, hb, Cc) : NULL;
                void *gsc = up(dt, hsc, B * Cc), *gsh = up(dt, hsh, B * Cc), *gdy = up(dt, hdy, n);
                void *gy = dnan(dt, n), *gdx = dnan(dt, n), *gdw = dnan(dt, Cc), *gdb = dnan(dt, Cc);
                void *gds = dnan(dt, B * Cc), *gdh = dnan(dt, B * Cc);
                float *gm = dnan(CM_F32, rows), *gr = dnan(CM_F32, rows);
                G->layernorm_mod_fwd(gk, dt, B, L, Cc, 1e-6, gy, gm, gr, gx, gw, gb, gsc, gsh);
                G->layernorm_mod_bwd(gk, dt, B, L, Cc, gdx, affine ? gdw : NULL, affine ? gdb : NULL, gds, gdh, gdy, gx,
                                     gm, gr, gw, gb, gsc);
                char what[80], tag[40];
                snprintf(tag, sizeof tag, "[%lld,%lld,%lld]%s", (long long)B, (long long)L, (long long)Cc,
                         affine ? " w,b" : "");
                snprintf(what, sizeof what, "layernorm_mod_fwd %s", tag);
                float *hy = down(dt, gy, n);
                cmp(what, dt, hy, ry, n, TOL(dt, 1e-5, 1e-2));
                if (dt == CM_BF16) {
                    // rounded where diffusers' bf16 `norm(x) * (1 + scale) + shift` rounds: the norm,
                    // 1 + scale, the product and the sum; the f32 result rounded once moves ~1 in 3
                    int64_t off = 0;
                    for (int64_t r = 0; r < rows; r++) {
                        const float *xr = hx + r * Cc, *sc = hsc + (r / L) * Cc, *sh = hsh + (r / L) * Cc;
                        double mu = 0, var = 0;
                        for (int64_t c = 0; c < Cc; c++) mu += xr[c];
                        mu /= Cc;
                        for (int64_t c = 0; c < Cc; c++) var += (xr[c] - mu) * (xr[c] - mu);
                        double rs = 1 / sqrt(var / Cc + 1e-6);
                        for (int64_t c = 0; c < Cc; c++) {
                            float a = bf16_val(bf16_bits((float)((xr[c] - mu) * rs * (w ? w[c] : 1) + (b ? b[c] : 0))));
                            float s1 = bf16_val(bf16_bits(1.f + sc[c]));
                            float want = bf16_val(bf16_bits(bf16_val(bf16_bits(a * s1)) + sh[c]));
                            off += hy[r * Cc + c] != want;
                        }
                    }
                    TEST_CHECK(off * 100 <= n, "%s: %lld of %lld outputs not rounded as diffusers' bf16 modulation",
                               what, (long long)off, (long long)n);
                }
                cmp("layernorm_mod mean", CM_F32, down(CM_F32, gm, rows), rm, rows, 1e-5);
                cmp("layernorm_mod rstd", CM_F32, down(CM_F32, gr, rows), rr, rows, 1e-5);
                snprintf(what, sizeof what, "layernorm_mod_bwd dx %s", tag);
                cmp(what, dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
                cmp("layernorm_mod_bwd dscale", dt, down(dt, gds, B * Cc), rds, B * Cc, TOL(dt, 1e-4, 2e-2));
                cmp("layernorm_mod_bwd dshift", dt, down(dt, gdh, B * Cc), rdh, B * Cc, TOL(dt, 1e-5, 1e-2));
                if (affine) {
                    cmp("layernorm_mod_bwd dw", dt, down(dt, gdw, Cc), rdw, Cc, TOL(dt, 1e-4, 2e-2));
                    cmp("layernorm_mod_bwd db", dt, down(dt, gdb, Cc), rdb, Cc, TOL(dt, 1e-5, 1e-2));
                }
                release_all();
            }
    }
}

static void t_timestep(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int flip = 0; flip < 2; flip++) {
            int64_t B = 5, dim = flip ? 33 : 256;
            double shift = flip ? 0 : 1;
            float *ht = hrand(B, 0, 1000, dt), *hdy = hrand(B * dim, -1, 1, dt);
            float *ry = hnan(B * dim), *rdt = hnan(B);
            C->timestep_fwd(ck, CM_F32, B, dim, flip, shift, 10000, ry, ht);
            C->timestep_bwd(ck, CM_F32, B, dim, flip, shift, 10000, rdt, ht, hdy);
            void *gt = up(dt, ht, B), *gdy = up(dt, hdy, B * dim), *gy = dnan(dt, B * dim), *gdt = dnan(dt, B);
            G->timestep_fwd(gk, dt, B, dim, flip, shift, 10000, gy, gt);
            G->timestep_bwd(gk, dt, B, dim, flip, shift, 10000, gdt, gt, gdy);
            // t up to 1000: sin(t f) is sensitive to f's last bit, hence 1e-4 for f32
            cmp(flip ? "timestep_fwd flip dim=33" : "timestep_fwd shift=1", dt, down(dt, gy, B * dim), ry, B * dim,
                TOL(dt, 1e-4, 1e-2));
            cmp(flip ? "timestep_bwd flip" : "timestep_bwd", dt, down(dt, gdt, B), rdt, B, TOL(dt, 1e-3, 2e-2));
            release_all();
        }
    }
}

static void t_im2col(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t Cc = 3, H = 9, W = 11, kh = 3, kw = 3, st = 2, pad = 1;
        int64_t OH = (H + 2 * pad - kh) / st + 1, OW = (W + 2 * pad - kw) / st + 1;
        int64_t nx = Cc * H * W, ncol = Cc * kh * kw * OH * OW;
        float *hx = hrand(nx, -1, 1, dt), *hcol = hrand(ncol, -1, 1, dt), *hx0 = hrand(nx, -1, 1, dt);
        float *rcol = hnan(ncol), *rx = hcopy(hx0, nx);
        C->im2col(ck, CM_F32, Cc, H, W, kh, kw, st, pad, OH, OW, rcol, hx);
        C->col2im(ck, CM_F32, Cc, H, W, kh, kw, st, pad, OH, OW, rx, hcol);
        void *gx = up(dt, hx, nx), *gcol = dnan(dt, ncol), *gcin = up(dt, hcol, ncol), *gx0 = up(dt, hx0, nx);
        G->im2col(gk, dt, Cc, H, W, kh, kw, st, pad, OH, OW, gcol, gx);
        G->col2im(gk, dt, Cc, H, W, kh, kw, st, pad, OH, OW, gx0, gcin);
        cmp("im2col", dt, down(dt, gcol, ncol), rcol, ncol, 0);
        cmp("col2im (accumulates)", dt, down(dt, gx0, nx), rx, nx, TOL(dt, 1e-6, 8e-3));
        release_all();
    }
}

static void t_bicubic(void) {
    const int64_t sz[2][4] = {{8, 10, 13, 7}, {12, 12, 5, 30}};
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        for (int c = 0; c < 2; c++) {
            int64_t NC = 3, IH = sz[c][0], IW = sz[c][1], OH = sz[c][2], OW = sz[c][3];
            int64_t nin = NC * IH * IW, nout = NC * OH * OW;
            float *hx = hrand(nin, -1, 1, dt), *hdy = hrand(nout, -1, 1, dt), *ry = hnan(nout), *rdx = hnan(nin);
            C->bicubic_fwd(ck, CM_F32, NC, IH, IW, OH, OW, ry, hx);
            C->bicubic_bwd(ck, CM_F32, NC, IH, IW, OH, OW, rdx, hdy);
            void *gx = up(dt, hx, nin), *gdy = up(dt, hdy, nout), *gy = dnan(dt, nout), *gdx = dnan(dt, nin);
            G->bicubic_fwd(gk, dt, NC, IH, IW, OH, OW, gy, gx);
            G->bicubic_bwd(gk, dt, NC, IH, IW, OH, OW, gdx, gdy);
            cmp("bicubic_fwd", dt, down(dt, gy, nout), ry, nout, TOL(dt, 1e-5, 1e-2));
            cmp("bicubic_bwd", dt, down(dt, gdx, nin), rdx, nin, TOL(dt, 1e-5, 1e-2));
            release_all();
        }
    }
}

static void t_lookup(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        int64_t n = 40, D = 24, rows = 7;
        int32_t idx[40];
        for (int i = 0; i < 40; i++) idx[i] = (int32_t)(urand() * rows);
        float *ht = hrand(rows * D, -1, 1, dt), *hdy = hrand(n * D, -1, 1, dt), *hd0 = hrand(rows * D, -1, 1, dt);
        float *ry = hnan(n * D), *rdt = hcopy(hd0, rows * D);
        C->gather_rows(ck, CM_F32, n, D, ry, ht, idx);
        C->scatter_add_rows(ck, CM_F32, n, D, rdt, hdy, idx);
        int32_t *gidx = dalloc(CM_I32, n);
        G->memcpy_h2d(gk, gidx, idx, sizeof idx);
        void *gt = up(dt, ht, rows * D), *gy = dnan(dt, n * D), *gdy = up(dt, hdy, n * D), *gdt = up(dt, hd0, rows * D);
        G->gather_rows(gk, dt, n, D, gy, gt, gidx);
        G->scatter_add_rows(gk, dt, n, D, gdt, gdy, gidx);
        cmp("gather_rows", dt, down(dt, gy, n * D), ry, n * D, 0);
        // bf16 accumulates in bf16 (atomics on the stored values): a few roundings per element
        cmp("scatter_add_rows", dt, down(dt, gdt, rows * D), rdt, rows * D, TOL(dt, 1e-6, 3e-2));
        release_all();
    }
}

// ---------------------------------------------------------------------------------------------
// views at odd element offsets: a narrow / a parameter inside a flat buffer starts off 16-byte
// alignment while its rows are whole vectors (cols a multiple of 8). Every vectorised kernel must
// take its scalar path there (a real GPU faults on a misaligned 16-byte access; the emulator's
// sanitizer tree reports it). Each op runs with every operand at offset 1 and is compared with the CPU.
// ---------------------------------------------------------------------------------------------
// device copy of n values at element offset off of a fresh buffer (off elements of padding before)
static void *up_at(cm_dtype dt, const float *h, int64_t n, int64_t off) {
    float *pad = hmalloc((size_t)(n + off) * sizeof(float));
    for (int64_t i = 0; i < off; i++) pad[i] = 0.f;
    memcpy(pad + off, h, (size_t)n * sizeof(float));
    return (char *)up(dt, pad, n + off) + off * dsize(dt);
}
static void *dnan_at(cm_dtype dt, int64_t n, int64_t off) { return (char *)dnan(dt, n + off) + off * dsize(dt); }

static void t_misaligned(void) {
    const int64_t O = 1;  // the offset of every operand, in elements
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        const int64_t R = 6, Cc = 64, n = R * Cc;  // rows of 64: whole 16-byte vectors in both dtypes
        float *hx = hrand(n, -2, 2, dt), *hy = hrand(n, -1, 1, dt), *hw = hrand(Cc, 0.5, 1.5, dt),
              *hb = hrand(Cc, -1, 1, dt);
        void *gx = up_at(dt, hx, n, O), *gy = up_at(dt, hy, n, O), *gw = up_at(dt, hw, Cc, O), *gb = up_at(dt, hb, Cc, O);
        // copy_strided, same dtype, last axis contiguous: rows 0..63 of 72-wide rows
        {
            const int64_t sh[2] = {R, Cc}, sst[2] = {72, 1}, dst[2] = {Cc, 1};
            float *hs = hrand(R * 72, -1, 1, dt), *ref = hnan(n);
            C->copy_strided(ck, 2, sh, CM_F32, ref, dst, CM_F32, hs, sst);
            void *gs = up_at(dt, hs, R * 72, O), *go = dnan_at(dt, n, O);
            G->copy_strided(gk, 2, sh, dt, go, dst, dt, gs, sst);
            cmp("misaligned copy_strided", dt, down(dt, go, n), ref, n, 0);
        }
        // binary: both contiguous; b a row broadcast over rows; b [B, 1, W] against a [B, R, W]; b a scalar
        {
            const int64_t sh[2] = {R, Cc}, st[2] = {Cc, 1}, rst[2] = {0, 1}, sst[2] = {0, 0};
            const int64_t sh3[3] = {2, 3, Cc}, st3[3] = {3 * Cc, Cc, 1}, mst[3] = {Cc, 0, 1};
            const struct { const char *what; int nd; const int64_t *sh, *bst; } bc[4] = {
                {"misaligned binary", 2, sh, st}, {"misaligned binary row", 2, sh, rst},
                {"misaligned binary mid", 3, sh3, mst}, {"misaligned binary scalar", 2, sh, sst}};
            for (int c = 0; c < 4; c++) {
                const int64_t *ast = bc[c].nd == 2 ? st : st3;
                float *ref = hnan(n);
                C->binary(ck, CM_BIN_MUL, CM_F32, bc[c].nd, bc[c].sh, ref, hx, ast, hy, bc[c].bst);
                void *go = dnan_at(dt, n, O);
                G->binary(gk, CM_BIN_MUL, dt, bc[c].nd, bc[c].sh, go, gx, ast, gy, bc[c].bst);
                cmp(bc[c].what, dt, down(dt, go, n), ref, n, TOL(dt, 1e-6, 8e-3));
            }
        }
        // unary forward / backward
        {
            float *ry = hnan(n), *rdx = hnan(n);
            C->unary_fwd(ck, CM_UN_SILU, CM_F32, n, ry, hx);
            C->unary_bwd(ck, CM_UN_SILU, CM_F32, n, rdx, hx, hy);
            void *go = dnan_at(dt, n, O), *gdx = dnan_at(dt, n, O);
            G->unary_fwd(gk, CM_UN_SILU, dt, n, go, gx);
            G->unary_bwd(gk, CM_UN_SILU, dt, n, gdx, gx, gy);
            cmp("misaligned unary_fwd", dt, down(dt, go, n), ry, n, TOL(dt, 1e-5, 1e-2));
            cmp("misaligned unary_bwd", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-5, 1e-2));
        }
        // softmax forward / backward
        {
            float *ry = hnan(n), *rdx = hnan(n);
            C->softmax_fwd(ck, CM_F32, R, Cc, ry, hx);
            float *hsy = hcopy(ry, n);
            if (dt == CM_BF16)
                for (int64_t i = 0; i < n; i++) hsy[i] = bf16_round(hsy[i]);
            C->softmax_bwd(ck, CM_F32, R, Cc, rdx, hsy, hy);
            void *go = dnan_at(dt, n, O), *gsy = up_at(dt, hsy, n, O), *gdx = dnan_at(dt, n, O);
            G->softmax_fwd(gk, dt, R, Cc, go, gx);
            G->softmax_bwd(gk, dt, R, Cc, gdx, gsy, gy);
            cmp("misaligned softmax_fwd", dt, down(dt, go, n), ry, n, TOL(dt, 1e-5, 2e-2));
            cmp("misaligned softmax_bwd", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-5, 2e-2));
        }
        // layernorm and rmsnorm, forward and backward
        {
            float *ry = hnan(n), *rm = hnan(R), *rr = hnan(R), *rdx = hnan(n), *rdw = hnan(Cc), *rdb = hnan(Cc);
            C->layernorm_fwd(ck, CM_F32, R, Cc, 1e-5, ry, rm, rr, hx, hw, hb);
            C->layernorm_bwd(ck, CM_F32, R, Cc, rdx, rdw, rdb, hy, hx, rm, rr, hw);
            void *go = dnan_at(dt, n, O), *gdx = dnan_at(dt, n, O), *gdw = dnan_at(dt, Cc, O), *gdb = dnan_at(dt, Cc, O);
            float *gm = dnan_at(CM_F32, R, O), *gr = dnan_at(CM_F32, R, O);
            G->layernorm_fwd(gk, dt, R, Cc, 1e-5, go, gm, gr, gx, gw, gb);
            G->layernorm_bwd(gk, dt, R, Cc, gdx, gdw, gdb, gy, gx, gm, gr, gw);
            cmp("misaligned layernorm_fwd", dt, down(dt, go, n), ry, n, TOL(dt, 1e-5, 1e-2));
            cmp("misaligned layernorm_bwd dx", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
            cmp("misaligned layernorm_bwd dw", dt, down(dt, gdw, Cc), rdw, Cc, TOL(dt, 1e-4, 2e-2));
            cmp("misaligned layernorm_bwd db", dt, down(dt, gdb, Cc), rdb, Cc, TOL(dt, 1e-5, 1e-2));
            float *ri = hnan(R);
            C->rmsnorm_fwd(ck, CM_RMS_DIFFUSERS, CM_F32, R, Cc, 1e-6, ry, ri, hx, hw);
            C->rmsnorm_bwd(ck, CM_RMS_DIFFUSERS, CM_F32, R, Cc, 1e-6, rdx, rdw, hy, hx, ri, hw);
            float *gi = dnan_at(CM_F32, R, O);
            G->rmsnorm_fwd(gk, CM_RMS_DIFFUSERS, dt, R, Cc, 1e-6, go, gi, gx, gw);
            G->rmsnorm_bwd(gk, CM_RMS_DIFFUSERS, dt, R, Cc, 1e-6, gdx, gdw, gy, gx, gi, gw);
            cmp("misaligned rmsnorm_fwd", dt, down(dt, go, n), ry, n, TOL(dt, 1e-5, 1e-2));
            cmp("misaligned rmsnorm_bwd dx", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
            cmp("misaligned rmsnorm_bwd dw", dt, down(dt, gdw, Cc), rdw, Cc, TOL(dt, 1e-4, 2e-2));
        }
        // the adaLN-modulated layernorm, the gated residual, add_rows, modulate: [B, L, C] = [2, 3, 64]
        {
            const int64_t B = 2, L = 3;
            float *hsc = hrand(B * Cc, -0.5, 0.5, dt), *hsh = hrand(B * Cc, -0.5, 0.5, dt);
            void *gsc = up_at(dt, hsc, B * Cc, O), *gsh = up_at(dt, hsh, B * Cc, O);
            float *ry = hnan(n), *rm = hnan(R), *rr = hnan(R), *rdx = hnan(n), *rdw = hnan(Cc), *rdb = hnan(Cc),
                  *rds = hnan(B * Cc), *rdh = hnan(B * Cc);
            C->layernorm_mod_fwd(ck, CM_F32, B, L, Cc, 1e-6, ry, rm, rr, hx, hw, hb, hsc, hsh);
            C->layernorm_mod_bwd(ck, CM_F32, B, L, Cc, rdx, rdw, rdb, rds, rdh, hy, hx, rm, rr, hw, hb, hsc);
            void *go = dnan_at(dt, n, O), *gdx = dnan_at(dt, n, O), *gdw = dnan_at(dt, Cc, O), *gdb = dnan_at(dt, Cc, O),
                 *gds = dnan_at(dt, B * Cc, O), *gdh = dnan_at(dt, B * Cc, O);
            float *gm = dnan_at(CM_F32, R, O), *gr = dnan_at(CM_F32, R, O);
            G->layernorm_mod_fwd(gk, dt, B, L, Cc, 1e-6, go, gm, gr, gx, gw, gb, gsc, gsh);
            G->layernorm_mod_bwd(gk, dt, B, L, Cc, gdx, gdw, gdb, gds, gdh, gy, gx, gm, gr, gw, gb, gsc);
            cmp("misaligned layernorm_mod_fwd", dt, down(dt, go, n), ry, n, TOL(dt, 1e-5, 1e-2));
            cmp("misaligned layernorm_mod_bwd dx", dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
            cmp("misaligned layernorm_mod_bwd dw", dt, down(dt, gdw, Cc), rdw, Cc, TOL(dt, 1e-4, 2e-2));
            cmp("misaligned layernorm_mod_bwd dscale", dt, down(dt, gds, B * Cc), rds, B * Cc, TOL(dt, 1e-4, 2e-2));
            C->gated_add(ck, CM_F32, B, L, Cc, ry, hx, hsc, hy);
            G->gated_add(gk, dt, B, L, Cc, go, gx, gsc, gy);
            cmp("misaligned gated_add", dt, down(dt, go, n), ry, n, TOL(dt, 1e-6, 8e-3));
            float *hr = hrand(B * 2 * Cc, -1, 1, dt);
            void *gra = up_at(dt, hr, B * 2 * Cc, O);
            C->add_rows(ck, CM_F32, B, L, Cc, 1, 2, 0.7, ry, hx, hr);
            G->add_rows(gk, dt, B, L, Cc, 1, 2, 0.7, go, gx, gra);
            cmp("misaligned add_rows", dt, down(dt, go, n), ry, n, TOL(dt, 1e-6, 8e-3));
            C->modulate_fwd(ck, CM_F32, B, L, Cc, ry, hx, hsc, hsh);
            G->modulate_fwd(gk, dt, B, L, Cc, go, gx, gsc, gsh);
            cmp("misaligned modulate_fwd", dt, down(dt, go, n), ry, n, TOL(dt, 1e-6, 8e-3));
        }
        // RoPE on [2, 3, 64] with [3, 64] tables
        {
            float *hc = hrand(3 * Cc, -1, 1, dt), *hs = hrand(3 * Cc, -1, 1, dt), *ry = hnan(n);
            C->rope(ck, CM_F32, CM_F32, 2, 3, Cc, 0, ry, hx, hc, hs);
            void *gc = up_at(dt, hc, 3 * Cc, O), *gs = up_at(dt, hs, 3 * Cc, O), *go = dnan_at(dt, n, O);
            G->rope(gk, dt, dt, 2, 3, Cc, 0, go, gx, gc, gs);
            cmp("misaligned rope", dt, down(dt, go, n), ry, n, TOL(dt, 1e-6, 8e-3));
        }
        release_all();
        // attention: Q, K, V, O, dO one element off, head dims 64 and 72, tile-edge token counts
        const int64_t Ds[2] = {64, 72};
        for (int c = 0; c < 2; c++) {
            const int64_t B = 1, H = 2, Lq = 65, Lk = 63, D = Ds[c], nq = B * H * Lq * D, nk = B * H * Lk * D;
            const double scale = 1.0 / sqrt((double)D);
            const int64_t qs[3] = {H * Lq * D, Lq * D, D}, ks[3] = {H * Lk * D, Lk * D, D};
            float *hq = hrand(nq, -2, 2, dt), *hk = hrand(nk, -2, 2, dt), *hv = hrand(nk, -1, 1, dt), *hdo = hrand(nq, -1, 1, dt);
            float *ro = hnan(nq), *rl = hnan(B * H * Lq), *rdq = hnan(nq), *rdk = hnan(nk), *rdv = hnan(nk);
            C->attn_fwd(ck, CM_F32, B, H, Lq, Lk, D, scale, ro, NULL, rl, hq, qs, hk, ks, hv, ks, NULL, 0, 0);
            float *hoin = hcopy(ro, nq);
            if (dt == CM_BF16)
                for (int64_t i = 0; i < nq; i++) hoin[i] = bf16_round(hoin[i]);
            C->attn_bwd(ck, CM_F32, B, H, Lq, Lk, D, scale, rdq, rdk, rdv, hdo, NULL, hoin, NULL, rl, hq, qs, hk, ks, hv, ks,
                        NULL, 0, 0);
            void *gq = up_at(dt, hq, nq, O), *gkk = up_at(dt, hk, nk, O), *gv = up_at(dt, hv, nk, O);
            void *gdo = up_at(dt, hdo, nq, O), *goin = up_at(dt, hoin, nq, O);
            void *go = dnan_at(dt, nq, O), *gdq = dnan_at(dt, nq, O), *gdk = dnan_at(dt, nk, O), *gdv = dnan_at(dt, nk, O);
            float *gl = dnan(CM_F32, B * H * Lq), *glin = up(CM_F32, rl, B * H * Lq);
            G->attn_fwd(gk, dt, B, H, Lq, Lk, D, scale, go, NULL, gl, gq, qs, gkk, ks, gv, ks, NULL, 0, 0);
            G->attn_bwd(gk, dt, B, H, Lq, Lk, D, scale, gdq, gdk, gdv, gdo, NULL, goin, NULL, glin, gq, qs, gkk, ks, gv, ks,
                        NULL, 0, 0);
            char what[64];
            snprintf(what, sizeof what, "misaligned attn_fwd O D=%lld", (long long)D);
            cmp(what, dt, down(dt, go, nq), ro, nq, TOL(dt, 1e-4, 2e-2));
            snprintf(what, sizeof what, "misaligned attn_bwd dQ D=%lld", (long long)D);
            cmp(what, dt, down(dt, gdq, nq), rdq, nq, TOL(dt, 3e-4, 4e-2));
            snprintf(what, sizeof what, "misaligned attn_bwd dK D=%lld", (long long)D);
            cmp(what, dt, down(dt, gdk, nk), rdk, nk, TOL(dt, 3e-4, 4e-2));
            snprintf(what, sizeof what, "misaligned attn_bwd dV D=%lld", (long long)D);
            cmp(what, dt, down(dt, gdv, nk), rdv, nk, TOL(dt, 3e-4, 4e-2));
            release_all();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// no rows (L = 0 tokens, N = 0 images, a 0 x 0 map): the parameter gradients are sums over no
// rows, so zero — as the CPU writes them — never the poison left in the output buffer
// ---------------------------------------------------------------------------------------------
static void zeros_like_cpu(const char *what, cm_dtype dt, const void *g, const float *ref, int64_t n) {
    cmp(what, dt, down(dt, g, n), ref, n, 0);
}
static void t_zero_rows(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        const int64_t B = 2, Cc = 40;
        float *hw = hrand(Cc, 0.5, 1.5, dt), *hsc = hrand(B * Cc, -0.5, 0.5, dt), *dummy = hrand(16, -1, 1, dt);
        void *gw = up(dt, hw, Cc), *gsc = up(dt, hsc, B * Cc), *gdummy = up(dt, dummy, 16);
        float *gst = up(CM_F32, dummy, 16);
        // modulate (and the gated residual's dgate, the same call) over L = 0 tokens
        float *rds = hnan(B * Cc), *rdh = hnan(B * Cc);
        C->modulate_bwd(ck, CM_F32, B, 0, Cc, dummy, rds, rdh, dummy, dummy, hsc);
        void *gds = dnan(dt, B * Cc), *gdh = dnan(dt, B * Cc);
        G->modulate_bwd(gk, dt, B, 0, Cc, gdummy, gds, gdh, gdummy, gdummy, gsc);
        zeros_like_cpu("modulate_bwd L=0 dscale", dt, gds, rds, B * Cc);
        zeros_like_cpu("modulate_bwd L=0 dshift", dt, gdh, rdh, B * Cc);
        // layernorm / rmsnorm over no rows
        float *rdw = hnan(Cc), *rdb = hnan(Cc);
        C->layernorm_bwd(ck, CM_F32, 0, Cc, dummy, rdw, rdb, dummy, dummy, (float *)dummy, (float *)dummy, hw);
        void *gdw = dnan(dt, Cc), *gdb = dnan(dt, Cc);
        G->layernorm_bwd(gk, dt, 0, Cc, gdummy, gdw, gdb, gdummy, gdummy, gst, gst, gw);
        zeros_like_cpu("layernorm_bwd rows=0 dw", dt, gdw, rdw, Cc);
        zeros_like_cpu("layernorm_bwd rows=0 db", dt, gdb, rdb, Cc);
        float *rdw2 = hnan(Cc);
        C->rmsnorm_bwd(ck, CM_RMS_DIFFUSERS, CM_F32, 0, Cc, 1e-6, dummy, rdw2, dummy, dummy, (float *)dummy, hw);
        void *gdw2 = dnan(dt, Cc);
        G->rmsnorm_bwd(gk, CM_RMS_DIFFUSERS, dt, 0, Cc, 1e-6, gdummy, gdw2, gdummy, gdummy, gst, gw);
        zeros_like_cpu("rmsnorm_bwd rows=0 dw", dt, gdw2, rdw2, Cc);
        // groupnorm over no images, and over 0 x 0 maps
        const int64_t NHW[2][2] = {{0, 9}, {2, 0}};
        for (int c = 0; c < 2; c++) {
            float *rgw = hnan(Cc), *rgb = hnan(Cc);
            C->groupnorm_bwd(ck, CM_F32, NHW[c][0], Cc, NHW[c][1], 4, dummy, rgw, rgb, dummy, dummy, (float *)dummy,
                             (float *)dummy, hw);
            void *ggw = dnan(dt, Cc), *ggb = dnan(dt, Cc);
            G->groupnorm_bwd(gk, dt, NHW[c][0], Cc, NHW[c][1], 4, gdummy, ggw, ggb, gdummy, gdummy, gst, gst, gw);
            zeros_like_cpu(c ? "groupnorm_bwd HW=0 dw" : "groupnorm_bwd N=0 dw", dt, ggw, rgw, Cc);
            zeros_like_cpu(c ? "groupnorm_bwd HW=0 db" : "groupnorm_bwd N=0 db", dt, ggb, rgb, Cc);
        }
        release_all();
    }
}

// ---------------------------------------------------------------------------------------------
// odd shapes at the tiles' edges: one query / one key, token counts one past and one short of a
// tile, rows wider than a block's reduction, a single column
// ---------------------------------------------------------------------------------------------
static void t_edges(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = DTS[d];
        // attention: Lq, Lk in {1, 63, 65} for head dims 64, 72, 128
        const int64_t Ls[3] = {1, 63, 65}, Ds[3] = {64, 72, 128};
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                const int64_t B = 1, H = 1, Lq = Ls[a], Lk = Ls[b], D = Ds[(a + b) % 3], nq = Lq * D, nk = Lk * D;
                const double scale = 1.0 / sqrt((double)D);
                const int64_t qs[3] = {H * Lq * D, Lq * D, D}, ks[3] = {H * Lk * D, Lk * D, D};
                float *hq = hrand(nq, -2, 2, dt), *hk = hrand(nk, -2, 2, dt), *hv = hrand(nk, -1, 1, dt), *hdo = hrand(nq, -1, 1, dt);
                float *ro = hnan(nq), *rl = hnan(Lq), *rdq = hnan(nq), *rdk = hnan(nk), *rdv = hnan(nk);
                C->attn_fwd(ck, CM_F32, B, H, Lq, Lk, D, scale, ro, NULL, rl, hq, qs, hk, ks, hv, ks, NULL, 0, 0);
                float *hoin = hcopy(ro, nq);
                if (dt == CM_BF16)
                    for (int64_t i = 0; i < nq; i++) hoin[i] = bf16_round(hoin[i]);
                C->attn_bwd(ck, CM_F32, B, H, Lq, Lk, D, scale, rdq, rdk, rdv, hdo, NULL, hoin, NULL, rl, hq, qs, hk, ks, hv,
                            ks, NULL, 0, 0);
                void *gq = up(dt, hq, nq), *gkk = up(dt, hk, nk), *gv = up(dt, hv, nk), *gdo = up(dt, hdo, nq),
                     *goin = up(dt, hoin, nq);
                void *go = dnan(dt, nq), *gdq = dnan(dt, nq), *gdk = dnan(dt, nk), *gdv = dnan(dt, nk);
                float *gl = dnan(CM_F32, Lq), *glin = up(CM_F32, rl, Lq);
                G->attn_fwd(gk, dt, B, H, Lq, Lk, D, scale, go, NULL, gl, gq, qs, gkk, ks, gv, ks, NULL, 0, 0);
                G->attn_bwd(gk, dt, B, H, Lq, Lk, D, scale, gdq, gdk, gdv, gdo, NULL, goin, NULL, glin, gq, qs, gkk, ks, gv,
                            ks, NULL, 0, 0);
                char what[80];
                snprintf(what, sizeof what, "attn Lq=%lld Lk=%lld D=%lld O", (long long)Lq, (long long)Lk, (long long)D);
                cmp(what, dt, down(dt, go, nq), ro, nq, TOL(dt, 1e-4, 2e-2));
                if (Lk > 1) {  // one key: P = 1, so dQ and dK are 0 (the reference holds rounding noise)
                    snprintf(what, sizeof what, "attn Lq=%lld Lk=%lld D=%lld dQ", (long long)Lq, (long long)Lk, (long long)D);
                    cmp(what, dt, down(dt, gdq, nq), rdq, nq, TOL(dt, 3e-4, 4e-2));
                    snprintf(what, sizeof what, "attn Lq=%lld Lk=%lld D=%lld dK", (long long)Lq, (long long)Lk, (long long)D);
                    cmp(what, dt, down(dt, gdk, nk), rdk, nk, TOL(dt, 3e-4, 4e-2));
                }
                snprintf(what, sizeof what, "attn Lq=%lld Lk=%lld D=%lld dV", (long long)Lq, (long long)Lk, (long long)D);
                cmp(what, dt, down(dt, gdv, nk), rdv, nk, TOL(dt, 3e-4, 4e-2));
                release_all();
            }
        // row ops on one row of 4099 (wider than any block's pass) and on 5 rows of 3 columns
        const int64_t shapes[2][2] = {{1, 4099}, {5, 3}};
        for (int s = 0; s < 2; s++) {
            const int64_t R = shapes[s][0], Cc = shapes[s][1], n = R * Cc;
            float *hx = hrand(n, -2, 2, dt), *hdy = hrand(n, -1, 1, dt), *hw = hrand(Cc, 0.5, 1.5, dt), *hb = hrand(Cc, -1, 1, dt);
            void *gx = up(dt, hx, n), *gdy = up(dt, hdy, n), *gw = up(dt, hw, Cc), *gb = up(dt, hb, Cc);
            float *ry = hnan(n), *rm = hnan(R), *rr = hnan(R), *rdx = hnan(n), *rdw = hnan(Cc), *rdb = hnan(Cc);
            char what[80];
            C->layernorm_fwd(ck, CM_F32, R, Cc, 1e-5, ry, rm, rr, hx, hw, hb);
            C->layernorm_bwd(ck, CM_F32, R, Cc, rdx, rdw, rdb, hdy, hx, rm, rr, hw);
            void *gy = dnan(dt, n), *gdx = dnan(dt, n), *gdw = dnan(dt, Cc), *gdb = dnan(dt, Cc);
            float *gm = dnan(CM_F32, R), *gr = dnan(CM_F32, R);
            G->layernorm_fwd(gk, dt, R, Cc, 1e-5, gy, gm, gr, gx, gw, gb);
            G->layernorm_bwd(gk, dt, R, Cc, gdx, gdw, gdb, gdy, gx, gm, gr, gw);
            snprintf(what, sizeof what, "layernorm [%lld, %lld] y", (long long)R, (long long)Cc);
            cmp(what, dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 1e-2));
            snprintf(what, sizeof what, "layernorm [%lld, %lld] dx", (long long)R, (long long)Cc);
            cmp(what, dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
            snprintf(what, sizeof what, "layernorm [%lld, %lld] dw", (long long)R, (long long)Cc);
            cmp(what, dt, down(dt, gdw, Cc), rdw, Cc, TOL(dt, 1e-4, 2e-2));
            C->softmax_fwd(ck, CM_F32, R, Cc, ry, hx);
            G->softmax_fwd(gk, dt, R, Cc, gy, gx);
            snprintf(what, sizeof what, "softmax [%lld, %lld]", (long long)R, (long long)Cc);
            cmp(what, dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 2e-2));
            float *ri = hnan(R);
            C->rmsnorm_fwd(ck, CM_RMS_IC, CM_F32, R, Cc, 1e-6, ry, ri, hx, hw);
            C->rmsnorm_bwd(ck, CM_RMS_IC, CM_F32, R, Cc, 1e-6, rdx, rdw, hdy, hx, ri, hw);
            float *gi = dnan(CM_F32, R);
            G->rmsnorm_fwd(gk, CM_RMS_IC, dt, R, Cc, 1e-6, gy, gi, gx, gw);
            G->rmsnorm_bwd(gk, CM_RMS_IC, dt, R, Cc, 1e-6, gdx, gdw, gdy, gx, gi, gw);
            snprintf(what, sizeof what, "rmsnorm [%lld, %lld] y", (long long)R, (long long)Cc);
            cmp(what, dt, down(dt, gy, n), ry, n, TOL(dt, 1e-5, 1e-2));
            snprintf(what, sizeof what, "rmsnorm [%lld, %lld] dx", (long long)R, (long long)Cc);
            cmp(what, dt, down(dt, gdx, n), rdx, n, TOL(dt, 1e-4, 2e-2));
            float *rs = hnan(R);
            C->reduce_sum(ck, CM_F32, R, Cc, 1, rs, hx);
            void *gs = dnan(dt, R);
            G->reduce_sum(gk, dt, R, Cc, 1, gs, gx);
            snprintf(what, sizeof what, "reduce_sum [%lld, %lld]", (long long)R, (long long)Cc);
            cmp(what, dt, down(dt, gs, R), rs, R, TOL(dt, 1e-5, 1e-2));
            release_all();
        }
    }
}

// `test_cuda_ops --bench [--quick] [--md FILE]` runs the GPU benchmark (kernels/cuda/cuda_bench.cu)
// instead: the check script uses it until `cameo bench gpu` is wired to cuda_bench_main
int cuda_bench_main(int argc, char **argv);

// --only a,b,c: just those groups; --except a,b,c: all groups but those (compute-sanitizer runs in
// scripts/gpu-check.sh take cameo's own kernels: every group but the cuBLAS-heavy gemm / upload ones)
static bool selected(const char *only, const char *name) {
    if (!only) return true;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return true;
    return false;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return cuda_bench_main(argc - 1, argv + 1);
    const char *only = argc > 2 && !strcmp(argv[1], "--only") ? argv[2] : NULL;
    const char *except = argc > 2 && !strcmp(argv[1], "--except") ? argv[2] : NULL;
    if (cuda_device_count() == 0) {
        char why[600];
        const char *r = cuda_unavailable_reason();
        snprintf(why, sizeof why, "%s", r ? r : "no usable CUDA device");
        test_skip(why);
    }
    if (argc > 1 && strcmp(argv[1], "--bench-tiny") == 0) {  // every benchmark case runs through, at 1/32 size
        char md[] = "/tmp/cameo_bench_tiny_XXXXXX";
        int fd = mkstemp(md);
        TEST_CHECK(fd >= 0, "a temporary file for --md");
        if (fd >= 0) close(fd);
        char *bargv[] = {(char *)"bench", (char *)"--tiny", (char *)"--md", md, NULL};
        int rc = cuda_bench_main(4, bargv);
        TEST_CHECK(rc == 0, "cameo bench gpu --tiny returned %d", rc);
        // every part's rows reach the markdown table gpu-check shows, the last part's last row too
        // (a fixed row limit once cut the memory-bound rows off the end)
        char line[512];
        int rows = 0, last = 0;
        FILE *f = fopen(md, "r");
        TEST_CHECK(f != NULL, "bench --md wrote %s", md);
        while (f && fgets(line, sizeof line, f)) {
            rows += !strncmp(line, "| ", 2);
            last |= strstr(line, "| q/k prep bwd: rms_rope_bwd (GB/s) |") != NULL;
        }
        if (f) fclose(f);
        remove(md);
        printf("bench --tiny --md: %d table lines\n", rows);
        TEST_CHECK(last, "the markdown table ends with the q/k prep bwd row (%d table lines)", rows);
        return test_summary("test_cuda_ops --bench-tiny");
    }
    G = cm_cuda_backend;
    C = &cm_cpu_backend;
    gk = cuda_backend_ctx(0);
    ck = backend_ctx(CM_DEV_CPU);
    if (!G || !gk) test_skip("the CUDA backend did not initialise");
    static const struct { const char *name; void (*run)(void); } groups[] = {
        {"fill", t_fill},
        {"copy_strided", t_copy_strided},
        {"binary", t_binary},
        {"axpby", t_axpby},
        {"unary", t_unary},
        {"glu", t_glu},
        {"reduce", t_reduce},
        {"softmax", t_softmax},
        {"adamw", t_adamw},
        {"adamw_multi", t_adamw_multi},
        {"adamw_bf16_state", t_adamw_bf16_state},
        {"sumsq_multi", t_sumsq_multi},
        {"gemm", t_gemm},
        {"gemm_ex", t_gemm_ex},
        {"upload", t_upload},
        {"layernorm", t_layernorm},
        {"rmsnorm", t_rmsnorm},
        {"groupnorm", t_groupnorm},
        {"attention", t_attention},
        {"attention_picked", t_attention_picked},  // opt-in: a subset of attention, for the CAMEO_ATTN runs
        {"wgmma_selftest", t_wgmma_selftest},
        {"rope", t_rope},
        {"rms_rope", t_rms_rope},
        {"rope_f32_tables", t_rope_f32_tables},
        {"modulate", t_modulate},
        {"gated_add", t_gated_add},
        {"add_rows", t_add_rows},
        {"layernorm_modulate", t_layernorm_mod},
        {"timestep", t_timestep},
        {"im2col", t_im2col},
        {"bicubic", t_bicubic},
        {"lookup", t_lookup},
        {"misaligned", t_misaligned},
        {"edges", t_edges},
        {"zero_rows", t_zero_rows},
        {"scratch_cache", t_scratch_cache},  // opt-in: runs only where --only names it (it fills the device)
    };
    const size_t ng = sizeof groups / sizeof groups[0];
    for (const char *p = only ? only : except; p && *p;) {  // every name given must be a group: a typo never passes unseen
        size_t n = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < ng && !known; i++) known = strlen(groups[i].name) == n && !strncmp(groups[i].name, p, n);
        if (!known) {
            fprintf(stderr, "test_cuda_ops: %s: no group '%.*s' (groups:", only ? "--only" : "--except", (int)n, p);
            for (size_t i = 0; i < ng; i++) fprintf(stderr, " %s", groups[i].name);
            fprintf(stderr, ")\n");
            return 2;
        }
        p += n + (p[n] == ',');
    }
    for (size_t i = 0; i < ng; i++)
        if (selected(only, groups[i].name) && !(except && selected(except, groups[i].name)) && (only || (strcmp(groups[i].name, "scratch_cache") && strcmp(groups[i].name, "attention_picked"))))
            groups[i].run();
    return test_summary("test_cuda_ops");
}
#endif
