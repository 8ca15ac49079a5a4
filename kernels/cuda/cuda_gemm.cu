// cuda_gemm.cu — every matmul of the CUDA backend: one cuBLASLt wrapper, row-major mapped to
// cuBLAS's column-major by swapping the operands (C^T = op(B)^T op(A)^T), batched by strides,
// bf16 (or f32) storage with f32 accumulation (TF32 off for f32), with cuBLASLt's BIAS / GELU /
// GELU_BIAS / GELU_AUX(_BIAS) / DGELU epilogues for gemm_ex (cu_gemm_f32c: an f32 result from bf16
// operands, attention's scores). The chosen algorithm and its
// descriptors are cached per shape / layout / alignment / epilogue; cublasGemmStridedBatchedEx
// (plus an epilogue kernel) is the fallback when the heuristic offers nothing.
#include "cuda_common.cuh"
#include <pthread.h>
#include <string.h>

typedef struct {
    int dt, ta, tb, beta0;
    int64_t M, N, K, lda, ldb, ldc, sa, sb, sc, batch;
    int aa, ab, ac;  // alignment (bytes, power of two <= 256) of A, B, C
    int epi;         // EPI_* bits: the epilogue (0: none)
    int abias;       // alignment of the bias (0: no bias)
    int aaux;        // alignment of aux (0: none)
    int dev;
    int tune;        // CAMEO_GEMM_TUNE: the algorithm timed (a plan of its own beside the heuristic's)
    int cf32;        // C in f32 whatever A and B are (cu_gemm_f32c)
} gemm_key;

// epilogue bits of a key: a bias, then GELU (tanh), its input kept in aux; or the GELU's
// derivative at aux. EPI_BIAS | EPI_GELU | EPI_AUX is cuBLASLt's GELU_AUX_BIAS.
#define EPI_BIAS 1
#define EPI_GELU 2
#define EPI_AUX 4
#define EPI_DGELU 8

typedef struct {
    gemm_key key;
    int used;
    int fallback;  // 1: no cuBLASLt algorithm, use cublasGemmStridedBatchedEx
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;  // in cuBLAS terms: la describes B (row-major), lb describes A
    cublasLtMatmulAlgo_t algo;
    size_t ws;
    // the bias pointer is an attribute of the shared descriptor `op`: setting it and enqueueing
    // the matmul happen under this lock, so two threads using one cached plan cannot mix pointers
    pthread_mutex_t mu;
} gemm_plan;

#define GEMM_CACHE 1024
static gemm_plan g_plans[GEMM_CACHE];
static pthread_mutex_t g_plan_lock = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t g_v2[16];
// tests/cuda: 1 runs every GEMM the fallback way (cublasGemmStridedBatchedEx + the epilogue
// kernel), so that path is checked on a GPU where cuBLASLt always has an algorithm
static int g_force_fallback = 0;
extern "C" void cuda_gemm_force_fallback(int on) { __atomic_store_n(&g_force_fallback, on, __ATOMIC_RELAXED); }

static int align_of(const void *p, int64_t stride_bytes) {
    uintptr_t v = (uintptr_t)p | (uintptr_t)stride_bytes | 256u;
    return (int)(v & (~v + 1));
}
static uint64_t key_hash(const gemm_key *k) {
    const unsigned char *b = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static cublasLtMatrixLayout_t make_layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                          int64_t stride) {
    cublasLtMatrixLayout_t l;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, (uint64_t)rows, (uint64_t)cols, ld));
    if (batch > 1) {
        int32_t bc = (int32_t)batch;
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                      sizeof stride));
    }
    return l;
}

// CAMEO_GEMM_TUNE=1: a new plan times the heuristic's first GEMM_TUNE algorithms on its first
// call's operands (outputs into scratch) and keeps the fastest; otherwise the heuristic's first
#define GEMM_TUNE 8
static int g_tune = -1;
static int gemm_tune_on(void) {
    int v = __atomic_load_n(&g_tune, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("CAMEO_GEMM_TUNE");
        v = e && *e && strcmp(e, "0");
        __atomic_store_n(&g_tune, v, __ATOMIC_RELAXED);
    }
    return v;
}
// the benchmark times both: 1 / 0 sets it, -1 goes back to CAMEO_GEMM_TUNE
extern "C" void cuda_gemm_tune(int on) { __atomic_store_n(&g_tune, on < 0 ? -1 : !!on, __ATOMIC_RELAXED); }
static int64_t g_tuned, g_tune_changed;  // plans tuned; of them, where another algorithm won
extern "C" int64_t cuda_gemm_tuned(int64_t *changed) {
    if (changed) *changed = __atomic_load_n(&g_tune_changed, __ATOMIC_RELAXED);
    return __atomic_load_n(&g_tuned, __ATOMIC_RELAXED);
}

