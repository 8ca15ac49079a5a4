// cuda_attention_mma.cu — flash attention on mma.sync.m16n8k16 (bf16 in, f32 accumulate), the
// FlashAttention-2 arrangement: each warp owns 16 rows, the scores and probabilities never leave
// registers (an m16n8 accumulator pair is exactly the A fragment of the next product), shared
// memory holds only the K / V (or Q / dO) tiles. Chosen with CAMEO_ATTN=mma (cuda_attention.cu).
//   forward  one block per (64 queries, b*h): S = Q K^T, online softmax, O += P V
//   dQ       one block per (64 queries, b*h): S, P = exp(S - lse), dP = dO V^T, dS = P (dP - D),
//            dQ += dS K
//   dK, dV   one block per (64 keys, b*h): S^T = K Q^T, P^T, dP^T = V dO^T, dS^T,
//            dV += P^T dO, dK += dS^T Q
//   fused    (CAMEO_ATTN_BWD=fused) the dK, dV kernel also takes each query tile's dQ += dS K over
//            its 64 keys (dS^T through shared memory) into an f32 buffer by atomics: 5 products
//            per tile pair instead of 7 (FlashAttention-2's backward), no dQ kernel
// Fragment layouts (PTX ISA, mma.m16n8k16, .bf16): g = lane / 4, t = lane % 4;
//   A 16x16: reg j holds (row g + 8 (j & 1), cols 2t + 8 (j >> 1) + {0, 1})
//   B 16x8:  reg j holds (rows 2t + 8 j + {0, 1}, col g)
//   C 16x8:  c[i] is (row g + 8 (i >> 1), col 2t + (i & 1))
// Tiles stay row-major as they are in memory (padded by 8 bf16 per row, so the 32-bit fragment
// reads of 8 rows x 4 lanes, and ldmatrix's eight 16-byte rows, fall in 32 different banks). Where
// a product reads a tile down its rows (P V, dS K, P^T dO, dS^T Q: B[k][n] = tile[k][n]) the B
// fragments come through ldmatrix.trans, which transposes on the way to the registers.
#include "cuda_attention_frag.cuh"

#define MMA_ROWS 64            // keys per dK / dV block; queries per forward / dQ block: 16 x W
#define MMA_COLS 64            // keys (forward, dQ) or queries (dK / dV) per inner tile
#define MMA_THREADS 128        // 4 warps x 16 rows (dK / dV); forward and dQ: W warps (4 or 8)

__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, const uint32_t *b) {
#ifdef CAMEO_CUDA_EMULATED
    emu_mma_m16n8k16_bf16(c, a, b);
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16: lane 8 m + r gives row r of matrix m; r[m]
// gets matrix m's (row L/4, cols 2 (L%4) + {0, 1}), or with .trans (rows 2 (L%4) + {0, 1}, col
// L/4) — one instruction for four 32-bit fragment registers (PTX ISA, warp-level matrix load)
template <bool TRANS> __device__ __forceinline__ void ldsm_x4(uint32_t *r, const bf16 *p) {
#ifdef CAMEO_CUDA_EMULATED
    emu_ldmatrix<4, TRANS>(r, p);
#else
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a));
#endif
}

// A fragment of rows r0..r0+15, cols c0..c0+15 of a row-major bf16 tile (row stride ld): lanes
// 0-7 / 8-15 / 16-23 / 24-31 give rows r0.. / r0+8.. of columns c0 / c0 / c0+8 / c0+8
__device__ __forceinline__ void frag_a(uint32_t *a, const bf16 *tile, int ld, int r0, int c0, int lane) {
    ldsm_x4<false>(a, tile + (r0 + (lane & 15)) * ld + c0 + 8 * (lane >> 4));
}
// B fragments (k x n = 16 x 8) of the n-tiles n0.. and n0+8.. (b[0..1], b[2..3]) where B[k][n] =
// tile[n0 + n][k0 + k], k along the tile's rows: lanes 0-7 / 8-15 / 16-23 / 24-31 give rows
// n0.. / n0.. / n0+8.. / n0+8.. of columns k0 / k0+8 / k0 / k0+8
__device__ __forceinline__ void frag_b2(uint32_t *b, const bf16 *tile, int ld, int n0, int k0, int lane) {
    ldsm_x4<false>(b, tile + (n0 + (lane & 7) + 8 * (lane >> 4)) * ld + k0 + 8 * ((lane >> 3) & 1));
}
// B fragments of the n-tiles n0.. and n0+8.. (b[0..1], b[2..3]) over k0..k0+15 where B[k][n] =
// tile[k0 + k][n0 + n], a row-major tile read down its rows: ldmatrix.x4.trans, lanes 0-7 / 8-15 /
// 16-23 / 24-31 giving rows k0..k0+7 / k0+8.. of columns n0 / n0 / n0+8 / n0+8
__device__ __forceinline__ void frag_bt2(uint32_t *b, const bf16 *tile, int ld, int k0, int n0, int lane) {
    ldsm_x4<true>(b, tile + (k0 + (lane & 15)) * ld + n0 + 8 * (lane >> 4));
}

