// cuda_wgmma.cuh — Hopper's warpgroup MMA (wgmma.mma_async, sm_90a) for the attention kernels
// (cuda_attention_wgmma.cu, cuda_attention_wgws.cu): the shared-memory descriptor and the 128-byte
// swizzle of their tiles, the wgmma forms they issue (each emulated by tests/cuda_emu), the fences,
// named barriers, and the K / V tile load. The layouts are described in cuda_attention_wgmma.cu.
#pragma once
#include "cuda_attention_frag.cuh"

#if defined(CAMEO_CUDA_EMULATED) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define WG_ENABLED 1  // wgmma exists only in sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a)
#endif

#define WG_GROUPS 2                       // warpgroups per block, 64 queries each
#define WG_KEYS 64                        // keys per tile
#define WG_HALF (WG_KEYS * 128)           // bytes of one 64-dim half of a tile
#define WG_TILE (2 * WG_HALF)             // bytes of a K or V tile (head dim 128)
#define WG_SMEM (4 * WG_TILE + 1024)      // K, V; two of each; room to align them to 1024 bytes
#define WG_FWD_SMEM (6 * WG_TILE + 1024)  // the forward's: three of each

// the shared-window address of a shared-memory pointer (the emulator: its offset in the launch's
// dynamic shared memory)
__device__ __forceinline__ uint32_t smem_u32(const void *p) {
#ifdef CAMEO_CUDA_EMULATED
    return emu_smem_addr(p);
#else
    return (uint32_t)__cvta_generic_to_shared(p);
#endif
}
// a matrix descriptor: start, leading and stride byte offsets, 128-byte swizzle, base offset 0
// (the tiles' patterns start on 1024-byte boundaries)
__device__ __forceinline__ uint64_t wg_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((addr & 0x3ffffu) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32) | (1ull << 62);
}
// byte offset of element (row r, column c) of a tile
__device__ __forceinline__ uint32_t wg_swz(int r, int c) {
    return (uint32_t)((c >> 6) * WG_HALF + r * 128 + ((((c & 63) >> 3) ^ (r & 7)) << 4) + (c & 7) * 2);
}

// wgmma.fence before a warpgroup's first wgmma and after registers they read were written;
// commit_group closes a group; wait_group N: all but the N most recent groups are done. The
// register fence keeps the compiler from moving accumulator reads or writes across them.
__device__ __forceinline__ void wg_fence() {
#ifndef CAMEO_CUDA_EMULATED
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#ifdef CAMEO_CUDA_EMULATED
    emu_wgmma_commit();
#else
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N> __device__ __forceinline__ void wg_wait() {
#ifdef CAMEO_CUDA_EMULATED
    emu_wgmma_wait(N);
#else
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
template <int N> __device__ __forceinline__ void wg_reg_fence(float *d) {
#ifndef CAMEO_CUDA_EMULATED
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
#endif
}
// N accumulator registers zeroed once, before any wgmma (fenced, so nvcc does not sink the moves
// between products): the products that overwrite them (scale-d 0) still name them as inputs
template <int N> __device__ __forceinline__ void wg_zero(float *d) {
#pragma unroll
    for (int i = 0; i < N; i++) d[i] = 0.f;
    wg_reg_fence<N>(d);
}
// cp.async writes through the generic proxy, wgmma reads through the async proxy: each thread
// fences its landed copies before the barrier that publishes them
__device__ __forceinline__ void fence_proxy_async() {
#ifndef CAMEO_CUDA_EMULATED
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// D (64 x 64, f32; this thread's 32) += A (64 x 16 bf16, this warp's 16 rows in registers) B
// (16 x 64 through desc, K-major)
__device__ __forceinline__ void wgmma_s(float *d, const uint32_t *a, uint64_t desc, int scale_d) {
#ifdef CAMEO_CUDA_EMULATED
    emu_wgmma_bf16(d, 64, a, desc, scale_d, 0);
#else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
                 "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                   "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(scale_d));
#endif
}
// D (64 x 128; this thread's 64) += A (registers) B (16 x 128 through desc, MN-major)
__device__ __forceinline__ void wgmma_o(float *d, const uint32_t *a, uint64_t desc, int scale_d) {
#ifdef CAMEO_CUDA_EMULATED
    emu_wgmma_bf16(d, 128, a, desc, scale_d, 1);
#else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
                 "{%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                   "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
                   "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
                   "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
                   "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(scale_d));
#endif
}

// D (64 x 64) += A (64 x 16 through desc_a: the warpgroup's 64 rows) B (16 x 64 through desc_b);
// each K-major or, with TA / TB, MN-major (transposed)
template <int TA = 0, int TB = 0>
__device__ __forceinline__ void wgmma_ss(float *d, uint64_t desc_a, uint64_t desc_b, int scale_d) {
#ifdef CAMEO_CUDA_EMULATED
    emu_wgmma_bf16_ss(d, 64, desc_a, desc_b, scale_d, TA, TB);
#else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
                 "%32, %33, p, 1, 1, %35, %36;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                   "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TA), "n"(TB));
#endif
}

