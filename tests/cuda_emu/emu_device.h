// emu_device.h — what device code sees in the CUDA emulator (force-included before every
// translated kernels/cuda file; see translate.py). Kernels run on the CPU, one block at a time,
// each thread on its own small stack (emu_runtime.cpp); barriers, warp shuffles and WMMA are the
// points where threads wait for each other. Semantics kept: indices, __syncthreads /
// __syncwarp, shuffles with widths, atomics, WMMA m16n16k16 fragments (each lane holds the whole
// tile: the API never exposes the layout), bf16 / f16 conversions, launch limits. Not kept:
// timing, memory coalescing, the GPU's memory model beyond barriers.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <functional>
#include <tuple>
#include <type_traits>

#define CAMEO_EMU_ARCH 900
#define CAMEO_CUDA_EMULATED 1  // kernels/cuda uses it where inline PTX stands (mma.sync)

// --- indices: the scheduler sets these before it runs (or resumes) a thread ---
extern uint3 emu_threadIdx, emu_blockIdx;
extern dim3 emu_blockDim, emu_gridDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim
static const int warpSize = 32;

// --- the runtime's C++ conveniences that cuda_runtime.h keeps for nvcc ---
template <class T> inline cudaError_t cudaFuncSetAttribute(T *f, cudaFuncAttribute a, int v) {
    return cudaFuncSetAttribute((const void *)f, a, v);
}

// --- min / max as device code has them, for every arithmetic pair ---
template <class A, class B> inline typename std::common_type<A, B>::type min(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a < (C)b ? (C)a : (C)b;
}
template <class A, class B> inline typename std::common_type<A, B>::type max(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a > (C)b ? (C)a : (C)b;
}

// --- waiting points ---
void emu_block_barrier(void);
void emu_warp_barrier(void);
unsigned emu_lane(void);
int emu_first_live_lane(void);      // the lowest lane of this warp that has not finished
void *emu_warp_slots(void);         // 32 slots of 16 bytes, one per lane of the caller's warp
// posts this lane's n <= 16 bytes and waits for the warp: the 32 lanes' 16-byte slots, valid to
// read until this thread's next exchange (or mma)
const void *emu_warp_exchange(const void *v, size_t n);
// 1 KiB of the warp's, for lanes to write before a warp barrier and all to read after it (two
// banks, taken in turn: the exchange is built on it; the caller's barrier must follow)
void *emu_warp_scratch(void);
void *emu_dynamic_smem(void);       // this launch's dynamic shared memory
// bar.sync / bar.arrive id, n (named barriers 1..15; 0 is __syncthreads'): the barrier completes
// when n threads have arrived (sync or arrive); sync waits for that, arrive goes on
void emu_named_sync(int id, int n);
void emu_named_arrive(int id, int n);
inline void __syncthreads(void) { emu_block_barrier(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; emu_warp_barrier(); }

// --- launches: the kernel call wrapped in a lambda by translate.py; the kernel's address
// checks the dynamic shared memory against its cudaFuncSetAttribute limit ---
void emu_launch_impl(const void *kernel, const char *name, dim3 grid, dim3 block, size_t smem,
                     const std::function<void()> &run);
// a launch runs its stream's queued work (CUDA_EMU_DEFER's copies), then completes before it returns
// (the kernel's arguments are copied into the lambda, translate.py's [=], as a launch copies them)
extern "C" void emu_stream_flush(cudaStream_t s);
template <class F> void emu_launch(const void *k, const char *n, dim3 g, dim3 b, F f) {
    emu_stream_flush(0);
    emu_launch_impl(k, n, g, b, 0, f);
}
template <class F> void emu_launch(const void *k, const char *n, dim3 g, dim3 b, size_t smem, F f) {
    emu_stream_flush(0);
    emu_launch_impl(k, n, g, b, smem, f);
}
// CUDA_EMU_DEFER=1: a launch on a created stream is queued there (emu_runtime.cpp); true when it was
bool emu_launch_deferred(const void *kernel, const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                         const std::function<void()> &run);
template <class F> void emu_launch(const void *k, const char *n, dim3 g, dim3 b, size_t smem, cudaStream_t s, F f) {
    if (emu_launch_deferred(k, n, g, b, smem, s, f)) return;
    emu_stream_flush(s);
    emu_launch_impl(k, n, g, b, smem, f);
}

// --- warp shuffles: post own value, wait for the warp, read the source lane's ---
template <class T> inline T emu_shfl(T v, int src_lane) {
    static_assert(sizeof(T) <= 16, "shuffle of a type wider than 16 bytes");
    const unsigned char(*slot)[16] = (const unsigned char(*)[16])emu_warp_exchange(&v, sizeof v);
    T r;
    memcpy(&r, slot[src_lane], sizeof r);
    return r;
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    (void)mask;
    int l = (int)emu_lane(), seg = l & ~(width - 1);
    int s = l ^ lane_mask;
    if (s < seg || s >= seg + width) s = l;  // outside the segment: own value
    return emu_shfl(v, s);
}
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    (void)mask;
    int l = (int)emu_lane(), seg = l & ~(width - 1);
    return emu_shfl(v, seg + (src & (width - 1)));
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
    (void)mask;
    int l = (int)emu_lane(), seg = l & ~(width - 1);
    return emu_shfl(v, (l - seg) + (int)d < width ? l + (int)d : l);
}
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) {
    (void)mask;
    int l = (int)emu_lane(), seg = l & ~(width - 1);
    return emu_shfl(v, (l - seg) >= (int)d ? l - (int)d : l);
}
unsigned __ballot_sync(unsigned mask, int pred);
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, !pred) == 0; }

