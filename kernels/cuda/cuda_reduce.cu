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
template <typename T> __global__ void k_sumsq_partial(int64_t n, const T *a, const T *b, double *partials) {
    __shared__ double sh[32];
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float v = to_f(a[i]);
        if (b) v -= to_f(b[i]);
        s += (double)v * (double)v;
    }
    s = warp_sum_d(s);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) sh[w] = s;
    __syncthreads();
    if (w == 0) {
        s = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0;
        s = warp_sum_d(s);
        if (lane == 0) partials[blockIdx.x] = s;
    }
}
// partials[0] = the sum of the nb partials; out (when given) gets it times scale, in its dtype
template <typename T> __global__ void k_partials_final(int nb, double *partials, double scale, T *out) {
    __shared__ double sh[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) s += partials[i];
    s = warp_sum_d(s);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) sh[w] = s;
    __syncthreads();
    if (w == 0) {
        s = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0;
        s = warp_sum_d(s);
        if (lane == 0) {
            partials[0] = s;
            if (out) out[0] = from_f<T>((float)(s * scale));
        }
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
// every tensor's block partials after one another in the partials buffer, behind the running total
// in partials[0]; a full buffer is folded into partials[0] (k_partials_final sums [0, off) there)
double cu_sumsq_multi(const cm_kctx *k, cm_dtype dt, int nt, const void *const *x, const int64_t *n) {
    const cuda_ctx_ext *c = cuda_ext(k);
    cudaStream_t s = KSTREAM(k);
    cuda_require_float("cuda sumsq_multi", dt);
    CUDA_CHECK(cudaMemsetAsync(c->partials, 0, sizeof(double), s));
    int off = 1;
    for (int i = 0; i < nt; i++) {
        if (n[i] <= 0) continue;
        unsigned nb = grid_for(n[i], 256);
        if (nb > CUDA_MAX_PARTIALS - 1) nb = CUDA_MAX_PARTIALS - 1;
        if (off + (int)nb > CUDA_MAX_PARTIALS) {
            CUDA_DISPATCH("cuda sumsq_multi", dt, k_partials_final<T><<<1, 1024, 0, s>>>(off, c->partials, 1.0, (T *)NULL));
            CUDA_LAUNCH_CHECK();
            off = 1;
        }
        CUDA_DISPATCH("cuda sumsq_multi", dt,
                      k_sumsq_partial<T><<<nb, 256, 0, s>>>(n[i], (const T *)x[i], (const T *)NULL, c->partials + off));
        CUDA_LAUNCH_CHECK();
        off += (int)nb;
    }
    CUDA_DISPATCH("cuda sumsq_multi", dt, k_partials_final<T><<<1, 1024, 0, s>>>(off, c->partials, 1.0, (T *)NULL));
    CUDA_LAUNCH_CHECK();
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
