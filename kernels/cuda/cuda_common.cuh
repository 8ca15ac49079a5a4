// cuda_common.cuh — shared helpers of the CUDA backend: error checks, dtype load/store, launch
// sizes, warp/block reductions, and the declarations of every kernels/cuda entry point that the
// backend table in cuda_backend.cu collects. CUDA C++ only (never included from C).
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// tensor.h is C17: `_Noreturn` is no C++ keyword. (The lead may add an #ifdef __cplusplus there.)
#ifndef _Noreturn
#define _Noreturn __attribute__((noreturn))
#endif
extern "C" {
#include "kernels/backend.h"
}

// ---------------------------------------------------------------------------------------------
// checks: every CUDA / cuBLAS call goes through one of these; a failure prints file, line, the
// call and the error string, then stops (programmer error or a broken device: nothing sane to do)
// ---------------------------------------------------------------------------------------------
extern "C" _Noreturn void cuda_fail(const char *file, int line, const char *call, const char *msg);
const char *cublas_status_str(cublasStatus_t s);

#define CUDA_CHECK(call)                                                                      \
    do {                                                                                      \
        cudaError_t _e = (call);                                                              \
        if (_e != cudaSuccess) cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorString(_e)); \
    } while (0)
#define CUBLAS_CHECK(call)                                                                     \
    do {                                                                                       \
        cublasStatus_t _s = (call);                                                            \
        if (_s != CUBLAS_STATUS_SUCCESS) cuda_fail(__FILE__, __LINE__, #call, cublas_status_str(_s)); \
    } while (0)
// after a kernel launch: launch-configuration errors surface here, execution errors at sync
#define CUDA_LAUNCH_CHECK()                 \
    do {                                    \
        cm_dev_launches++;                  \
        CUDA_CHECK(cudaGetLastError());     \
    } while (0)

#define KSTREAM(k) ((cudaStream_t)((k) ? (k)->stream : 0))

// ---------------------------------------------------------------------------------------------
// dtypes: storage types and f32 compute
// ---------------------------------------------------------------------------------------------
typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16 *p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }

// PyTorch's gelu(approximate='tanh') in f32: the unary kernels and the GEMM epilogue kernel.
// Written through s = sigmoid(2u) = (1 + tanh u) / 2 and 1 - tanh² u = 4 s (1 - s): the tanh form
// cancels in 1 + t where t -> -1 (x < -2), and under --use_fast_math tanhf's error there made the
// derivative 1.3e-5 (normwise) off the CPU's on an H100; s from __expf keeps its relative accuracy.
__device__ __forceinline__ float gelu_tanh_s(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);  // sqrt(2/pi) (x + 0.044715 x^3)
    return 1.f / (1.f + __expf(-2.f * u));                          // 0 when exp overflows
}
__device__ __forceinline__ float gelu_tanh_f(float x) { return x * gelu_tanh_s(x); }
// its derivative: s + x s (1 - s) 2 du/dx; the unary backward kernel and the GEMM's DGELU epilogue kernel.
// x clamped to [-30, 30], as the CPU's: past |x| = 1.8e19 x³ overflowed and inf · 0 made it NaN (it is
// 1 or 0 to f32 precision out there)
__device__ __forceinline__ float gelu_tanh_d_f(float x) {
    x = x > 30.f ? 30.f : x < -30.f ? -30.f : x;  // not fminf/fmaxf: they return -30 for a NaN, whose derivative must stay NaN
    float s = gelu_tanh_s(x);
    float du = 0.7978845608028654f * (1.f + 3.f * 0.044715f * x * x);
    return s + 2.f * x * s * (1.f - s) * du;
}

// the float dtypes every compute entry point accepts; anything else is a programmer error
void cuda_require_float(const char *op, cm_dtype dt);

