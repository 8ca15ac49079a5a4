// cpu_gemm.c — batched GEMM over OpenBLAS cblas_sgemm / cblas_dgemm (row-major), with the bias /
// GELU / DGELU epilogues of gemm_ex: the bias is written into C first and the GEMM accumulates
// onto it (beta = 1), the activation (or its derivative) runs in place afterwards through the
// unary kernels, so fused and unfused give the same bits.
#include <cblas.h>
#include <omp.h>
#include "kernels/cpu/cpu_internal.h"

// OpenBLAS runs a GEMM of at most this many multiply-adds on the calling thread only
// (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD), so such GEMMs may run side by side in OpenMP.
#define CPU_BLAS_SERIAL_MNK 262144
// Above that OpenBLAS takes every thread it has, and its threads' wake-up and spin-wait (sched_yield)
// outweigh the work until each has a few million multiply-adds: 20 steps of the tiny model took
// 628 ms on 2 threads against 452 on 1 (2 cores), and 130 steps 116 s on 16 threads of the H100
// machine's 16-core VM against 4 s on 2 cores here. A GEMM gets one thread per this many
// multiply-adds, at most all of them (2^20..2^22 timed alike on the medium model's step).
#define CPU_BLAS_MNK_PER_THREAD (1 << 21)

// the OpenBLAS threads for one GEMM of mnk multiply-adds (0: leave them as they are)
static int blas_threads_for(double mnk) {
    if (omp_in_parallel()) return 0;  // OpenBLAS's OpenMP build runs serially there; and the setting is global
    int have = openblas_get_num_threads();
    double want = mnk / CPU_BLAS_MNK_PER_THREAD;
    return want < have ? (want < 1 ? 1 : (int)want) : 0;
}

// DST = beta*DST (+ bias[j]) over every row of every batch: the K == 0 product, or the bias
// prefill before a beta = 1 GEMM. beta == 0 never reads DST (fresh memory may hold NaN).
#define PREPARE_C(T, DST)                                                                     \
    do {                                                                                      \
        const T *bb = (const T *)bias;                                                        \
        _Pragma("omp parallel for schedule(static) if (batch * M * N >= CPU_PAR_MIN) num_threads(cpu_par_threads(batch * M * N))")       \
        for (int64_t r = 0; r < batch * M; r++) {                                             \
            T *c = (T *)(DST) + (r / M) * strideC + (r % M) * ldc;                            \
            if (beta == 0 && bb) memcpy(c, bb, (size_t)N * sizeof(T));                        \
            else if (beta == 0) memset(c, 0, (size_t)N * sizeof(T));                          \
            else if (bb) for (int64_t j = 0; j < N; j++) c[j] = (T)(beta * c[j]) + bb[j];     \
            else for (int64_t j = 0; j < N; j++) c[j] = (T)(beta * c[j]);                     \
        }                                                                                     \
    } while (0)

static void gemm_run(cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
                     const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB,
                     double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch) {
    const enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    // many small GEMMs: one per OpenMP thread; big ones: OpenBLAS threads each, as many as their size pays for
    const double mnk = (double)M * N * K;
    const int par = batch > 1 && mnk <= CPU_BLAS_SERIAL_MNK && batch * mnk >= CPU_BLAS_MNK_PER_THREAD;
    const int thr = mnk > CPU_BLAS_SERIAL_MNK ? blas_threads_for(mnk) : 0;  // below, OpenBLAS runs serially anyway
    int blas_keep = 0, omp_keep = 0;
    if (thr) {  // openblas_set_num_threads also sets OpenMP's count (its OpenMP build): both come back after
        blas_keep = openblas_get_num_threads(), omp_keep = omp_get_max_threads();
        openblas_set_num_threads(thr);
    }
    if (dt == CM_F32) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t b = 0; b < batch; b++)
            cblas_sgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, (float)alpha,
                        (const float *)A + b * strideA, (blasint)lda, (const float *)B + b * strideB, (blasint)ldb,
                        (float)beta, (float *)C + b * strideC, (blasint)ldc);
    } else {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t b = 0; b < batch; b++)
            cblas_dgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, alpha,
                        (const double *)A + b * strideA, (blasint)lda, (const double *)B + b * strideB, (blasint)ldb,
                        beta, (double *)C + b * strideC, (blasint)ldc);
    }
    if (thr) {
        openblas_set_num_threads(blas_keep);
        omp_set_num_threads(omp_keep);
    }
}

