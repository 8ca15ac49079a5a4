// test_backend_ext.c — the backend's GEMM epilogue (gemm_ex: bias, GELU), multi-tensor AdamW
// (adamw_multi) and asynchronous uploads (host_alloc, memcpy_h2d_async, events) on the CPU, and
// the upload ring of autograd/upload.c on a stand-in device that checks the stream protocol.
//   gemm_ex: against a double reference (every transpose, ld padding, batch, beta 0 / 0.5, bias
//     or not, GELU or not, K = 0), and bit for bit against what it replaces: the bias written
//     into C and a beta = 1 GEMM (op_linear until now), the GELU as the unary kernel after it
//     (op_gelu). op_linear_gelu with and without a tape: the same bits.
//   adamw_multi: bit for bit against adamw per tensor (sizes around the chunk, empty tensors,
//     f32 and bf16 gradients, several steps).
//   uploads: bytes arrive; every DMA into a ring buffer waits for the compute stream to have
//     read its last contents, every read of it on the compute stream waits for its DMA, the host
//     refills a pinned buffer only after its DMA is done.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "autograd/upload.h"
#include "kernels/backend.h"
#include "kernels/sr_round.h"
#include "testutil.h"

extern const cm_backend cm_cpu_backend;
void backend_emulate_cuda(const cm_backend *be, const cm_kctx *(*ctx)(int index));  // kernels/backend.c
static const cm_backend *be = &cm_cpu_backend;
static const cm_kctx kc = {{CM_CPU, 0}, NULL, NULL};
static const cm_kctx *K_ = &kc;

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void) {  // uniform [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}
static size_t esz(cm_dtype dt) { return dt == CM_F64 ? 8 : 4; }
static double getd(cm_dtype dt, const void *p, int64_t i) {
    return dt == CM_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
static void setd(cm_dtype dt, void *p, int64_t i, double v) {
    if (dt == CM_F32) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}
static void *randbuf(cm_dtype dt, int64_t n) {
    void *p = malloc((size_t)(n > 0 ? n : 1) * esz(dt));
    for (int64_t i = 0; i < n; i++) setd(dt, p, i, urand());
    return p;
}
static void *dup(const void *p, size_t n) {
    void *q = malloc(n ? n : 1);
    memcpy(q, p, n);
    return q;
}
static double gelu_tanh_ref(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

// --- gemm_ex ---
static void gemm_ex_case(cm_dtype dt, int ta, int tb, int pad, int64_t batch, double beta, int with_bias, cm_act act,
                         int64_t Kd) {
    const int64_t M = 23, N = 37;
    int64_t ar = ta ? Kd : M, ac = ta ? M : Kd, br = tb ? N : Kd, bc = tb ? Kd : N;
    int64_t lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    int64_t sA = ar * lda, sB = br * ldb, sC = M * ldc + pad;
    size_t es = esz(dt);
    void *A = randbuf(dt, batch * sA), *B = randbuf(dt, batch * sB), *C = randbuf(dt, batch * sC);
    void *bias = with_bias ? randbuf(dt, N) : NULL;
    double *ref = malloc((size_t)(batch * sC) * sizeof(double));
    for (int64_t i = 0; i < batch * sC; i++) ref[i] = getd(dt, C, i);
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < Kd; k++)
                    s += getd(dt, A, b * sA + (ta ? k * lda + i : i * lda + k)) *
                         getd(dt, B, b * sB + (tb ? j * ldb + k : k * ldb + j));
                double v = 1.25 * s + (beta == 0 ? 0 : beta * getd(dt, C, b * sC + i * ldc + j));
                if (bias) v += getd(dt, bias, j);
                ref[b * sC + i * ldc + j] = act == CM_ACT_GELU_TANH ? gelu_tanh_ref(v) : v;
            }
    if (beta == 0)  // C's old contents must not matter: poison them (the padding stays)
        for (int64_t b = 0; b < batch; b++)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) setd(dt, C, b * sC + i * ldc + j, NAN);
    void *C0 = dup(C, (size_t)(batch * sC) * es);
    int64_t calls = cm_gemm_calls;
    be->gemm_ex(K_, dt, ta, tb, M, N, Kd, 1.25, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch, bias, act, NULL);
    TEST_CHECK(cm_gemm_calls == calls + 1, "gemm_ex counts one GEMM call");
    double worst = 0, tol = dt == CM_F32 ? 3e-5 : 1e-12;
    int64_t bad = -1;
    for (int64_t i = 0; i < batch * sC; i++) {
        double e = fabs(getd(dt, C, i) - ref[i]);
        if (!(e <= tol * (1 + fabs(ref[i])))) bad = i, worst = e;
    }
    TEST_CHECK(bad < 0, "gemm_ex %s ta=%d tb=%d pad=%d batch=%lld beta=%g bias=%d act=%d K=%lld: element %lld off by %.3g",
               dt == CM_F32 ? "f32" : "f64", ta, tb, pad, (long long)batch, beta, with_bias, (int)act, (long long)Kd,
               (long long)bad, worst);

    // the same bits as the unfused sequence it replaces (CPU): the bias rows written into C (or
    // C = beta C + bias), a beta = 1 GEMM, the unary GELU over each row
    void *U = dup(C0, (size_t)(batch * sC) * es);
    double beta_u = beta;
    if (bias || Kd == 0) {
        for (int64_t b = 0; b < batch; b++)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t o = b * sC + i * ldc + j;
                    double c = beta == 0 ? 0 : (dt == CM_F32 ? (double)(float)(beta * getd(dt, U, o)) : beta * getd(dt, U, o));
                    if (bias) c = dt == CM_F32 ? (double)((float)c + (float)getd(dt, bias, j)) : c + getd(dt, bias, j);
                    setd(dt, U, o, c);
                }
        beta_u = 1.0;
    }
    if (Kd) be->gemm(K_, dt, ta, tb, M, N, Kd, 1.25, A, lda, sA, B, ldb, sB, beta_u, U, ldc, sC, batch);
    if (act == CM_ACT_GELU_TANH) {
        if (ldc == N && (batch == 1 || sC == M * N)) be->unary_fwd(K_, CM_UN_GELU_TANH, dt, batch * M * N, U, U);
        else
            for (int64_t b = 0; b < batch; b++)
                for (int64_t i = 0; i < M; i++) {
                    char *row = (char *)U + (size_t)(b * sC + i * ldc) * es;
                    void *tmp = dup(row, (size_t)N * es);
                    be->unary_fwd(K_, CM_UN_GELU_TANH, dt, N, row, tmp);
                    free(tmp);
                }
    }
    TEST_CHECK(memcmp(U, C, (size_t)(batch * sC) * es) == 0,
               "gemm_ex %s ta=%d tb=%d pad=%d batch=%lld beta=%g bias=%d act=%d K=%lld: not the bits of bias-prefill + "
               "GEMM + unary GELU", dt == CM_F32 ? "f32" : "f64", ta, tb, pad, (long long)batch, beta, with_bias,
               (int)act, (long long)Kd);
    free(A), free(B), free(C), free(C0), free(U), free(bias), free(ref);
}