// dispatch a templated launcher on dt (CM_F32 -> float, CM_BF16 -> bf16)
#define CUDA_DISPATCH(op, dt, ...)                                 \
    do {                                                           \
        cuda_require_float(op, dt);                                \
        if ((dt) == CM_F32) { typedef float T; __VA_ARGS__; }      \
        else { typedef bf16 T; __VA_ARGS__; }                      \
    } while (0)

// ---------------------------------------------------------------------------------------------
// launch sizes and reductions
// ---------------------------------------------------------------------------------------------
static inline unsigned grid_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 16) b = 65535LL * 16;  // grid-stride loops cover the rest
    return (unsigned)b;
}
#define GRID_STRIDE(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
// sum over the whole block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
// `sh` is 32 floats of shared memory; the call contains __syncthreads (all threads must call).
__device__ __forceinline__ float block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    float r = lane < nw ? sh[lane] : 0.f;
    return warp_sum(r);
}

// events of event_record: id = seq << 1 | stream, seq = 1, 2, ... per stream; the CUDA event
// is ev[stream][seq % CUDA_EVENT_RING]. A ring slot is re-recorded CUDA_EVENT_RING records later
// on the same stream; a wait on an id that old then waits for that later point of the same
// in-order stream — later than needed, never too early.
#define CUDA_EVENT_RING 256
#define CUDA_SIDE_STREAMS 4
// device scratch of the context: f32/f64 partials for host-returned reductions
struct cuda_ctx_ext {
    cm_kctx k;
    int index;
    double *partials;      // [CUDA_MAX_PARTIALS] device
    double *host_result;   // pinned, 1 double
    void *workspace;       // cuBLASLt workspace
    size_t workspace_bytes;
    int sm_count;
    int cc_major, cc_minor;
    size_t smem_optin;
    cudaStream_t copy_stream;                 // memcpy_h2d_async's, non-blocking
    cudaStream_t side[CUDA_SIDE_STREAMS];     // cuda_fork's, non-blocking, taken in turn
    cudaEvent_t side_go[CUDA_SIDE_STREAMS], side_done[CUDA_SIDE_STREAMS];  // fork / join points, timing off
    unsigned side_next;                       // the next side stream cuda_fork takes
    cudaEvent_t ev[2][CUDA_EVENT_RING];       // [cm_stream][seq % ring], timing off
    uint64_t ev_seq[2];                       // the last seq recorded per stream
    pthread_mutex_t ev_lock;                  // guards ev_seq and the re-recording of ring slots
    cudaEvent_t *tm;                          // timer_mark's pool [tm_cap] (timing on); mark id = slot + 1
    int tm_n, tm_cap;                         // slots recorded since timer_reset; created so far
    pthread_mutex_t tm_lock;
};
// the cudaStream_t of stream s of context k
cudaStream_t cuda_stream_of(const cm_kctx *k, cm_stream s);
#define CUDA_MAX_PARTIALS 1024
const cuda_ctx_ext *cuda_ext(const cm_kctx *k);

// times fn() `iters` times on k's compute stream after `warm` untimed runs; ms per run (waits)
template <typename F> static double cuda_time_ms(const cm_kctx *k, int warm, int iters, F fn) {
    cudaStream_t s = KSTREAM(k);
    for (int i = 0; i < warm; i++) fn();
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    CUDA_CHECK(cudaEventRecord(e0, s));
    for (int i = 0; i < iters; i++) fn();
    CUDA_CHECK(cudaEventRecord(e1, s));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    return ms / iters;
}

