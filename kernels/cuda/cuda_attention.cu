// cuda_attention.cu — fused attention O = softmax(scale * Q K^T + mask) V, forward and backward,
// flash style: online softmax, the log-sum-exp saved for backward, no score matrix in memory.
//
// bf16 with a head dim padded to 64, 80 (SigLIP's 72) or 128 (FLUX): tensor-core kernels (WMMA,
// bf16 in, f32 accumulate), 64-row tiles, 4 warps each owning 16 rows of the tile:
//   forward   one block per (64 queries, b*h), loops over 64-key tiles, O accumulated in shared f32
//   backward  D_i = rowsum(dO_i * O_i); one kernel per 64-key tile accumulates dK, dV in registers
//             over all query tiles; one kernel per 64-query tile accumulates dQ over all key tiles
//             (7 matmuls instead of 5, but no atomics, no f32 dQ scratch, deterministic)
// Everything else (f32, other head dims, up to 512: the FLUX VAE's mid-block attention is one head
// of 512): a warp-per-row kernel (slow, exact reference semantics; for tests and tiny models), the
// forward through cuBLAS instead where the work is large (cuda_attention_gemm.cu).
#include "cuda_attention.cuh"
#include <mma.h>
#include <stdio.h>
#include <string.h>
using namespace nvcuda;

// =============================================================================================
// generic warp-per-row kernels (any float type, D <= 512)
// =============================================================================================
#define GEN_NPER 16  // head-dim elements per lane: 32 * 16 = 512
template <typename T>
__global__ void k_att_fwd_gen(att_args a, T *O, float *lse, const T *Q, const T *K, const T *V) {
    int64_t row = (int64_t)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= a.B * a.H * a.Lq) return;
    int64_t i = row % a.Lq, bh = row / a.Lq, h = bh % a.H, b = bh / a.H;
    const T *q = Q + b * a.qs0 + h * a.qs1 + i * a.qs2;
    const T *kb = K + b * a.ks0 + h * a.ks1, *vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);
    float qv[GEN_NPER], o[GEN_NPER];
#pragma unroll
    for (int e = 0; e < GEN_NPER; e++) {
        int d = lane + 32 * e;
        qv[e] = d < a.D ? to_f(q[d]) : 0.f;
        o[e] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    for (int64_t j = 0; j < a.Lk; j++) {
        const T *kr = kb + j * a.ks2, *vr = vb + j * a.vs2;
        float s = 0.f;
#pragma unroll
        for (int e = 0; e < GEN_NPER; e++) {
            int d = lane + 32 * e;
            if (d < a.D) s += qv[e] * to_f(kr[d]);
        }
        s = warp_sum(s) * a.scale;
        if (mr) s += mr[i * a.Lk + j];
        float mn = fmaxf(m, s);
        if (mn == -INFINITY) continue;
        float al = __expf(m - mn), p = __expf(s - mn);
        l = l * al + p;
#pragma unroll
        for (int e = 0; e < GEN_NPER; e++) {
            int d = lane + 32 * e;
            if (d < a.D) o[e] = o[e] * al + p * to_f(vr[d]);
        }
        m = mn;
    }
    float inv = l > 0.f ? 1.f / l : 0.f;
    T *orow = o_row(a, O, b, h, i);
#pragma unroll
    for (int e = 0; e < GEN_NPER; e++) {
        int d = lane + 32 * e;
        if (d < a.D) orow[d] = from_f<T>(o[e] * inv);
    }
    if (lane == 0) lse[row] = l > 0.f ? m + logf(l) : -INFINITY;
}

// Dvec[row] = sum_d dO * O (f32), rows (b, h, i) over B*H*Lq
template <typename T> __global__ void k_att_dvec(att_args a, float *Dv, const T *dO, const T *O) {
    int64_t row = (int64_t)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= a.B * a.H * a.Lq) return;
    int64_t i = row % a.Lq, bh = row / a.Lq, h = bh % a.H, b = bh / a.H;
    const T *gr = do_row(a, dO, b, h, i), *orow = o_row(a, O, b, h, i);
    float s = 0.f;
    for (int64_t d = lane; d < a.D; d += 32) s += to_f(gr[d]) * to_f(orow[d]);
    s = warp_sum(s);
    if (lane == 0) Dv[row] = s;
}

template <typename T>
__global__ void k_att_dq_gen(att_args a, T *dQ, const T *dO, const float *lse, const float *Dv, const T *Q, const T *K,
                             const T *V) {
    int64_t row = (int64_t)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= a.B * a.H * a.Lq) return;
    int64_t i = row % a.Lq, bh = row / a.Lq, h = bh % a.H, b = bh / a.H;
    const T *q = Q + b * a.qs0 + h * a.qs1 + i * a.qs2, *dor = do_row(a, dO, b, h, i);
    const T *kb = K + b * a.ks0 + h * a.ks1, *vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);
    float qv[GEN_NPER], dov[GEN_NPER], dq[GEN_NPER];
#pragma unroll
    for (int e = 0; e < GEN_NPER; e++) {
        int d = lane + 32 * e;
        qv[e] = d < a.D ? to_f(q[d]) : 0.f;
        dov[e] = d < a.D ? to_f(dor[d]) : 0.f;
        dq[e] = 0.f;
    }
    float L = lse[row], Di = Dv[row];
    for (int64_t j = 0; j < a.Lk; j++) {
        const T *kr = kb + j * a.ks2, *vr = vb + j * a.vs2;
        float s = 0.f, dp = 0.f;
#pragma unroll
        for (int e = 0; e < GEN_NPER; e++) {
            int d = lane + 32 * e;
            if (d < a.D) {
                s += qv[e] * to_f(kr[d]);
                dp += dov[e] * to_f(vr[d]);
            }
        }
        s = warp_sum(s) * a.scale;
        dp = warp_sum(dp);
        if (mr) s += mr[i * a.Lk + j];
        float p = L == -INFINITY ? 0.f : __expf(s - L);  // fully masked row: P = 0 (as kernels/cpu)
        float ds = p * (dp - Di);
#pragma unroll
        for (int e = 0; e < GEN_NPER; e++) {
            int d = lane + 32 * e;
            if (d < a.D) dq[e] += ds * to_f(kr[d]);
        }
    }