// tile_load (cuda_attention.cuh) started rather than done: with 16-byte rows (vec) every chunk is
// a cp.async (zero-filled past the valid rows and D), else tile_load's plain stores. Either way the
// tile is complete after the cp_async_wait covering it and a barrier.
template <int DP>
__device__ __forceinline__ void tile_load_async(bf16 *dst, int LD, const bf16 *src, int64_t rs, int valid, int D,
                                                bool vec, int rows) {
    if (!vec) {
        tile_load<DP>(dst, LD, src, rs, valid, D, false, rows);
        return;
    }
    constexpr int PER = DP / 8;
    for (int idx = threadIdx.x; idx < rows * PER; idx += blockDim.x) {
        int r = idx / PER, c = (idx % PER) * 8;
        bool in = r < valid && c < D;
        cp_async16(dst + r * LD + c, in ? src + r * rs + c : src, in ? 16 : 0);
    }
}

// the K and V tiles of keys k0..k0+63 (this block's b, h) into Kd, Vd (row stride LD), started
template <int DP>
__device__ __forceinline__ void kv_tiles_load(bf16 *Kd, bf16 *Vd, int LD, const att_args &a, const bf16 *Kb,
                                              const bf16 *Vb, int64_t k0, bool vk, bool vv) {
    const int kvalid = (int)min((int64_t)MMA_COLS, a.Lk - k0), D = (int)a.D;
    tile_load_async<DP>(Kd, LD, Kb + k0 * a.ks2, a.ks2, kvalid, D, vk, MMA_COLS);
    tile_load_async<DP>(Vd, LD, Vb + k0 * a.vs2, a.vs2, kvalid, D, vv, MMA_COLS);
}

// the streamed tiles t0 = 0, STEP, ... < n through two shared buffers: load(buf, t0) starts tile
// t0 into buffer buf (cp.async and / or plain stores), body(buf, t0) computes on it while the next
// tile is in flight. Per tile: start the next one in the other buffer (read last round, then a
// barrier), commit, wait for all but that newest group, barrier (everyone's copies landed), body,
// barrier (the buffer is refilled next round).
template <int STEP = MMA_COLS, class Load, class Body>
__device__ __forceinline__ void tile_pipeline(int64_t n, Load load, Body body) {
    load(0, (int64_t)0);
    cp_async_commit();
    int buf = 0;
    for (int64_t t0 = 0; t0 < n; t0 += STEP, buf ^= 1) {
        if (t0 + STEP < n) load(buf ^ 1, t0 + STEP);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        body(buf, t0);
        __syncthreads();
    }
}


// =============================================================================================
// forward
// =============================================================================================
template <int DP> struct mma_fwd_smem {
    static constexpr int LDK = DP + 8;
    static constexpr size_t tile = (size_t)MMA_COLS * LDK * sizeof(bf16);  // [64 keys][LDK]
    static constexpr size_t bytes = 4 * tile;                                // K, V; two of each
    // MT = 2 adds the block's Q tile [32 W queries][LDK]
    static constexpr size_t bytes_q(int W, int MT) {
        return bytes + (MT > 1 ? (size_t)16 * W * MT * LDK * sizeof(bf16) : 0);
    }
};

// W warps, each owning MT m-tiles of 16 queries. MT = 1: the warp's Q fragments stay in registers
// (CAMEO_ATTN=mma / mma8). MT = 2 (mma2): 32 queries per warp, so every K and V fragment read from
// shared memory feeds two mma instead of one — ldmatrix traffic per mma halves, the limit the
// 16-row kernel runs into on an H100 (FlashAttention-2 gives each warp 32 rows too); Q is read from
// a shared tile, its fragments for both m-tiles once per 16-wide k step, to leave the registers to
// the 2 x 16 rows' O accumulators.
template <int DP, int W, int MT>
__global__ void __launch_bounds__(W * 32) k_att_fwd_mma(att_args a, bf16 *O, float *lse, const bf16 *Q,
                                                             const bf16 *K, const bf16 *V, bool vq, bool vk, bool vv) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int NK = DP / 16, ND = DP / 8, LDK = mma_fwd_smem<DP>::LDK, QM = 16 * MT, KW = MT > 1 ? 32 : MMA_COLS;
    extern __shared__ __align__(16) unsigned char smem[];
    // K / V tiles j in buffers j % 2: tile j + 1 arrives while tile j is computed on
    // (addresses computed, not taken from a pointer array: an array indexed at run time lives in
    // local memory)
    auto Kbuf = [&](int b) { return (bf16 *)(smem + (size_t)(2 * b) * mma_fwd_smem<DP>::tile); };
    auto Vbuf = [&](int b) { return (bf16 *)(smem + (size_t)(2 * b + 1) * mma_fwd_smem<DP>::tile); };
    bf16 *Qs = (bf16 *)(smem + 4 * mma_fwd_smem<DP>::tile);  // MT > 1: [QM W][LDK]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t qb = (int64_t)blockIdx.x * (QM * W), q0 = qb + warp * QM;  // block's, warp's first query
    const int D = (int)a.D;
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);

    uint32_t qf[MT > 1 ? 1 : NK][4];  // MT = 1: this warp's 16 query rows, as A fragments
    if constexpr (MT == 1) rows_to_a<NK>(qf, Qb, a.qs2, q0, a.Lq, D, g, t);
    else  // the block's queries, landing with the first K / V tile (same cp.async group, same barrier)
        tile_load_async<DP>(Qs, LDK, Qb + qb * a.qs2, a.qs2, (int)min((int64_t)(QM * W), a.Lq - qb), D, vq, QM * W);
    float o[MT][ND][4], m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.f;
