// emu_blas.cpp — cuBLASLt and cuBLAS as the CUDA emulator provides them: a plain loop over the
// documented column-major semantics, so cameo's row-major wrapper (cuda_gemm.cu: operand swap,
// transposes, leading dimensions, batch strides, bias, GELU and DGELU epilogues) is checked
// against the definition rather than against itself.
//   P = alpha op(A) op(B) + beta C + bias,  X(i, j) at X[i + j ld] (+ batch * stride)
//   D = P, or gelu(P) (GELU*; the *_AUX forms also store P into the aux matrix), or
//   D = P * gelu'(aux) (DGELU)
// op(A) is m x k (A stored k x m when transposed); bias has m entries, one per row of D, the same
// for every column and batch; GELU is the tanh approximation (as PyTorch relies on when it asks
// cuBLASLt for its GELU epilogue). The aux matrix has D's dtype, its own ld and batch stride, both
// divisible by 8 (cuBLASLt's documented requirement; anything else is refused as cuBLASLt would).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <vector>

struct emu_layout { cudaDataType_t type; uint64_t rows, cols; int64_t ld; int32_t batch; int64_t stride; };
struct emu_desc {
    cublasOperation_t ta, tb;
    cublasLtEpilogue_t epi;
    const void *bias;
    int bias_type;  // a cudaDataType_t, or -1: D's type (cuBLASLt's default)
    void *aux;      // GELU_AUX*: written; DGELU: read
    int64_t aux_ld, aux_stride;
};

static double ld_elem(cudaDataType_t t, const void *p, int64_t i) {
    switch (t) {
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_64F: return ((const double *)p)[i];
    case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case CUDA_R_16F: return __half2float(((const __half *)p)[i]);
    default: fprintf(stderr, "cuda emulator: cuBLAS: data type %d not emulated\n", (int)t); abort();
    }
}
static void st_elem(cudaDataType_t t, void *p, int64_t i, double v) {
    switch (t) {
    case CUDA_R_32F: ((float *)p)[i] = (float)v; break;
    case CUDA_R_64F: ((double *)p)[i] = v; break;
    case CUDA_R_16BF: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    case CUDA_R_16F: ((__half *)p)[i] = __float2half_rn((float)v); break;
    default: fprintf(stderr, "cuda emulator: cuBLAS: data type %d not emulated\n", (int)t); abort();
    }
}

