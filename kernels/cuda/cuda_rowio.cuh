// cuda_rowio.cuh — row access shared by the row kernels (norms, the gated residual): VEC moves 16
// bytes (8 bf16 or 4 f32) per lane and step, where the row length and the pointers allow it.
#pragma once
#include <initializer_list>
#include "cuda_common.cuh"

template <typename T, bool VEC> struct RowIO {
    static constexpr int N = VEC ? (int)(16 / sizeof(T)) : 1;
    __device__ static __forceinline__ void load(const T *p, float *f) {
        if constexpr (VEC) {
            uint4 u = *(const uint4 *)p;
            const T *e = (const T *)&u;
#pragma unroll
            for (int i = 0; i < N; i++) f[i] = to_f(e[i]);
        } else {
            f[0] = to_f(p[0]);
        }
    }
    __device__ static __forceinline__ void store(T *p, const float *f) {
        if constexpr (VEC) {
            uint4 u;
            T *e = (T *)&u;
#pragma unroll
            for (int i = 0; i < N; i++) e[i] = from_f<T>(f[i]);
            *(uint4 *)p = u;
        } else {
            p[0] = from_f<T>(f[0]);
        }
    }
    // optional per-column parameter (w or b may be NULL -> dflt)
    __device__ static __forceinline__ void load_or(const T *p, float *f, float dflt) {
        if (p) load(p, f);
        else {
#pragma unroll
            for (int i = 0; i < N; i++) f[i] = dflt;
        }
    }
};

// sum over a row (every lane of the warp gets it) of x, or of (x - mu)^2 when square
template <typename IO, typename T>
__device__ __forceinline__ float row_sum(const T *xr, int64_t cols, int lane, bool square, float mu) {
    constexpr int N = IO::N;
    float f[N], s = 0.f;
    for (int64_t c = lane * N; c < cols; c += 32 * N) {
        IO::load(xr + c, f);
#pragma unroll
        for (int i = 0; i < N; i++) s += square ? (f[i] - mu) * (f[i] - mu) : f[i];
    }
    return warp_sum(s);
}

// every pointer 16-byte aligned (NULL, an absent operand, counts as aligned)
static inline bool aligned16_all(std::initializer_list<const void *> ptrs) {
    for (const void *p : ptrs)
        if (((uintptr_t)p & 15) != 0) return false;
    return true;
}
// rows of `cols` elements can move in 16-byte vectors: whole vectors per row, aligned pointers
template <typename T> static inline bool row_vec_ok(int64_t cols, std::initializer_list<const void *> ptrs) {
    return cols % (int64_t)(16 / sizeof(T)) == 0 && aligned16_all(ptrs);
}