#pragma unroll
        for (int n = 0; n < ND; n++) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.f;
    }

    auto load = [&](int buf, int64_t k0) { kv_tiles_load<DP>(Kbuf(buf), Vbuf(buf), LDK, a, Kb, Vb, k0, vk, vv); };
    tile_pipeline(a.Lk, load, [&](int buf, int64_t kt) {
        const bf16 *Ks0 = Kbuf(buf), *Vs0 = Vbuf(buf);
        // the tile's keys in KW-wide steps, each with its own online-softmax update: MT = 2 takes
        // 32 (its scores then need 32 registers, not 64, beside the 2 x 16 rows' O accumulators)
#pragma unroll 1
        for (int kh = 0; kh < MMA_COLS; kh += KW) {
            const bf16 *Ks = Ks0 + kh * LDK, *Vs = Vs0 + kh * LDK;  // rows kh.. of the K and V tiles
            const int64_t k0 = kt + kh;
            float s[MT][KW / 8][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int n = 0; n < KW / 8; n++) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
            // S = Q K^T over 16-wide k steps: each B fragment pair feeds MT x 2 mma
#pragma unroll
            for (int kk = 0; kk < NK; kk++) {
                uint32_t qa[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    if constexpr (MT == 1) memcpy(qa[mt], qf[kk], sizeof qa[mt]);
                    else frag_a(qa[mt], Qs, LDK, warp * QM + mt * 16, kk * 16, lane);
                }
#pragma unroll
                for (int n = 0; n < KW / 8; n += 2) {
                    uint32_t bf[4];
                    frag_b2(bf, Ks, LDK, n * 8, kk * 16, lane);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma16816(s[mt][n], qa[mt], bf);
                        mma16816(s[mt][n + 1], qa[mt], bf + 2);
                    }
                }
            }
            // online softmax (cuda_attention_frag.cuh), then O rescaled
            const bool plain = !mr && k0 + KW <= a.Lk && a.scale > 0.f;
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                float alpha[2];
                online_softmax<KW / 8>(s[mt], m[mt], l[mt], alpha, a, mr, q0 + mt * 16, k0, plain, g, t);
#pragma unroll
                for (int n = 0; n < ND; n++)
#pragma unroll
                    for (int i = 0; i < 4; i++) o[mt][n][i] *= alpha[i >> 1];
            }
            // O += P V: the probabilities of keys 16c..16c+15 are accumulators 2c, 2c+1; each V
            // fragment pair feeds MT x 2 mma
#pragma unroll
            for (int c = 0; c < KW / 16; c++) {
                uint32_t pa[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) acc_to_a(pa[mt], s[mt][2 * c], s[mt][2 * c + 1]);
#pragma unroll
                for (int n = 0; n < ND; n += 2) {
                    uint32_t bf[4];
                    frag_bt2(bf, Vs, LDK, c * 16, n * 8, lane);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma16816(o[mt][n], pa[mt], bf);
                        mma16816(o[mt][n + 1], pa[mt], bf + 2);
                    }
                }
            }
        }
    });
#pragma unroll
    for (int mt = 0; mt < MT; mt++) softmax_store<ND>(a, O, lse, o[mt], m[mt], l[mt], b, h, q0 + mt * 16, g, t);
#endif
}

// =============================================================================================
// backward: dQ (per query tile), dK / dV (per key tile)
// =============================================================================================
template <int DP> struct mma_bwd_smem {
    static constexpr int LD = DP + 8;
    static constexpr size_t tile = (size_t)MMA_COLS * LD * sizeof(bf16);     // [64][LD]
    static constexpr size_t dq = 4 * tile;                                   // K, V; two of each
    // the dK dV kernel of NW warps (16 NW keys) streaming QT queries a tile: K, V [16 NW][LD]; Q, dO
    // [QT][LD], lse, D [QT] two of each; then (fused) dS^T [16 NW keys][64 queries + 8]
    __host__ __device__ static constexpr size_t kv(int NW) { return (size_t)2 * (NW / 4) * tile; }
    __host__ __device__ static constexpr size_t qtile(int QT) { return (size_t)QT * LD * sizeof(bf16); }
    __host__ __device__ static constexpr size_t qstats(int QT) { return (size_t)2 * QT * sizeof(float); }
    __host__ __device__ static constexpr size_t dkv_at(int NW, int QT = MMA_COLS) {
        return kv(NW) + 4 * qtile(QT) + 2 * qstats(QT);
    }
    static constexpr size_t dkv = dkv_at(4);  // D = 128: 105472 bytes, more than sm_86 / sm_89 give a block
    static constexpr size_t dkv32 = dkv_at(4, 32);  // 32-query tiles: 70144 at D = 128
    static constexpr int LDS = MMA_COLS + 8;
    __host__ __device__ static constexpr size_t dkv_fused(int NW) { return dkv_at(NW) + (size_t)16 * NW * LDS * sizeof(bf16); }
};

