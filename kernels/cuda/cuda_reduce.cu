// cuda_reduce.cu — reductions: sum over a middle axis, sum of squares and MSE returned on the
// host (two-stage, f64 partials), softmax forward / backward over the last axis (f32 stats).
#include "cuda_common.cuh"

// ---------------------------------------------------------------------------------------------
// reduce_sum: x [outer, red, inner] -> y [outer, inner]
// ---------------------------------------------------------------------------------------------
// inner == 1: one warp per output (a row sum)
template <typename T> __global__ void k_rowsum(int64_t outer, int64_t red, T *y, const T *x) {
    int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= outer) return;
    const T *xr = x + row * red;
    float s = 0.f;
    for (int64_t i = lane; i < red; i += 32) s += to_f(xr[i]);
    s = warp_sum(s);
    if (lane == 0) y[row] = from_f<T>(s);
}
// inner > 1: block (32, 16) covers 32 inner columns of one outer index; threads along y split red
template <typename T> __global__ void k_colsum(int64_t outer, int64_t red, int64_t inner, T *y, const T *x) {
    __shared__ float sh[16][33];
    int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
    for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
        float s = 0.f;
        if (c < inner)
            for (int64_t r = threadIdx.y; r < red; r += blockDim.y) s += to_f(x[(o * red + r) * inner + c]);
        __syncthreads();  // the previous outer index is done with sh
        sh[threadIdx.y][threadIdx.x] = s;
        __syncthreads();
        if (threadIdx.y == 0 && c < inner) {
            float t = 0.f;
            for (int j = 0; j < (int)blockDim.y; j++) t += sh[j][threadIdx.x];
            y[o * inner + c] = from_f<T>(t);
        }
    }
}
template <typename T> __global__ void k_zero(int64_t n, T *y) {
    GRID_STRIDE(i, n) y[i] = from_f<T>(0.f);
}

void cu_reduce_sum(const cm_kctx *k, cm_dtype dt, int64_t outer, int64_t red, int64_t inner, void *y, const void *x) {
    if (outer * inner <= 0) return;
    cudaStream_t s = KSTREAM(k);
    CUDA_DISPATCH("cuda reduce_sum", dt, {
        if (red <= 0) k_zero<T><<<grid_for(outer * inner, 256), 256, 0, s>>>(outer * inner, (T *)y);
        else if (inner == 1) k_rowsum<T><<<(unsigned)((outer + 7) / 8), 256, 0, s>>>(outer, red, (T *)y, (const T *)x);
        else {
            dim3 g((unsigned)((inner + 31) / 32), (unsigned)(outer < 65535 ? outer : 65535));
            k_colsum<T><<<g, dim3(32, 16), 0, s>>>(outer, red, inner, (T *)y, (const T *)x);
        }
    });
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// host-returned reductions: partial sums in f64 per block, then one block, then one D2H copy
// ---------------------------------------------------------------------------------------------
// the block's sum of each thread's s, valid in thread 0 (sh: the block's 32-slot scratch)
__device__ __forceinline__ double block_sum_d(double s, double *sh) {
    s = warp_sum_d(s);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) sh[w] = s;
    __syncthreads();
    s = 0.0;
    if (w == 0) s = warp_sum_d(lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0);
    return s;
}
template <typename T> __global__ void k_sumsq_partial(int64_t n, const T *a, const T *b, double *partials) {
    __shared__ double sh[32];
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float v = to_f(a[i]);
        if (b) v -= to_f(b[i]);
        s += (double)v * (double)v;
    }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}