static double gelu_tanh(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_tanh_d(double x) {
    double t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
}
static bool is_gelu(cublasLtEpilogue_t e) {
    return e == CUBLASLT_EPILOGUE_GELU || e == CUBLASLT_EPILOGUE_GELU_BIAS || e == CUBLASLT_EPILOGUE_GELU_AUX ||
           e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}
static bool has_aux(cublasLtEpilogue_t e) {
    return e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DGELU;
}

// the one loop: column-major, batched; returns a status for shape mistakes cuBLAS would refuse
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, double alpha,
                           cudaDataType_t at, const void *A, int64_t lda, int64_t sa, cudaDataType_t bt, const void *B,
                           int64_t ldb, int64_t sb, double beta, cudaDataType_t ct, const void *C, int64_t ldc, int64_t sc,
                           cudaDataType_t dt, void *D, int64_t ldd, int64_t sd, int64_t batch, const emu_desc *d) {
    int64_t arows = ta == CUBLAS_OP_N ? m : k, brows = tb == CUBLAS_OP_N ? k : n;
    if (lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1) || ldd < (m > 1 ? m : 1)) {
        fprintf(stderr, "cuda emulator: cuBLAS: leading dimension too small (m %lld n %lld k %lld, lda %lld ldb %lld ldc %lld)\n",
                (long long)m, (long long)n, (long long)k, (long long)lda, (long long)ldb, (long long)ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    // op(A) op(B) in f32 through OpenBLAS (the tensor cores' f32 accumulation), then beta C,
    // bias and the epilogue in f64 and one rounding to D's type
    int64_t acols = ta == CUBLAS_OP_N ? k : m, bcols = tb == CUBLAS_OP_N ? n : k;
    std::vector<float> Af((size_t)(lda * (acols - 1) + arows)), Bf((size_t)(ldb * (bcols - 1) + brows)), P((size_t)(m * n));
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t c = 0; c < acols; c++)
            for (int64_t r = 0; r < arows; r++) Af[(size_t)(r + c * lda)] = (float)ld_elem(at, A, b * sa + r + c * lda);
        for (int64_t c = 0; c < bcols; c++)
            for (int64_t r = 0; r < brows; r++) Bf[(size_t)(r + c * ldb)] = (float)ld_elem(bt, B, b * sb + r + c * ldb);
        if (m && n)
            cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                        (int)m, (int)n, (int)k, 1.0f, Af.data(), (int)lda, Bf.data(), (int)ldb, 0.0f, P.data(), (int)m);
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < m; i++) {
                double v = alpha * (k ? P[(size_t)(i + j * m)] : 0.0) + (beta != 0 ? beta * ld_elem(ct, C, b * sc + i + j * ldc) : 0.0);
                if (d && d->bias) v += ld_elem((cudaDataType_t)d->bias_type, d->bias, i);
                const int64_t ao = d && d->aux ? b * d->aux_stride + i + j * d->aux_ld : 0;
                if (d && is_gelu(d->epi)) {
                    if (d->aux) st_elem(dt, d->aux, ao, v);
                    v = gelu_tanh(v);
                } else if (d && d->epi == CUBLASLT_EPILOGUE_DGELU) {
                    v *= gelu_tanh_d(ld_elem(dt, d->aux, ao));
                }
                st_elem(dt, D, b * sd + i + j * ldd, v);
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" {
// --- cuBLASLt ---
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = (cublasLtHandle_t)malloc(16); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows, uint64_t cols, int64_t ld) {
    emu_layout *e = (emu_layout *)calloc(1, sizeof *e);
    *e = {t, rows, cols, ld, 1, 0};
    *l = (cublasLtMatrixLayout_t)e;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { free(l); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, const void *buf, size_t n) {
    emu_layout *e = (emu_layout *)l;
    switch (a) {
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: memcpy(&e->batch, buf, n < 4 ? n : 4); break;
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: memcpy(&e->stride, buf, n < 8 ? n : 8); break;
    case CUBLASLT_MATRIX_LAYOUT_ORDER: {
        int32_t o;
        memcpy(&o, buf, 4);
        if (o != CUBLASLT_ORDER_COL) { fprintf(stderr, "cuda emulator: cuBLASLt: only column-major layouts are emulated\n"); abort(); }
        break;
    }
    default: break;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct, cudaDataType_t st) {
    (void)ct, (void)st;
    emu_desc *e = (emu_desc *)calloc(1, sizeof *e);
    e->ta = e->tb = CUBLAS_OP_N;
    e->epi = CUBLASLT_EPILOGUE_DEFAULT;
    e->bias_type = -1;
    *d = (cublasLtMatmulDesc_t)e;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { free(d); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *buf, size_t n) {
    emu_desc *e = (emu_desc *)d;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: memcpy(&e->ta, buf, sizeof e->ta); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: memcpy(&e->tb, buf, sizeof e->tb); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        uint32_t v;
        memcpy(&v, buf, 4);
        e->epi = (cublasLtEpilogue_t)v;
        if (v != CUBLASLT_EPILOGUE_DEFAULT && v != CUBLASLT_EPILOGUE_BIAS && !is_gelu((cublasLtEpilogue_t)v) &&
            v != CUBLASLT_EPILOGUE_DGELU) {
            fprintf(stderr, "cuda emulator: cuBLASLt: epilogue %u not emulated\n", v);
            abort();
        }
        break;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: memcpy(&e->bias, buf, sizeof e->bias); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: memcpy(&e->aux, buf, sizeof e->aux); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: memcpy(&e->aux_ld, buf, sizeof e->aux_ld); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: memcpy(&e->aux_stride, buf, sizeof e->aux_stride); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: {
        int32_t t;
        memcpy(&t, buf, 4);
        if (t != -1) { fprintf(stderr, "cuda emulator: cuBLASLt: an aux data type other than D's is not emulated\n"); abort(); }
        break;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: {
        int32_t t;
        memcpy(&t, buf, 4);
        e->bias_type = t;
        break;
    }
    case CUBLASLT_MATMUL_DESC_TRANSC:
        if (*(const int32_t *)buf != CUBLAS_OP_N) { fprintf(stderr, "cuda emulator: cuBLASLt: transposed C not emulated\n"); abort(); }
        break;
    default: (void)n; break;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) { *p = (cublasLtMatmulPreference_t)malloc(16); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { free(p); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a, const void *b, size_t n) {
    (void)p, (void)a, (void)b, (void)n;
    return CUBLAS_STATUS_SUCCESS;
}

// the bias of a GELU_BIAS / BIAS epilogue only counts when the epilogue asks for it
static bool uses_bias(const emu_desc *d) {
    return d->epi == CUBLASLT_EPILOGUE_BIAS || d->epi == CUBLASLT_EPILOGUE_GELU_BIAS || d->epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t *res,
                                              int *found) {
    (void)h, (void)op, (void)a, (void)b, (void)c, (void)d, (void)pref;
    if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
    // up to three "algorithms" (the same arithmetic, told apart by data[0]): a caller that times
    // several (CAMEO_GEMM_TUNE, the benchmark's cuBLAS best) runs its loop here too
    int n = requested < 3 ? requested : 3;
    for (int i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].algo.data[0] = (uint64_t)i;
        res[i].state = CUBLAS_STATUS_SUCCESS;
        res[i].wavesCount = 1.0f;
    }
    *found = n;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t la, const void *B, cublasLtMatrixLayout_t lb, const void *beta,
                              const void *C, cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t wsn, cudaStream_t s) {
    (void)h, (void)algo, (void)ws, (void)wsn;
    emu_stream_flush(s);  // the stream's queued copies first (CUDA_EMU_DEFER)
    const emu_desc *e = (const emu_desc *)op;
    const emu_layout *a = (const emu_layout *)la, *b = (const emu_layout *)lb, *c = (const emu_layout *)lc, *d = (const emu_layout *)ld;
    int64_t m = (int64_t)d->rows, n = (int64_t)d->cols, k = (int64_t)(e->ta == CUBLAS_OP_N ? a->cols : a->rows);
    int64_t am = (int64_t)(e->ta == CUBLAS_OP_N ? a->rows : a->cols), bk = (int64_t)(e->tb == CUBLAS_OP_N ? b->rows : b->cols),
            bn = (int64_t)(e->tb == CUBLAS_OP_N ? b->cols : b->rows);
    if (am != m || bk != k || bn != n || (int64_t)c->rows != m || (int64_t)c->cols != n || a->batch != d->batch ||
        b->batch != d->batch || c->batch != d->batch) {
        fprintf(stderr, "cuda emulator: cuBLASLt: layouts do not agree (op(A) %lld x %lld, op(B) %lld x %lld, C %llu x %llu, D %lld x %lld)\n",
                (long long)am, (long long)k, (long long)bk, (long long)bn, (unsigned long long)c->rows, (unsigned long long)c->cols,
                (long long)m, (long long)n);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (uses_bias(e) && !e->bias) return CUBLAS_STATUS_INVALID_VALUE;
    if (has_aux(e->epi)) {  // cuBLASLt's documented requirements on the aux matrix
        if (!e->aux || e->aux_ld < m || e->aux_ld % 8 || (d->batch > 1 && e->aux_stride % 8)) {
            fprintf(stderr, "cuda emulator: cuBLASLt: aux matrix refused (pointer %p, ld %lld for %lld rows, batch stride %lld)\n",
                    e->aux, (long long)e->aux_ld, (long long)m, (long long)e->aux_stride);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    }
    emu_desc eff = *e;
    if (!uses_bias(e)) eff.bias = NULL;
    if (!has_aux(e->epi)) eff.aux = NULL;
    if (d->batch <= 1) eff.aux_stride = 0;
    if (eff.bias_type == -1) eff.bias_type = (int)d->type;
    double al = *(const float *)alpha, be = *(const float *)beta;
    return gemm(e->ta, e->tb, m, n, k, al, a->type, A, a->ld, a->stride, b->type, B, b->ld, b->stride, be, c->type, C, c->ld,
                c->stride, d->type, D, d->ld, d->stride, d->batch, &eff);
}

// --- cuBLAS ---
// a handle holds its stream (cublasSetStream), whose queued copies a GEMM runs first
cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (cublasHandle_t)calloc(1, sizeof(cudaStream_t)); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) { *(cudaStream_t *)h = s; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) { (void)h, (void)m; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *w, size_t n) { (void)h, (void)w, (void)n; return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at, int lda, long long sa,
                                          const void *B, cudaDataType bt, int ldb, long long sb, const void *beta, void *C,
                                          cudaDataType ct, int ldc, long long sc, int batch, cublasComputeType_t comp,
                                          cublasGemmAlgo_t algo) {
    (void)comp, (void)algo;
    emu_stream_flush(*(cudaStream_t *)h);
    return gemm(ta, tb, m, n, k, *(const float *)alpha, at, A, lda, sa, bt, B, ldb, sb, *(const float *)beta, ct, C, ldc, sc,
                ct, C, ldc, sc, batch, NULL);
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                            const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t comp, cublasGemmAlgo_t algo) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1, comp, algo);
}
}  // extern "C"