template <int DP, int W>
__global__ void __launch_bounds__(W * 32) k_att_dq_mma(att_args a, bf16 *dQ, const bf16 *dO, const float *lse,
                                                            const float *Dv, const bf16 *Q, const bf16 *K, const bf16 *V,
                                                            bool vk, bool vv) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    typedef mma_bwd_smem<DP> S;
    constexpr int NK = DP / 16, ND = DP / 8, LD = S::LD;
    extern __shared__ __align__(16) unsigned char smem[];
    auto Kbuf = [&](int b) { return (bf16 *)(smem + (size_t)(2 * b) * S::tile); };  // tiles j in buffers j % 2
    auto Vbuf = [&](int b) { return (bf16 *)(smem + (size_t)(2 * b + 1) * S::tile); };
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t q0 = (int64_t)blockIdx.x * (16 * W) + warp * 16;
    const int D = (int)a.D;
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);

    uint32_t qf[NK][4], of[NK][4];  // Q and dO rows of this warp as A fragments
    rows_to_a<NK>(qf, Qb, a.qs2, q0, a.Lq, D, g, t);
    rows_to_a<NK>(of, do_row(a, dO, b, h, 0), a.gs2, q0, a.Lq, D, g, t);
    float L[2], Di[2], dq[ND][4];  // L: log2 units
    bwd_row_stats(a, lse, Dv, bh, q0, g, L, Di);
#pragma unroll
    for (int n = 0; n < ND; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

    auto load = [&](int buf, int64_t k0) { kv_tiles_load<DP>(Kbuf(buf), Vbuf(buf), LD, a, Kb, Vb, k0, vk, vv); };
    tile_pipeline(a.Lk, load, [&](int buf, int64_t k0) {
        const bf16 *Ks = Kbuf(buf), *Vs = Vbuf(buf);
        const bool plain = !mr && k0 + MMA_COLS <= a.Lk;  // a whole tile of keys, no mask: only the scale
        const float sl2 = a.scale * LOG2E;
#pragma unroll
        for (int half = 0; half < 2; half++) {  // 32 keys at a time: fewer live registers
            float s[4][4], dp[4][4];
#pragma unroll
            for (int n = 0; n < 4; n += 2) {  // two 8-key tiles per fragment load
                const int kn = half * 32 + n * 8;
#pragma unroll
                for (int i = 0; i < 4; i++) s[n][i] = dp[n][i] = s[n + 1][i] = dp[n + 1][i] = 0.f;
#pragma unroll
                for (int kk = 0; kk < NK; kk++) {
                    uint32_t bk[4], bv[4];
                    frag_b2(bk, Ks, LD, kn, kk * 16, lane);
                    frag_b2(bv, Vs, LD, kn, kk * 16, lane);
                    mma16816(s[n], qf[kk], bk);
                    mma16816(s[n + 1], qf[kk], bk + 2);
                    mma16816(dp[n], of[kk], bv);
                    mma16816(dp[n + 1], of[kk], bv + 2);
                }
#pragma unroll
                for (int m = n; m < n + 2; m++)
#pragma unroll
                    for (int i = 0; i < 4; i++) {  // s becomes dS = P (dP - D)
                        int r = i >> 1;
                        float e = plain ? fmaf(s[m][i], sl2, -L[r])
                                        : score(a, mr, s[m][i], q0 + g + 8 * r, k0 + half * 32 + m * 8 + 2 * t + (i & 1)) * LOG2E - L[r];
                        float p = L[r] == -INFINITY ? 0.f : exp2f(e);  // a fully masked row: P = 0
                        s[m][i] = p * (dp[m][i] - Di[r]);
                    }
            }
#pragma unroll
            for (int c = 0; c < 2; c++) {  // dQ += dS K over these 32 keys
                uint32_t da[4];
                acc_to_a(da, s[2 * c], s[2 * c + 1]);
#pragma unroll
                for (int n = 0; n < ND; n += 2) {
                    uint32_t bf[4];
                    frag_bt2(bf, Ks, LD, half * 32 + c * 16, n * 8, lane);
                    mma16816(dq[n], da, bf);
                    mma16816(dq[n + 1], da, bf + 2);
                }
            }
        }
    });
    dq_store<ND>(a, dQ, dq, bh, q0, g, t);
#endif
}