static void test_gemm_ex(void) {
    for (int d = 0; d < 2; d++) {
        cm_dtype dt = d ? CM_F64 : CM_F32;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int v = 0; v < 4; v++) {  // 0: plain; 1: beta .5, ld + 3; 2: batch 3; 3: batch 3, ld + 2, beta .5
                    int pad = v == 1 ? 3 : v == 3 ? 2 : 0;
                    int64_t batch = v >= 2 ? 3 : 1;
                    double beta = v == 1 || v == 3 ? 0.5 : 0.0;
                    for (int bias = 0; bias < 2; bias++)
                        for (int a = 0; a < 2; a++) gemm_ex_case(dt, ta, tb, pad, batch, beta, bias, (cm_act)a, 19);
                }
        // K = 0: C = act(beta C + bias)
        for (int bias = 0; bias < 2; bias++)
            for (int a = 0; a < 2; a++) {
                gemm_ex_case(dt, 0, 1, 0, 1, 0.0, bias, (cm_act)a, 0);
                gemm_ex_case(dt, 0, 1, 1, 2, 0.5, bias, (cm_act)a, 0);
            }
    }
    // gemm is gemm_ex without an epilogue, bit for bit
    const int64_t M = 64, N = 48, Kd = 33;
    float *A = randbuf(CM_F32, M * Kd), *B = randbuf(CM_F32, N * Kd), *C1 = randbuf(CM_F32, M * N);
    float *C2 = dup(C1, M * N * 4);
    be->gemm(K_, CM_F32, 0, 1, M, N, Kd, 1.0, A, Kd, 0, B, Kd, 0, 0.75, C1, N, 0, 1);
    be->gemm_ex(K_, CM_F32, 0, 1, M, N, Kd, 1.0, A, Kd, 0, B, Kd, 0, 0.75, C2, N, 0, 1, NULL, CM_ACT_NONE, NULL);
    TEST_CHECK(memcmp(C1, C2, M * N * 4) == 0, "gemm == gemm_ex(bias NULL, no act), bit for bit");
    free(A), free(B), free(C1), free(C2);
}