#pragma unroll
    for (int e = 0; e < GEN_NPER; e++) {
        int d = lane + 32 * e;
        if (d < a.D) dQ[row * a.D + d] = from_f<T>(dq[e] * a.scale);
    }
}

template <typename T>
__global__ void k_att_dkv_gen(att_args a, T *dK, T *dV, const T *dO, const float *lse, const float *Dv, const T *Q,
                              const T *K, const T *V) {
    int64_t row = (int64_t)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);  // over B*H*Lk
    int lane = threadIdx.x & 31;
    if (row >= a.B * a.H * a.Lk) return;
    int64_t j = row % a.Lk, bh = row / a.Lk, h = bh % a.H, b = bh / a.H;
    const T *kr = K + b * a.ks0 + h * a.ks1 + j * a.ks2, *vr = V + b * a.vs0 + h * a.vs1 + j * a.vs2;
    const T *qb = Q + b * a.qs0 + h * a.qs1, *dob = do_row(a, dO, b, h, 0);
    const float *mr = mask_rows(a, b, h), *lb = lse + bh * a.Lq, *db = Dv + bh * a.Lq;
    float kv[GEN_NPER], vv[GEN_NPER], dk[GEN_NPER], dv[GEN_NPER];
#pragma unroll
    for (int e = 0; e < GEN_NPER; e++) {
        int d = lane + 32 * e;
        kv[e] = d < a.D ? to_f(kr[d]) : 0.f;
        vv[e] = d < a.D ? to_f(vr[d]) : 0.f;
        dk[e] = dv[e] = 0.f;
    }
    for (int64_t i = 0; i < a.Lq; i++) {
        const T *qr = qb + i * a.qs2, *dor = dob + i * a.gs2;
        float s = 0.f, dp = 0.f, qv[GEN_NPER], dov[GEN_NPER];
#pragma unroll
        for (int e = 0; e < GEN_NPER; e++) {
            int d = lane + 32 * e;
            qv[e] = d < a.D ? to_f(qr[d]) : 0.f;
            dov[e] = d < a.D ? to_f(dor[d]) : 0.f;
            s += qv[e] * kv[e];
            dp += dov[e] * vv[e];
        }
        s = warp_sum(s) * a.scale;
        dp = warp_sum(dp);
        if (mr) s += mr[i * a.Lk + j];
        float p = lb[i] == -INFINITY ? 0.f : __expf(s - lb[i]);  // fully masked row: P = 0
        float ds = p * (dp - db[i]);
#pragma unroll
        for (int e = 0; e < GEN_NPER; e++) {
            dv[e] += p * dov[e];
            dk[e] += ds * qv[e];
        }
    }
#pragma unroll
    for (int e = 0; e < GEN_NPER; e++) {
        int d = lane + 32 * e;
        if (d < a.D) {
            dK[row * a.D + d] = from_f<T>(dk[e] * a.scale);
            dV[row * a.D + d] = from_f<T>(dv[e]);
        }
    }
}

// =============================================================================================
// bf16 tensor-core kernels (WMMA m16n16k16), head dim padded to DP (a multiple of 16)
// =============================================================================================
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b_row;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_b_col;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

template <int DP> struct att_smem {
    static constexpr int LDH = DP + 8;  // bf16 row stride of Q/K/V/dO tiles
    static constexpr int LDF = DP + 4;  // f32 row stride of O / result tiles
    static constexpr size_t tileh = (size_t)64 * LDH * sizeof(bf16);
    static constexpr size_t tiles = (size_t)64 * ATT_LDS * sizeof(float);
    static constexpr size_t tilep = (size_t)64 * ATT_LDP * sizeof(bf16);
    static constexpr size_t tilef = (size_t)64 * LDF * sizeof(float);
    // forward: Q, K, V, S, P, O, m, l
    static constexpr size_t fwd = 3 * tileh + tiles + tilep + tilef + 2 * 64 * sizeof(float);
    // backward (both kernels): 4 half tiles, S, dP, P/dS, two rows of 64 floats
    static constexpr size_t bwd = 4 * tileh + 2 * tiles + tilep + 2 * 64 * sizeof(float);
};

// the backward kernels' three steps, per warp (rows r0..r0+15 of the 64-row tile):
// S = A1 B1^T and T = A2 B2^T over the DP columns, 64 output columns (rows of B), f32 into Sf / Tf
template <int DP>
__device__ __forceinline__ void two_products_nt(float *Sf, float *Tf, const bf16 *A1, const bf16 *B1, const bf16 *A2,
                                                const bf16 *B2, int r0) {
    constexpr int LDH = att_smem<DP>::LDH, NF = DP / 16;
#pragma unroll
    for (int n = 0; n < 4; n++) {
        frag_c acc, acc2;
        wmma::fill_fragment(acc, 0.f);
        wmma::fill_fragment(acc2, 0.f);
#pragma unroll
        for (int kk = 0; kk < NF; kk++) {
            frag_a fa;
            frag_b_col fb;
            wmma::load_matrix_sync(fa, A1 + r0 * LDH + kk * 16, LDH);
            wmma::load_matrix_sync(fb, B1 + n * 16 * LDH + kk * 16, LDH);
            wmma::mma_sync(acc, fa, fb, acc);
            wmma::load_matrix_sync(fa, A2 + r0 * LDH + kk * 16, LDH);
            wmma::load_matrix_sync(fb, B2 + n * 16 * LDH + kk * 16, LDH);
            wmma::mma_sync(acc2, fa, fb, acc2);
        }
        wmma::store_matrix_sync(Sf + r0 * ATT_LDS + n * 16, acc, ATT_LDS, wmma::mem_row_major);
        wmma::store_matrix_sync(Tf + r0 * ATT_LDS + n * 16, acc2, ATT_LDS, wmma::mem_row_major);
    }
}
// acc[n] += P B: P the warp's 16 bf16 rows of Pb (64 wide), B [64][DP] row-major
template <int DP>
__device__ __forceinline__ void acc_product_nn(frag_c *acc, const bf16 *Pb, const bf16 *B, int r0) {
    constexpr int LDH = att_smem<DP>::LDH, NF = DP / 16;
#pragma unroll
    for (int n = 0; n < NF; n++) {
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            frag_a fa;
            frag_b_row fb;
            wmma::load_matrix_sync(fa, Pb + r0 * ATT_LDP + kk * 16, ATT_LDP);
            wmma::load_matrix_sync(fb, B + kk * 16 * LDH + n * 16, LDH);
            wmma::mma_sync(acc[n], fa, fb, acc[n]);
        }
    }
}
// the warp's 16 result rows (NF fragments) times sc into dst's rows (stride D), through the
// warp's 16 x LDF floats of shared memory; rows from `rows` on are not written
template <int DP>
__device__ __forceinline__ void store_rows(float *outf, const frag_c *acc, bf16 *dst, int64_t rows, int D, float sc,
                                           int lane) {
    constexpr int LDF = att_smem<DP>::LDF, NF = DP / 16;
#pragma unroll
    for (int n = 0; n < NF; n++) wmma::store_matrix_sync(outf + n * 16, acc[n], LDF, wmma::mem_row_major);
    __syncwarp();
    for (int r = 0; r < 16 && r < rows; r++)
        for (int d = lane; d < D; d += 32) dst[(int64_t)r * D + d] = __float2bfloat16_rn(outf[r * LDF + d] * sc);
    __syncwarp();
}