// NW warps of 16 keys each (4; the fused kernel at head dim 128 takes 8: each atomic sum then
// covers 128 keys, half as many per dQ element). FUSED: dQ too, summed into dqacc [B H Lq][D] (f32,
// zeroed; scaled and rounded by attn_dq_round). QT queries per streamed tile: 64, or 32 where the
// 64-query double buffers outgrow the device (head dim 128 on sm_86 / sm_89: 99 KiB a block) —
// still double-buffered, so the next tile's copies overlap the products as before
template <int DP, bool FUSED, int NW, int QT = MMA_COLS>
__global__ void __launch_bounds__(NW * 32) k_att_dkv_mma(att_args a, bf16 *dK, bf16 *dV, const bf16 *dO,
                                                             const float *lse, const float *Dv, const bf16 *Q,
                                                             const bf16 *K, const bf16 *V, bool vq, bool vk, bool vv,
                                                             bool vo, float *dqacc) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    typedef mma_bwd_smem<DP> S;
    constexpr int NK = DP / 16, ND = DP / 8, LD = S::LD;
    extern __shared__ __align__(16) unsigned char smem[];
    constexpr int KR = 16 * NW;  // keys per block
    static_assert(QT % 32 == 0 && QT <= MMA_COLS && (!FUSED || QT == MMA_COLS), "query tiles of 32 or 64 (fused: 64)");
    constexpr size_t KV = S::kv(NW), QTILE = S::qtile(QT), QSTATS = S::qstats(QT);
    bf16 *Ks = (bf16 *)smem, *Vs = (bf16 *)(smem + KV / 2);
    // query tiles j (Q, dO [QT][LD], lse, D [QT]) in buffers j % 2
    auto Qbuf = [&](int b) { return (bf16 *)(smem + KV + (size_t)(2 * b) * QTILE); };
    auto Obuf = [&](int b) { return (bf16 *)(smem + KV + (size_t)(2 * b + 1) * QTILE); };
    auto Lbuf = [&](int b) { return (float *)(smem + KV + 4 * QTILE + (size_t)b * QSTATS); };  // lse [QT], then D [QT]
    bf16 *dSs = (bf16 *)(smem + S::dkv_at(NW, QT));  // FUSED: the query tile's dS^T [KR keys][LDS]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t k0 = (int64_t)blockIdx.x * KR;  // this block's keys
    const int r0 = warp * 16;                      // this warp's rows within them
    const int D = (int)a.D;
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const bf16 *Ob = do_row(a, dO, b, h, 0);
    const float *mr = mask_rows(a, b, h);
    const int kvalid = (int)min((int64_t)KR, a.Lk - k0);
    tile_load_async<DP>(Ks, LD, Kb + k0 * a.ks2, a.ks2, kvalid, D, vk, KR);  // with query tile 0's group
    tile_load_async<DP>(Vs, LD, Vb + k0 * a.vs2, a.vs2, kvalid, D, vv, KR);

    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) dk[n][i] = dv[n][i] = 0.f;

    auto load = [&](int buf, int64_t q0) {
        const int qvalid = (int)min((int64_t)QT, a.Lq - q0);
        tile_load_async<DP>(Qbuf(buf), LD, Qb + q0 * a.qs2, a.qs2, qvalid, D, vq, QT);
        tile_load_async<DP>(Obuf(buf), LD, Ob + q0 * a.gs2, a.gs2, qvalid, D, vo, QT);
        float *Ls = Lbuf(buf), *Ds = Ls + QT;
        for (int x = threadIdx.x; x < QT; x += blockDim.x) {
            Ls[x] = x < qvalid ? lse[bh * a.Lq + q0 + x] * LOG2E : -INFINITY;
            Ds[x] = x < qvalid ? Dv[bh * a.Lq + q0 + x] : 0.f;
        }
    };
    tile_pipeline<QT>(a.Lq, load, [&](int buf, int64_t q0) {
        const bf16 *Qs = Qbuf(buf), *Os = Obuf(buf);
        const float *Ls = Lbuf(buf), *Ds = Ls + QT;
#pragma unroll
        for (int half = 0; half < QT / 32; half++) {  // 32 queries at a time
            float s[4][4], dp[4][4];
#pragma unroll
            for (int n = 0; n < 4; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) s[n][i] = dp[n][i] = 0.f;
            // each K / V fragment read from shared memory feeds the four 8-query tiles (8 mma per 6
            // fragment loads; one pair of tiles at a time took 4 per 4)
#pragma unroll
            for (int kk = 0; kk < NK; kk++) {
                uint32_t ka[4], va[4];
                frag_a(ka, Ks, LD, r0, kk * 16, lane);
                frag_a(va, Vs, LD, r0, kk * 16, lane);
#pragma unroll
                for (int n = 0; n < 4; n += 2) {
                    uint32_t bq[4], bo[4];
                    frag_b2(bq, Qs, LD, half * 32 + n * 8, kk * 16, lane);
                    frag_b2(bo, Os, LD, half * 32 + n * 8, kk * 16, lane);
                    mma16816(s[n], ka, bq);  // S^T[key][query]
                    mma16816(s[n + 1], ka, bq + 2);
                    mma16816(dp[n], va, bo);  // dP^T[key][query]
                    mma16816(dp[n + 1], va, bo + 2);
                }
            }
#pragma unroll
            for (int m = 0; m < 4; m++)
#pragma unroll
                for (int i = 0; i < 4; i++) {  // s becomes P^T, dp becomes dS^T (Ls: lse in log2 units)
                    int ql = half * 32 + m * 8 + 2 * t + (i & 1);
                    int64_t j = k0 + r0 + g + 8 * (i >> 1), qi = q0 + ql;
                    float Lq_ = Ls[ql];
                    float p = 0.f;
                    if (j < a.Lk && Lq_ != -INFINITY) p = exp2f(score(a, mr, s[m][i], qi, j) * LOG2E - Lq_);
                    s[m][i] = p;
                    dp[m][i] = p * (dp[m][i] - Ds[ql]);
                }
#pragma unroll
            for (int c = 0; c < 2; c++) {  // dV += P^T dO, dK += dS^T Q over these 32 queries
                uint32_t pa[4], da[4];
                acc_to_a(pa, s[2 * c], s[2 * c + 1]);
                acc_to_a(da, dp[2 * c], dp[2 * c + 1]);
                if constexpr (FUSED) {  // dS^T as dK's product rounds it: rows r0 + g (+8), queries 16c + 2t (+8)
                    uint32_t *row = (uint32_t *)(dSs + (r0 + g) * S::LDS + half * 32 + c * 16 + 2 * t);
                    row[0] = da[0];
                    row[4 * S::LDS] = da[1];  // 8 rows down: LDS / 2 words per row
                    row[4] = da[2];           // 8 queries on
                    row[4 * S::LDS + 4] = da[3];
                }
#pragma unroll
                for (int n = 0; n < ND; n += 2) {
                    uint32_t bo[4], bq[4];
                    frag_bt2(bo, Os, LD, half * 32 + c * 16, n * 8, lane);
                    frag_bt2(bq, Qs, LD, half * 32 + c * 16, n * 8, lane);
                    mma16816(dv[n], pa, bo);
                    mma16816(dv[n + 1], pa, bo + 2);
                    mma16816(dk[n], da, bq);
                    mma16816(dk[n + 1], da, bq + 2);
                }
            }
        }
        if constexpr (FUSED) {
            // dQ[q][d] += sum over the block's KR keys of dS^T[key][q] K[key][d]: warp w takes queries
            // 16 (w % 4).. and CPW chunks of 64 dims from (w / 4) CPW on, a chunk at a time (32
            // accumulators, while S and dP are dead), A = dS through ldmatrix.trans of the dS^T
            // tile, then 2 x 8 two-float atomics per thread and chunk
            constexpr int CPW = (DP / 64) / (NW / 4);
            static_assert(CPW >= 1 && CPW * (NW / 4) * 64 == DP, "the fused dQ needs 64 dims per warp and chunk");
            __syncthreads();  // every warp's dS^T rows are in
            const int qb = warp & 3;
            const int64_t qw = q0 + qb * 16;
#pragma unroll 1
            for (int dc = (warp >> 2) * CPW; dc < (warp >> 2) * CPW + CPW; dc++) {
                float acc[8][4];
#pragma unroll
                for (int n = 0; n < 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
                for (int kk = 0; kk < KR / 16; kk++) {
                    uint32_t da[4];  // A[q][key] = dS^T[16 kk + key][16 qb + q]: matrix m at key rows 8 (m >> 1), query cols 8 (m & 1)
                    ldsm_x4<true>(da, dSs + (kk * 16 + (lane & 7) + 8 * (lane >> 4)) * S::LDS + qb * 16 + 8 * ((lane >> 3) & 1));
#pragma unroll
                    for (int n = 0; n < 8; n += 2) {
                        uint32_t bk[4];
                        frag_bt2(bk, Ks, LD, kk * 16, dc * 64 + n * 8, lane);
                        mma16816(acc[n], da, bk);
                        mma16816(acc[n + 1], da, bk + 2);
                    }
                }
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    const int64_t q = qw + g + 8 * r;
                    if (q >= a.Lq) continue;
                    float *row = dqacc + (bh * a.Lq + q) * a.D;
#pragma unroll
                    for (int n = 0; n < 8; n++) {
                        const int c = dc * 64 + n * 8 + 2 * t;
                        if (c + 1 < D && !(D & 1)) red_add2(row + c, acc[n][2 * r], acc[n][2 * r + 1]);
                        else if (c < D) {  // an odd D: rows not 8-byte aligned
                            atomicAdd(row + c, acc[n][2 * r]);
                            if (c + 1 < D) atomicAdd(row + c + 1, acc[n][2 * r + 1]);
                        }
                    }
                }
            }
        }
    });
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int64_t j = k0 + r0 + g + 8 * r;
        if (j >= a.Lk) continue;
        bf16 *kr = dK + (bh * a.Lk + j) * a.D, *vr = dV + (bh * a.Lk + j) * a.D;