// gemm_ex's aux forms: GELU keeping its input (aux = exactly what act NONE writes, C exactly what
// GELU without aux writes) and DGELU (C = the beta 0 GEMM times gelu'(aux): exactly the GEMM then
// the unary backward kernel, and within 3e-5 of a double reference in f32)
static void gemm_aux_case(cm_dtype dt, int ta, int tb, int pad, int64_t batch, int with_bias, double beta) {
    const int64_t M = 21, N = 34, Kd = 17;
    int64_t ar = ta ? Kd : M, ac = ta ? M : Kd, br = tb ? N : Kd, bc = tb ? Kd : N;
    int64_t lda = ac + pad, ldb = bc + pad, ldc = N + pad, sA = ar * lda, sB = br * ldb, sC = M * ldc + pad;
    size_t es = esz(dt), cb = (size_t)(batch * sC) * es;
    void *A = randbuf(dt, batch * sA), *B = randbuf(dt, batch * sB), *bias = with_bias ? randbuf(dt, N) : NULL;
    // aux starts as a copy of pre so that the padding between rows compares equal
    void *pre = randbuf(dt, batch * sC), *aux = dup(pre, cb), *C = randbuf(dt, batch * sC), *G = dup(C, cb);
    if (beta != 0) memcpy(pre, C, cb);  // pre = beta C + ... needs C's old contents
    be->gemm_ex(K_, dt, ta, tb, M, N, Kd, 1.25, A, lda, sA, B, ldb, sB, beta, pre, ldc, sC, batch, bias, CM_ACT_NONE, NULL);
    be->gemm_ex(K_, dt, ta, tb, M, N, Kd, 1.25, A, lda, sA, B, ldb, sB, beta, G, ldc, sC, batch, bias, CM_ACT_GELU_TANH, NULL);
    be->gemm_ex(K_, dt, ta, tb, M, N, Kd, 1.25, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch, bias, CM_ACT_GELU_TANH, aux);
    if (beta != 0)  // the padding of aux is not written: compare rows only
        for (int64_t r = 0; r < batch * M; r++) {
            size_t o = (size_t)((r / M) * sC + (r % M) * ldc) * es;
            TEST_CHECK(memcmp((char *)aux + o, (char *)pre + o, (size_t)N * es) == 0, "gemm_ex GELU aux beta %g row %lld",
                       beta, (long long)r);
        }
    TEST_CHECK((beta != 0 || memcmp(aux, pre, cb) == 0) && memcmp(C, G, cb) == 0,
               "gemm_ex GELU with aux %s ta=%d tb=%d pad=%d batch=%lld bias=%d beta=%g: aux = the pre-activation, C = GELU's bits",
               dt == CM_F32 ? "f32" : "f64", ta, tb, pad, (long long)batch, with_bias, beta);
    if (!with_bias && beta == 0) {  // DGELU at aux = pre
        void *D = randbuf(dt, batch * sC), *U = dup(D, cb);
        be->gemm_ex(K_, dt, ta, tb, M, N, Kd, 1.25, A, lda, sA, B, ldb, sB, 0.0, D, ldc, sC, batch, NULL, CM_ACT_DGELU_TANH, pre);
        be->gemm(K_, dt, ta, tb, M, N, Kd, 1.25, A, lda, sA, B, ldb, sB, 0.0, U, ldc, sC, batch);
        // the unary kernel over all of C when its rows are contiguous, else row by row (the
        // vector body and the remainder may round differently: the extents must match)
        if (ldc == N && batch == 1) {
            void *tmp = dup(U, (size_t)(M * N) * es);
            be->unary_bwd(K_, CM_UN_GELU_TANH, dt, M * N, U, pre, tmp);
            free(tmp);
        } else
            for (int64_t r = 0; r < batch * M; r++) {
                size_t o = (size_t)((r / M) * sC + (r % M) * ldc) * es;
                void *tmp = dup((char *)U + o, (size_t)N * es);
                be->unary_bwd(K_, CM_UN_GELU_TANH, dt, N, (char *)U + o, (char *)pre + o, tmp);
                free(tmp);
            }
        double worst = 0;
        int same = 1;
        for (int64_t b = 0; b < batch; b++)
            for (int64_t i = 0; i < M; i++) {
                int64_t o = b * sC + i * ldc;
                for (int64_t j = 0; j < N; j++) {
                    double s = 0, x = getd(dt, pre, o + j);
                    for (int64_t k = 0; k < Kd; k++)
                        s += getd(dt, A, b * sA + (ta ? k * lda + i : i * lda + k)) * getd(dt, B, b * sB + (tb ? j * ldb + k : k * ldb + j));
                    double t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
                    double ref = 1.25 * s * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x));
                    double e = fabs(getd(dt, D, o + j) - ref) / (1 + fabs(ref));
                    worst = test_max(worst, e);
                    same &= getd(dt, D, o + j) == getd(dt, U, o + j);
                }
            }
        TEST_CHECK(same && worst <= (dt == CM_F32 ? 3e-5 : 1e-12),
                   "gemm_ex DGELU %s ta=%d tb=%d pad=%d batch=%lld: GEMM + unary backward bits (%d), off by %.3g",
                   dt == CM_F32 ? "f32" : "f64", ta, tb, pad, (long long)batch, same, worst);
        free(D), free(U);
    }
    free(A), free(B), free(bias), free(pre), free(aux), free(C), free(G);
}

static void test_gemm_aux(void) {
    for (int d = 0; d < 2; d++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int v = 0; v < 3; v++)  // 0: plain; 1: ld + 3; 2: batch 3, ld + 2
                    for (int bias = 0; bias < 2; bias++)
                        for (int bt = 0; bt < 2; bt++)
                            gemm_aux_case(d ? CM_F64 : CM_F32, ta, tb, v == 1 ? 3 : v == 2 ? 2 : 0, v == 2 ? 3 : 1, bias,
                                          bt ? 0.5 : 0.0);
}