// the cuBLASLt workspace of n bytes for a call on k's stream: the context's on its compute stream;
// on a side stream (cuda_fork: it may run beside a GEMM there) one of its own, stream-ordered on
// that stream (*own, to give to cuda_tmp_free after the call)
static void *lt_workspace(const cm_kctx *k, size_t n, void **own) {
    const cuda_ctx_ext *c = cuda_ext(k);
    *own = NULL;
    if (KSTREAM(k) == (cudaStream_t)c->k.stream || !n) return c->workspace;
    return *own = cuda_tmp_alloc(k, n, "a side stream's cuBLASLt workspace");
}

// ms per run of plan p with algo (one untimed run, then iters timed; D = C), -1 where it fails
static double algo_ms(const cm_kctx *k, const gemm_plan *p, const cublasLtMatmulAlgo_t *algo, size_t ws, const void *A,
                      const void *B, void *C, float beta, int iters) {
    cudaStream_t s = KSTREAM(k);
    const float fa = 1.f;
    void *own = NULL, *wp = lt_workspace(k, ws, &own);
    double ms = -1.0;
    if (cublasLtMatmul((cublasLtHandle_t)k->blas, p->op, &fa, B, p->la, A, p->lb, &beta, C, p->lc, C, p->lc, algo, wp, ws,
                       s) == CUBLAS_STATUS_SUCCESS)
        ms = cuda_time_ms(k, 0, iters, [&] {
            CUBLAS_CHECK(cublasLtMatmul((cublasLtHandle_t)k->blas, p->op, &fa, B, p->la, A, p->lb, &beta, C, p->lc, C,
                                        p->lc, algo, wp, ws, s));
        });
    cuda_tmp_free(k, own);
    return ms;
}

// the fastest of res[n] for plan p on A, B (the first call's operands), into p->algo / p->ws. The
// outputs go to scratch (C's extent, zeroed; GELU_AUX's aux too), so a beta != 0 sum or an aux the
// call writes is never touched; where the scratch cannot be had, the heuristic's first stays.
static void plan_tune(const cm_kctx *k, gemm_plan *p, const gemm_key *key, const cublasLtMatmulHeuristicResult_t *res, int n,
                      const void *A, const void *B, const void *aux) {
    const size_t es = key->dt == CM_BF16 && !key->cf32 ? 2 : 4;  // C's
    const size_t ext = (size_t)((key->batch - 1) * key->sc + (key->M - 1) * key->ldc + key->N) * es;
    const int aux_out = (key->epi & EPI_AUX) && !(key->epi & EPI_DGELU);
    cudaStream_t s = KSTREAM(k);
    void *Cs = NULL, *Xs = NULL;
    if (cudaMallocAsync(&Cs, ext, s) != cudaSuccess || (aux_out && cudaMallocAsync(&Xs, ext, s) != cudaSuccess)) {
        (void)cudaGetLastError();
        if (Cs) CUDA_CHECK(cudaFreeAsync(Cs, s));
        return;
    }
    CUDA_CHECK(cudaMemsetAsync(Cs, 0, ext, s));
    if (aux_out)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &Xs, sizeof Xs));
    const float beta = key->beta0 ? 0.f : 1.f;
    double best = -1.0;
    int win = 0;
    for (int i = 0; i < n; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        double ms = algo_ms(k, p, &res[i].algo, res[i].workspaceSize, A, B, Cs, beta, 3);
        if (ms >= 0 && (best < 0 || ms < best)) best = ms, win = i;
    }
    (void)cudaGetLastError();
    p->algo = res[win].algo;
    p->ws = res[win].workspaceSize;
    if (aux_out)  // the first caller's again (each call sets its own anyway)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux));
    CUDA_CHECK(cudaFreeAsync(Cs, s));
    if (Xs) CUDA_CHECK(cudaFreeAsync(Xs, s));
    __atomic_fetch_add(&g_tuned, 1, __ATOMIC_RELAXED);
    if (win) __atomic_fetch_add(&g_tune_changed, 1, __ATOMIC_RELAXED);
}

