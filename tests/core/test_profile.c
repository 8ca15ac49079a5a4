// test_profile.c — the op profiler (kernels/profile.h): every backend call counted once under its
// entry and variant, nested calls in the outer one, times that add up within the wall time, the
// sums across a fold of the device's marks, nothing counted once it stops, NULL entries kept.
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/backend.h"
#include "kernels/profile.h"
#include "testutil.h"
#include <time.h>

extern const cm_backend cm_cpu_backend;
void backend_emulate_cuda(const cm_backend *be, const cm_kctx *(*ctx)(int index));  // kernels/backend.c

// a stand-in "cuda" backend: the CPU's kernels, whose fill calls another entry through the table
// backend_get hands out (timed while the profiler runs): that call must count in fill's time only
static cm_backend fake;
static const cm_kctx fake_k = {{CM_CUDA, 0}, NULL, NULL};
static const cm_kctx *fake_ctx(int index) { return index == 0 ? &fake_k : NULL; }
static void fake_fill(const cm_kctx *k, cm_dtype dt, void *dst, int64_t n, double value) {
    cm_cpu_backend.fill(k, dt, dst, n, value);
    backend_get(CM_CUDA)->axpby(k, dt, n, 0.0, dst, 1.0, dst);  // y = 0 x + y: nested, not counted
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const cm_prof_row *find(const cm_prof_row *rows, int n, const char *name, cm_devtype dev) {
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name) && rows[i].dev == dev) return &rows[i];
    return NULL;
}