template <int DP>
__global__ void __launch_bounds__(ATT_THREADS) k_att_fwd_tc(att_args a, bf16 *O, float *lse, const bf16 *Q,
                                                            const bf16 *K, const bf16 *V, bool vq, bool vk, bool vv) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    typedef att_smem<DP> S;
    constexpr int LDH = S::LDH, LDF = S::LDF, NF = DP / 16;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem;
    bf16 *Ks = (bf16 *)(smem + S::tileh);
    bf16 *Vs = (bf16 *)(smem + 2 * S::tileh);
    float *Sf = (float *)(smem + 3 * S::tileh);
    bf16 *Pb = (bf16 *)(smem + 3 * S::tileh + S::tiles);
    float *Of = (float *)(smem + 3 * S::tileh + S::tiles + S::tilep);
    float *m_s = (float *)(smem + 3 * S::tileh + S::tiles + S::tilep + S::tilef);
    float *l_s = m_s + 64;

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t q0 = (int64_t)blockIdx.x * ATT_BQ;
    const int D = (int)a.D;
    const int qvalid = (int)min((int64_t)ATT_BQ, a.Lq - q0);
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1 + q0 * a.qs2;
    const bf16 *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);

    tile_load<DP>(Qs, LDH, Qb, a.qs2, qvalid, D, vq, ATT_BQ);
    for (int idx = threadIdx.x; idx < 64 * LDF; idx += blockDim.x) Of[idx] = 0.f;
    if (threadIdx.x < 64) {
        m_s[threadIdx.x] = -INFINITY;
        l_s[threadIdx.x] = 0.f;
    }
    const int r0 = warp * 16;
    for (int64_t k0 = 0; k0 < a.Lk; k0 += ATT_BK) {
        const int kvalid = (int)min((int64_t)ATT_BK, a.Lk - k0);
        __syncthreads();  // everyone is done with the previous K/V tile
        tile_load<DP>(Ks, LDH, Kb + k0 * a.ks2, a.ks2, kvalid, D, vk, ATT_BK);
        tile_load<DP>(Vs, LDH, Vb + k0 * a.vs2, a.vs2, kvalid, D, vv, ATT_BK);
        __syncthreads();
        // S[r0:r0+16, 0:64] = Q K^T
#pragma unroll
        for (int n = 0; n < ATT_BK / 16; n++) {
            frag_c acc;
            wmma::fill_fragment(acc, 0.f);
#pragma unroll
            for (int kk = 0; kk < NF; kk++) {
                frag_a fa;
                frag_b_col fb;
                wmma::load_matrix_sync(fa, Qs + r0 * LDH + kk * 16, LDH);
                wmma::load_matrix_sync(fb, Ks + n * 16 * LDH + kk * 16, LDH);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(Sf + r0 * ATT_LDS + n * 16, acc, ATT_LDS, wmma::mem_row_major);
        }
        __syncwarp();
        // online softmax over this warp's 16 rows; a lane holds columns lane and lane + 32
        for (int r = r0; r < r0 + 16; r++) {
            const int64_t gi = q0 + r;
            float s0 = Sf[r * ATT_LDS + lane] * a.scale, s1 = Sf[r * ATT_LDS + lane + 32] * a.scale;
            if (lane >= kvalid) s0 = -INFINITY;
            else if (mr && gi < a.Lq) s0 += mr[gi * a.Lk + k0 + lane];
            if (lane + 32 >= kvalid) s1 = -INFINITY;
            else if (mr && gi < a.Lq) s1 += mr[gi * a.Lk + k0 + lane + 32];
            float mo = m_s[r];
            float mn = fmaxf(mo, warp_max(fmaxf(s0, s1)));
            float base = mn == -INFINITY ? 0.f : mn;
            float p0 = __expf(s0 - base), p1 = __expf(s1 - base);
            float al = __expf(mo - base);
            float rs = warp_sum(p0 + p1);
            Pb[r * ATT_LDP + lane] = __float2bfloat16_rn(p0);
            Pb[r * ATT_LDP + lane + 32] = __float2bfloat16_rn(p1);
            for (int d = lane; d < DP; d += 32) Of[r * LDF + d] *= al;
            __syncwarp();
            if (lane == 0) {
                m_s[r] = mn;
                l_s[r] = l_s[r] * al + rs;
            }
        }
        __syncwarp();
        // O[r0:r0+16, :] += P V
#pragma unroll
        for (int n = 0; n < NF; n++) {
            frag_c acc;
            wmma::load_matrix_sync(acc, Of + r0 * LDF + n * 16, LDF, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < ATT_BK / 16; kk++) {
                frag_a fa;
                frag_b_row fb;
                wmma::load_matrix_sync(fa, Pb + r0 * ATT_LDP + kk * 16, ATT_LDP);
                wmma::load_matrix_sync(fb, Vs + kk * 16 * LDH + n * 16, LDH);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(Of + r0 * LDF + n * 16, acc, LDF, wmma::mem_row_major);
        }
        __syncwarp();
    }
    __syncthreads();  // m_s / l_s / Of were initialised by other threads (matters when the loop ran 0 times)
    // write this warp's rows
    for (int r = r0; r < r0 + 16; r++) {
        const int64_t gi = q0 + r;
        if (gi >= a.Lq) break;
        float l = l_s[r];
        float inv = l > 0.f ? 1.f / l : 0.f;
        bf16 *orow = o_row(a, O, b, h, gi);
        for (int d = lane; d < D; d += 32) orow[d] = __float2bfloat16_rn(Of[r * LDF + d] * inv);
        if (lane == 0) lse[bh * a.Lq + gi] = l > 0.f ? m_s[r] + logf(l) : -INFINITY;
    }
#endif
}

// dK, dV for one 64-key tile, looping over all query tiles; warps own 16 key rows each
template <int DP>
__global__ void __launch_bounds__(ATT_THREADS) k_att_dkv_tc(att_args a, bf16 *dK, bf16 *dV, const bf16 *dO,
                                                            const float *lse, const float *Dv, const bf16 *Q,
                                                            const bf16 *K, const bf16 *V, bool vq, bool vk, bool vv,
                                                            bool vo) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    typedef att_smem<DP> S;
    constexpr int LDH = S::LDH, LDF = S::LDF, NF = DP / 16;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem;
    bf16 *dOs = (bf16 *)(smem + S::tileh);
    bf16 *Ks = (bf16 *)(smem + 2 * S::tileh);
    bf16 *Vs = (bf16 *)(smem + 3 * S::tileh);
    float *Sf = (float *)(smem + 4 * S::tileh);  // P^T [key][query]
    float *dPf = (float *)(smem + 4 * S::tileh + S::tiles);
    bf16 *Pb = (bf16 *)(smem + 4 * S::tileh + 2 * S::tiles);  // P^T, then dS^T
    float *lse_s = (float *)(smem + 4 * S::tileh + 2 * S::tiles + S::tilep);
    float *D_s = lse_s + 64;

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t k0 = (int64_t)blockIdx.x * ATT_BK;
    const int D = (int)a.D;
    const int kvalid = (int)min((int64_t)ATT_BK, a.Lk - k0);
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *dOb = do_row(a, dO, b, h, 0);
    const float *mr = mask_rows(a, b, h);
    tile_load<DP>(Ks, LDH, K + b * a.ks0 + h * a.ks1 + k0 * a.ks2, a.ks2, kvalid, D, vk, ATT_BK);
    tile_load<DP>(Vs, LDH, V + b * a.vs0 + h * a.vs1 + k0 * a.vs2, a.vs2, kvalid, D, vv, ATT_BK);

    frag_c dk[NF], dv[NF];
#pragma unroll
    for (int n = 0; n < NF; n++) {
        wmma::fill_fragment(dk[n], 0.f);
        wmma::fill_fragment(dv[n], 0.f);
    }
    const int r0 = warp * 16;  // this warp's key rows
    for (int64_t q0 = 0; q0 < a.Lq; q0 += ATT_BQ) {
        const int qvalid = (int)min((int64_t)ATT_BQ, a.Lq - q0);
        __syncthreads();
        tile_load<DP>(Qs, LDH, Qb + q0 * a.qs2, a.qs2, qvalid, D, vq, ATT_BQ);
        tile_load<DP>(dOs, LDH, dOb + q0 * a.gs2, a.gs2, qvalid, D, vo, ATT_BQ);
        if (threadIdx.x < 64) {
            bool ok = threadIdx.x < qvalid;
            float lv = ok ? lse[bh * a.Lq + q0 + threadIdx.x] : INFINITY;
            lse_s[threadIdx.x] = lv == -INFINITY ? INFINITY : lv;  // padded / fully masked rows: P = 0
            D_s[threadIdx.x] = ok ? Dv[bh * a.Lq + q0 + threadIdx.x] : 0.f;
        }
        __syncthreads();
        // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys x 64 queries
        two_products_nt<DP>(Sf, dPf, Ks, Qs, Vs, dOs, r0);
        __syncwarp();
        // P^T[j][i] = exp(scale s + mask - lse_i); a lane holds queries lane, lane + 32
        for (int r = r0; r < r0 + 16; r++) {
            const int64_t gj = k0 + r;
#pragma unroll
            for (int half = 0; half < 2; half++) {
                int i = lane + 32 * half;
                float s = Sf[r * ATT_LDS + i] * a.scale;
                if (mr && i < qvalid && gj < a.Lk) s += mr[(q0 + i) * a.Lk + gj];
                float p = (gj < a.Lk) ? __expf(s - lse_s[i]) : 0.f;
                Pb[r * ATT_LDP + i] = __float2bfloat16_rn(p);
                Sf[r * ATT_LDS + i] = p;
            }
        }
        __syncwarp();
        // dV += P^T dO
        acc_product_nn<DP>(dv, Pb, dOs, r0);
        __syncwarp();
        // dS^T = P^T * (dP^T - D_i)
        for (int r = r0; r < r0 + 16; r++) {
#pragma unroll
            for (int half = 0; half < 2; half++) {
                int i = lane + 32 * half;
                float ds = Sf[r * ATT_LDS + i] * (dPf[r * ATT_LDS + i] - D_s[i]);
                Pb[r * ATT_LDP + i] = __float2bfloat16_rn(ds);
            }
        }
        __syncwarp();
        // dK += dS^T Q
        acc_product_nn<DP>(dk, Pb, Qs, r0);
    }
    __syncthreads();
    // results through shared memory (the Q/dO tiles are free now): warp w uses 16 x LDF floats
    float *outf = (float *)smem + warp * 16 * LDF;
    int64_t j0 = k0 + r0;
    store_rows<DP>(outf, dk, dK + (bh * a.Lk + j0) * a.D, a.Lk - j0, D, a.scale, lane);
    store_rows<DP>(outf, dv, dV + (bh * a.Lk + j0) * a.D, a.Lk - j0, D, 1.f, lane);
#endif
}