// keys k0..k0+63 of K and V (this block's b, h) into buffer buf (K tile 2 buf, V tile 2 buf + 1),
// swizzled, zero past the keys; started (cp.async), complete after the wait and barrier
__device__ __forceinline__ void wg_kv_load(unsigned char *smem, int buf, const att_args &a, const bf16 *Kb, const bf16 *Vb,
                                           int64_t k0) {
    const int kvalid = (int)min((int64_t)WG_KEYS, a.Lk - k0);
    for (int idx = threadIdx.x; idx < 2 * WG_KEYS * 16; idx += blockDim.x) {
        const int v = idx >= WG_KEYS * 16, r = (idx >> 4) & (WG_KEYS - 1), c = (idx & 15) * 8;
        const bf16 *src = v ? Vb + (k0 + r) * a.vs2 + c : Kb + (k0 + r) * a.ks2 + c;
        const bool in = r < kvalid;
        cp_async16(smem + (2 * buf + v) * WG_TILE + wg_swz(r, c), in ? src : (v ? Vb : Kb), in ? 16 : 0);
    }
}
// the forwards' steps (cuda_attention_wgmma.cu, cuda_attention_wgws.cu), per warpgroup, over a
// step of KT 64-key tiles (WG_TILE apart: keys 64 i.. in tile i; CAMEO_WGMMA3_KEYS=128 takes two):
// S = Q K^T for the K tiles at shared address kt, issued as one commit group (k step kk reads dims
// 16 kk.. = bytes 32 (kk % 4) of half kk / 4; its wgmma.fence also orders earlier writes of the
// registers the products read); tile i's scores are s[8 i ..]. The first k step overwrites s (its
// scale-d 0) — no zeroing moves before each product, which nvcc also sank between the tiles'
// products (ptxas then injected warpgroup waits); the caller gives s initial values once
// (wg_zero), as the asm reads them
template <int KT = 1>
__device__ __forceinline__ void wg_issue_s(float (*s)[4], const uint32_t (*qf)[4], uint32_t kt) {
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < 8; kk++)  // (each Q fragment for every tile in turn: kk outside)
#pragma unroll
        for (int i = 0; i < KT; i++)
            wgmma_s(&s[8 * i][0], qf[kk], wg_desc(kt + i * WG_TILE + (kk >> 2) * WG_HALF + (kk & 3) * 32, 16, 1024),
                    kk > 0);
    wg_commit();
}
// O += P V for the V tiles at vt, one commit group: keys 16 c.. are P's fragment c, in V's tile c / 4,
// its rows 2048 (c % 4) bytes in
template <int KT = 1>
__device__ __forceinline__ void wg_issue_pv(float (*o)[4], const uint32_t (*pa)[4], uint32_t vt) {
#pragma unroll
    for (int c = 0; c < 4 * KT; c++)
        wgmma_o(&o[0][0], pa[c], wg_desc(vt + (c >> 2) * WG_TILE + (c & 3) * 2048, WG_HALF, 1024), 1);
    wg_commit();
}
// after the last P V landed: O rescaled by the new step's alpha, its P packed as the next P V's A
template <int KT = 1>
__device__ __forceinline__ void wg_rescale_pack(float (*o)[4], const float *alpha, uint32_t (*pa)[4], float (*s)[4]) {
#pragma unroll
    for (int n = 0; n < 16; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) o[n][i] *= alpha[i >> 1];
#pragma unroll
    for (int c = 0; c < 4 * KT; c++) acc_to_a(pa[c], s[2 * c], s[2 * c + 1]);
}