#pragma unroll
        for (int n = 0; n < ND; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int c = n * 8 + 2 * t + e;
                if (c < D) {
                    kr[c] = __float2bfloat16_rn(dk[n][2 * r + e] * a.scale);
                    vr[c] = __float2bfloat16_rn(dv[n][2 * r + e]);
                }
            }
    }
#endif
}

// =============================================================================================
// host side
// =============================================================================================
// W warps of 16 MT queries per forward block (and W warps of 16 per dQ block): W = 8 halves how often
// each K / V tile is read from L2 per query, at twice the registers per block (CAMEO_ATTN=mma8;
// mma is 4); MT = 2 (mma2) gives each warp 32 queries
template <int DP, int W, int MT>
static bool fwd_mma(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                    const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    static int done[16];
    size_t sm = mma_fwd_smem<DP>::bytes_q(W, MT);
    if (!smem_ok(k, k_att_fwd_mma<DP, W, MT>, sm, done)) return false;
    dim3 grid((unsigned)((a.Lq + 16 * W * MT - 1) / (16 * W * MT)), (unsigned)(a.B * a.H));
    k_att_fwd_mma<DP, W, MT><<<grid, W * 32, sm, KSTREAM(k)>>>(a, (bf16 *)O, lse, (const bf16 *)Q, (const bf16 *)K,
                                                               (const bf16 *)V, vec_ok(Q, qs, a.D), vec_ok(K, ks, a.D),
                                                               vec_ok(V, vs, a.D));
    CUDA_LAUNCH_CHECK();
    return true;
}

