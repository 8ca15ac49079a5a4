// cpu_gemm.c — batched GEMM over OpenBLAS cblas_sgemm / cblas_dgemm (row-major).
#include <cblas.h>
#include "kernels/cpu/cpu_internal.h"

// OpenBLAS runs a GEMM of at most this many multiply-adds on the calling thread only
// (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD), so such GEMMs may run side by side in OpenMP.
#define CPU_BLAS_SERIAL_MNK 262144

// C = beta*C when K == 0 (BLAS would reject lda = 0 for some shapes)
#define SCALE_C(T)                                                                  \
    for (int64_t b = 0; b < batch; b++)                                             \
        for (int64_t i = 0; i < M; i++)                                             \
            for (int64_t j = 0; j < N; j++) {                                       \
                T *c = (T *)C + b * strideC + i * ldc + j;                          \
                *c = beta == 0 ? (T)0 : (T)(beta * *c);                             \
            }

void cpu_gemm(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
              const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB, double beta,
              void *C, int64_t ldc, int64_t strideC, int64_t batch) {
    cm_gemm_calls++;
    if (M <= 0 || N <= 0 || batch <= 0) return;
    if (dt != CM_F32 && dt != CM_F64) cpu_bad_dtype("gemm", dt);
    if (K <= 0) {
        if (dt == CM_F32) { SCALE_C(float) } else { SCALE_C(double) }
        return;
    }
    const enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    // many small GEMMs: one per OpenMP thread; big ones: OpenBLAS threads each
    const int par = batch > 1 && (double)M * N * K <= CPU_BLAS_SERIAL_MNK;
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
}