// the query side's steps (the dQ kernels), per warpgroup of 64 queries (Q, dO rows in registers
// as qf, of) over the 64-key tile of K, V at kt, vt: S = Q K^T and dP = dO V^T (8 wgmma each, V's
// tile read K-major as K's), one commit group
// (s and dp overwritten by the first k step, as wg_issue_s)
__device__ __forceinline__ void dq_issue_sdp(float (*s)[4], float (*dp)[4], const uint32_t (*qf)[4],
                                             const uint32_t (*of)[4], uint32_t kt, uint32_t vt) {
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
        const uint32_t off = (kk >> 2) * WG_HALF + (kk & 3) * 32;
        wgmma_s(&s[0][0], qf[kk], wg_desc(kt + off, 16, 1024), kk > 0);
        wgmma_s(&dp[0][0], of[kk], wg_desc(vt + off, 16, 1024), kk > 0);
    }
    wg_commit();
}
// dS = P (dP - D) of this warp's rows q0 + g (+ 8) and keys k0.. (L: lse in log2 units, -inf for a
// fully masked row: P = 0), then dQ += dS K (4 wgmma, K's tile MN-major), one commit group
__device__ __forceinline__ void dq_probs_issue(float (*dq)[4], float (*s)[4], const float (*dp)[4], const float *L,
                                               const float *Di, const att_args &a, const float *mr, int64_t q0,
                                               int64_t k0, int g, int t, uint32_t kt) {
    const bool plain = !mr && k0 + WG_KEYS <= a.Lk;  // a whole tile of keys, no mask: only the scale
    const float sl2 = a.scale * LOG2E;
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) {  // s becomes dS = P (dP - D)
            const int r = i >> 1;
            float e = plain ? fmaf(s[n][i], sl2, -L[r])
                            : score(a, mr, s[n][i], q0 + g + 8 * r, k0 + n * 8 + 2 * t + (i & 1)) * LOG2E - L[r];
            float p = L[r] == -INFINITY ? 0.f : exp2f(e);
            s[n][i] = p * (dp[n][i] - Di[r]);
        }
    uint32_t da[4][4];
#pragma unroll
    for (int c = 0; c < 4; c++) acc_to_a(da[c], s[2 * c], s[2 * c + 1]);
    wg_fence();
#pragma unroll
    for (int c = 0; c < 4; c++) wgmma_o(&dq[0][0], da[c], wg_desc(kt + c * 2048, WG_HALF, 1024), 1);
    wg_commit();
}