// op_linear (bias through the epilogue) and op_linear_gelu: the same bits with and without a
// tape, and the same as op_gelu(op_linear)
static void test_linear_ops(void) {
    const int64_t T = 45, Kd = 70, N = 130;
    cm_tensor *x = tensor_empty(CM_F32, 2, (int64_t[]){T, Kd}, CM_DEV_CPU), *w = tensor_empty(CM_F32, 2, (int64_t[]){N, Kd}, CM_DEV_CPU),
              *b = tensor_empty(CM_F32, 1, (int64_t[]){N}, CM_DEV_CPU);
    for (int64_t i = 0; i < T * Kd; i++) ((float *)tensor_data(x))[i] = (float)urand();
    for (int64_t i = 0; i < N * Kd; i++) ((float *)tensor_data(w))[i] = (float)urand() * 0.2f;
    for (int64_t i = 0; i < N; i++) ((float *)tensor_data(b))[i] = (float)urand();
    // op_linear's old forward: bias rows written first, then GEMM with beta = 1
    float *old = malloc((size_t)(T * N) * 4);
    for (int64_t i = 0; i < T; i++) memcpy(old + i * N, tensor_data(b), (size_t)N * 4);
    be->gemm(K_, CM_F32, 0, 1, T, N, Kd, 1.0, tensor_data(x), Kd, 0, tensor_data(w), Kd, 0, 1.0, old, N, 0, 1);
    cm_tensor *y = op_linear(x, w, b);
    TEST_CHECK(memcmp(tensor_data(y), old, (size_t)(T * N) * 4) == 0, "op_linear: the bits of bias prefill + beta=1 GEMM");
    cm_tensor *g_ref = op_gelu(y, true);
    cm_tensor *g_fused = op_linear_gelu(x, w, b);  // nothing needs a gradient: one GEMM with the GELU epilogue
    TEST_CHECK(memcmp(tensor_data(g_ref), tensor_data(g_fused), (size_t)(T * N) * 4) == 0,
               "op_linear_gelu (fused, no tape) == op_gelu(op_linear), bit for bit");
    tensor_set_requires_grad(w, true);
    cm_tensor *g_taped = op_linear_gelu(x, w, b);  // on the tape: one GEMM that also keeps gelu's input
    TEST_CHECK(memcmp(tensor_data(g_ref), tensor_data(g_taped), (size_t)(T * N) * 4) == 0,
               "op_linear_gelu on the tape == op_gelu(op_linear), bit for bit");
    TEST_CHECK(tensor_needs_grad(g_taped), "op_linear_gelu on the tape records its history");
    cm_tensor *s = op_sum_all(g_taped);
    autograd_backward(s, NULL);
    TEST_CHECK(w->grad != NULL, "op_linear_gelu: the weight gets its gradient");
    cm_tensor *nb = op_linear(x, w, NULL);  // no bias: still gemm_ex, bias NULL
    float *nb_ref = malloc((size_t)(T * N) * 4);
    be->gemm(K_, CM_F32, 0, 1, T, N, Kd, 1.0, tensor_data(x), Kd, 0, tensor_data(w), Kd, 0, 0.0, nb_ref, N, 0, 1);
    TEST_CHECK(memcmp(tensor_data(nb), nb_ref, (size_t)(T * N) * 4) == 0, "op_linear without bias: plain GEMM bits");
    cm_tensor *rel[] = {x, w, b, y, g_ref, g_fused, g_taped, s, nb};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) tensor_release(rel[i]);
    free(old), free(nb_ref);
}