// builds the plan for key (descriptors + heuristic's best algorithm, or the fastest of its first
// GEMM_TUNE under CAMEO_GEMM_TUNE where A and B are given); bias, aux: the first caller's pointers
// (the heuristic sees real ones; each call sets its own)
static void plan_build(const cm_kctx *k, gemm_plan *p, const gemm_key *key, const void *bias, const void *aux,
                       const void *A, const void *B) {
    const cuda_ctx_ext *c = cuda_ext(k);
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->key = *key;
    cudaDataType_t t = key->dt == CM_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = key->tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS "A" is our B
    cublasOperation_t opb = key->ta ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS "B" is our A
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    if (key->epi) {
        // D = act(alpha op(A) op(B) + beta C + bias), bias a vector along D's rows, broadcast
        // over D's columns (and over the batch: CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE is 0).
        // D here is the column-major view of our row-major C: N rows (cuBLAS "m", the output
        // features) by M columns (our rows), leading dimension ldc. So cuBLAS's bias[i] is added
        // to D[i, j] = C[j][i] for every j: bias[n] goes to column n of every row of our C —
        // the per-feature bias of a linear layer, length N, as the interface asks.
        uint32_t e;
        switch (key->epi) {
        case EPI_BIAS: e = CUBLASLT_EPILOGUE_BIAS; break;
        case EPI_GELU: e = CUBLASLT_EPILOGUE_GELU; break;
        case EPI_GELU | EPI_BIAS: e = CUBLASLT_EPILOGUE_GELU_BIAS; break;
        case EPI_GELU | EPI_AUX: e = CUBLASLT_EPILOGUE_GELU_AUX; break;
        case EPI_GELU | EPI_AUX | EPI_BIAS: e = CUBLASLT_EPILOGUE_GELU_AUX_BIAS; break;
        default: e = CUBLASLT_EPILOGUE_DGELU; break;  // EPI_DGELU | EPI_AUX
        }
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e));
        if (key->epi & EPI_BIAS) {
            int32_t bt = (int32_t)t;  // the bias in C's dtype (bf16 with bf16 C, f32 with f32)
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        }
        if (key->epi & EPI_AUX) {
            // aux is laid out like D (column-major N x M, ld ldc: our row-major C), its dtype
            // D's (cuBLASLt's default for GELU inputs). cuBLASLt wants its ld and batch stride
            // divisible by 8: otherwise this plan is the fallback (plain GEMM + epilogue kernel).
            int64_t ald = key->ldc, asd = key->sc;
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux));
            CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ald, sizeof ald));
            if (key->batch > 1)
                CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, &asd,
                                                            sizeof asd));
        }
    }
    p->la = key->tb ? make_layout(t, key->K, key->N, key->ldb, key->batch, key->sb)
                    : make_layout(t, key->N, key->K, key->ldb, key->batch, key->sb);
    p->lb = key->ta ? make_layout(t, key->M, key->K, key->lda, key->batch, key->sa)
                    : make_layout(t, key->K, key->M, key->lda, key->batch, key->sa);
    p->lc = make_layout(key->cf32 ? CUDA_R_32F : t, key->N, key->M, key->ldc, key->batch, key->sc);

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = c->workspace_bytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    uint32_t aA = (uint32_t)key->ab, aB = (uint32_t)key->aa, aC = (uint32_t)key->ac;  // swapped, as the operands
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aA, sizeof aA));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &aB, sizeof aB));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &aC, sizeof aC));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &aC, sizeof aC));
    cublasLtMatmulHeuristicResult_t res[GEMM_TUNE];
    int found = 0;
    const int aux_ok = !(key->epi & EPI_AUX) || (key->ldc % 8 == 0 && (key->batch <= 1 || key->sc % 8 == 0));
    const int tune = A && B && key->tune;
    cublasStatus_t st = CUBLAS_STATUS_NOT_SUPPORTED;
    if (aux_ok)
        st = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)k->blas, p->op, p->la, p->lb, p->lc, p->lc, pref,
                                            tune ? GEMM_TUNE : 1, res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0 || res[0].state != CUBLAS_STATUS_SUCCESS) {
        p->fallback = 1;
    } else {
        p->algo = res[0].algo;
        p->ws = res[0].workspaceSize;
        if (tune && found > 1) plan_tune(k, p, key, res, found, A, B, aux);
    }
    p->used = 1;
}