int main(void) {
    fake = cm_cpu_backend;
    fake.name = "fake";
    fake.fill = fake_fill;
    fake.conv2d_fwd = NULL;
    backend_emulate_cuda(&fake, fake_ctx);

    const cm_kctx *k = backend_ctx((cm_device){CM_CPU, 0}), *kc = backend_ctx((cm_device){CM_CUDA, 0});
    enum { N = 256, SMALL = 64, ADDS = 5000 };  // ADDS > the fold interval (4096 calls)
    static float a[N * N], b[N * N], c[N * N], x[SMALL], y[SMALL];
    for (int i = 0; i < N * N; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.2f;
    for (int i = 0; i < SMALL; i++) x[i] = (float)i;

    TEST_CHECK(backend_get(CM_CPU) == &cm_cpu_backend, "off: backend_get hands out the backend itself");
    prof_start();
    double t0 = now_s();
    const cm_backend *be = backend_get(CM_CPU);
    TEST_CHECK(be != &cm_cpu_backend && !strcmp(be->name, "cpu"), "on: a timed table with the backend's name");
    TEST_CHECK(be->conv2d_fwd != NULL && backend_get(CM_CUDA)->conv2d_fwd == NULL,
               "a NULL entry stays NULL in the timed table (callers test it), a real one is timed");
    for (int i = 0; i < 2; i++)
        be->gemm(k, CM_F32, 0, 0, N, N, N, 1.0, a, N, 0, b, N, 0, 0.0, c, N, 0, 1);
    const int64_t one = SMALL, st = 0;
    for (int i = 0; i < ADDS; i++) be->binary(k, CM_BIN_ADD, CM_F32, 1, &one, y, x, &(int64_t){1}, x, &st);
    for (int i = 0; i < 3; i++) be->unary_fwd(k, CM_UN_SILU, CM_F32, SMALL, y, x);
    be->unary_fwd(k, CM_UN_EXP, CM_F32, SMALL, y, x);
    backend_get(CM_CUDA)->fill(kc, CM_F32, y, SMALL, 2.0);
    double wall_ms = (now_s() - t0) * 1e3;
    cm_prof_row rows[64];
    int n = prof_stop(rows, 64);
    TEST_CHECK(backend_get(CM_CPU) == &cm_cpu_backend, "stopped: the backend itself again");
    be->gemm(k, CM_F32, 0, 0, N, N, N, 1.0, a, N, 0, b, N, 0, 0.0, c, N, 0, 1);  // a cached timed table, stopped: not counted

    const cm_prof_row *g = find(rows, n, "gemm", CM_CPU), *ad = find(rows, n, "binary[add]", CM_CPU);
    const cm_prof_row *si = find(rows, n, "unary_fwd[silu]", CM_CPU), *ex = find(rows, n, "unary_fwd[exp]", CM_CPU);
    const cm_prof_row *fi = find(rows, n, "fill", CM_CUDA), *ax = find(rows, n, "axpby", CM_CUDA);
    TEST_CHECK(n == 5, "rows: gemm, binary[add], unary_fwd[silu], unary_fwd[exp], fill (cuda): %d", n);
    TEST_CHECK(g && g->calls == 2 && g->ms > 0, "gemm: 2 calls, time > 0 (%lld, %g)", g ? (long long)g->calls : -1LL, g ? g->ms : -1);
    TEST_CHECK(ad && ad->calls == ADDS, "binary[add]: %d calls across a fold (%lld)", ADDS, ad ? (long long)ad->calls : -1LL);
    TEST_CHECK(si && si->calls == 3 && ex && ex->calls == 1, "unary variants apart: silu 3, exp 1");
    TEST_CHECK(fi && fi->calls == 1 && !ax, "the nested axpby counted in fill (cuda) only");
    double sum = 0;
    for (int i = 0; i < n; i++) {
        sum += rows[i].ms;
        TEST_CHECK(rows[i].ms >= 0 && (i == 0 || rows[i].ms <= rows[i - 1].ms), "row %d: %s %g ms, most first", i, rows[i].name, rows[i].ms);
    }
    TEST_CHECK(sum <= wall_ms + 1e-3, "the calls' time %g ms within the wall time %g ms", sum, wall_ms);
    TEST_CHECK(g && g->ms > 0.2 * ad->ms / ADDS, "a 256^3 GEMM takes longer than one 64-element add");

    char buf[4096];
    prof_format(buf, sizeof buf, "t", rows, n, wall_ms, 3);
    TEST_CHECK(strstr(buf, "| gemm (cpu) | 2 |") && strstr(buf, "| the other 2 |") && strstr(buf, "**all ops**") &&
                   strstr(buf, "between ops"),
               "the table: top 3 (both devices present: each row says where it ran), the other 2 summed, totals:\n%s", buf);
    cm_prof_row cpu_rows[64];
    int nc = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].dev == CM_CPU) cpu_rows[nc++] = rows[i];
    prof_format(buf, sizeof buf, "t", cpu_rows, nc, wall_ms, 10);
    TEST_CHECK(strstr(buf, "| gemm | 2 |") && !strstr(buf, "(cpu)") && !strstr(buf, "the other"),
               "one device: no device names, every row:\n%s", buf);
    TEST_CHECK(strstr(buf, "By kind: GEMM ") && strstr(buf, "; memory-bound ops ") && !strstr(buf, "attention") &&
                   strstr(buf, "; between ops "), "the time by kind (GEMM, memory-bound; no attention ran):\n%s", buf);

    cm_prof_shape_row sh[16];
    int ns = prof_shapes(sh, 16);
    TEST_CHECK(ns == 1 && sh[0].calls == 2 && !strcmp(sh[0].shape, "NN 256×256×256") && sh[0].flop == 2.0 * N * N * N,
               "the first run's one GEMM shape: 2 calls, 2·256³ flop (%d shapes; %s)", ns, ns ? sh[0].shape : "");

    prof_start();  // the sums start again from zero
    be = backend_get(CM_CPU);
    be->unary_fwd(k, CM_UN_NEG, CM_F32, SMALL, y, x);
    // shapes apart by op(B), by M, by epilogue; attention forward and backward apart, the backward
    // counted 2.5× the forward
    be->gemm(k, CM_F32, 0, 0, N, N, N, 1.0, a, N, 0, b, N, 0, 0.0, c, N, 0, 1);
    be->gemm(k, CM_F32, 0, 1, N, N, N, 1.0, a, N, 0, b, N, 0, 0.0, c, N, 0, 1);
    be->gemm(k, CM_F32, 0, 1, N / 2, N, N, 1.0, a, N, 0, b, N, 0, 0.0, c, N, 0, 1);
    be->gemm_ex(k, CM_F32, 0, 1, N / 2, N, N, 1.0, a, N, 0, b, N, 0, 0.0, c, N, 0, 1, NULL, CM_ACT_GELU_TANH, NULL);
    be->gemm(k, CM_F32, 0, 0, 16, 16, 16, 1.0, a, 16, 256, b, 16, 256, 0.0, c, 16, 256, 3);  // 3 batches
    enum { AB = 1, AH = 2, AL = 8, AD = 4 };
    static float q[AB * AH * AL * AD], kk[AB * AH * AL * AD], v[AB * AH * AL * AD], o[AB * AH * AL * AD], lse[AB * AH * AL];
    static float dq[AB * AH * AL * AD], dk[AB * AH * AL * AD], dv[AB * AH * AL * AD];
    for (int i = 0; i < AB * AH * AL * AD; i++) q[i] = 0.01f * (float)i, kk[i] = 0.02f * (float)(i % 9), v[i] = (float)(i % 4);
    const int64_t qs[3] = {AH * AL * AD, AL * AD, AD};  // [B, H, L, D] contiguous
    for (int i = 0; i < 2; i++) be->attn_fwd(k, CM_F32, AB, AH, AL, AL, AD, 0.5, o, NULL, lse, q, qs, kk, qs, v, qs, NULL, 0, 0);
    be->attn_bwd(k, CM_F32, AB, AH, AL, AL, AD, 0.5, dq, dk, dv, o, NULL, o, NULL, lse, q, qs, kk, qs, v, qs, NULL, 0, 0);
    n = prof_stop(rows, 64);
    TEST_CHECK(find(rows, n, "unary_fwd[neg]", CM_CPU) && find(rows, n, "unary_fwd[neg]", CM_CPU)->calls == 1 &&
                   find(rows, n, "gemm", CM_CPU)->calls == 4 && !find(rows, n, "binary[add]", CM_CPU),
               "a second run counts only its own calls");
    ns = prof_shapes(sh, 16);
    TEST_CHECK(ns == 7, "7 shapes (the first run's gone): %d", ns);
    const char *want[7][3] = {{"gemm", "NN 256×256×256", "1"}, {"gemm", "NT 256×256×256", "1"}, {"gemm", "NT 128×256×256", "1"},
                              {"gemm_ex[gelu_tanh]", "NT 128×256×256", "1"}, {"gemm", "NN 16×16×16 ×3", "1"},
                              {"attn_fwd", "B1 H2 8×8 D4", "2"}, {"attn_bwd", "B1 H2 8×8 D4", "1"}};
    const double flop[7] = {2.0 * N * N * N, 2.0 * N * N * N, 1.0 * N * N * N, 1.0 * N * N * N, 2.0 * 16 * 16 * 16 * 3,
                            4.0 * AB * AH * AL * AL * AD, 10.0 * AB * AH * AL * AL * AD};
    for (int w = 0; w < 7; w++) {
        const cm_prof_shape_row *r = NULL;
        for (int i = 0; i < ns && !r; i++)
            if (!strcmp(sh[i].name, want[w][0]) && !strcmp(sh[i].shape, want[w][1])) r = &sh[i];
        TEST_CHECK(r && r->calls == atoi(want[w][2]) && r->flop == flop[w] && r->dev == CM_CPU && r->ms >= 0,
                   "shape %s %s: %s calls, %g flop each (%lld, %g)", want[w][0], want[w][1], want[w][2], flop[w],
                   r ? (long long)r->calls : -1LL, r ? r->flop : -1);
        TEST_CHECK(!r || r == sh || r->ms <= r[-1].ms, "%s %s: most time first", want[w][0], want[w][1]);
    }
    prof_format_shapes(buf, sizeof buf, sh, ns, 5);
    TEST_CHECK(strstr(buf, "| attn_bwd | B1 H2 8×8 D4 | 1 |") || strstr(buf, "| the other 2 | | "),
               "the shape table: rows and the rest summed:\n%s", buf);
    TEST_CHECK(strstr(buf, "| the other 2 | | ") && strstr(buf, "TFLOP/s"), "top 5 of 7 shapes, the other 2 summed:\n%s", buf);
    TEST_CHECK(strstr(buf, "| **all GEMMs** | | 5 | ") && strstr(buf, "| **all attention** | | 3 | "),
               "the totals: 5 GEMM calls, 3 attention calls (the rows left out included):\n%s", buf);
    return test_summary("test_profile");
}
