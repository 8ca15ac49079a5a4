// cuda_elementwise.cu — fill, strided copy / cast, broadcasting binary ops, axpby, unary
// activations and their derivatives, GLU, row gather / scatter-add, MSE gradient, AdamW.
// All compute in f32; bf16 is storage only.
#include "cuda_common.cuh"
#include "cuda_rowio.cuh"
#include "kernels/sr_round.h"
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// fill and copy_strided: every dtype (f32, bf16, f16, f64, i32, u8), every pair for casts
// ---------------------------------------------------------------------------------------------
// values pass through double so that i32 and f64 keep their full range
__device__ __forceinline__ double load_any(int dt, const void *p, int64_t i) {
    switch (dt) {
    case CM_F32: return ((const float *)p)[i];
    case CM_BF16: return __bfloat162float(((const bf16 *)p)[i]);
    case CM_F16: return __half2float(((const __half *)p)[i]);
    case CM_F64: return ((const double *)p)[i];
    case CM_I32: return ((const int32_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}
// as kernels/cpu: floats narrow through f32 (round to nearest even); integers truncate toward
// zero, NaN -> 0; i32 saturates, u8 wraps modulo 256 like PyTorch's float -> uint8
__device__ __forceinline__ void store_any(int dt, void *p, int64_t i, double v) {
    switch (dt) {
    case CM_F32: ((float *)p)[i] = (float)v; break;
    case CM_BF16: ((bf16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    case CM_F16: ((__half *)p)[i] = __float2half_rn((float)v); break;
    case CM_F64: ((double *)p)[i] = v; break;
    case CM_I32:
        ((int32_t *)p)[i] = v != v ? 0 : v >= 2147483647.0 ? 2147483647 : v <= -2147483648.0 ? (-2147483647 - 1) : (int32_t)v;
        break;
    default: ((uint8_t *)p)[i] = v != v ? 0 : (uint8_t)(int64_t)(v >= 9.2e18 ? 0 : v <= -9.2e18 ? 0 : v); break;
    }
}

template <typename T> __global__ void k_fill(T *dst, int64_t n, T v) {
    GRID_STRIDE(i, n) dst[i] = v;
}

void cu_fill(const cm_kctx *k, cm_dtype dt, void *dst, int64_t n, double value) {
    if (n <= 0) return;
    cudaStream_t s = KSTREAM(k);
    if (value == 0.0 && !signbit(value)) {  // +0 is all-zero bytes in every dtype
        CUDA_CHECK(cudaMemsetAsync(dst, 0, (size_t)n * dtype_size(dt), s));
        return;
    }
    unsigned g = grid_for(n, 256);
    double iv = value != value ? 0 : value >= 2147483647.0 ? 2147483647.0 : value <= -2147483648.0 ? -2147483648.0 : value;
    switch (dt) {
    case CM_F32: k_fill<float><<<g, 256, 0, s>>>((float *)dst, n, (float)value); break;
    case CM_BF16: k_fill<bf16><<<g, 256, 0, s>>>((bf16 *)dst, n, __float2bfloat16_rn((float)value)); break;
    case CM_F16: k_fill<__half><<<g, 256, 0, s>>>((__half *)dst, n, __float2half_rn((float)value)); break;
    case CM_F64: k_fill<double><<<g, 256, 0, s>>>((double *)dst, n, value); break;
    case CM_I32: k_fill<int32_t><<<g, 256, 0, s>>>((int32_t *)dst, n, (int32_t)iv); break;
    case CM_U8: {
        uint8_t u = value != value ? 0 : (uint8_t)(int64_t)(value >= 9.2e18 ? 0 : value <= -9.2e18 ? 0 : value);
        k_fill<uint8_t><<<g, 256, 0, s>>>((uint8_t *)dst, n, u);
        break;
    }
    default: cm_die("cuda fill", "unknown dtype %d", (int)dt);
    }
    CUDA_LAUNCH_CHECK();
}

struct nd_t {  // an index space of up to CM_MAX_DIMS axes, passed by value
    int ndim;
    int64_t shape[CM_MAX_DIMS];
    int64_t s0[CM_MAX_DIMS];
    int64_t s1[CM_MAX_DIMS];
    int64_t s2[CM_MAX_DIMS];
};

// flat index -> offsets through up to three stride sets
__device__ __forceinline__ void nd_offsets(const nd_t &d, int64_t flat, int64_t &o0, int64_t &o1, int64_t &o2) {
    o0 = o1 = o2 = 0;
    for (int a = d.ndim - 1; a >= 0; a--) {
        int64_t sz = d.shape[a];
        int64_t c = flat % sz;
        flat /= sz;
        o0 += c * d.s0[a];
        o1 += c * d.s1[a];
        o2 += c * d.s2[a];
    }
}

__global__ void k_copy_any(nd_t d, int64_t n, int ddt, void *dst, int sdt, const void *src) {
    GRID_STRIDE(i, n) {
        int64_t od, os, unused;
        nd_offsets(d, i, od, os, unused);
        store_any(ddt, dst, od, load_any(sdt, src, os));
    }
}
// the common float case without the dtype switch
template <typename D, typename S> __global__ void k_copy_f(nd_t d, int64_t n, D *dst, const S *src) {
    GRID_STRIDE(i, n) {
        int64_t od, os, unused;
        nd_offsets(d, i, od, os, unused);
        dst[od] = from_f<D>(to_f(src[os]));
    }
}
// a same-dtype copy whose last axis is contiguous on both sides, in 16-byte pieces: d indexes
// vectors (last axis shape / vector, the other strides in vectors)
__global__ void k_copy_vec(nd_t d, int64_t n, uint4 *dst, const uint4 *src) {
    GRID_STRIDE(i, n) {
        int64_t od, os, unused;
        nd_offsets(d, i, od, os, unused);
        dst[od] = src[os];
    }
}

static int64_t nd_fill(nd_t &d, int ndim, const int64_t *shape) {
    if (ndim > CM_MAX_DIMS || ndim < 0) cm_die("cuda copy_strided", "ndim %d out of range", ndim);
    memset(&d, 0, sizeof d);
    d.ndim = ndim;
    int64_t n = 1;
    for (int a = 0; a < ndim; a++) {
        d.shape[a] = shape[a];
        n *= shape[a];
    }
    return n;
}

void cu_copy_strided(const cm_kctx *k, int ndim, const int64_t *shape, cm_dtype dst_dt, void *dst,
                     const int64_t *dst_stride, cm_dtype src_dt, const void *src, const int64_t *src_stride) {
    nd_t d;
    int64_t n = nd_fill(d, ndim, shape);
    if (n <= 0) return;
    cudaStream_t s = KSTREAM(k);
    // both contiguous and the same dtype: a plain copy
    bool contig = true;
    int64_t expect = 1;
    for (int a = ndim - 1; a >= 0; a--) {
        if (shape[a] != 1 && (dst_stride[a] != expect || src_stride[a] != expect)) contig = false;
        expect *= shape[a];
    }
    if (contig && dst_dt == src_dt) {
        CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * dtype_size(dst_dt), cudaMemcpyDeviceToDevice, s));
        return;
    }
    // the same dtype with the last axis contiguous on both sides (a permute that keeps it, a slice):
    // 16 bytes per thread where the last axis, every other stride and both pointers allow
    const int64_t es = (int64_t)dtype_size(dst_dt), per = 16 / es;
    bool vec = dst_dt == src_dt && ndim >= 1 && es <= 8 && dst_stride[ndim - 1] == 1 && src_stride[ndim - 1] == 1 &&
               shape[ndim - 1] % per == 0 && aligned16_all({dst, src});
    for (int a = 0; vec && a < ndim - 1; a++) vec = shape[a] == 1 || (dst_stride[a] % per == 0 && src_stride[a] % per == 0);
    if (vec) {
        for (int a = 0; a < ndim; a++) {
            d.s0[a] = a == ndim - 1 ? 1 : dst_stride[a] / per;
            d.s1[a] = a == ndim - 1 ? 1 : src_stride[a] / per;
        }
        d.shape[ndim - 1] /= per;
        k_copy_vec<<<grid_for(n / per, 256), 256, 0, s>>>(d, n / per, (uint4 *)dst, (const uint4 *)src);
        CUDA_LAUNCH_CHECK();
        return;
    }
    for (int a = 0; a < ndim; a++) {
        d.s0[a] = dst_stride[a];
        d.s1[a] = src_stride[a];
    }
    unsigned g = grid_for(n, 256);
    if (dst_dt == CM_F32 && src_dt == CM_F32) k_copy_f<float, float><<<g, 256, 0, s>>>(d, n, (float *)dst, (const float *)src);
    else if (dst_dt == CM_BF16 && src_dt == CM_BF16) k_copy_f<bf16, bf16><<<g, 256, 0, s>>>(d, n, (bf16 *)dst, (const bf16 *)src);
    else if (dst_dt == CM_F32 && src_dt == CM_BF16) k_copy_f<float, bf16><<<g, 256, 0, s>>>(d, n, (float *)dst, (const bf16 *)src);
    else if (dst_dt == CM_BF16 && src_dt == CM_F32) k_copy_f<bf16, float><<<g, 256, 0, s>>>(d, n, (bf16 *)dst, (const float *)src);
    else k_copy_any<<<g, 256, 0, s>>>(d, n, (int)dst_dt, dst, (int)src_dt, src);
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// binary with broadcasting strides
// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ float binop(int op, float a, float b) {
    switch (op) {
    case CM_BIN_ADD: return a + b;
    case CM_BIN_SUB: return a - b;
    case CM_BIN_MUL: return a * b;
    default: return a / b;
    }
}
template <typename T>
__global__ void k_binary_nd(nd_t d, int64_t n, int op, T *out, const T *a, const T *b) {
    GRID_STRIDE(i, n) {
        int64_t oa, ob, unused;
        nd_offsets(d, i, oa, ob, unused);
        out[i] = from_f<T>(binop(op, to_f(a[oa]), to_f(b[ob])));
    }
}
// ---------------------------------------------------------------------------------------------
// contiguous maps: y = f(x0[, x1]) over n elements; VEC moves 16 bytes per thread and step (n / N
// vectors), then the last n % N elements one by one. x1 is contiguous (cols 0), or rows of `cols`
// each broadcast over `span` elements (span / cols rows; span n: one row for all) — b [B, 1, C]
// against a [B, L, C] — (VEC needs cols % N == 0, so a vector never straddles two rows), or one
// value for all (cols 1, span n: a scalar operand).
// ---------------------------------------------------------------------------------------------
template <typename T, bool VEC, typename F> __global__ void k_map1(int64_t n, T *y, const T *x, F f) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    const int64_t nv = n / N;
    GRID_STRIDE(v, nv) {
        float a[N];
        IO::load(x + v * N, a);
#pragma unroll
        for (int j = 0; j < N; j++) a[j] = f(a[j]);
        IO::store(y + v * N, a);
    }
    GRID_STRIDE(i, n - nv * N) {
        const int64_t e = nv * N + i;
        y[e] = from_f<T>(f(to_f(x[e])));
    }
}
template <typename T, bool VEC, typename F>
__global__ void k_map2(int64_t n, int64_t cols, int64_t span, T *y, const T *x0, const T *x1, F f) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    const int64_t nv = n / N;
    GRID_STRIDE(v, nv) {
        float a[N], b[N];
        IO::load(x0 + v * N, a);
        const int64_t e = v * N;
        if (cols == 1 && span == n) {  // a scalar
            const float bv = to_f(x1[0]);
#pragma unroll
            for (int j = 0; j < N; j++) b[j] = bv;
        } else IO::load(x1 + (cols ? (e / span) * cols + e % cols : e), b);
#pragma unroll
        for (int j = 0; j < N; j++) a[j] = f(a[j], b[j]);
        IO::store(y + v * N, a);
    }
    GRID_STRIDE(i, n - nv * N) {
        const int64_t e = nv * N + i;
        y[e] = from_f<T>(f(to_f(x0[e]), to_f(x1[cols ? (e / span) * cols + e % cols : e])));
    }
}
// launches k_map1 / k_map2 with 16-byte vectors where the pointers (and the row) allow
template <typename T, typename F> static void map1(const cm_kctx *k, int64_t n, T *y, const T *x, F f) {
    constexpr int N = RowIO<T, true>::N;
    if (aligned16_all({y, x}))
        k_map1<T, true, F><<<grid_for(n / N > 0 ? n / N : n, 256), 256, 0, KSTREAM(k)>>>(n, y, x, f);
    else
        k_map1<T, false, F><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(n, y, x, f);
    CUDA_LAUNCH_CHECK();
}
template <typename T, typename F>
static void map2(const cm_kctx *k, int64_t n, int64_t cols, int64_t span, T *y, const T *x0, const T *x1, F f) {
    constexpr int N = RowIO<T, true>::N;
    const bool scalar = cols == 1 && span == n;
    if (aligned16_all({y, x0}) && (scalar || (aligned16_all({x1}) && cols % N == 0)))
        k_map2<T, true, F><<<grid_for(n / N > 0 ? n / N : n, 256), 256, 0, KSTREAM(k)>>>(n, cols, span, y, x0, x1, f);
    else
        k_map2<T, false, F><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(n, cols, span, y, x0, x1, f);
    CUDA_LAUNCH_CHECK();
}
struct f_binop {
    int op;
    __device__ float operator()(float a, float b) const { return binop(op, a, b); }
};

void cu_binary(const cm_kctx *k, cm_binop op, cm_dtype dt, int ndim, const int64_t *shape, void *out,
               const void *a, const int64_t *a_stride, const void *b, const int64_t *b_stride) {
    nd_t d;
    int64_t n = nd_fill(d, ndim, shape);
    if (n <= 0) return;
    cudaStream_t s = KSTREAM(k);
    bool a_contig = true, b_contig = true, b_row = ndim >= 1;
    int64_t expect = 1;
    for (int x = ndim - 1; x >= 0; x--) {
        if (shape[x] != 1 && a_stride[x] != expect) a_contig = false;
        if (shape[x] != 1 && b_stride[x] != expect) b_contig = false;
        if (x < ndim - 1 && shape[x] != 1 && b_stride[x] != 0) b_row = false;
        expect *= shape[x];
    }
    if (ndim >= 1 && shape[ndim - 1] != 1 && b_stride[ndim - 1] != 1) b_row = false;
    bool b_scalar = true;  // one value of b for all (op_scale's constant)
    for (int x = 0; x < ndim; x++) b_scalar = b_scalar && (shape[x] == 1 || b_stride[x] == 0);
    // b [..., 1, W] contiguous against a [..., R, W]: a row per R rows (the gate of a gated residual)
    bool b_mid = ndim >= 3 && shape[ndim - 1] > 1 && shape[ndim - 2] > 1 && b_stride[ndim - 1] == 1 && b_stride[ndim - 2] == 0;
    for (int x = ndim - 3; b_mid && x >= 0; x--) {  // the outer axes: b contiguous over them
        int64_t w = shape[ndim - 1];
        for (int y = x + 1; y < ndim - 2; y++) w *= shape[y];
        if (shape[x] != 1 && b_stride[x] != w) b_mid = false;
    }
    for (int x = 0; x < ndim; x++) {
        d.s0[x] = a_stride[x];
        d.s1[x] = b_stride[x];
    }
    unsigned g = grid_for(n, 256);
    // the common fast cases: both contiguous, or b a row broadcast over rows (16-byte vectors)
    CUDA_DISPATCH("cuda binary", dt, {
        if (a_contig && b_contig) map2<T>(k, n, 0, n, (T *)out, (const T *)a, (const T *)b, f_binop{(int)op});
        else if (a_contig && b_scalar) map2<T>(k, n, 1, n, (T *)out, (const T *)a, (const T *)b, f_binop{(int)op});
        else if (a_contig && b_row)
            map2<T>(k, n, shape[ndim - 1], n, (T *)out, (const T *)a, (const T *)b, f_binop{(int)op});
        else if (a_contig && b_mid)
            map2<T>(k, n, shape[ndim - 1], shape[ndim - 1] * shape[ndim - 2], (T *)out, (const T *)a, (const T *)b,
                    f_binop{(int)op});
        else {
            k_binary_nd<T><<<g, 256, 0, s>>>(d, n, (int)op, (T *)out, (const T *)a, (const T *)b);
            CUDA_LAUNCH_CHECK();
        }
    });
}

// y = alpha*x + beta*y; beta == 0 never reads y (so an uninitialised y is fine)
struct f_scale {
    float al;
    __device__ float operator()(float x) const { return al * x; }
};
struct f_axpby {
    float al, be;
    __device__ float operator()(float x, float y) const { return al * x + be * y; }
};
void cu_axpby(const cm_kctx *k, cm_dtype dt, int64_t n, double alpha, const void *x, double beta, void *y) {
    if (n <= 0) return;
    CUDA_DISPATCH("cuda axpby", dt, {
        if (beta == 0.0) map1<T>(k, n, (T *)y, (const T *)x, f_scale{(float)alpha});
        else map2<T>(k, n, 0, n, (T *)y, (const T *)x, (const T *)y, f_axpby{(float)alpha, (float)beta});
    });
}

// ---------------------------------------------------------------------------------------------
// unary activations
// ---------------------------------------------------------------------------------------------
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * INV_SQRT2)); }
__device__ __forceinline__ float gelu_erf_d(float x) {
    x = x > 30.f ? 30.f : x < -30.f ? -30.f : x;  // as gelu_tanh_d_f: x · exp(-x²/2) is inf · 0 at x = inf; NaN stays NaN
    return 0.5f * (1.f + erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
}
__device__ __forceinline__ float gelu_tanh(float x) { return gelu_tanh_f(x); }  // cuda_common.cuh
__device__ __forceinline__ float gelu_tanh_d(float x) { return gelu_tanh_d_f(x); }  // cuda_common.cuh
__device__ __forceinline__ float sigmoidf_(float x) { return 1.f / (1.f + expf(-x)); }
__device__ __forceinline__ float silu(float x) { return x * sigmoidf_(x); }
__device__ __forceinline__ float silu_d(float x) {
    float s = sigmoidf_(x);
    return s * (1.f + x * (1.f - s));
}

__device__ __forceinline__ float unary_f(int op, float x) {
    switch (op) {
    case CM_UN_GELU_TANH: return gelu_tanh(x);
    case CM_UN_GELU_ERF: return gelu_erf(x);
    case CM_UN_SILU: return silu(x);
    case CM_UN_SQUARE: return x * x;
    case CM_UN_EXP: return expf(x);
    default: return -x;
    }
}
__device__ __forceinline__ float unary_d(int op, float x) {
    switch (op) {
    case CM_UN_GELU_TANH: return gelu_tanh_d(x);
    case CM_UN_GELU_ERF: return gelu_erf_d(x);
    case CM_UN_SILU: return silu_d(x);
    case CM_UN_SQUARE: return 2.f * x;
    case CM_UN_EXP: return expf(x);
    default: return -1.f;
    }
}
struct f_unary {
    int op;
    __device__ float operator()(float x) const { return unary_f(op, x); }
};
struct f_unary_d {  // (dy, x) -> dy * f'(x)
    int op;
    __device__ float operator()(float dy, float x) const { return dy * unary_d(op, x); }
};
void cu_unary_fwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *y, const void *x) {
    if (n <= 0) return;
    CUDA_DISPATCH("cuda unary_fwd", dt, map1<T>(k, n, (T *)y, (const T *)x, f_unary{(int)op}));
}
void cu_unary_bwd(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *dx, const void *x, const void *dy) {
    if (n <= 0) return;
    CUDA_DISPATCH("cuda unary_bwd", dt, map2<T>(k, n, 0, n, (T *)dx, (const T *)dy, (const T *)x, f_unary_d{(int)op}));
}