static void plan_destroy(gemm_plan *p) {
    if (!p->used) return;
    cublasLtMatrixLayoutDestroy(p->la);
    cublasLtMatrixLayoutDestroy(p->lb);
    cublasLtMatrixLayoutDestroy(p->lc);
    cublasLtMatmulDescDestroy(p->op);
    pthread_mutex_destroy(&p->mu);
    p->used = 0;
}

static cublasHandle_t v2_handle(const cm_kctx *k) {
    int d = k->dev.index;
    pthread_mutex_lock(&g_plan_lock);
    if (!g_v2[d]) {
        CUBLAS_CHECK(cublasCreate(&g_v2[d]));
        CUBLAS_CHECK(cublasSetMathMode(g_v2[d], CUBLAS_PEDANTIC_MATH));  // no TF32 for f32
    }
    cublasHandle_t h = g_v2[d];
    pthread_mutex_unlock(&g_plan_lock);
    CUBLAS_CHECK(cublasSetStream(h, KSTREAM(k)));
    return h;
}

// the epilogue outside cuBLASLt, in f32: with v = s + bias[j], C[b][r][j] = v, gelu(v) (aux
// first receiving v when given) or v * gelu'(aux) (act); s = beta C (scale = 1; beta == 0 never
// reads C) — the K == 0 case, where the product is empty — or s = C (scale = 0): after the
// fallback GEMM, which has already applied alpha and beta. aux is laid out like C.
template <typename T>
__global__ void k_epilogue(int64_t M, int64_t N, int64_t ldc, int64_t sc, int64_t batch, int scale, float beta,
                           const T *bias, int act, T *aux, T *C) {
    int64_t n = M * N * batch;
    GRID_STRIDE(i, n) {
        int64_t b = i / (M * N), r = (i / N) % M, cc = i % N, o = b * sc + r * ldc + cc;
        float v = !scale ? to_f(C[o]) : beta == 0.f ? 0.f : beta * to_f(C[o]);
        if (bias) v += to_f(bias[cc]);
        if (act == CM_ACT_GELU_TANH) {
            if (aux) aux[o] = from_f<T>(v);
            v = gelu_tanh_f(v);
        } else if (act == CM_ACT_DGELU_TANH) {
            v *= gelu_tanh_d_f(to_f(aux[o]));
        }
        C[o] = from_f<T>(v);
    }
}