// over the rows of C (ld ldc, batch stride strideC): C = gelu(C), or C = gelu(aux) when the
// product went to aux, or C = C * gelu'(aux). One unary call over C when its rows are contiguous —
// then exactly what op_gelu / its backward do to the same buffers (the vector body and the tail
// may round differently, so the extents matter) — else one per row.
static void epilogue_rows(const cm_kctx *k, cm_dtype dt, cm_act act, int64_t M, int64_t N, int64_t batch, void *C,
                          int64_t ldc, int64_t strideC, void *aux) {
    const size_t es = dtype_size(dt);
    const int whole = ldc == N && (batch == 1 || strideC == M * N);
    const int64_t nrows = whole ? 1 : batch * M, len = whole ? batch * M * N : N;
    for (int64_t r = 0; r < nrows; r++) {
        const int64_t off = whole ? 0 : ((r / M) * strideC + (r % M) * ldc) * (int64_t)es;
        char *c = (char *)C + off, *a = aux ? (char *)aux + off : NULL;
        if (act == CM_ACT_GELU_TANH) cpu_unary_fwd(k, CM_UN_GELU_TANH, dt, len, c, a ? a : c);
        else cpu_unary_bwd(k, CM_UN_GELU_TANH, dt, len, c, a, c);
    }
}

void cpu_gemm_ex(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K,
                 double alpha, const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb,
                 int64_t strideB, double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch, const void *bias,
                 cm_act act, void *aux) {
    cm_gemm_calls++;
    if ((unsigned)act > CM_ACT_DGELU_TANH) cm_die("gemm", "unknown epilogue activation %d", (int)act);
    if (act == CM_ACT_DGELU_TANH && (!aux || bias || beta != 0.0))
        cm_die("gemm", "the DGELU epilogue needs aux (the pre-activation), beta 0 and no bias");
    if (aux && act == CM_ACT_NONE) cm_die("gemm", "aux given without a GELU epilogue");
    if (M <= 0 || N <= 0 || batch <= 0) return;
    if (dt != CM_F32 && dt != CM_F64) cpu_bad_dtype("gemm", dt);
    if (batch == 1) strideC = 0;
    // GELU keeping its input: the product goes to aux (starting from C's rows when beta reads
    // them) and the GELU reads it from there into C
    void *dst = C;
    if (act == CM_ACT_GELU_TANH && aux) {
        if (beta != 0.0)
            for (int64_t r = 0; r < batch * M; r++) {
                size_t o = (size_t)((r / M) * strideC + (r % M) * ldc) * dtype_size(dt);
                memcpy((char *)aux + o, (char *)C + o, (size_t)N * dtype_size(dt));
            }
        dst = aux;
    }
    if (K <= 0 || bias) {  // dst = beta C + bias first, then the product accumulates onto it
        if (dt == CM_F32) PREPARE_C(float, dst);
        else PREPARE_C(double, dst);
        beta = 1.0;
    }
    if (K > 0) gemm_run(dt, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, dst, ldc, strideC, batch);
    if (act != CM_ACT_NONE) epilogue_rows(k, dt, act, M, N, batch, C, ldc, strideC, aux);
}

void cpu_gemm(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
              const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB, double beta,
              void *C, int64_t ldc, int64_t strideC, int64_t batch) {
    cpu_gemm_ex(k, dt, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch,
                NULL, CM_ACT_NONE, NULL);
}