// --- atomics: threads switch only at waiting points, so a plain read-modify-write is atomic ---
template <class T> inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
inline float2 atomicAdd(float2 *p, float2 v) {  // sm_90's vector atomic: each component added
    float2 old = *p;
    p->x = old.x + v.x, p->y = old.y + v.y;
    return old;
}
inline __nv_bfloat16 atomicAdd(__nv_bfloat16 *p, __nv_bfloat16 v) {
    __nv_bfloat16 old = *p;
    *p = __float2bfloat16_rn(__bfloat162float(old) + __bfloat162float(v));
    return old;
}
template <class T> inline T atomicMax(T *p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <class T> inline T atomicCAS(T *p, T cmp, T v) {
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}
template <class T> inline T atomicExch(T *p, T v) {
    T old = *p;
    *p = v;
    return old;
}

// --- intrinsics the host compiler lacks ---
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : x > 1.f ? 1.f : x; }
template <class T> inline T __ldg(const T *p) { return *p; }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; memcpy(&x, &i, 4); return x; }
inline unsigned __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
inline float __uint_as_float(unsigned i) { float x; memcpy(&x, &i, 4); return x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }

// --- mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (c += a b, the PTX fragment layouts) ---
void emu_mma_m16n8k16_bf16(float *c, const uint32_t *a, const uint32_t *b);

// --- ldmatrix.sync.aligned.m8n8.xNUM{.trans}.shared.b16 (PTX ISA, "warp-level matrix load"):
// lane 8 m + r gives the address of row r of matrix m (8 b16 elements, 16-byte aligned); register
// m of lane L receives matrix m's (row L/4, cols 2 (L%4), 2 (L%4) + 1), or with .trans ("loaded
// in column-major format") (rows 2 (L%4), 2 (L%4) + 1, col L/4) — the first in the low half ---
// --- cp.async.cg.shared.global [dst], [src], bytes, src_bytes (the rest zero-filled), commit_group,
// wait_group n: see emu_runtime.cpp for when a copy lands ---
void emu_cp_async(void *dst, const void *src, int bytes, int src_bytes);
void emu_cp_async_commit(void);
void emu_cp_async_wait(int n);

// --- wgmma.mma_async.sync.aligned.m64nNk16.f32.bf16.bf16 (sm_90a), A from registers: each warp
// of the warpgroup gives its 16 rows in mma.m16n8k16's A layout and gets its 16 rows of D in the
// accumulator layout (d[4 j + i]: row g + 8 (i >> 1), col 8 j + 2t + (i & 1)); B (16 x N) through
// a shared-memory matrix descriptor (PTX ISA, "matrix descriptor format": start, leading and
// stride byte offsets >> 4 in bits 0-13, 16-29, 32-45; base offset 49-51; swizzle 62-63),
// K-major or, with tnsp_b, MN-major, the 128-byte swizzle taken on the shared address. As on the
// GPU the product is asynchronous: it runs at the wgmma.wait_group that covers its commit group
// (accumulators read before then hold the old values; B is read then, so a tile refilled too early
// changes the result). Shared addresses are offsets in the launch's dynamic shared memory. ---
void emu_wgmma_bf16(float *d, int n, const uint32_t *a, uint64_t desc_b, int scale_d, int tnsp_b);
// the same with A (64 x 16) through a descriptor too, K-major or, with tnsp_a, MN-major (laid out as
// an MN-major B with M in N's place); warp w % 4 of the group takes rows 16 (w % 4)..
void emu_wgmma_bf16_ss(float *d, int n, uint64_t desc_a, uint64_t desc_b, int scale_d, int tnsp_a, int tnsp_b);
void emu_wgmma_commit(void);
void emu_wgmma_wait(int n);
uint32_t emu_smem_addr(const void *p);