// dQ for one 64-query tile, looping over all key tiles; warps own 16 query rows each
template <int DP>
__global__ void __launch_bounds__(ATT_THREADS) k_att_dq_tc(att_args a, bf16 *dQ, const bf16 *dO, const float *lse,
                                                           const float *Dv, const bf16 *Q, const bf16 *K,
                                                           const bf16 *V, bool vq, bool vk, bool vv, bool vo) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    typedef att_smem<DP> S;
    constexpr int LDH = S::LDH, LDF = S::LDF, NF = DP / 16;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem;
    bf16 *dOs = (bf16 *)(smem + S::tileh);
    bf16 *Ks = (bf16 *)(smem + 2 * S::tileh);
    bf16 *Vs = (bf16 *)(smem + 3 * S::tileh);
    float *Sf = (float *)(smem + 4 * S::tileh);
    float *dPf = (float *)(smem + 4 * S::tileh + S::tiles);
    bf16 *dSb = (bf16 *)(smem + 4 * S::tileh + 2 * S::tiles);
    float *lse_s = (float *)(smem + 4 * S::tileh + 2 * S::tiles + S::tilep);
    float *D_s = lse_s + 64;

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t q0 = (int64_t)blockIdx.x * ATT_BQ;
    const int D = (int)a.D;
    const int qvalid = (int)min((int64_t)ATT_BQ, a.Lq - q0);
    const bf16 *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);
    tile_load<DP>(Qs, LDH, Q + b * a.qs0 + h * a.qs1 + q0 * a.qs2, a.qs2, qvalid, D, vq, ATT_BQ);
    tile_load<DP>(dOs, LDH, do_row(a, dO, b, h, q0), a.gs2, qvalid, D, vo, ATT_BQ);
    if (threadIdx.x < 64) {
        bool ok = threadIdx.x < qvalid;
        float lv = ok ? lse[bh * a.Lq + q0 + threadIdx.x] : 0.f;
        lse_s[threadIdx.x] = lv == -INFINITY ? INFINITY : lv;  // fully masked row: P = exp(s - inf) = 0
        D_s[threadIdx.x] = ok ? Dv[bh * a.Lq + q0 + threadIdx.x] : 0.f;
    }
    frag_c dq[NF];