__global__ void k_att_dq_round(bf16 *dQ, const float *acc, int64_t n, float scale) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dQ[i] = __float2bfloat16_rn(acc[i] * scale);
}
float *attn_dq_sums(const cm_kctx *k, int64_t n) {
    float *acc = (float *)cuda_tmp_alloc(k, (size_t)n * sizeof(float), "the attention backward's f32 dQ sums");
    CUDA_CHECK(cudaMemsetAsync(acc, 0, (size_t)n * sizeof(float), KSTREAM(k)));
    return acc;
}
void attn_dq_round(const cm_kctx *k, void *dQ, const float *acc, int64_t n, double scale) {
    k_att_dq_round<<<(unsigned)min((n + 255) / 256, (int64_t)65535), 256, 0, KSTREAM(k)>>>((bf16 *)dQ, acc, n, (float)scale);
    CUDA_LAUNCH_CHECK();
}

// fused (head dims 64, 128): dQ inside the dK dV kernel, no dQ kernel (with_dq false: dK, dV only)
template <int DP, int W>
static bool bwd_mma(const cm_kctx *k, const att_args &a, void *dQ, void *dK, void *dV, const void *dO,
                    const float *lse, const float *Dv, const void *Q, const int64_t *qs, const void *K,
                    const int64_t *ks, const void *V, const int64_t *vs, bool with_dq, bool fused) {
    static int done1[16], done2[16], done3[16], done4[16];
    typedef mma_bwd_smem<DP> S;
    bool vq = vec_ok(Q, qs, a.D), vk = vec_ok(K, ks, a.D), vv = vec_ok(V, vs, a.D), vo = vec_ok_do(a, dO);
    dim3 gk((unsigned)((a.Lk + MMA_ROWS - 1) / MMA_ROWS), (unsigned)(a.B * a.H));
    if constexpr (DP % 64 == 0) {  // the fused kernel's dQ takes 64 dims at a time
        constexpr int NW = DP == 128 ? 8 : 4;  // 8 warps: 128 keys per block (the atomics halved)
        if (fused && with_dq && smem_ok(k, k_att_dkv_mma<DP, true, NW>, S::dkv_fused(NW), done3)) {
            const int64_t n = a.B * a.H * a.Lq * a.D;
            float *acc = attn_dq_sums(k, n);
            dim3 gf((unsigned)((a.Lk + 16 * NW - 1) / (16 * NW)), (unsigned)(a.B * a.H));
            k_att_dkv_mma<DP, true, NW><<<gf, NW * 32, S::dkv_fused(NW), KSTREAM(k)>>>(
                a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse, Dv, (const bf16 *)Q, (const bf16 *)K, (const bf16 *)V, vq,
                vk, vv, vo, acc);
            CUDA_LAUNCH_CHECK();
            attn_dq_round(k, dQ, acc, n, a.scale);
            cuda_tmp_free(k, acc);
            cm_attn_mma_fused_runs++;
            return true;
        }
    }
    if (!smem_ok(k, k_att_dq_mma<DP, W>, S::dq, done1)) return false;
    // dK dV over 64-query tiles where the device gives their double buffers (A100, H100), else over
    // 32-query tiles (head dim 128 on sm_86 / sm_89: 105472 bytes wanted, 101376 given; 70144)
    bool q32 = false;
    if (!smem_ok(k, k_att_dkv_mma<DP, false, 4>, S::dkv, done2)) {
        if constexpr (DP == 128) {  // the other head dims' 64-query kernels fit 99 KiB
            if (!smem_ok(k, k_att_dkv_mma<DP, false, 4, 32>, S::dkv32, done4)) return false;
            q32 = true;
        } else {
            return false;
        }
    }
    dim3 gq((unsigned)((a.Lq + 16 * W - 1) / (16 * W)), (unsigned)(a.B * a.H));
    if (with_dq) {
        k_att_dq_mma<DP, W><<<gq, W * 32, S::dq, KSTREAM(k)>>>(a, (bf16 *)dQ, (const bf16 *)dO, lse, Dv, (const bf16 *)Q,
                                                               (const bf16 *)K, (const bf16 *)V, vk, vv);
        CUDA_LAUNCH_CHECK();
    }
    if (q32) {
        if constexpr (DP == 128)
            k_att_dkv_mma<DP, false, 4, 32><<<gk, MMA_THREADS, S::dkv32, KSTREAM(k)>>>(
                a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse, Dv, (const bf16 *)Q, (const bf16 *)K, (const bf16 *)V, vq,
                vk, vv, vo, nullptr);
    } else
        k_att_dkv_mma<DP, false, 4><<<gk, MMA_THREADS, S::dkv, KSTREAM(k)>>>(
            a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse, Dv, (const bf16 *)Q, (const bf16 *)K, (const bf16 *)V, vq, vk,
            vv, vo, nullptr);
    CUDA_LAUNCH_CHECK();
    return true;
}