// side streams: independent kernels of one op — the FLUX blocks' joint and IP attention, a
// backward's dQ and dK dV kernels — issued on two streams, so the blocks of the one launched second
// fill the SMs the first one's last wave leaves idle (the 512² step's attention is 2.2 + 1.5 waves
// of an H200's SMs). cuda_fork gives `side`, a context whose stream starts after everything k's
// stream holds so far; cuda_join makes k's stream wait for everything queued on side since. What
// the side work reads and writes is allocated before the fork (or stream-ordered on the side
// stream itself, cuda_tmp_alloc) and freed after the join, so the caching allocator's one-stream
// order still holds. Side work must not touch the context's own buffers (partials, host_result);
// a GEMM there takes a cuBLASLt workspace of its own (cuda_gemm.cu). False (side = k, nothing to
// join) where side streams are off: CAMEO_SIDE_STREAMS=0, or cuda_side_streams_use(0) (the
// benchmark's "one after the other" rows).
// One host thread issues a context's compute work; forks nest (they take the side streams in turn).
struct cuda_side {
    cm_kctx k;  // the side stream's context (k's device, BLAS handle)
    int slot;   // -1: not forked
};
bool cuda_fork(const cm_kctx *k, cuda_side *side);
void cuda_join(const cm_kctx *k, cuda_side *side);
bool cuda_side_streams_on(void);
extern "C" void cuda_side_streams_use(int on);  // 1 on, 0 off, -1 the environment's choice
extern "C" int64_t cuda_side_forks(void);       // forks made (tests: the side path ran)

// a 0 / 1 switch from the environment variable `name` (unset or empty: dflt), read once into
// *cache (-1: not read yet); any other value is an error naming the variable
bool cuda_env_switch(const char *name, bool dflt, int *cache);

// stream-ordered temporary device buffer; dies with a clear message when memory is exhausted
void *cuda_tmp_alloc(const cm_kctx *k, size_t nbytes, const char *what);
void cuda_tmp_free(const cm_kctx *k, void *p);

// ---------------------------------------------------------------------------------------------
// entry points (defined in the other kernels/cuda/*.cu files, collected in cuda_backend.cu)
// ---------------------------------------------------------------------------------------------
// cuda_elementwise.cu
void cu_fill(const cm_kctx *k, cm_dtype dt, void *dst, int64_t n, double value);
void cu_copy_strided(const cm_kctx *k, int ndim, const int64_t *shape, cm_dtype dst_dt, void *dst,
                     const int64_t *dst_stride, cm_dtype src_dt, const void *src, const int64_t *src_stride);
void cu_binary(const cm_kctx *k, cm_binop op, cm_dtype dt, int ndim, const int64_t *shape, void *out,
               const void *a, const int64_t *a_stride, const void *b, const int64_t *b_stride);
void cu_axpby(const cm_kctx *k, cm_dtype dt, int64_t n, double alpha, const void *x, double beta, void *y);
void cu_unary_fwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *y, const void *x);
void cu_unary_bwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *dx, const void *x, const void *dy);
void cu_glu_fwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *y, const void *x);
void cu_glu_bwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *dx, const void *x,
                const void *dy);
void cu_gather_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *y, const void *table, const int32_t *idx);
void cu_scatter_add_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *dtable, const void *dy,
                         const int32_t *idx);
void cu_mse_bwd(const cm_kctx *k, cm_dtype dt, int64_t n, double g, const void *gp, void *da, const void *a,
                const void *b);
void cu_adamw(const cm_kctx *k, int64_t n, float *p, cm_dtype gdt, const void *g, float *m, float *v, double lr,
              double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale);
void cu_adamw_multi(const cm_kctx *k, int nt, const cm_adamw_tensor *t, cm_dtype gdt, cm_dtype sdt, double lr, double b1, double b2,
                    double eps, double wd, double bc1, double bc2, double gscale, double ema_decay);

// cuda_reduce.cu
void cu_reduce_sum(const cm_kctx *k, cm_dtype dt, int64_t outer, int64_t red, int64_t inner, void *y, const void *x);
double cu_sumsq(const cm_kctx *k, cm_dtype dt, int64_t n, const void *x);
double cu_sumsq_multi(const cm_kctx *k, cm_dtype dt, int nt, const void *const *x, const int64_t *n);
void cu_mse_fwd(const cm_kctx *k, cm_dtype dt, int64_t n, const void *a, const void *b, void *out);
void cu_softmax_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *y, const void *x);
void cu_softmax_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, const void *y, const void *dy);