// the key side's steps (cuda_attention_wgmma.cu's dK dV kernel, cuda_attention_wgws.cu's), per
// warpgroup of 64 keys (K, V tiles at kt, vt) over a tile of 64 queries (Q, dO tiles at qt, ot):
// S^T = K Q^T and dP^T = V dO^T (8 wgmma each, every operand through a descriptor, K-major), one
// commit group
// (s and dp overwritten by the first k step, as wg_issue_s)
__device__ __forceinline__ void dkv_issue_sdp(float (*s)[4], float (*dp)[4], uint32_t kt, uint32_t vt, uint32_t qt,
                                              uint32_t ot) {
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
        const uint32_t off = (kk >> 2) * WG_HALF + (kk & 3) * 32;
        wgmma_ss(&s[0][0], wg_desc(kt + off, 16, 1024), wg_desc(qt + off, 16, 1024), kk > 0);
        wgmma_ss(&dp[0][0], wg_desc(vt + off, 16, 1024), wg_desc(ot + off, 16, 1024), kk > 0);
    }
    wg_commit();
}
// P^T and dS^T = P^T (dP^T - D) of this warp's keys j0 + g (+ 8) and the tile's queries q0.., as
// the A fragments of the gradients' products. Ls: the tile's lse (log2 units; -inf past Lq or for
// a fully masked row: P = 0), Ds: its D; plain: no mask and every key real (only the scale)
__device__ __forceinline__ void dkv_probs(float (*s)[4], float (*dp)[4], uint32_t (*pa)[4], uint32_t (*da)[4],
                                          const float *Ls, const float *Ds, const att_args &a, const float *mr,
                                          bool plain, int64_t q0, int64_t j0, int g, int t) {
    const float sl2 = a.scale * LOG2E;
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) {  // s becomes P^T, dp becomes dS^T
            const int ql = n * 8 + 2 * t + (i & 1);
            const int64_t j = j0 + g + 8 * (i >> 1);
            const float Lq_ = Ls[ql];
            float e = plain ? fmaf(s[n][i], sl2, -Lq_) : score(a, mr, s[n][i], q0 + ql, j) * LOG2E - Lq_;
            float p = Lq_ == -INFINITY ? 0.f : exp2f(e);
            s[n][i] = p;
            dp[n][i] = p * (dp[n][i] - Ds[ql]);
        }
#pragma unroll
    for (int c = 0; c < 4; c++) {
        acc_to_a(pa[c], s[2 * c], s[2 * c + 1]);
        acc_to_a(da[c], dp[2 * c], dp[2 * c + 1]);
    }
}
// dV += P^T dO and dK += dS^T Q (A from registers, dO and Q MN-major), one commit group
__device__ __forceinline__ void dkv_issue_grads(float (*dv)[4], float (*dk)[4], const uint32_t (*pa)[4],
                                                const uint32_t (*da)[4], uint32_t ot, uint32_t qt) {
    wg_fence();
#pragma unroll
    for (int c = 0; c < 4; c++) {
        wgmma_o(&dv[0][0], pa[c], wg_desc(ot + c * 2048, WG_HALF, 1024), 1);
        wgmma_o(&dk[0][0], da[c], wg_desc(qt + c * 2048, WG_HALF, 1024), 1);
    }
    wg_commit();
}
// the fused backward's dQ (CAMEO_ATTN_BWD=fused; the dK dV kernels of cuda_attention_wgmma.cu and
// cuda_attention_wgws.cu). Each group's dS^T [64 keys][64 queries] goes to shared memory (128-byte
// swizzled rows, 1024-byte aligned); once both groups' are there, group w takes dims 64 w.. of the
// tile's dQ = dS K over the block's 128 keys (8 wgmma m64n64k16, dS^T through its descriptor as A,
// MN-major; K's tiles MN-major as B) and adds them into dqacc (f32 [B, H, Lq, 128], zeroed before)
// with atomics; attn_dq_round scales and rounds it into dQ.
#define WG_DS_TILE (64 * 128)  // bytes of one group's dS^T tile
// this warp's 16 rows of dS^T (da, as dkv_probs made them) into its group's tile dst, fenced for
// the other group's wgmma after the barrier that follows
__device__ __forceinline__ void ds_store(unsigned char *dst, const uint32_t (*da)[4], int warp, int g, int t) {
    const int kr = 16 * (warp & 3) + g;
#pragma unroll
    for (int c = 0; c < 4; c++) {
        *(uint32_t *)(dst + wg_swz(kr, 16 * c + 2 * t)) = da[c][0];
        *(uint32_t *)(dst + wg_swz(kr + 8, 16 * c + 2 * t)) = da[c][1];
        *(uint32_t *)(dst + wg_swz(kr, 16 * c + 8 + 2 * t)) = da[c][2];
        *(uint32_t *)(dst + wg_swz(kr + 8, 16 * c + 8 + 2 * t)) = da[c][3];
    }
    fence_proxy_async();
}
// group wg's dims of the tile's dQ from both groups' dS^T (ds: group 0's tile, group 1's WG_DS_TILE
// on) and K tiles (kt: group 0's, group 1's WG_TILE on), into dqacc rows q0..; waits for every
// wgmma this warpgroup issued
__device__ __forceinline__ void dq_from_ds(float *dqacc, const att_args &a, uint32_t ds, uint32_t kt, int wg,
                                           int64_t bh, int64_t q0, int warp, int g, int t) {
    float dq[8][4];  // dQ[64 queries][dims 64 wg..] of this tile, over the block's 128 keys
#pragma unroll
    for (int n = 0; n < 8; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {  // keys 16 kk..: group kk / 4's tile, rows 16 (kk % 4)..
        const uint32_t kl = (uint32_t)(kk & 3) * 2048;
        wgmma_ss<1, 1>(&dq[0][0], wg_desc(ds + (uint32_t)(kk >> 2) * WG_DS_TILE + kl, WG_HALF, 1024),
                       wg_desc(kt + (uint32_t)(kk >> 2) * WG_TILE + (uint32_t)wg * WG_HALF + kl, WG_HALF, 1024), 1);
    }
    wg_commit();
    wg_wait<0>();
    wg_reg_fence<32>(&dq[0][0]);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int64_t qi = q0 + 16 * (warp & 3) + g + 8 * r;
        if (qi >= a.Lq) continue;
        float *row = dqacc + (bh * a.Lq + qi) * 128 + 64 * wg + 2 * t;  // 8-byte aligned
#pragma unroll
        for (int n = 0; n < 8; n++) red_add2(row + 8 * n, dq[n][2 * r], dq[n][2 * r + 1]);
    }
}