void emu_ldmatrix_misaligned(const void *p);
template <int NUM, bool TRANS> inline void emu_ldmatrix(uint32_t *r, const void *p) {
    const unsigned L = emu_lane(), g = L >> 2, t = L & 3;
    if (L < 8u * NUM && ((uintptr_t)p & 15)) emu_ldmatrix_misaligned(p);
    const unsigned char(*rows)[16] = (const unsigned char(*)[16])emu_warp_exchange(&p, sizeof p);
    for (int m = 0; m < NUM; m++) {
        const uint16_t *r0, *r1;
        memcpy(&r0, rows[8 * m + (int)(TRANS ? 2 * t : g)], sizeof r0);
        memcpy(&r1, rows[8 * m + (int)(TRANS ? 2 * t + 1 : g)], sizeof r1);
        uint16_t lo = TRANS ? r0[g] : r0[2 * t], hi = TRANS ? r1[g] : r0[2 * t + 1];
        r[m] = (uint32_t)lo | ((uint32_t)hi << 16);
    }
}

// --- WMMA (nvcuda::wmma), m16n16k16: each lane holds the whole tile ---
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K> struct emu_dims;
template <int M, int N, int K> struct emu_dims<matrix_a, M, N, K> { enum { R = M, C = K }; };
template <int M, int N, int K> struct emu_dims<matrix_b, M, N, K> { enum { R = K, C = N }; };
template <int M, int N, int K> struct emu_dims<accumulator, M, N, K> { enum { R = M, C = N }; };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    enum { rows = emu_dims<Use, M, N, K>::R, cols = emu_dims<Use, M, N, K>::C, num_elements = rows * cols };
    T x[num_elements];  // row-major tile
};

template <class F, class T> inline void fill_fragment(F &f, T v) {
    for (int i = 0; i < F::num_elements; i++) f.x[i] = v;
}

// the collective memory operations wait for the whole warp first, as a converged warp would;
// a store is done once (by the first live lane) and the warp waits for it
template <class Use, int M, int N, int K, class T, class L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
    typedef fragment<Use, M, N, K, T, L> F;
    emu_warp_barrier();
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++)
            f.x[r * F::cols + c] = std::is_same<L, col_major>::value ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const T *p, unsigned ldm, layout_t l) {
    emu_warp_barrier();
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.x[r * N + c] = l == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
template <int M, int N, int K, class T>
inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm, layout_t l) {
    emu_warp_barrier();
    if ((int)emu_lane() == emu_first_live_lane())
        for (int r = 0; r < M; r++)
            for (int c = 0; c < N; c++) (l == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c]) = f.x[r * N + c];
    emu_warp_barrier();
}
template <class TC>
inline float emu_f(TC v) { return (float)v; }
inline float emu_f(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float emu_f(__half v) { return __half2float(v); }
// d = a b + c with f32 products and sums (the tensor cores' bf16 / f16 inputs are exact in f32),
// computed once for the warp by its first live lane (every lane holds the same whole tiles) into
// a warp scratch (emu_warp_scratch), which the others copy after the warp's barrier
template <int M, int N, int K, class TA, class LA, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
                     const fragment<matrix_b, M, N, K, TA, LB> &b, const fragment<accumulator, M, N, K, TC> &c) {
    static_assert(M * N * sizeof(float) <= 1024, "wmma tile larger than the warp scratch");
    float *out = (float *)emu_warp_scratch();
    if ((int)emu_lane() == emu_first_live_lane())
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = emu_f(c.x[i * N + j]);
                for (int k = 0; k < K; k++) s += emu_f(a.x[i * K + k]) * emu_f(b.x[k * N + j]);
                out[i * N + j] = s;
            }
    emu_warp_barrier();
    for (int i = 0; i < M * N; i++) d.x[i] = (TC)out[i];
}
}  // namespace wmma
}  // namespace nvcuda