#pragma unroll
    for (int n = 0; n < NF; n++) wmma::fill_fragment(dq[n], 0.f);
    const int r0 = warp * 16;
    for (int64_t k0 = 0; k0 < a.Lk; k0 += ATT_BK) {
        const int kvalid = (int)min((int64_t)ATT_BK, a.Lk - k0);
        __syncthreads();
        tile_load<DP>(Ks, LDH, Kb + k0 * a.ks2, a.ks2, kvalid, D, vk, ATT_BK);
        tile_load<DP>(Vs, LDH, Vb + k0 * a.vs2, a.vs2, kvalid, D, vv, ATT_BK);
        __syncthreads();
        // S = Q K^T, dP = dO V^T for this warp's 16 queries x 64 keys
        two_products_nt<DP>(Sf, dPf, Qs, Ks, dOs, Vs, r0);
        __syncwarp();
        for (int r = r0; r < r0 + 16; r++) {
            const int64_t gi = q0 + r;
#pragma unroll
            for (int half = 0; half < 2; half++) {
                int j = lane + 32 * half;
                float ds = 0.f;
                if (j < kvalid && r < qvalid) {
                    float s = Sf[r * ATT_LDS + j] * a.scale;
                    if (mr) s += mr[gi * a.Lk + k0 + j];
                    float p = __expf(s - lse_s[r]);
                    ds = p * (dPf[r * ATT_LDS + j] - D_s[r]);
                }
                dSb[r * ATT_LDP + j] = __float2bfloat16_rn(ds);
            }
        }
        __syncwarp();
        // dQ += dS K
        acc_product_nn<DP>(dq, dSb, Ks, r0);
    }
    __syncthreads();
    float *outf = (float *)smem + warp * 16 * LDF;
    int64_t i0 = q0 + r0;
    store_rows<DP>(outf, dq, dQ + (bh * a.Lq + i0) * a.D, a.Lq - i0, D, a.scale, lane);
#endif
}

// =============================================================================================
// host side
// =============================================================================================
// the padded head dim of the tensor-core kernels (columns past D load as zeros and are never
// written); head dims below 64 (the tiny test models') pad to 64 rather than fall to the
// warp-per-row kernels, which cost a warp reduction per score
static int tc_dp(int64_t D) {
    if (D >= 1 && D <= 64) return 64;
    if (D > 64 && D <= 80) return 80;
    if (D > 80 && D <= 128) return 128;
    return 0;
}
template <int DP>
static bool fwd_tc(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                   const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    static int done[16];
    size_t sm = att_smem<DP>::fwd;
    if (!smem_ok(k, k_att_fwd_tc<DP>, sm, done)) return false;
    dim3 g((unsigned)((a.Lq + ATT_BQ - 1) / ATT_BQ), (unsigned)(a.B * a.H));
    k_att_fwd_tc<DP><<<g, ATT_THREADS, sm, KSTREAM(k)>>>(a, (bf16 *)O, lse, (const bf16 *)Q, (const bf16 *)K,
                                                         (const bf16 *)V, vec_ok(Q, qs, a.D), vec_ok(K, ks, a.D),
                                                         vec_ok(V, vs, a.D));
    CUDA_LAUNCH_CHECK();
    return true;
}

template <int DP>
static bool bwd_tc(const cm_kctx *k, const att_args &a, void *dQ, void *dK, void *dV, const void *dO, const float *lse,
                   const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                   const int64_t *vs) {
    static int done1[16], done2[16];
    size_t sm = att_smem<DP>::bwd;
    if (!smem_ok(k, k_att_dkv_tc<DP>, sm, done1) || !smem_ok(k, k_att_dq_tc<DP>, sm, done2)) return false;
    bool vq = vec_ok(Q, qs, a.D), vk = vec_ok(K, ks, a.D), vv = vec_ok(V, vs, a.D), vo = vec_ok_do(a, dO);
    dim3 g1((unsigned)((a.Lk + ATT_BK - 1) / ATT_BK), (unsigned)(a.B * a.H));
    k_att_dkv_tc<DP><<<g1, ATT_THREADS, sm, KSTREAM(k)>>>(a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse, Dv,
                                                          (const bf16 *)Q, (const bf16 *)K, (const bf16 *)V, vq, vk, vv,
                                                          vo);
    CUDA_LAUNCH_CHECK();
    dim3 g2((unsigned)((a.Lq + ATT_BQ - 1) / ATT_BQ), (unsigned)(a.B * a.H));
    k_att_dq_tc<DP><<<g2, ATT_THREADS, sm, KSTREAM(k)>>>(a, (bf16 *)dQ, (const bf16 *)dO, lse, Dv, (const bf16 *)Q,
                                                         (const bf16 *)K, (const bf16 *)V, vq, vk, vv, vo);
    CUDA_LAUNCH_CHECK();
    return true;
}