// dK (scaled) and dV of this warp's keys j0 + g (+ 8), contiguous [B, H, Lk, 128]
__device__ __forceinline__ void dkv_store(const att_args &a, bf16 *dK, bf16 *dV, const float (*dk)[4], const float (*dv)[4],
                                          int64_t bh, int64_t j0, int g, int t) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int64_t j = j0 + g + 8 * r;
        if (j >= a.Lk) continue;
        bf16 *kr = dK + (bh * a.Lk + j) * a.D, *vr = dV + (bh * a.Lk + j) * a.D;
#pragma unroll
        for (int n = 0; n < 16; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                kr[n * 8 + 2 * t + e] = __float2bfloat16_rn(dk[n][2 * r + e] * a.scale);
                vr[n * 8 + 2 * t + e] = __float2bfloat16_rn(dv[n][2 * r + e]);
            }
    }
}

// bar.sync / bar.arrive on named barrier id (1..15; 0 is __syncthreads') for n threads (a multiple
// of 32): sync waits until n have arrived, arrive goes on. Both order the caller's memory accesses
// before them for the threads that sync (PTX ISA, "bar, barrier").
__device__ __forceinline__ void nb_sync(int id, int n) {
#ifdef CAMEO_CUDA_EMULATED
    emu_named_sync(id, n);
#else
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
#endif
}
__device__ __forceinline__ void nb_arrive(int id, int n) {
#ifdef CAMEO_CUDA_EMULATED
    emu_named_arrive(id, n);
#else
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
#endif
}

// the tiles' first byte: the dynamic shared memory rounded up to 1024 bytes (WG_SMEM leaves room)
__device__ __forceinline__ unsigned char *wg_smem(unsigned char *raw) {
    return raw + ((1024u - (smem_u32(raw) & 1023u)) & 1023u);
}