// cf32: C in f32 (no epilogue), A and B in dt
static void gemm_run(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
                     const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB,
                     double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch, const void *bias, cm_act act,
                     void *aux, int cf32) {
    cuda_require_float("cuda gemm", dt);
    if ((unsigned)act > CM_ACT_DGELU_TANH) cm_die("cuda gemm", "unknown epilogue activation %d", (int)act);
    if (act == CM_ACT_DGELU_TANH && (!aux || bias || beta != 0.0))
        cm_die("cuda gemm", "the DGELU epilogue needs aux (the pre-activation), beta 0 and no bias");
    if (aux && act == CM_ACT_NONE) cm_die("cuda gemm", "aux given without a GELU epilogue");
    __atomic_fetch_add(&cm_gemm_calls, 1, __ATOMIC_RELAXED);
    if (M <= 0 || N <= 0 || batch <= 0) return;
    if (batch > 0x7fffffffLL) cm_die("cuda gemm", "batch %lld too large", (long long)batch);
    cudaStream_t s = KSTREAM(k);
    if (K <= 0 && cf32) cm_die("cuda gemm", "an f32-output product needs K > 0 (K = %lld)", (long long)K);
    if (K <= 0) {
        CUDA_DISPATCH("cuda gemm", dt, k_epilogue<T><<<grid_for(M * N * batch, 256), 256, 0, s>>>(
                                           M, N, ldc, batch > 1 ? strideC : 0, batch, 1, (float)beta,
                                           (const T *)bias, (int)act, (T *)aux, (T *)C));
        CUDA_LAUNCH_CHECK();
        return;
    }
    size_t es = dtype_size(dt), esc = cf32 ? sizeof(float) : es;
    gemm_key key;
    memset(&key, 0, sizeof key);
    key.dt = (int)dt;
    key.ta = !!transA;
    key.tb = !!transB;
    key.beta0 = beta == 0.0;
    key.M = M, key.N = N, key.K = K;
    key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.batch = batch;
    key.sa = batch > 1 ? strideA : 0;
    key.sb = batch > 1 ? strideB : 0;
    key.sc = batch > 1 ? strideC : 0;
    key.aa = align_of(A, key.sa * (int64_t)es);
    key.ab = align_of(B, key.sb * (int64_t)es);
    key.ac = align_of(C, key.sc * (int64_t)esc);
    key.cf32 = cf32;
    key.epi = (bias ? EPI_BIAS : 0) | (act == CM_ACT_GELU_TANH ? EPI_GELU : 0) |
              (act == CM_ACT_DGELU_TANH ? EPI_DGELU : 0) | (aux ? EPI_AUX : 0);
    key.abias = bias ? align_of(bias, 0) : 0;
    key.aaux = aux ? align_of(aux, key.sc * (int64_t)es) : 0;
    key.dev = k->dev.index;
    key.tune = gemm_tune_on();

    uint64_t h = key_hash(&key);
    gemm_plan local, *p = NULL;
    int cached = 0;
    pthread_mutex_lock(&g_plan_lock);
    for (int probe = 0; probe < 8; probe++) {
        gemm_plan *q = &g_plans[(h + probe) % GEMM_CACHE];
        if (q->used && memcmp(&q->key, &key, sizeof key) == 0) {
            p = q;
            cached = 1;
            break;
        }
        if (!q->used) {
            plan_build(k, q, &key, bias, aux, A, B);
            p = q;
            cached = 1;
            break;
        }
    }
    pthread_mutex_unlock(&g_plan_lock);
    if (!p) {  // cache neighbourhood full: plan, run, destroy
        plan_build(k, &local, &key, bias, aux, NULL, NULL);  // not tuned: used once
        p = &local;
    }

    float fa = (float)alpha, fb = (float)beta;
    int lt = !__atomic_load_n(&p->fallback, __ATOMIC_RELAXED) && !__atomic_load_n(&g_force_fallback, __ATOMIC_RELAXED);
    if (lt) {
        const int ptrs = bias || aux;
        if (ptrs) {  // this call's bias / aux into the shared descriptor, then enqueue, under the plan's lock
            pthread_mutex_lock(&p->mu);
            if (bias)
                CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
            if (aux)
                CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux,
                                                            sizeof aux));
        }
        void *own = NULL, *ws = lt_workspace(k, p->ws, &own);
        cublasStatus_t st = cublasLtMatmul((cublasLtHandle_t)k->blas, p->op, &fa, B, p->la, A, p->lb, &fb, C, p->lc, C,
                                           p->lc, &p->algo, ws, p->ws, s);
        cm_dev_launches++;
        if (ptrs) pthread_mutex_unlock(&p->mu);
        cuda_tmp_free(k, own);
        if (st != CUBLAS_STATUS_SUCCESS) {
            // an epilogue the chosen algorithm turns down at run time (say, for this bias's or
            // aux's alignment): this plan takes the fallback from now on; anything else is an error
            if (!key.epi || (st != CUBLAS_STATUS_NOT_SUPPORTED && st != CUBLAS_STATUS_INVALID_VALUE))
                cuda_fail(__FILE__, __LINE__, "cublasLtMatmul", cublas_status_str(st));
            __atomic_store_n(&p->fallback, 1, __ATOMIC_RELAXED);
            lt = 0;
        }
    }
    if (!lt) {
        cublasHandle_t hv = v2_handle(k);  // (its cublasSetStream put back the default workspace)
        void *own = NULL, *ws = lt_workspace(k, cuda_ext(k)->workspace_bytes, &own);
        if (own) CUBLAS_CHECK(cublasSetWorkspace(hv, ws, cuda_ext(k)->workspace_bytes));  // a side stream's own
        cudaDataType_t t = dt == CM_BF16 ? CUDA_R_16BF : CUDA_R_32F, tc = cf32 ? CUDA_R_32F : t;
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(hv, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                (int)N, (int)M, (int)K, &fa, B, t, (int)ldb, strideB, A, t, (int)lda,
                                                strideA, &fb, C, tc, (int)ldc, strideC, (int)batch, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT));
        cuda_tmp_free(k, own);
        if (key.epi) {  // the epilogue the heuristic could not fuse: one more pass over C
            CUDA_DISPATCH("cuda gemm", dt, k_epilogue<T><<<grid_for(M * N * batch, 256), 256, 0, s>>>(
                                               M, N, ldc, key.sc, batch, 0, 0.f, (const T *)bias, (int)act,
                                               (T *)aux, (T *)C));
            CUDA_LAUNCH_CHECK();
        }
    }
    if (!cached) plan_destroy(&local);
}