static void att_check(const char *op, cm_dtype dt, int64_t B, int64_t H, int64_t D) {
    cuda_require_float(op, dt);
    if (D <= 0 || D > 32 * GEN_NPER) cm_die(op, "head dim %lld not supported (1..%d)", (long long)D, 32 * GEN_NPER);
    if (B * H > 65535) cm_die(op, "B*H = %lld exceeds 65535", (long long)(B * H));
}

// CAMEO_ATTN picks the bf16 kernels: "mma" (the default) / "mma8" (mma.sync, cuda_attention_mma.cu,
// forward and dQ blocks of 4 / 8 warps), "mma2" (mma's, with 32 queries per forward warp), "wgmma"
// (forward and backward on sm_90a's warpgroup MMA, cuda_attention_wgmma.cu, for head dim 128 on a
// Hopper whose self-test passed; mma wherever it does not apply), "wmma" or "generic" (the
// reference kernels);
// CAMEO_ATTN_GENERIC=1 is the older spelling of "generic". wgmma is the default since an H200
// timed every family (session 22; FLUX's shape, 4608 tokens, 24 x 128, fwd+bwd): wgmma 3.57 ms
// fused / 3.92 split, mma 5.34, mma8 5.22, mma2 5.22, wmma 21.5; at the 512² step's shapes wgmma
// is 1.3-1.4x mma's speed too. Off Hopper (or where its self-test fails) wgmma runs mma's kernels.
// "wgmma3": wgmma's products in warp-specialised, ping-pong kernels (cuda_attention_wgws.cu;
// session 23, not yet timed on a GPU).
enum { ATT_WMMA, ATT_MMA, ATT_MMA8, ATT_MMA2, ATT_WGMMA, ATT_GENERIC, ATT_WGMMA3, ATT_N };
static const char *const ATT_NAMES[ATT_N] = {"wmma", "mma", "mma8", "mma2", "wgmma", "generic", "wgmma3"};
static int attn_by_name(const char *e) {
    for (int i = 0; i < ATT_N; i++)
        if (!strcmp(e, ATT_NAMES[i])) return i;
    return -1;
}
static int g_attn_choice = -1;
static int attn_choice(void) {
    int &v = g_attn_choice;
    if (v < 0) {
        const char *e = getenv("CAMEO_ATTN"), *g = getenv("CAMEO_ATTN_GENERIC");
        v = e && *e ? attn_by_name(e) : ATT_WGMMA;
        if (v < 0) cm_die("cuda attention", "CAMEO_ATTN='%s' (allowed: mma, mma8, mma2, wgmma, wgmma3, wmma, generic)", e);
        if (g && *g && g[0] != '0') v = ATT_GENERIC;
    }
    return v;
}
static bool attn_is_mma(void) {  // the mma.sync kernels run (wgmma: where its kernels do not apply)
    int c = attn_choice();
    return c == ATT_MMA || c == ATT_MMA8 || c == ATT_MMA2 || c == ATT_WGMMA || c == ATT_WGMMA3;
}
static bool attn_is_wgmma(void) { return attn_choice() == ATT_WGMMA || attn_choice() == ATT_WGMMA3; }
static int attn_mma_warps(void) { return attn_choice() == ATT_MMA8 ? 8 : 4; }
static int attn_mma_mtiles(void) { return attn_choice() == ATT_MMA2 ? 2 : 1; }

// the kernels in use ("mma", ...): the benchmark names them and puts them back after its loop
// CAMEO_ATTN_BWD: the backward's dQ apart in a kernel of its own (split: two more products per tile
// pair, but no atomics — the same bits every run) or inside the dK dV kernel (fused: its f32 sums
// by atomics, so its bits vary from run to run). Unset: split for every family — a GPU run that
// resumes gives the same bits as one that did not stop. fused is ~10% faster at wgmma's attention
// backward (H200: 3.57 against 3.92 ms fwd+bwd at FLUX's shape, ~2% of the 512² step) and slower
// at mma's (4.12 against 4.00 ms backward).
// (one rule for every family now, so one flag: -1 not read yet, 0 split, 1 fused)
static int g_bwd_fused = -1;
static bool attn_bwd_fused(void) {
    if (g_bwd_fused < 0) {
        const char *e = getenv("CAMEO_ATTN_BWD");
        if (e && *e && strcmp(e, "split") && strcmp(e, "fused"))
            cm_die("cuda attention", "CAMEO_ATTN_BWD='%s' (allowed: fused, split)", e);
        g_bwd_fused = e && !strcmp(e, "fused");
    }
    return g_bwd_fused == 1;
}

extern "C" const char *cuda_attn_name(void) { return ATT_NAMES[attn_choice()]; }
// the benchmark times every fast kernel in one run; false for an unknown name. "NAME-split" /
// "NAME-fused": NAME with that backward (CAMEO_ATTN_BWD); "wgmma3-k128": its forward 128 keys a
// step (CAMEO_WGMMA3_KEYS); a plain name restores the environment's
extern "C" bool cuda_attn_use(const char *which) {
    char base[32];
    snprintf(base, sizeof base, "%s", which);
    char *dash = strchr(base, '-');
    int fused = -1, keys = 0;
    if (dash) {
        if (!strcmp(dash, "-split")) fused = 0;
        else if (!strcmp(dash, "-fused")) fused = 1;
        else if (!strcmp(dash, "-k128")) keys = 128;
        else return false;
        *dash = 0;
    }
    int v = attn_by_name(base);
    if (v < 0) return false;
    (void)attn_choice();  // the environment is read first, so it cannot undo this later
    g_attn_choice = v;
    g_bwd_fused = fused;
    cuda_attn_wgws_keys_use(keys);
    return true;
}

// a bf16 call at a tensor-core head dim that ran on the generic warp-per-row kernels all the same
// (the tensor-core kernels' shared memory is more than the device gives a block: the WMMA kernels
// at head dim 128 want 110 KiB, an sm_86 / sm_89 GPU gives 99): correct, but tens of
// times slower, so said once on stderr; the tests count them (none on an A100 or H100)
static int64_t g_att_fallbacks;
extern "C" int64_t cuda_attn_fallbacks(void) { return __atomic_load_n(&g_att_fallbacks, __ATOMIC_RELAXED); }
static void att_fallback(const cm_kctx *k, const char *pass, int64_t D) {
    if (__atomic_fetch_add(&g_att_fallbacks, 1, __ATOMIC_RELAXED) == 0)
        fprintf(stderr, "cameo: cuda attention: the bf16 %s at head dim %lld runs on the generic kernels or through "
                        "GEMMs (many times slower): the tensor-core kernels need more shared memory than this device's %zu bytes a block\n",
                pass, (long long)D, cuda_ext(k)->smem_optin);
}