// --- adamw_multi ---
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static void test_adamw_multi(void) {
    enum { NT = 9 };
    const int64_t sizes[NT] = {16385, 0, 1, 16384, 40000, 7, 16383, 100003, 32768};
    for (int gi = 0; gi < 2; gi++) {
        cm_dtype gdt = gi ? CM_BF16 : CM_F32;
        float *p[NT], *m[NT], *v[NT], *p2[NT], *m2[NT], *v2[NT];
        void *g[NT];
        for (int t = 0; t < NT; t++) {
            int64_t n = sizes[t];
            size_t nb = (size_t)(n > 0 ? n : 1) * 4;
            p[t] = malloc(nb), m[t] = calloc(1, nb), v[t] = calloc(1, nb);
            g[t] = malloc(nb);
            for (int64_t i = 0; i < n; i++) p[t][i] = (float)urand();
            p2[t] = dup(p[t], nb), m2[t] = dup(m[t], nb), v2[t] = dup(v[t], nb);
        }
        for (int step = 1; step <= 3; step++) {
            for (int t = 0; t < NT; t++)
                for (int64_t i = 0; i < sizes[t]; i++) {
                    float f = (float)urand() * (t + 1);
                    if (gi) ((uint16_t *)g[t])[i] = to_bf16(f);
                    else ((float *)g[t])[i] = f;
                }
            double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
            for (int t = 0; t < NT; t++)
                be->adamw(K_, sizes[t], p[t], gdt, g[t], m[t], v[t], 3e-3, 0.9, 0.999, 1e-8, 0.05, bc1, bc2, 0.7);
            cm_adamw_tensor list[NT];
            for (int t = 0; t < NT; t++) list[t] = (cm_adamw_tensor){p2[t], g[t], m2[t], v2[t], sizes[t], 0, NULL, NULL};
            be->adamw_multi(K_, NT, list, gdt, CM_F32, 3e-3, 0.9, 0.999, 1e-8, 0.05, bc1, bc2, 0.7, 0);
        }
        int same = 1;
        for (int t = 0; t < NT; t++) {
            size_t nb = (size_t)sizes[t] * 4;
            same &= !memcmp(p[t], p2[t], nb) && !memcmp(m[t], m2[t], nb) && !memcmp(v[t], v2[t], nb);
        }
        TEST_CHECK(same, "adamw_multi (%s grads, %d tensors, 3 steps) == adamw per tensor, bit for bit",
                   gi ? "bf16" : "f32", NT);
        for (int t = 0; t < NT; t++) free(p[t]), free(m[t]), free(v[t]), free(p2[t]), free(m2[t]), free(v2[t]), free(g[t]);
    }
    be->adamw_multi(K_, 0, NULL, CM_F32, CM_F32, 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001, 1, 0); // an empty list: nothing
    TEST_CHECK(1, "adamw_multi of no tensors");
}

// the weight average made by the update (t.ema): the bits of the update followed by axpby's pass,
// with f32 and bf16 moments, with and without the bf16 copy, sizes around the chunk
static void test_adamw_ema(void) {
    enum { NT = 5 };
    const int64_t sizes[NT] = {16385, 1, 0, 40000, 16384};
    for (int sb = 0; sb < 2; sb++) {
        cm_dtype sdt = sb ? CM_BF16 : CM_F32;
        float *p[2][NT], *e[2][NT];
        void *m[2][NT], *v[2][NT];
        uint16_t *w[2][NT];
        float *g[NT];
        for (int t = 0; t < NT; t++) {
            size_t nb = (size_t)(sizes[t] > 0 ? sizes[t] : 1) * 4;
            g[t] = malloc(nb);
            for (int r = 0; r < 2; r++) {
                p[r][t] = malloc(nb), e[r][t] = malloc(nb), m[r][t] = calloc(1, nb), v[r][t] = calloc(1, nb), w[r][t] = calloc(1, nb);
                rng = 0x9E3779B97F4A7C15ull + (uint64_t)t;  // the same start for both runs
                for (int64_t i = 0; i < sizes[t]; i++) p[r][t][i] = (float)urand(), e[r][t][i] = p[r][t][i] + 0.01f * (float)urand();
            }
        }
        double d = 0.99;
        for (int step = 1; step <= 3; step++, d -= 0.2) {
            for (int t = 0; t < NT; t++)
                for (int64_t i = 0; i < sizes[t]; i++) g[t][i] = (float)urand();
            double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
            cm_adamw_tensor a[NT], b[NT];
            for (int t = 0; t < NT; t++) {
                uint64_t key = cm_sr_key((uint64_t)t, (uint64_t)step);
                a[t] = (cm_adamw_tensor){p[0][t], g[t], m[0][t], v[0][t], sizes[t], key, t % 2 ? w[0][t] : NULL, NULL};
                b[t] = (cm_adamw_tensor){p[1][t], g[t], m[1][t], v[1][t], sizes[t], key, t % 2 ? w[1][t] : NULL, e[1][t]};
            }
            be->adamw_multi(K_, NT, a, CM_F32, sdt, 3e-3, 0.9, 0.999, 1e-8, 0.05, bc1, bc2, 0.7, 0);
            for (int t = 0; t < NT; t++) be->axpby(K_, CM_F32, sizes[t], 1 - d, p[0][t], d, e[0][t]);
            be->adamw_multi(K_, NT, b, CM_F32, sdt, 3e-3, 0.9, 0.999, 1e-8, 0.05, bc1, bc2, 0.7, d);
        }
        int same = 1, moved = 0;
        for (int t = 0; t < NT; t++) {
            size_t nb = (size_t)sizes[t] * 4, ns = (size_t)sizes[t] * dtype_size(sdt);
            same &= !memcmp(p[0][t], p[1][t], nb) && !memcmp(e[0][t], e[1][t], nb) && !memcmp(m[0][t], m[1][t], ns) &&
                    !memcmp(v[0][t], v[1][t], ns) && !memcmp(w[0][t], w[1][t], (size_t)sizes[t] * 2);
            for (int64_t i = 0; i < sizes[t]; i++) moved |= e[1][t][i] != p[1][t][i];
        }
        TEST_CHECK(same && moved, "adamw_multi's average (%s moments, 3 steps) == the update, then axpby, bit for bit",
                   dtype_name(sdt));
        for (int t = 0; t < NT; t++) {
            free(g[t]);
            for (int r = 0; r < 2; r++) free(p[r][t]), free(e[r][t]), free(m[r][t]), free(v[r][t]), free(w[r][t]);
        }
    }
}