void cu_gemm_ex(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
                const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB,
                double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch, const void *bias, cm_act act,
                void *aux) {
    gemm_run(k, dt, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch, bias,
             act, aux, 0);
}

void cu_gemm_f32c(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
                  const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB, double beta,
                  float *C, int64_t ldc, int64_t strideC, int64_t batch) {
    gemm_run(k, dt, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch, NULL,
             CM_ACT_NONE, NULL, 1);
}

void cu_gemm(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
             const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB, double beta,
             void *C, int64_t ldc, int64_t strideC, int64_t batch) {
    cu_gemm_ex(k, dt, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch,
               NULL, CM_ACT_NONE, NULL);
}

// times `iters` runs of the top `max_algos` heuristic algorithms for a row-major bf16
// C[M,N] = A[M,K] @ B[K,N]; returns the best time in ms (the "cuBLAS best" of the benchmark)
// which of them was the best in the last cuda_gemm_best_ms ("cuBLASLt heuristic #i" or "cublasGemmEx
// default"): the benchmark names it, so a gap to cameo's wrapper says where to look (the H200 run
// of session 22 found 88 % at K = 12288 and could not tell)
static char g_best_what[48] = "";
extern "C" const char *cuda_gemm_best_what(void) { return g_best_what; }
extern "C" double cuda_gemm_best_ms(const cm_kctx *k, int64_t M, int64_t N, int64_t K, const void *A, const void *B,
                                    void *C, int max_algos, int iters) {
    const cuda_ctx_ext *c = cuda_ext(k);
    gemm_plan p;
    gemm_key key;
    memset(&key, 0, sizeof key);
    key.dt = CM_BF16, key.M = M, key.N = N, key.K = K, key.lda = K, key.ldb = N, key.ldc = N, key.batch = 1;
    key.aa = key.ab = key.ac = 256;
    key.beta0 = 1;
    plan_build(k, &p, &key, NULL, NULL, NULL, NULL);
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = c->workspace_bytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t res[32];
    if (max_algos > 32) max_algos = 32;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)k->blas, p.op, p.la, p.lb, p.lc, p.lc, pref,
                                                max_algos, res, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    float fa = 1.f, fb = 0.f;
    double best = -1.0;
    for (int i = 0; i < found; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        double per = algo_ms(k, &p, &res[i].algo, res[i].workspaceSize, A, B, C, 0.f, iters);
        if (per >= 0 && (best < 0 || per < best)) {
            best = per;
            snprintf(g_best_what, sizeof g_best_what, "cuBLASLt heuristic #%d of %d", i + 1, found);
        }
    }
    // cublasGemmEx with the default algorithm, the plain-cuBLAS figure
    cublasHandle_t hv = v2_handle(k);
    double per = cuda_time_ms(k, 1, iters, [&] {
        CUBLAS_CHECK(cublasGemmEx(hv, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M, (int)K, &fa, B, CUDA_R_16BF, (int)N, A,
                                  CUDA_R_16BF, (int)K, &fb, C, CUDA_R_16BF, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    if (best < 0 || per < best) {
        best = per;
        snprintf(g_best_what, sizeof g_best_what, "cublasGemmEx default");
    }
    plan_destroy(&p);
    return best;
}