static bool fwd_fast(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                     const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    int dp = tc_dp(a.D);
    if (!dp) return false;
    if (attn_choice() == ATT_WGMMA3 && attn_fwd_wgws(k, a, O, lse, Q, qs, K, ks, V, vs)) return true;
    if (attn_is_wgmma() && attn_fwd_wgmma(k, a, O, lse, Q, qs, K, ks, V, vs)) return true;
    if (attn_is_mma()) return attn_fwd_mma(k, dp, attn_mma_warps(), attn_mma_mtiles(), a, O, lse, Q, qs, K, ks, V, vs);
    if (dp == 64) return fwd_tc<64>(k, a, O, lse, Q, qs, K, ks, V, vs);
    if (dp == 80) return fwd_tc<80>(k, a, O, lse, Q, qs, K, ks, V, vs);
    return fwd_tc<128>(k, a, O, lse, Q, qs, K, ks, V, vs);
}

void cu_attn_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale,
                 void *O, const int64_t *os, float *lse, const void *Q, const int64_t *qs, const void *K,
                 const int64_t *ks, const void *V, const int64_t *vs, const float *mask, int64_t mb, int64_t mh) {
    att_check("cuda attn_fwd", dt, B, H, D);
    if (B * H * Lq <= 0) return;
    att_args a = make_args(B, H, Lq, Lk, D, scale, qs, ks, vs, os, NULL, mask, mb, mh);
    if (dt == CM_BF16 && attn_choice() != ATT_GENERIC && Lk > 0) {
        if (fwd_fast(k, a, O, lse, Q, qs, K, ks, V, vs)) return;
        if (tc_dp(D)) att_fallback(k, "forward", D);
    }
    // f32, head dims past 128, a device short of shared memory: through GEMMs where the work is large
    if (attn_choice() != ATT_GENERIC && attn_gemm_applies(a)) {
        attn_fwd_gemm(k, dt, a, O, lse, Q, K, V);
        return;
    }
    int64_t rows = B * H * Lq;
    CUDA_DISPATCH("cuda attn_fwd", dt,
                  k_att_fwd_gen<T><<<(unsigned)((rows + ATT_WARPS - 1) / ATT_WARPS), ATT_THREADS, 0, KSTREAM(k)>>>(
                      a, (T *)O, lse, (const T *)Q, (const T *)K, (const T *)V));
    CUDA_LAUNCH_CHECK();
}

// the backward's D = rowsum(dO * O) per query row (f32, B H Lq; freed with cuda_tmp_free)
static float *attn_dvec(const cm_kctx *k, cm_dtype dt, const att_args &a, const void *dO, const void *O) {
    const int64_t rq = a.B * a.H * a.Lq;
    float *Dv = (float *)cuda_tmp_alloc(k, (size_t)rq * sizeof(float), "attention backward rowsum(dO*O)");
    CUDA_DISPATCH("cuda attn_bwd", dt,
                  k_att_dvec<T><<<(unsigned)((rq + ATT_WARPS - 1) / ATT_WARPS), ATT_THREADS, 0, KSTREAM(k)>>>(
                      a, Dv, (const T *)dO, (const T *)O));
    CUDA_LAUNCH_CHECK();
    return Dv;
}

void cu_attn_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale,
                 void *dQ, void *dK, void *dV, const void *dO, const int64_t *gs, const void *O, const int64_t *os,
                 const float *lse, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                 const int64_t *vs, const float *mask, int64_t mb, int64_t mh) {
    att_check("cuda attn_bwd", dt, B, H, D);
    cudaStream_t s = KSTREAM(k);
    int64_t rq = B * H * Lq, rk = B * H * Lk;
    if (rq <= 0 || rk <= 0) {  // an empty side: the other gradients are zero
        if (rq > 0) cu_fill(k, dt, dQ, rq * D, 0.0);
        if (rk > 0) {
            cu_fill(k, dt, dK, rk * D, 0.0);
            cu_fill(k, dt, dV, rk * D, 0.0);
        }
        return;
    }
    att_args a = make_args(B, H, Lq, Lk, D, scale, qs, ks, vs, os, gs, mask, mb, mh);
    float *Dv = attn_dvec(k, dt, a, dO, O);
    bool done = false;
    cuda_side side;  // wgmma's split backward: dK dV on a side stream beside dQ (independent kernels)
    side.slot = -1;
    if (dt == CM_BF16 && attn_is_mma() && tc_dp(D)) {
        // wgmma: its dQ and dK dV kernels, deterministic (CAMEO_ATTN_BWD=fused: one kernel, dQ by
        // atomics) where they apply, mma's for the rest
        bool wg = attn_is_wgmma();
        done = wg && attn_bwd_fused() &&
               ((attn_choice() == ATT_WGMMA3 && attn_bwd_wgws(k, a, dQ, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs)) ||
                attn_bwd_wgmma(k, a, dQ, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs));
        const cm_kctx *kv = !done && wg && cuda_fork(k, &side) ? &side.k : k;  // dK dV's context
        bool dq_done = done || (wg && attn_choice() == ATT_WGMMA3 && attn_dq_wgws(k, a, dQ, dO, lse, Dv, Q, qs, K, ks, V, vs));
        dq_done = dq_done || (wg && attn_dq_wgmma(k, a, dQ, dO, lse, Dv, Q, qs, K, ks, V, vs));
        bool dkv_done = done || (dq_done && attn_choice() == ATT_WGMMA3 &&
                                 attn_dkv_wgws(kv, a, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs));
        dkv_done = dkv_done || (dq_done && attn_dkv_wgmma(kv, a, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs));
        done = dkv_done || attn_bwd_mma(kv, tc_dp(D), attn_mma_warps(), a, dQ, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs,
                                        !dq_done, attn_bwd_fused());
    }
    else if (dt == CM_BF16 && attn_choice() == ATT_WMMA) {
        int dp = tc_dp(D);
        if (dp == 64) done = bwd_tc<64>(k, a, dQ, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs);
        else if (dp == 80) done = bwd_tc<80>(k, a, dQ, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs);
        else if (dp == 128) done = bwd_tc<128>(k, a, dQ, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs);
    }
    if (!done && dt == CM_BF16 && attn_choice() != ATT_GENERIC && tc_dp(D)) att_fallback(k, "backward", D);
    if (!done) {
        CUDA_DISPATCH("cuda attn_bwd", dt, {
            k_att_dq_gen<T><<<(unsigned)((rq + ATT_WARPS - 1) / ATT_WARPS), ATT_THREADS, 0, s>>>(
                a, (T *)dQ, (const T *)dO, lse, Dv, (const T *)Q, (const T *)K, (const T *)V);
            CUDA_LAUNCH_CHECK();
            k_att_dkv_gen<T><<<(unsigned)((rk + ATT_WARPS - 1) / ATT_WARPS), ATT_THREADS, 0, s>>>(
                a, (T *)dK, (T *)dV, (const T *)dO, lse, Dv, (const T *)Q, (const T *)K, (const T *)V);
            CUDA_LAUNCH_CHECK();
        });
    }
    cuda_join(k, &side);  // before Dv's free: the side stream's kernels read it
    cuda_tmp_free(k, Dv);
}