bool attn_fwd_mma(const cm_kctx *k, int dp, int warps, int mtiles, const att_args &a, void *O, float *lse,
                  const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    // mma2 where its Q tile does not fit beside K / V (head dim 128 on sm_86 / sm_89: 104448 bytes
    // of 101376): the 16-row kernel (69632), not the generic one
#define FWD(DPV) (mtiles == 2 ? fwd_mma<DPV, 4, 2>(k, a, O, lse, Q, qs, K, ks, V, vs) ||            \
                                    fwd_mma<DPV, 4, 1>(k, a, O, lse, Q, qs, K, ks, V, vs)          \
                  : warps == 8 ? fwd_mma<DPV, 8, 1>(k, a, O, lse, Q, qs, K, ks, V, vs)             \
                               : fwd_mma<DPV, 4, 1>(k, a, O, lse, Q, qs, K, ks, V, vs))
    if (dp == 64) return FWD(64);
    if (dp == 80) return FWD(80);
    if (dp == 128) return FWD(128);
#undef FWD
    return false;
}

bool attn_bwd_mma(const cm_kctx *k, int dp, int warps, const att_args &a, void *dQ, void *dK, void *dV, const void *dO,
                  const float *lse, const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks,
                  const void *V, const int64_t *vs, bool with_dq, bool fused) {
#define BWD(DPV, WV) bwd_mma<DPV, WV>(k, a, dQ, dK, dV, dO, lse, Dv, Q, qs, K, ks, V, vs, with_dq, fused)
    const bool w8 = warps == 8;
    if (dp == 64) return w8 ? BWD(64, 8) : BWD(64, 4);
    if (dp == 80) return w8 ? BWD(80, 8) : BWD(80, 4);
    if (dp == 128) return w8 ? BWD(128, 8) : BWD(128, 4);
#undef BWD
    return false;
}

// =============================================================================================
// the instruction's ceiling (`cameo bench gpu`)
// =============================================================================================
// 4 warps a block, each issuing CEIL_ACC independent mma.m16n8k16 a step on registers alone: the
// rate no kernel of this family can pass on the device. A and B are ones, so each product adds 16
// to every element of C: a thread's sum is CEIL_ACC * 4 * 16 * iters (checked by the host)
#define CEIL_ACC 8
__global__ void __launch_bounds__(128) k_ceiling_mma(int iters, float *out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const uint32_t one = 0x3f803f80u;  // two bf16 ones
    const uint32_t a[4] = {one, one, one, one}, b[2] = {one, one};
    float c[CEIL_ACC][4];
#pragma unroll
    for (int j = 0; j < CEIL_ACC; j++) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.f;
    for (int i = 0; i < iters; i++)
#pragma unroll
        for (int j = 0; j < CEIL_ACC; j++) mma16816(c[j], a, b);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < CEIL_ACC; j++) sum += (c[j][0] + c[j][1]) + (c[j][2] + c[j][3]);
    out[(size_t)blockIdx.x * blockDim.x + threadIdx.x] = sum;
#endif
}

// ms a launch of `waves` full waves of blocks x `iters` steps (-1: a sum was wrong); *tflops the
// rate, *nblocks the blocks
extern "C" double cuda_ceiling_mma(const cm_kctx *k, int waves, int iters, int reps, double *tflops, int *nblocks) {
    const int blocks = *nblocks = ceiling_blocks(k, k_ceiling_mma, 128, 0, waves);
    const double ms = ceiling_run(k, (int64_t)blocks * 128, (float)(CEIL_ACC * 4 * 16) * (float)iters, reps,
                                  [&](float *d) { k_ceiling_mma<<<blocks, 128, 0, KSTREAM(k)>>>(iters, d); });
    *tflops = ms > 0 ? (double)blocks * 4 * iters * CEIL_ACC * (2.0 * 16 * 8 * 16) / (ms * 1e-3) / 1e12 : 0;
    return ms;
}