// cuda_norm.cu
void cu_layernorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, double eps, void *y, float *mean,
                      float *rstd, const void *x, const void *w, const void *b);
void cu_layernorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, void *dw, void *db,
                      const void *dy, const void *x, const float *mean, const float *rstd, const void *w);
void cu_layernorm_mod_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, double eps, void *y,
                          float *mean, float *rstd, const void *x, const void *w, const void *b, const void *scale,
                          const void *shift);
void cu_layernorm_mod_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dw,
                          void *db, void *dscale, void *dshift, const void *dy, const void *x, const float *mean,
                          const float *rstd, const void *w, const void *b, const void *scale);
void cu_rmsnorm_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps, void *y,
                    float *inv, const void *x, const void *w);
void cu_rmsnorm_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                    void *dx, void *dw, const void *dy, const void *x, const float *inv, const void *w);
void cu_groupnorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, double eps,
                      void *y, float *mean, float *rstd, const void *x, const void *w, const void *b);
void cu_groupnorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, void *dx, void *dw,
                      void *db, const void *dy, const void *x, const float *mean, const float *rstd, const void *w);

// cuda_gemm.cu
void cu_gemm(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
             const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB, double beta,
             void *C, int64_t ldc, int64_t strideC, int64_t batch);
void cu_gemm_ex(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
                const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB,
                double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch, const void *bias, cm_act act,
                void *aux);

// C (f32) = alpha op(A) op(B) + beta C, A and B in dt: attention's scores through GEMMs
void cu_gemm_f32c(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K, double alpha,
                  const void *A, int64_t lda, int64_t strideA, const void *B, int64_t ldb, int64_t strideB, double beta,
                  float *C, int64_t ldc, int64_t strideC, int64_t batch);

// cuda_attention.cu
void cu_attn_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale,
                 void *O, const int64_t *os, float *lse, const void *Q, const int64_t *qs, const void *K,
                 const int64_t *ks, const void *V, const int64_t *vs, const float *mask, int64_t mb, int64_t mh);
void cu_attn_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale,
                 void *dQ, void *dK, void *dV, const void *dO, const int64_t *gs, const void *O, const int64_t *os,
                 const float *lse, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                 const int64_t *vs, const float *mask, int64_t mb, int64_t mh);
void cu_attn_fwd_group(const cm_kctx *k, cm_dtype dt, int n, const cm_attn_problem *p);
void cu_attn_bwd_group(const cm_kctx *k, cm_dtype dt, int n, const cm_attn_problem *p);

// cuda_cond.cu (position, conditioning, images)
void cu_rope(const cm_kctx *k, cm_dtype dt, cm_dtype tdt, int64_t outer, int64_t L, int64_t D, int inverse, void *y,
             const void *x, const void *cos, const void *sin);
void cu_rms_rope_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                     int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *y, float *inv, const void *x,
                     const void *w, const void *cos, const void *sin);
void cu_rms_rope_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                     int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *dx, void *dw, const void *dy,
                     const void *x, const float *inv, const void *w, const void *cos, const void *sin);
void cu_modulate_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *y, const void *x,
                     const void *scale, const void *shift);
void cu_modulate_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dscale,
                     void *dshift, const void *dy, const void *x, const void *scale);
void cu_gated_add(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *out, const void *res,
                  const void *gate, const void *y);
void cu_add_rows(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, int64_t row0, int64_t Lb, double alpha,
                 void *out, const void *a, const void *b);
void cu_timestep_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift, double max_period,
                     void *y, const void *t);
void cu_timestep_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift, double max_period,
                     void *dtime, const void *t, const void *dy);
void cu_im2col(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t stride,
               int64_t pad, int64_t OH, int64_t OW, void *col, const void *x);
void cu_col2im(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t stride,
               int64_t pad, int64_t OH, int64_t OW, void *x, const void *col);
void cu_bicubic_fwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW, void *y,
                    const void *x);
void cu_bicubic_bwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                    void *dx, const void *dy);