// n problems at once (the FLUX blocks' joint and IP attention): two bf16 ones in one launch each way
// where CAMEO_ATTN=wgmma3's kernels take both (their blocks on one grid: the second problem's fill
// the first's last wave), otherwise one by one. CAMEO_ATTN_PAIR=0 runs pairs one by one there too
// (the benchmark times both ways). (wgmma's split dQ and dK dV kernels in a pair form had ptxas
// inject warpgroup waits, C7517 / C7519, whichever way the problem was picked: not kept.)
static int g_pair = -1, g_pair_force = -1;  // -1 not read yet / no override
extern "C" void cuda_attn_pair_use(int on) { g_pair_force = on < 0 ? -1 : on ? 1 : 0; }
static bool attn_pair_on(void) {
    return g_pair_force >= 0 ? g_pair_force == 1 : cuda_env_switch("CAMEO_ATTN_PAIR", true, &g_pair);
}
static att_job job_for(const cm_attn_problem &p, bool bwd) {
    att_job j;
    memset(&j, 0, sizeof j);
    j.a = make_args(p.B, p.H, p.Lq, p.Lk, p.D, p.scale, p.qs, p.ks, p.vs, p.os, bwd ? p.gs : NULL, p.mask, p.mb, p.mh);
    j.O = (bf16 *)p.O, j.lse = p.lse;
    j.Q = (const bf16 *)p.Q, j.K = (const bf16 *)p.K, j.V = (const bf16 *)p.V;
    j.dQ = (bf16 *)p.dQ, j.dK = (bf16 *)p.dK, j.dV = (bf16 *)p.dV, j.dO = (const bf16 *)p.dO;
    return j;
}
static bool pair_wanted(cm_dtype dt, int n, const cm_attn_problem *p) {
    return n == 2 && dt == CM_BF16 && attn_choice() == ATT_WGMMA3 && attn_pair_on() && p[0].Lk > 0 && p[1].Lk > 0 &&
           p[0].B * p[0].H * p[0].Lq > 0 && p[1].B * p[1].H * p[1].Lq > 0;
}

// otherwise the problems one on each stream: the first on k's, the others forked (cuda_fork) so
// their blocks fill the first one's last wave; every family gets that much of the pair's gain
template <class F> static void attn_each_on_side_streams(const cm_kctx *k, int n, F one) {
    enum { MAXN = CUDA_SIDE_STREAMS };
    cuda_side side[MAXN];
    for (int i = 0; i < MAXN; i++) side[i].slot = -1;
    for (int i = 1; i < n && i < MAXN; i++) cuda_fork(k, &side[i]);
    for (int i = 0; i < n; i++) one(i > 0 && i < MAXN && side[i].slot >= 0 ? &side[i].k : k, i);
    for (int i = 1; i < n && i < MAXN; i++) cuda_join(k, &side[i]);
}

void cu_attn_fwd_group(const cm_kctx *k, cm_dtype dt, int n, const cm_attn_problem *p) {
    if (pair_wanted(dt, n, p)) {
        for (int w = 0; w < 2; w++) att_check("cuda attn_fwd_group", dt, p[w].B, p[w].H, p[w].D);
        const att_job j[2] = {job_for(p[0], false), job_for(p[1], false)};
        if (attn_fwd_wgws2(k, j)) return;
    }
    attn_each_on_side_streams(k, n, [&](const cm_kctx *kk, int i) {
        cu_attn_fwd(kk, dt, p[i].B, p[i].H, p[i].Lq, p[i].Lk, p[i].D, p[i].scale, p[i].O, p[i].os, p[i].lse, p[i].Q, p[i].qs,
                    p[i].K, p[i].ks, p[i].V, p[i].vs, p[i].mask, p[i].mb, p[i].mh);
    });
}

void cu_attn_bwd_group(const cm_kctx *k, cm_dtype dt, int n, const cm_attn_problem *p) {
    if (pair_wanted(dt, n, p)) {
        for (int w = 0; w < 2; w++) att_check("cuda attn_bwd_group", dt, p[w].B, p[w].H, p[w].D);
        att_job j[2] = {job_for(p[0], true), job_for(p[1], true)};
        if (attn_pair_applies(k, j, true)) {
            float *Dv[2];
            for (int w = 0; w < 2; w++) j[w].Dv = Dv[w] = attn_dvec(k, dt, j[w].a, p[w].dO, p[w].O);
            const bool done = attn_bwd_fused() ? attn_bwd_wgws2_fused(k, j) : attn_bwd_wgws2(k, j);
            for (int w = 0; w < 2; w++) cuda_tmp_free(k, Dv[w]);
            if (done) return;
        }
    }
    attn_each_on_side_streams(k, n, [&](const cm_kctx *kk, int i) {
        cu_attn_bwd(kk, dt, p[i].B, p[i].H, p[i].Lq, p[i].Lk, p[i].D, p[i].scale, p[i].dQ, p[i].dK, p[i].dV, p[i].dO, p[i].gs,
                    p[i].O, p[i].os, p[i].lse, p[i].Q, p[i].qs, p[i].K, p[i].ks, p[i].V, p[i].vs, p[i].mask, p[i].mb,
                    p[i].mh);
    });
}