// bf16 moments (optimizer.state_dtype: bf16): stored with stochastic rounding, they follow the f32
// moments on average where round-to-nearest would stall — v's (1 - β2) g² increment is 0.1 % of v,
// under half a bf16 step — and the weights follow the f32-state run's
static float bf16f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_adamw_bf16_state(void) {
    enum { N = 20000, STEPS = 3000 };
    float *p32 = malloc(N * 4), *m32 = calloc(N, 4), *v32 = calloc(N, 4), *pbf = malloc(N * 4), *g = malloc(N * 4), *p0 = malloc(N * 4);
    uint16_t *mbf = calloc(N, 2), *vbf = calloc(N, 2), *vrn = calloc(N, 2);
    for (int i = 0; i < N; i++) p0[i] = p32[i] = pbf[i] = (float)urand(), g[i] = (float)(0.1 + fabs(urand()));
    double b2 = 0.999;
    for (int step = 1; step <= STEPS; step++) {
        double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(b2, step);
        cm_adamw_tensor a = {p32, g, m32, v32, N, 0, NULL, NULL}, b = {pbf, g, mbf, vbf, N, cm_sr_key(3, (uint64_t)step), NULL, NULL};
        be->adamw_multi(K_, 1, &a, CM_F32, CM_F32, 1e-3, 0.9, b2, 1e-8, 0.01, bc1, bc2, 1.0, 0);
        be->adamw_multi(K_, 1, &b, CM_F32, CM_BF16, 1e-3, 0.9, b2, 1e-8, 0.01, bc1, bc2, 1.0, 0);
        for (int i = 0; i < N; i++) vrn[i] = to_bf16((float)(b2 * bf16f(vrn[i]) + (1 - b2) * g[i] * g[i]));  // nearest
    }
    double r_sr = 0, r_rn = 0, dp = 0, mv = 0, moved = 0, vn = 0;
    for (int i = 0; i < N; i++) {
        double r = bf16f(vbf[i]) / v32[i];
        r_sr += r / N, r_rn += bf16f(vrn[i]) / v32[i] / N, vn += (r - 1) * (r - 1) / N;
        dp = fmax(dp, fabs(pbf[i] - p32[i])), mv = fmax(mv, fabs(m32[i] - bf16f(mbf[i])) / fabs(m32[i]));
        moved = fmax(moved, fabs(p32[i] - p0[i]));
    }
    printf("bf16 moments after %d steps: mean v / f32 v %.5f stochastic (rms per element %.3g), %.5f to nearest; m within "
           "%.3g; weights moved %.3g, |p - p_f32| <= %.3g\n", STEPS, r_sr, sqrt(vn), r_rn, mv, moved, dp);
    TEST_CHECK(fabs(r_sr - 1) < 2e-3, "stochastic rounding keeps v unbiased (mean ratio %.5f)", r_sr);
    TEST_CHECK(fabs(r_rn - 1) > 2e-2, "(round-to-nearest stalls: %.5f — the reason for stochastic rounding)", r_rn);
    // each element's v wanders a few % about the f32 v (its rounding noise averaged over ~1/(1-β2)
    // steps), so each weight's steps are a few % off: bounded, not biased
    TEST_CHECK(mv < 1.6e-2 && dp < 0.06 * moved, "m within 2 bf16 steps (%.3g), weights within 6%% of their path (%.3g of %.3g)",
               mv, dp, moved);
    // the same key gives the same bits, another key others
    uint16_t m2[64] = {0}, v2[64] = {0}, m3[64] = {0}, v3[64] = {0};
    float q2[64], q3[64];
    memcpy(q2, p32, sizeof q2), memcpy(q3, p32, sizeof q3);
    cm_adamw_tensor x = {q2, g, m2, v2, 64, 77, NULL, NULL}, y = {q3, g, m3, v3, 64, 77, NULL, NULL};
    be->adamw_multi(K_, 1, &x, CM_F32, CM_BF16, 1e-3, 0.9, b2, 1e-8, 0.01, 0.1, 0.001, 1.0, 0);
    be->adamw_multi(K_, 1, &y, CM_F32, CM_BF16, 1e-3, 0.9, b2, 1e-8, 0.01, 0.1, 0.001, 1.0, 0);
    TEST_CHECK(!memcmp(m2, m3, sizeof m2) && !memcmp(v2, v3, sizeof v2) && !memcmp(q2, q3, sizeof q2), "one key: the same bits");
    memset(m3, 0, sizeof m3), memset(v3, 0, sizeof v3), memcpy(q3, p32, sizeof q3);
    y.key = 78;
    be->adamw_multi(K_, 1, &y, CM_F32, CM_BF16, 1e-3, 0.9, b2, 1e-8, 0.01, 0.1, 0.001, 1.0, 0);
    TEST_CHECK(memcmp(v2, v3, sizeof v2) != 0, "another key: other rounding");
    free(p32), free(m32), free(v32), free(pbf), free(g), free(p0), free(mbf), free(vbf), free(vrn);
}