// partials[0] = the sum of the nb partials; out (when given) gets it times scale, in its dtype
template <typename T> __global__ void k_partials_final(int nb, double *partials, double scale, T *out) {
    __shared__ double sh[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) s += partials[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) {
        partials[0] = s;
        if (out) out[0] = from_f<T>((float)(s * scale));
    }
}
// sum of (a - b)^2 (b NULL: of a^2) into the context's partials[0]; out: also scale times it, on the device
static void sumsq_diff_dev(const cm_kctx *k, cm_dtype dt, int64_t n, const void *a, const void *b, const char *op,
                           double scale, void *out) {
    const cuda_ctx_ext *c = cuda_ext(k);
    cudaStream_t s = KSTREAM(k);
    unsigned nb = n > 0 ? grid_for(n, 256) : 1;
    if (nb > CUDA_MAX_PARTIALS) nb = CUDA_MAX_PARTIALS;
    CUDA_DISPATCH(op, dt, {
        k_sumsq_partial<T><<<nb, 256, 0, s>>>(n, (const T *)a, (const T *)b, c->partials);
        CUDA_LAUNCH_CHECK();
        k_partials_final<T><<<1, 1024, 0, s>>>((int)nb, c->partials, scale, (T *)out);
    });
    CUDA_LAUNCH_CHECK();
}
static double sumsq_diff(const cm_kctx *k, cm_dtype dt, int64_t n, const void *a, const void *b, const char *op) {
    if (n <= 0) return 0.0;
    const cuda_ctx_ext *c = cuda_ext(k);
    cudaStream_t s = KSTREAM(k);
    sumsq_diff_dev(k, dt, n, a, b, op, 1.0, NULL);
    CUDA_CHECK(cudaMemcpyAsync(c->host_result, c->partials, sizeof(double), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    return *c->host_result;
}
// sumsq_multi: up to SQ_MAX_T tensors per launch, their pointers in the kernel parameters (as
// adamw_multi's); the list's elements cut into chunks of SQ_CHUNK, chunk c of the list in block
// c % SQ_BLOCKS — a fixed assignment, so the same bits every run (no atomics) — each block's f64
// sum into partials[1 + b], then one block folds them into the running total partials[0].
// (Before, one launch per tensor and a fold whenever the partials filled: two launches per
// adapter tensor, and 2-byte loads — the H200 ran the 2.79 B-parameter norm at 0.8 TB/s, 6.8 ms.)
#define SQ_MAX_T 96
#define SQ_CHUNK 8192
#define SQ_BLOCKS (CUDA_MAX_PARTIALS - 1)
struct sq_list {
    const void *x[SQ_MAX_T];
    int64_t n[SQ_MAX_T];
    int64_t first[SQ_MAX_T + 1];  // tensor t's chunks: [first[t], first[t + 1]); first[nt] = all of them
    int nt;
};
static_assert(sizeof(sq_list) <= 4000, "sumsq_multi's kernel parameters exceed 4 KB");
// 16 bytes at x + i, squared and summed in f64 (each square exact in f64, as the scalar path's)
__device__ __forceinline__ double sq16(const float *x, int64_t i) {
    float4 v = *(const float4 *)(x + i);
    return (double)v.x * v.x + (double)v.y * v.y + (double)v.z * v.z + (double)v.w * v.w;
}
__device__ __forceinline__ double sq16(const bf16 *x, int64_t i) {
    uint4 u = *(const uint4 *)(x + i);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    double s = 0.0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        double lo = __uint_as_float(w[j] << 16), hi = __uint_as_float(w[j] & 0xffff0000u);
        s += lo * lo + hi * hi;
    }
    return s;
}
template <typename T> __global__ void __launch_bounds__(256) k_sumsq_multi(sq_list l, double *partials) {
    constexpr int V = 16 / sizeof(T);  // elements per 16-byte load
    __shared__ double sh[32];
    double s = 0.0;
    for (int64_t c = blockIdx.x; c < l.first[l.nt]; c += gridDim.x) {
        int lo = 0, hi = l.nt - 1;  // the largest t with first[t] <= c (no empty tensors in a list)
        while (lo < hi) {
            int mid = (lo + hi + 1) >> 1;
            if (l.first[mid] <= c) lo = mid;
            else hi = mid - 1;
        }
        const T *x = (const T *)l.x[lo];
        const int64_t begin = (c - l.first[lo]) * SQ_CHUNK, end = begin + SQ_CHUNK < l.n[lo] ? begin + SQ_CHUNK : l.n[lo];
        // 16-byte loads where the base allows (begin is a multiple of SQ_CHUNK), the rest one by one
        const int64_t vend = ((uintptr_t)x & 15) == 0 ? begin + ((end - begin) & ~(int64_t)(V - 1)) : begin;
        for (int64_t i = begin + (int64_t)V * threadIdx.x; i < vend; i += (int64_t)V * blockDim.x) s += sq16(x, i);
        for (int64_t i = vend + threadIdx.x; i < end; i += blockDim.x) {
            double v = to_f(x[i]);
            s += v * v;
        }
    }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) partials[1 + blockIdx.x] = s;
}
static void sq_launch(const cm_kctx *k, cm_dtype dt, sq_list *l, int nt) {
    const cuda_ctx_ext *c = cuda_ext(k);
    cudaStream_t s = KSTREAM(k);
    l->nt = nt;
    int64_t chunks = l->first[nt];
    int blocks = chunks < SQ_BLOCKS ? (int)chunks : SQ_BLOCKS;
    CUDA_DISPATCH("cuda sumsq_multi", dt, k_sumsq_multi<T><<<blocks, 256, 0, s>>>(*l, c->partials));
    CUDA_LAUNCH_CHECK();
    // partials[0] (the running total) + the blocks' sums, in a fixed order
    CUDA_DISPATCH("cuda sumsq_multi", dt, k_partials_final<T><<<1, 1024, 0, s>>>(1 + blocks, c->partials, 1.0, (T *)NULL));
    CUDA_LAUNCH_CHECK();
}
double cu_sumsq_multi(const cm_kctx *k, cm_dtype dt, int nt, const void *const *x, const int64_t *n) {
    const cuda_ctx_ext *c = cuda_ext(k);
    cudaStream_t s = KSTREAM(k);
    cuda_require_float("cuda sumsq_multi", dt);
    CUDA_CHECK(cudaMemsetAsync(c->partials, 0, sizeof(double), s));
    sq_list l;
    memset(&l, 0, sizeof l);
    int cnt = 0;
    for (int i = 0; i < nt; i++) {
        if (n[i] <= 0) continue;  // nothing to add (and no empty tensor in a list)
        if (cnt == SQ_MAX_T) {
            sq_launch(k, dt, &l, cnt);
            cnt = 0;
        }
        l.x[cnt] = x[i], l.n[cnt] = n[i];
        l.first[cnt + 1] = l.first[cnt] + (n[i] + SQ_CHUNK - 1) / SQ_CHUNK;
        cnt++;
    }
    if (cnt) sq_launch(k, dt, &l, cnt);
    CUDA_CHECK(cudaMemcpyAsync(c->host_result, c->partials, sizeof(double), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    return *c->host_result;
}

double cu_sumsq(const cm_kctx *k, cm_dtype dt, int64_t n, const void *x) {
    return sumsq_diff(k, dt, n, x, NULL, "cuda sumsq");
}
void cu_mse_fwd(const cm_kctx *k, cm_dtype dt, int64_t n, const void *a, const void *b, void *out) {
    sumsq_diff_dev(k, dt, n, a, b, "cuda mse_fwd", n > 0 ? 1.0 / (double)n : 0.0, out);
}

// ---------------------------------------------------------------------------------------------
// softmax over the last axis: one block (128 threads) per row, f32 max / sum
// ---------------------------------------------------------------------------------------------
template <typename T> __global__ void k_softmax_fwd(int64_t cols, T *y, const T *x) {
    __shared__ float sh[32];
    const T *xr = x + (int64_t)blockIdx.x * cols;
    T *yr = y + (int64_t)blockIdx.x * cols;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, to_f(xr[i]));
    // block max through the sum helper's pattern
    m = warp_max(m);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = m;
    __syncthreads();
    m = (threadIdx.x & 31) < (blockDim.x >> 5) ? sh[threadIdx.x & 31] : -INFINITY;
    m = warp_max(m);
    if (m == -INFINITY) m = 0.f;  // a fully -inf row gives NaN below, as the reference does
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += __expf(to_f(xr[i]) - m);
    s = block_sum(s, sh);
    float inv = 1.f / s;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = from_f<T>(__expf(to_f(xr[i]) - m) * inv);
}
template <typename T> __global__ void k_softmax_bwd(int64_t cols, T *dx, const T *y, const T *dy) {
    __shared__ float sh[32];
    int64_t off = (int64_t)blockIdx.x * cols;
    float d = 0.f;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) d += to_f(y[off + i]) * to_f(dy[off + i]);
    d = block_sum(d, sh);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
        dx[off + i] = from_f<T>(to_f(y[off + i]) * (to_f(dy[off + i]) - d));
}
void cu_softmax_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *y, const void *x) {
    if (rows <= 0 || cols <= 0) return;
    if (rows > 0x7fffffffLL) cm_die("cuda softmax_fwd", "too many rows (%lld)", (long long)rows);
    CUDA_DISPATCH("cuda softmax_fwd", dt, k_softmax_fwd<T><<<(unsigned)rows, 128, 0, KSTREAM(k)>>>(cols, (T *)y, (const T *)x));
    CUDA_LAUNCH_CHECK();
}
void cu_softmax_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, const void *y, const void *dy) {
    if (rows <= 0 || cols <= 0) return;
    if (rows > 0x7fffffffLL) cm_die("cuda softmax_bwd", "too many rows (%lld)", (long long)rows);
    CUDA_DISPATCH("cuda softmax_bwd", dt,
                  k_softmax_bwd<T><<<(unsigned)rows, 128, 0, KSTREAM(k)>>>(cols, (T *)dx, (const T *)y, (const T *)dy));
    CUDA_LAUNCH_CHECK();
}