// ---------------------------------------------------------------------------------------------
// GLU: x [rows, 2*half] = [a | g];  GEGLU y = a*gelu_erf(g);  SwiGLU y = silu(a)*g
// ---------------------------------------------------------------------------------------------
template <typename T> __global__ void k_glu_fwd(int op, int64_t rows, int64_t half, T *y, const T *x) {
    int64_t n = rows * half;
    GRID_STRIDE(i, n) {
        int64_t r = i / half, c = i - r * half;
        float a = to_f(x[r * 2 * half + c]), g = to_f(x[r * 2 * half + half + c]);
        y[i] = from_f<T>(op == CM_GLU_GEGLU ? a * gelu_erf(g) : silu(a) * g);
    }
}
template <typename T> __global__ void k_glu_bwd(int op, int64_t rows, int64_t half, T *dx, const T *x, const T *dy) {
    int64_t n = rows * half;
    GRID_STRIDE(i, n) {
        int64_t r = i / half, c = i - r * half;
        int64_t ia = r * 2 * half + c, ig = ia + half;
        float a = to_f(x[ia]), g = to_f(x[ig]), d = to_f(dy[i]);
        float da, dg;
        if (op == CM_GLU_GEGLU) {
            da = d * gelu_erf(g);
            dg = d * a * gelu_erf_d(g);
        } else {
            da = d * g * silu_d(a);
            dg = d * silu(a);
        }
        dx[ia] = from_f<T>(da);
        dx[ig] = from_f<T>(dg);
    }
}
void cu_glu_fwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *y, const void *x) {
    if (rows * half <= 0) return;
    CUDA_DISPATCH("cuda glu_fwd", dt,
                  k_glu_fwd<T><<<grid_for(rows * half, 256), 256, 0, KSTREAM(k)>>>((int)op, rows, half, (T *)y, (const T *)x));
    CUDA_LAUNCH_CHECK();
}
void cu_glu_bwd(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *dx, const void *x,
                const void *dy) {
    if (rows * half <= 0) return;
    CUDA_DISPATCH("cuda glu_bwd", dt,
                  k_glu_bwd<T><<<grid_for(rows * half, 256), 256, 0, KSTREAM(k)>>>((int)op, rows, half, (T *)dx,
                                                                                (const T *)x, (const T *)dy));
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// lookup
// ---------------------------------------------------------------------------------------------
template <typename T> __global__ void k_gather(int64_t n, int64_t D, T *y, const T *table, const int32_t *idx) {
    GRID_STRIDE(i, n * D) {
        int64_t r = i / D, c = i - r * D;
        y[i] = table[(int64_t)idx[r] * D + c];
    }
}
__device__ __forceinline__ void atomic_add_t(float *p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add_t(bf16 *p, float v) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    atomicAdd(p, __float2bfloat16_rn(v));
#else
    // compare-and-swap on the containing 32-bit word (pre-Ampere builds only)
    unsigned int *base = (unsigned int *)((uintptr_t)p & ~(uintptr_t)3);
    bool hi = ((uintptr_t)p & 2) != 0;
    unsigned int old = *base, assumed;
    do {
        assumed = old;
        unsigned short h = hi ? (unsigned short)(assumed >> 16) : (unsigned short)(assumed & 0xffff);
        float f = __bfloat162float(__ushort_as_bfloat16(h)) + v;
        unsigned short nh = __bfloat16_as_ushort(__float2bfloat16_rn(f));
        unsigned int nw = hi ? ((assumed & 0xffffu) | ((unsigned int)nh << 16)) : ((assumed & 0xffff0000u) | nh);
        old = atomicCAS(base, assumed, nw);
    } while (assumed != old);
#endif
}
template <typename T> __global__ void k_scatter_add(int64_t n, int64_t D, T *dtable, const T *dy, const int32_t *idx) {
    GRID_STRIDE(i, n * D) {
        int64_t r = i / D, c = i - r * D;
        atomic_add_t(&dtable[(int64_t)idx[r] * D + c], to_f(dy[i]));
    }
}
void cu_gather_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *y, const void *table, const int32_t *idx) {
    if (n * D <= 0) return;
    CUDA_DISPATCH("cuda gather_rows", dt,
                  k_gather<T><<<grid_for(n * D, 256), 256, 0, KSTREAM(k)>>>(n, D, (T *)y, (const T *)table, idx));
    CUDA_LAUNCH_CHECK();
}
void cu_scatter_add_rows(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *dtable, const void *dy,
                         const int32_t *idx) {
    if (n * D <= 0) return;
    CUDA_DISPATCH("cuda scatter_add_rows", dt,
                  k_scatter_add<T><<<grid_for(n * D, 256), 256, 0, KSTREAM(k)>>>(n, D, (T *)dtable, (const T *)dy, idx));
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// loss gradient and optimizer
// ---------------------------------------------------------------------------------------------
// c = 2 g / n; the upstream gradient gp[0] is read on the device (no host synchronisation)
template <typename T> __global__ void k_mse_bwd(int64_t n, double c, const T *gp, T *da, const T *a, const T *b) {
    float s = (float)(c * (gp ? (double)to_f(gp[0]) : 1.0));
    GRID_STRIDE(i, n) da[i] = from_f<T>(s * (to_f(a[i]) - to_f(b[i])));
}
void cu_mse_bwd(const cm_kctx *k, cm_dtype dt, int64_t n, double g, const void *gp, void *da, const void *a,
                const void *b) {
    if (n <= 0) return;
    double c = g * 2.0 / (double)n;
    CUDA_DISPATCH("cuda mse_bwd", dt,
                  k_mse_bwd<T><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(n, c, (const T *)gp, (T *)da, (const T *)a,
                                                                         (const T *)b));
    CUDA_LAUNCH_CHECK();
}

// PyTorch AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps); g is scaled by gscale first
// constants folded on the host in double exactly as kernels/cpu does (decay = 1 - lr wd,
// step = lr / bc1, rbc2 = 1 / sqrt(bc2)); the per-element math is f32 with IEEE sqrt / division
struct adamw_k {  // the host-folded constants
    float b1, c1, b2, c2, eps, decay, step, rbc2, gscale;
};
static adamw_k adamw_fold(double lr, double b1, double b2, double eps, double wd, double bc1, double bc2,
                          double gscale) {
    adamw_k c;
    c.b1 = (float)b1, c.c1 = (float)(1 - b1), c.b2 = (float)b2, c.c2 = (float)(1 - b2), c.eps = (float)eps;
    c.decay = (float)(1 - lr * wd), c.step = (float)(lr / bc1), c.rbc2 = (float)(1 / sqrt(bc2));
    c.gscale = (float)gscale;
    return c;
}
// one element's update on registers: the one piece of arithmetic adamw and adamw_multi share.
// Every operation is an explicit _rn intrinsic, which nvcc never contracts: plain a*b + c*d may
// become fma(a, b, c*d) in one inlining and fma(c, d, a*b) in another (the H200 run of
// session 22 found adamw and adamw_multi a bit apart that way), so the bits must not depend on
// the code around the call.
// Moments in bf16 use it too (read as f32; m, v come back as the f32 results, stored with
// stochastic rounding by the caller).
__device__ __forceinline__ void adamw_math(float gi, float &p, float &m, float &v, const adamw_k &c) {
    gi = __fmul_rn(gi, c.gscale);
    m = __fadd_rn(__fmul_rn(c.b1, m), __fmul_rn(c.c1, gi));
    v = __fadd_rn(__fmul_rn(c.b2, v), __fmul_rn(__fmul_rn(c.c2, gi), gi));
    float den = __fadd_rn(__fmul_rn(__fsqrt_rn(v), c.rbc2), c.eps);
    p = __fsub_rn(__fmul_rn(p, c.decay), __fdiv_rn(__fmul_rn(c.step, m), den));
}
// element i of one tensor
template <typename G>
__device__ __forceinline__ void adamw_elem(int64_t i, float *p, const G *g, float *m, float *v, const adamw_k &c) {
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_math(to_f(g[i]), pi, mi, vi, c);
    m[i] = mi, v[i] = vi, p[i] = pi;
}
// the same on bf16 moments, stored with stochastic rounding keyed (key, i) as kernels/cpu does
__device__ __forceinline__ void sr_store(uint16_t *m, uint16_t *v, int64_t i, float mi, float vi, uint64_t key) {
    uint32_t r = cm_sr_bits(key, i);
    m[i] = cm_bf16_sr(__float_as_uint(mi), r);
    v[i] = cm_bf16_sr(__float_as_uint(vi), r ^ 0x5A5Au);
}
template <typename G>
__device__ __forceinline__ void adamw_elem_bf16(int64_t i, float *p, const G *g, uint16_t *m, uint16_t *v, uint64_t key,
                                                const adamw_k &c) {
    float pi = p[i], mi = __uint_as_float((uint32_t)m[i] << 16), vi = __uint_as_float((uint32_t)v[i] << 16);
    adamw_math(to_f(g[i]), pi, mi, vi, c);
    sr_store(m, v, i, mi, vi, key);
    p[i] = pi;
}
template <typename G>
__global__ void k_adamw(int64_t n, float *p, const G *g, float *m, float *v, adamw_k c) {
    GRID_STRIDE(i, n) adamw_elem(i, p, g, m, v, c);
}
void cu_adamw(const cm_kctx *k, int64_t n, float *p, cm_dtype gdt, const void *g, float *m, float *v, double lr,
              double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale) {
    if (n <= 0) return;
    const adamw_k c = adamw_fold(lr, b1, b2, eps, wd, bc1, bc2, gscale);
    CUDA_DISPATCH("cuda adamw (gradient dtype)", gdt,
                  k_adamw<T><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(n, p, (const T *)g, m, v, c));
    CUDA_LAUNCH_CHECK();
}

// multi-tensor AdamW: up to AW_MAX_T tensors per launch, their pointers passed by value in the
// kernel parameters (3.9 KB of the 4 KB allowed: no device copy of a descriptor list, nothing to
// wait for); one block per chunk of AW_CHUNK elements, block b of tensor t's chunk
// b - first[t] (first[t] <= b < first[t + 1]).
#define AW_MAX_T 56
#define AW_CHUNK 8192
#define AW_THREADS 256
struct aw_list {
    float *p[AW_MAX_T];
    const void *g[AW_MAX_T];
    void *m[AW_MAX_T];
    void *v[AW_MAX_T];
    int64_t n[AW_MAX_T];
    uint64_t key[AW_MAX_T];
    uint16_t *w[AW_MAX_T];  // NULL, or the bf16 copy written after the update
    float *ema[AW_MAX_T];   // NULL, or the moving average made from the update: ea p + eb ema
    float ea, eb;
    int first[AW_MAX_T + 1];  // first[nt] = the grid size
    int nt;
};
static_assert(sizeof(aw_list) + sizeof(adamw_k) <= 4096, "adamw_multi's kernel parameters exceed 4 KB");
// four gradients at g + i as f32 (16 or 8 bytes)
__device__ __forceinline__ void load4(const float *g, int64_t i, float *o) {
    float4 x = *(const float4 *)(g + i);
    o[0] = x.x, o[1] = x.y, o[2] = x.z, o[3] = x.w;
}
__device__ __forceinline__ void load4(const bf16 *g, int64_t i, float *o) {
    uint2 x = *(const uint2 *)(g + i);
    o[0] = __uint_as_float(x.x << 16), o[1] = __uint_as_float(x.x & 0xffff0000u);
    o[2] = __uint_as_float(x.y << 16), o[3] = __uint_as_float(x.y & 0xffff0000u);
}
__device__ __forceinline__ uint32_t bf16x2(float lo, float hi) {
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(lo)) | ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16);
}
// one average from the updated p: ea p + eb e, uncontracted (the same bits in every caller)
__device__ __forceinline__ float ema1(float p, float e, float ea, float eb) {
    return __fadd_rn(__fmul_rn(ea, p), __fmul_rn(eb, e));
}
// four averages at e from the updated p4: e = ea p + eb e
__device__ __forceinline__ void ema4(float *e, float4 p4, float ea, float eb) {
    float4 e4 = *(const float4 *)e;
    e4.x = ema1(p4.x, e4.x, ea, eb), e4.y = ema1(p4.y, e4.y, ea, eb);
    e4.z = ema1(p4.z, e4.z, ea, eb), e4.w = ema1(p4.w, e4.w, ea, eb);
    *(float4 *)e = e4;
}
template <typename G, bool BF16_STATE>
__global__ void __launch_bounds__(AW_THREADS) k_adamw_multi(aw_list l, adamw_k c) {
    const int b = (int)blockIdx.x;
    int lo = 0, hi = l.nt - 1;  // the largest t with first[t] <= b (no empty tensors in a list)
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (l.first[mid] <= b) lo = mid;
        else hi = mid - 1;
    }
    const int t = lo;
    const int64_t begin = (int64_t)(b - l.first[t]) * AW_CHUNK;
    const int64_t end = begin + AW_CHUNK < l.n[t] ? begin + AW_CHUNK : l.n[t];
    float *p = l.p[t];
    const G *g = (const G *)l.g[t];
    uint16_t *w = l.w[t];
    float *ema = l.ema[t];
    // four elements per thread and 16-byte (or 8-byte) accesses where every array allows them
    // (begin is a multiple of AW_CHUNK: the bases decide), the rest one by one; the same
    // per-element arithmetic either way
    const uintptr_t mv = (uintptr_t)l.m[t] | (uintptr_t)l.v[t];
    const uintptr_t f32s = (uintptr_t)p | (uintptr_t)ema | (sizeof(G) == 4 ? (uintptr_t)g : 0) | (BF16_STATE ? 0 : mv);  // float4
    const uintptr_t b16s = (uintptr_t)w | (sizeof(G) == 2 ? (uintptr_t)g : 0) | (BF16_STATE ? mv : 0);  // 4 x bf16
    const int64_t vend = (f32s & 15) == 0 && (b16s & 7) == 0 ? begin + ((end - begin) & ~(int64_t)3) : begin;
    if (BF16_STATE) {
        uint16_t *m = (uint16_t *)l.m[t], *v = (uint16_t *)l.v[t];
        for (int64_t i = begin + 4 * threadIdx.x; i < vend; i += 4 * AW_THREADS) {
            float gg[4], pp[4], mm[4], vv[4];
            load4(g, i, gg);
            float4 p4 = *(const float4 *)(p + i);
            uint2 m4 = *(const uint2 *)(m + i), v4 = *(const uint2 *)(v + i);
            pp[0] = p4.x, pp[1] = p4.y, pp[2] = p4.z, pp[3] = p4.w;
            mm[0] = __uint_as_float(m4.x << 16), mm[1] = __uint_as_float(m4.x & 0xffff0000u);
            mm[2] = __uint_as_float(m4.y << 16), mm[3] = __uint_as_float(m4.y & 0xffff0000u);
            vv[0] = __uint_as_float(v4.x << 16), vv[1] = __uint_as_float(v4.x & 0xffff0000u);
            vv[2] = __uint_as_float(v4.y << 16), vv[3] = __uint_as_float(v4.y & 0xffff0000u);
            uint32_t mb[4], vb[4];  // the rounded moments, stored 8 bytes at a time (2-byte stores had
                                    // left the bf16 state no faster than the f32: H200, session 22)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                adamw_math(gg[e], pp[e], mm[e], vv[e], c);
                const uint32_t r = cm_sr_bits(l.key[t], i + e);  // sr_store's bits
                mb[e] = cm_bf16_sr(__float_as_uint(mm[e]), r);
                vb[e] = cm_bf16_sr(__float_as_uint(vv[e]), r ^ 0x5A5Au);
            }
            *(uint2 *)(m + i) = make_uint2(mb[0] | mb[1] << 16, mb[2] | mb[3] << 16);
            *(uint2 *)(v + i) = make_uint2(vb[0] | vb[1] << 16, vb[2] | vb[3] << 16);
            p4 = make_float4(pp[0], pp[1], pp[2], pp[3]);
            *(float4 *)(p + i) = p4;
            if (w) *(uint2 *)(w + i) = make_uint2(bf16x2(pp[0], pp[1]), bf16x2(pp[2], pp[3]));
            if (ema) ema4(ema + i, p4, l.ea, l.eb);
        }
        for (int64_t i = vend + threadIdx.x; i < end; i += AW_THREADS) {
            adamw_elem_bf16(i, p, g, m, v, l.key[t], c);
            if (w) w[i] = __bfloat16_as_ushort(__float2bfloat16_rn(p[i]));
            if (ema) ema[i] = ema1(p[i], ema[i], l.ea, l.eb);
        }
    } else {
        float *m = (float *)l.m[t], *v = (float *)l.v[t];
        for (int64_t i = begin + 4 * threadIdx.x; i < vend; i += 4 * AW_THREADS) {
            float gg[4];
            load4(g, i, gg);
            float4 p4 = *(const float4 *)(p + i), m4 = *(const float4 *)(m + i), v4 = *(const float4 *)(v + i);
            adamw_math(gg[0], p4.x, m4.x, v4.x, c);
            adamw_math(gg[1], p4.y, m4.y, v4.y, c);
            adamw_math(gg[2], p4.z, m4.z, v4.z, c);
            adamw_math(gg[3], p4.w, m4.w, v4.w, c);
            *(float4 *)(m + i) = m4, *(float4 *)(v + i) = v4, *(float4 *)(p + i) = p4;
            if (w) *(uint2 *)(w + i) = make_uint2(bf16x2(p4.x, p4.y), bf16x2(p4.z, p4.w));
            if (ema) ema4(ema + i, p4, l.ea, l.eb);
        }
        for (int64_t i = vend + threadIdx.x; i < end; i += AW_THREADS) {
            adamw_elem(i, p, g, m, v, c);
            if (w) w[i] = __bfloat16_as_ushort(__float2bfloat16_rn(p[i]));
            if (ema) ema[i] = ema1(p[i], ema[i], l.ea, l.eb);
        }
    }
}
static void aw_launch(const cm_kctx *k, cm_dtype gdt, bool bf16_state, aw_list *l, int nt, int blocks, const adamw_k &c) {
    l->nt = nt;
    l->first[nt] = blocks;
    if (bf16_state)
        CUDA_DISPATCH("cuda adamw_multi (gradient dtype)", gdt,
                      k_adamw_multi<T, true><<<blocks, AW_THREADS, 0, KSTREAM(k)>>>(*l, c));
    else
        CUDA_DISPATCH("cuda adamw_multi (gradient dtype)", gdt,
                      k_adamw_multi<T, false><<<blocks, AW_THREADS, 0, KSTREAM(k)>>>(*l, c));
    CUDA_LAUNCH_CHECK();
}
void cu_adamw_multi(const cm_kctx *k, int nt, const cm_adamw_tensor *t, cm_dtype gdt, cm_dtype sdt, double lr, double b1,
                    double b2, double eps, double wd, double bc1, double bc2, double gscale, double ema_decay) {
    cuda_require_float("cuda adamw_multi (gradient dtype)", gdt);
    if (sdt != CM_F32 && sdt != CM_BF16) cm_die("cuda adamw_multi", "moment dtype %s not supported (allowed: f32, bf16)", dtype_name(sdt));
    const bool bf16_state = sdt == CM_BF16;
    const adamw_k c = adamw_fold(lr, b1, b2, eps, wd, bc1, bc2, gscale);
    aw_list l;
    memset(&l, 0, sizeof l);
    l.ea = (float)(1 - ema_decay), l.eb = (float)ema_decay;  // cu_axpby's alpha, beta
    int cnt = 0, blocks = 0;
    const int max_blocks = 1 << 30;
    for (int i = 0; i < nt; i++) {
        if (t[i].n <= 0) continue;  // nothing to update (and no empty tensor in a list)
        int64_t ch = (t[i].n + AW_CHUNK - 1) / AW_CHUNK;
        if (ch > max_blocks) cm_die("cuda adamw_multi", "tensor %d has %lld elements (at most %lld)", i,
                                    (long long)t[i].n, (long long)max_blocks * AW_CHUNK);
        if (cnt == AW_MAX_T || blocks + ch > max_blocks) {
            aw_launch(k, gdt, bf16_state, &l, cnt, blocks, c);
            cnt = 0, blocks = 0;
        }
        l.p[cnt] = t[i].p, l.g[cnt] = t[i].g, l.m[cnt] = t[i].m, l.v[cnt] = t[i].v, l.n[cnt] = t[i].n, l.key[cnt] = t[i].key;
        l.w[cnt] = t[i].w, l.ema[cnt] = t[i].ema;
        l.first[cnt] = blocks;
        blocks += (int)ch;
        cnt++;
    }
    if (cnt) aw_launch(k, gdt, bf16_state, &l, cnt, blocks, c);
}