// --- asynchronous uploads on the CPU backend ---
static void test_async_cpu(void) {
    unsigned char *h = be->host_alloc(1 << 20), *d = be->alloc(1 << 20);
    TEST_CHECK(h && ((uintptr_t)h & 63) == 0, "host_alloc: 64-byte aligned host memory");
    for (int i = 0; i < 1 << 20; i++) h[i] = (unsigned char)(i * 7);
    be->memcpy_h2d_async(K_, d, h, 1 << 20);
    uint64_t e = be->event_record(K_, CM_STREAM_COPY);
    TEST_CHECK(e == 0, "the CPU's events are 0 (complete)");
    be->event_wait(K_, CM_STREAM_COMPUTE, e);
    be->event_sync(K_, e);
    TEST_CHECK(memcmp(h, d, 1 << 20) == 0, "memcpy_h2d_async on the CPU has copied on return");
    be->host_free(h);
    be->free(d);
}

// --- the upload ring on a stand-in device that keeps the two streams' books ---
// Events are (seq << 1 | stream) as on CUDA, seq increasing over both streams here so that
// "stream s has waited for every event of the other stream up to seq" is one number per stream.
static struct {
    uint64_t seq;
    uint64_t waited[2];        // per stream: the highest seq of the other stream it has waited for
    uint64_t synced;           // the host: the highest copy-stream seq it has waited for
    int n_dma, n_d2d, errors;
    struct { const void *p; uint64_t last_read; } dev[64];   // device buffers: last compute read (seq after it)
    struct { const void *p; uint64_t last_dma; } host[64];   // pinned buffers: the copy event after their last DMA
    struct { const void *p; uint64_t dma; } fresh[64];       // device buffers: the copy event after their last DMA
    int ndev, nhost, nfresh;
    uint64_t pending_read, pending_dma;  // set by d2d / h2d_async, resolved by the next event_record
    const void *pending_dev, *pending_host;
} bk;

static uint64_t *dev_slot(const void *p) {
    for (int i = 0; i < bk.ndev; i++) if (bk.dev[i].p == p) return &bk.dev[i].last_read;
    bk.dev[bk.ndev].p = p;
    return &bk.dev[bk.ndev++].last_read;
}
static uint64_t *host_slot(const void *p) {
    for (int i = 0; i < bk.nhost; i++) if (bk.host[i].p == p) return &bk.host[i].last_dma;
    bk.host[bk.nhost].p = p;
    return &bk.host[bk.nhost++].last_dma;
}
static uint64_t *fresh_slot(const void *p) {
    for (int i = 0; i < bk.nfresh; i++) if (bk.fresh[i].p == p) return &bk.fresh[i].dma;
    bk.fresh[bk.nfresh].p = p;
    return &bk.fresh[bk.nfresh++].dma;
}

static void st_h2d_async(const cm_kctx *k, void *dst, const void *src, size_t n) {
    bk.n_dma++;
    uint64_t *r = dev_slot(dst), *h = host_slot(src);
    if (*r > bk.waited[CM_STREAM_COPY]) {
        bk.errors++;
        fprintf(stderr, "upload protocol: a DMA into device buffer %p before the compute stream read it out (read %llu, "
                        "copy stream waited for %llu)\n", dst, (unsigned long long)*r, (unsigned long long)bk.waited[1]);
    }
    if (*h > bk.synced) {
        bk.errors++;
        fprintf(stderr, "upload protocol: pinned buffer %p refilled before its last DMA was synced\n", src);
    }
    memcpy(dst, src, n);
    bk.pending_dev = dst, bk.pending_host = src;
}
static void st_d2d(const cm_kctx *k, void *dst, const void *src, size_t n) {
    bk.n_d2d++;
    uint64_t *f = fresh_slot(src);
    if (*f > bk.waited[CM_STREAM_COMPUTE]) {
        bk.errors++;
        fprintf(stderr, "upload protocol: the compute stream read device buffer %p before waiting for its DMA\n", src);
    }
    memcpy(dst, src, n);
    bk.pending_dev = src;
}
static uint64_t st_record(const cm_kctx *k, cm_stream s) {
    uint64_t seq = ++bk.seq;
    if (s == CM_STREAM_COPY && bk.pending_host) {  // the event after a DMA
        *host_slot(bk.pending_host) = seq;
        *fresh_slot(bk.pending_dev) = seq;
        bk.pending_host = NULL, bk.pending_dev = NULL;
    } else if (s == CM_STREAM_COMPUTE && bk.pending_dev) {  // the event after a device-to-device read
        *dev_slot(bk.pending_dev) = seq;
        bk.pending_dev = NULL;
    }
    return seq << 1 | (uint64_t)s;
}
static void st_wait(const cm_kctx *k, cm_stream s, uint64_t e) {
    if (!e || (cm_stream)(e & 1) == s) return;
    if ((e >> 1) > bk.waited[s]) bk.waited[s] = e >> 1;
}
static void st_sync(const cm_kctx *k, uint64_t e) {
    if (e && (e & 1) == CM_STREAM_COPY && (e >> 1) > bk.synced) bk.synced = e >> 1;
}
static cm_backend st_backend;
static cm_kctx st_ctx = {{CM_CUDA, 0}, NULL, NULL};
static const cm_kctx *st_ctx_for(int index) { return index == 0 ? &st_ctx : NULL; }

static void test_upload_ring(void) {
    st_backend = cm_cpu_backend;
    st_backend.name = "stand-in";
    st_backend.memcpy_h2d_async = st_h2d_async;
    st_backend.memcpy_d2d = st_d2d;
    st_backend.event_record = st_record;
    st_backend.event_wait = st_wait;
    st_backend.event_sync = st_sync;
    backend_emulate_cuda(&st_backend, st_ctx_for);
    cm_device dev = {CM_CUDA, 0};
    // sizes: below the staging threshold, one small piece, several, one over 2 x 32 MiB (three
    // pieces, a slot growing from 1 MiB), enough of them to go round the ring of 8 twice
    const size_t sizes[] = {1000, 200000, 300000, 5u << 20, 70u << 20, 100000, 3u << 20, 40000000, 65536, 2u << 20,
                            1u << 20, 9u << 20, 200001};
    size_t maxn = 70u << 20;
    unsigned char *src = malloc(maxn), *dst = malloc(maxn);
    int ok = 1;
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            for (size_t j = 0; j < n; j++) src[j] = (unsigned char)(j * 131 + i * 17 + round);
            memset(dst, 0xEE, n);
            upload_to_device(dev, dst, src, n);
            memset(src, 0, n);  // the caller may reuse src on return
            for (size_t j = 0; j < n && ok; j++)
                if (dst[j] != (unsigned char)(j * 131 + i * 17 + round)) {
                    ok = 0;
                    fprintf(stderr, "upload of %zu bytes: byte %zu wrong\n", n, j);
                }
        }
    TEST_CHECK(ok, "upload_to_device: every byte arrives (39 uploads of 1 KB .. 70 MiB)");
    TEST_CHECK(bk.errors == 0, "upload_to_device keeps the two-stream protocol (%d violations)", bk.errors);
    TEST_CHECK(bk.n_dma > 24 && bk.n_dma == bk.n_d2d, "uploads went through the ring: %d DMAs, %d device copies",
               bk.n_dma, bk.n_d2d);
    // op_to_device's host-to-device path is the ring
    int before = bk.n_dma;
    cm_tensor *h = tensor_empty(CM_F32, 2, (int64_t[]){300, 100}, CM_DEV_CPU);
    for (int i = 0; i < 30000; i++) ((float *)tensor_data(h))[i] = (float)i;
    cm_tensor *d = op_to_device(h, dev);
    TEST_CHECK(bk.n_dma == before + 1, "op_to_device uploads through the ring");
    float *back = malloc(30000 * 4);
    st_backend.memcpy_d2h(backend_ctx(dev), back, tensor_data(d), 30000 * 4);
    TEST_CHECK(memcmp(back, tensor_data(h), 30000 * 4) == 0, "op_to_device: the data arrives");
    tensor_release(h);
    tensor_release(d);
    free(back), free(src), free(dst);
}

// --- sumsq_multi: the per-tensor sums added in list order, bit for bit (empty tensors too) ---
static void test_sumsq_multi(void) {
    const cm_backend *be = &cm_cpu_backend;
    enum { NT = 9 };
    int64_t n[NT] = {5, 0, 40000, 1, 8193, 0, 300, 77777, 2};
    const void *x[NT];
    float *buf[NT];
    double ref = 0;
    for (int i = 0; i < NT; i++) {
        buf[i] = malloc((size_t)(n[i] ? n[i] : 1) * sizeof(float));
        for (int64_t j = 0; j < n[i]; j++) buf[i][j] = (float)sin(0.37 * (double)(j + 11 * i)) * (float)(i + 1);
        x[i] = buf[i];
        ref += be->sumsq(K_, CM_F32, n[i], buf[i]);
    }
    double got = be->sumsq_multi(K_, CM_F32, NT, x, n);
    TEST_CHECK(got == ref, "sumsq_multi %.17g == the per-tensor sums %.17g", got, ref);
    TEST_CHECK(be->sumsq_multi(K_, CM_F32, 0, x, n) == 0.0, "no tensors: 0");
    for (int i = 0; i < NT; i++) free(buf[i]);
}

int main(void) {
    test_sumsq_multi();
    test_gemm_ex();
    test_gemm_aux();
    test_linear_ops();
    test_adamw_multi();
    test_adamw_ema();
    test_adamw_bf16_state();
    test_async_cpu();
    test_upload_ring();
    return test_summary("test_backend_ext");
}
