// cuda_attention_wgmma.cu — flash attention on Hopper's warpgroup MMA (wgmma.mma_async, sm_90a),
// head dim 128, chosen with CAMEO_ATTN=wgmma (cuda_attention.cu; mma.sync where it does not apply).
//   forward  one block per (128 queries, b*h): two warpgroups of 64 queries share each 64-key K / V
//            tile, brought by cp.async into a double buffer. Per tile each warpgroup issues S = Q K^T
//            as 8 wgmma m64n64k16 (Q from registers, K through a shared-memory descriptor), runs the
//            online softmax on S in registers (cuda_attention_frag.cuh: wgmma's accumulator layout
//            per warp is mma.m16n8k16's), and issues O += P V as 4 wgmma m64n128k16 (P from
//            registers, V transposed through its descriptor). The other warpgroup's softmax
//            overlaps this one's products.
//   dQ       the same loop: dP = dO V^T beside S, dQ += dS K
//   dK, dV   one block per (128 keys, b*h), the queries streamed (below)
// Before first use on a device a self-test checks one wgmma of each kind against the host.
//
// Shared tiles: [2 halves of 64 head dims][64 keys][128 bytes], the 128-byte swizzle (16-byte chunk
// c of row r at chunk c ^ (r % 8)), each tile 1024-byte aligned. The same bytes serve both
// products: for S, B = K^T is K-major (a key's 64 dims of one half are one 128-byte row; 8-key
// groups 1024 bytes apart: SBO; the k step moves the start 32 bytes within the row, the next half
// 8192); for O, B = V is MN-major (a key row holds 64 dims; the other 64 dims LBO = 8192 bytes on,
// the next 8 keys SBO = 1024). Descriptor and layouts: PTX ISA, "asynchronous warpgroup level
// matrix shared memory layout"; the CUDA emulator (tests/cuda_emu) computes the same addresses.
#include "cuda_wgmma.cuh"

__global__ void __launch_bounds__(WG_GROUPS * 128, 1) k_att_fwd_wgmma(att_args a, bf16 *O, float *lse, const bf16 *Q,
                                                                      const bf16 *K, const bf16 *V) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const uint32_t sbase = smem_u32(smem);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t q0 = (int64_t)blockIdx.x * (64 * WG_GROUPS) + warp * 16;  // this warp's 16 rows (of its group's 64)
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);

    uint32_t qf[8][4];  // this warp's 16 query rows as the A fragments of the 8 k steps
    rows_to_a<8>(qf, Qb, a.qs2, q0, a.Lq, 128, g, t);
    float o[16][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < 16; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;

    // tiles j in buffers j % 3. In round j: tile j + 2 is brought in, S for tile j + 1 is issued
    // beside O += P V for tile j, and the softmax of tile j + 1 runs while that P V product is in
    // flight (FlashAttention-3's overlap inside a warpgroup; the other warpgroup's work overlaps
    // too). The rescale of O by tile j + 1's alpha waits for tile j's product.
    const int64_t nt = (a.Lk + WG_KEYS - 1) / WG_KEYS;
    auto ktile = [&](int64_t j) { return sbase + (uint32_t)(2 * (j % 3)) * WG_TILE; };
    float s[8][4], alpha[2];
    uint32_t pa[4][4];
    wg_zero<32>(&s[0][0]);
    auto issue_s = [&](int64_t j) { wg_issue_s(s, qf, ktile(j)); };  // S = Q K^T for tile j
    auto softmax_of = [&](int64_t j) {  // s (tile j, landed) becomes P; alpha for O
        const int64_t k0 = j * WG_KEYS;
        const bool plain = !mr && k0 + WG_KEYS <= a.Lk && a.scale > 0.f;
        online_softmax<8>(s, m, l, alpha, a, mr, q0, k0, plain, g, t);
    };

    wg_kv_load(smem, 0, a, Kb, Vb, 0);
    cp_async_commit();
    if (nt > 1) wg_kv_load(smem, 1, a, Kb, Vb, WG_KEYS);
    cp_async_commit();
    cp_async_wait<1>();  // tile 0
    fence_proxy_async();
    __syncthreads();
    issue_s(0);
    wg_wait<0>();
    wg_reg_fence<32>(&s[0][0]);
    softmax_of(0);  // O is still zero: alpha has nothing to scale
#pragma unroll
    for (int c = 0; c < 4; c++) acc_to_a(pa[c], s[2 * c], s[2 * c + 1]);
    const uint32_t vdesc0 = WG_TILE;  // V's tile follows K's
    for (int64_t j = 0; j + 1 < nt; j++) {
        cp_async_wait<0>();  // tile j + 1 (this thread's copies)
        fence_proxy_async();
        // tile j + 1 in place for every thread; every warpgroup past round j - 1, whose P V read
        // buffer (j - 1) % 3 = (j + 2) % 3
        __syncthreads();
        if (j + 2 < nt) wg_kv_load(smem, (int)((j + 2) % 3), a, Kb, Vb, (j + 2) * WG_KEYS);
        cp_async_commit();
        issue_s(j + 1);  // its wgmma.fence also orders the writes of pa and o
        wg_issue_pv(o, pa, ktile(j) + vdesc0);  // O += P V for tile j
        wg_wait<1>();  // S of tile j + 1 (committed first); P V may still run
        wg_reg_fence<32>(&s[0][0]);
        softmax_of(j + 1);
        wg_wait<0>();
        wg_reg_fence<64>(&o[0][0]);
        wg_rescale_pack(o, alpha, pa, s);
    }
    // the last tile's P V (its tile landed before the last round's barrier, or the prologue's)
    wg_fence();
    wg_issue_pv(o, pa, ktile(nt - 1) + vdesc0);
    wg_wait<0>();
    wg_reg_fence<64>(&o[0][0]);
    softmax_store<16>(a, O, lse, o, m, l, b, h, q0, g, t);
#endif
}

// dQ (the backward's query side): one block per (128 queries, b*h), two warpgroups of 64 over the
// same K / V tiles as the forward. Per tile: S = Q K^T and dP = dO V^T (8 wgmma each, Q and dO
// from registers; V's tile read K-major like K's), P = exp(S - lse), dS = P (dP - D) in registers,
// dQ += dS K (4 wgmma, dS from registers, K's tile MN-major as V's in the forward). dQ is written
// contiguous [B, H, Lq, D], scaled.
__global__ void __launch_bounds__(WG_GROUPS * 128, 1) k_att_dq_wgmma(att_args a, bf16 *dQ, const bf16 *dO, const float *lse,
                                                                     const float *Dv, const bf16 *Q, const bf16 *K,
                                                                     const bf16 *V) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const uint32_t sbase = smem_u32(smem);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t q0 = (int64_t)blockIdx.x * (64 * WG_GROUPS) + warp * 16;
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const float *mr = mask_rows(a, b, h);

    uint32_t qf[8][4], of[8][4];  // this warp's Q and dO rows as A fragments
    rows_to_a<8>(qf, Qb, a.qs2, q0, a.Lq, 128, g, t);
    rows_to_a<8>(of, do_row(a, dO, b, h, 0), a.gs2, q0, a.Lq, 128, g, t);
    float L[2], Di[2], dq[16][4];  // L: log2 units
    bwd_row_stats(a, lse, Dv, bh, q0, g, L, Di);
#pragma unroll
    for (int n = 0; n < 16; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

    wg_kv_load(smem, 0, a, Kb, Vb, 0);
    cp_async_commit();
    int buf = 0;
    float s[8][4], dp[8][4];  // S, dP of each tile (overwritten by its first products)
    wg_zero<32>(&s[0][0]);
    wg_zero<32>(&dp[0][0]);
    for (int64_t k0 = 0; k0 < a.Lk; k0 += WG_KEYS, buf ^= 1) {
        if (k0 + WG_KEYS < a.Lk) wg_kv_load(smem, buf ^ 1, a, Kb, Vb, k0 + WG_KEYS);
        cp_async_commit();
        cp_async_wait<1>();
        fence_proxy_async();
        __syncthreads();
        const uint32_t kt = sbase + (uint32_t)(2 * buf) * WG_TILE, vt = kt + WG_TILE;
        dq_issue_sdp(s, dp, qf, of, kt, vt);
        wg_wait<0>();
        wg_reg_fence<32>(&s[0][0]);
        wg_reg_fence<32>(&dp[0][0]);
        dq_probs_issue(dq, s, dp, L, Di, a, mr, q0, k0, g, t, kt);
        wg_wait<0>();
        wg_reg_fence<64>(&dq[0][0]);
        __syncthreads();  // every warpgroup is done with buffer buf: it is refilled next round
    }
    dq_store<16>(a, dQ, dq, bh, q0, g, t);
#endif
}

// dK, dV (the backward's key side): one block per (128 keys, b*h), warpgroup w owning keys 64 w..,
// its K and V tiles loaded once; the query side streams through a double buffer of Q and dO tiles
// (64 queries each, the same swizzled layout) with their lse (log2 units) and D. Per query tile:
// S^T = K Q^T and dP^T = V dO^T (8 wgmma each, K and V through descriptors as A, K-major; Q and
// dO K-major as B), P^T and dS^T = P^T (dP^T - D) in registers, dV += P^T dO and dK += dS^T Q (4
// wgmma each, A from registers, dO and Q MN-major). dK (scaled) and dV are written contiguous.
// FUSED (the default backward): dQ too, so the query side's kernel and its second S and dP are
// not needed (5 products per tile pair instead of 7). Each group stores its dS^T [64 keys][64
// queries] in shared memory (128-byte swizzled rows); after a barrier group w takes dims 64 w..
// of this tile's dQ = dS K over the block's 128 keys (8 wgmma m64n64k16, dS^T through its
// descriptor as A, MN-major; K's tiles MN-major as B) and adds them into dqacc (f32 [B, H, Lq,
// 128], zeroed before) with atomics; attn_dq_round scales and rounds it into dQ.
#define WG_DKV_STATS (2 * 64 * (int)sizeof(float))  // lse, D of one query tile
#define WG_DKV_SMEM (8 * WG_TILE + 2 * WG_DKV_STATS + 1024)  // K, V of 2 groups; Q, dO twice; stats twice
#define WG_BWD_SMEM (WG_DKV_SMEM + 2 * WG_DS_TILE)           // the fused kernel's: the dS^T tiles after the stats

template <bool FUSED>
__global__ void __launch_bounds__(WG_GROUPS * 128, 1) k_att_dkv_wgmma(att_args a, bf16 *dK, bf16 *dV, const bf16 *dO,
                                                                      const float *lse, const float *Dv, const bf16 *Q,
                                                                      const bf16 *K, const bf16 *V, float *dqacc) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, wg = warp >> 2;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int64_t kb = (int64_t)blockIdx.x * (64 * WG_GROUPS);  // the block's keys
    const int64_t j0 = kb + 64 * wg + 16 * (warp & 3);          // this warp's 16 keys
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const bf16 *Ob = do_row(a, dO, b, h, 0);
    const float *mr = mask_rows(a, b, h);
    // tiles: K of group w at w, V at 2 + w; Q of buffer u at 4 + 2 u, dO at 5 + 2 u; stats after them
    auto tile = [&](int i) { return smem + (size_t)i * WG_TILE; };
    auto stats = [&](int u) { return (float *)(smem + 8 * WG_TILE + (size_t)u * WG_DKV_STATS); };  // lse [64], D [64]
    // group v's dS^T (FUSED): 1024-byte aligned, as the stats end on a multiple of 1024
    auto dstile = [&](int v) { return smem + 8 * WG_TILE + 2 * WG_DKV_STATS + (size_t)v * WG_DS_TILE; };

    // the block's K and V rows (both groups), with the first query tile's group
    for (int idx = threadIdx.x; idx < 2 * 2 * 64 * 16; idx += blockDim.x) {
        const int v = idx >> 11, grp = (idx >> 10) & 1, r = (idx >> 4) & 63, c = (idx & 15) * 8;
        const int64_t j = kb + 64 * grp + r;
        const bf16 *src = v ? Vb + j * a.vs2 + c : Kb + j * a.ks2 + c;
        const bool in = j < a.Lk;
        cp_async16(tile(2 * v + grp) + wg_swz(r, c), in ? src : (v ? Vb : Kb), in ? 16 : 0);
    }
    // queries q0..q0+63: Q and dO rows into buffer u, their lse and D
    auto load = [&](int u, int64_t q0) {
        const int qvalid = (int)min((int64_t)64, a.Lq - q0);
        for (int idx = threadIdx.x; idx < 2 * 64 * 16; idx += blockDim.x) {
            const int o = idx >> 10, r = (idx >> 4) & 63, c = (idx & 15) * 8;
            const bf16 *src = o ? Ob + (q0 + r) * a.gs2 + c : Qb + (q0 + r) * a.qs2 + c;
            const bool in = r < qvalid;
            cp_async16(tile(4 + 2 * u + o) + wg_swz(r, c), in ? src : (o ? Ob : Qb), in ? 16 : 0);
        }
        float *Ls = stats(u), *Ds = Ls + 64;
        for (int x = threadIdx.x; x < 64; x += blockDim.x) {
            Ls[x] = x < qvalid ? lse[bh * a.Lq + q0 + x] * LOG2E : -INFINITY;
            Ds[x] = x < qvalid ? Dv[bh * a.Lq + q0 + x] : 0.f;
        }
    };
    float dk[16][4], dv[16][4];
#pragma unroll
    for (int n = 0; n < 16; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) dk[n][i] = dv[n][i] = 0.f;
    const uint32_t kt = smem_u32(tile(wg)), vt = smem_u32(tile(2 + wg));

    load(0, 0);
    cp_async_commit();
    int u = 0;
    float s[8][4], dp[8][4];  // S^T, dP^T of each tile: rows = this warp's keys, columns = the tile's queries
    wg_zero<32>(&s[0][0]);
    wg_zero<32>(&dp[0][0]);
    for (int64_t q0 = 0; q0 < a.Lq; q0 += 64, u ^= 1) {
        if (q0 + 64 < a.Lq) load(u ^ 1, q0 + 64);
        cp_async_commit();
        cp_async_wait<1>();
        fence_proxy_async();
        __syncthreads();
        const uint32_t qt = smem_u32(tile(4 + 2 * u)), ot = qt + WG_TILE;
        const float *Ls = stats(u), *Ds = Ls + 64;
        dkv_issue_sdp(s, dp, kt, vt, qt, ot);
        wg_wait<0>();
        wg_reg_fence<32>(&s[0][0]);
        wg_reg_fence<32>(&dp[0][0]);
        uint32_t pa[4][4], da[4][4];
        dkv_probs(s, dp, pa, da, Ls, Ds, a, mr, !mr && kb + 64 * WG_GROUPS <= a.Lk, q0, j0, g, t);
        if constexpr (FUSED) ds_store(dstile(wg), da, warp, g, t);  // before the products read da
        dkv_issue_grads(dv, dk, pa, da, ot, qt);
        if constexpr (FUSED) {
            __syncthreads();  // both groups' dS^T tiles are written
            dq_from_ds(dqacc, a, smem_u32(dstile(0)), smem_u32(tile(0)), wg, bh, q0, warp, g, t);
        } else
            wg_wait<0>();
        wg_reg_fence<64>(&dv[0][0]);
        wg_reg_fence<64>(&dk[0][0]);
        __syncthreads();  // buffer u (and the dS^T tiles) are written again next round
    }
    dkv_store(a, dK, dV, dk, dv, bh, j0, g, t);
#endif
}

// 1 where this build's device code has the wgmma kernel (sm_90a), 0 where its body compiled empty
__global__ void k_wgmma_probe(int *flag) {
#ifdef WG_ENABLED
    *flag = 1;
#else
    *flag = 0;
#endif
}

// One wgmma of each kind the attention kernels use, on small integers (exact in bf16 and in f32
// sums), against the host's product: mode 0 B K-major at k step 5 (the start 32 bytes into the
// second half: S = Q K^T's addressing), mode 1 B MN-major at k step 2 (O += P V's), mode 2 A and B
// both K-major through descriptors at k step 5 (dK dV's), mode 3 A and B both MN-major
// (transposed) through descriptors at k step 2 (the fused backward's dQ = dS K). A (64 x 16) row-major, tiles T, T2
// (64 x 128) row-major in global memory, laid out in shared memory as the kernels lay them; out
// [64][128] f32. One warpgroup. lbo, sbo: the descriptors' strides in bytes (the kernels' own, or
// those a failed test sweeps: the window has room for the farthest byte any of them reaches —
// start + 7 SBO + LBO + a row group — so no stride tried reads outside it).
#define WG_SWEEP_MAX 8192
#define WG_SELFTEST_SMEM (2 * WG_TILE + 8 * WG_SWEEP_MAX + 2048)
template <int MODE>
__global__ void __launch_bounds__(128) k_wgmma_selftest(const bf16 *A, const bf16 *T, const bf16 *T2, float *out,
                                                        uint32_t lbo, uint32_t sbo) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    for (int idx = threadIdx.x; idx < 2 * 64 * 16; idx += blockDim.x) {
        const int u = idx >> 10, r = (idx >> 4) & 63, c = (idx & 15) * 8;
        cp_async16(smem + u * WG_TILE + wg_swz(r, c), (u ? T2 : T) + r * 128 + c, 16);
    }
    cp_async_commit();
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const uint32_t t0 = smem_u32(smem), t1 = t0 + WG_TILE, off5 = WG_HALF + 32;
    uint32_t af[1][4];
    rows_to_a<1>(af, A, 16, 16 * warp, 64, 16, g, t);
    float d[16][4];
#pragma unroll
    for (int n = 0; n < 16; n++) d[n][0] = d[n][1] = d[n][2] = d[n][3] = 0.f;
    wg_fence();
    if constexpr (MODE == 0) wgmma_s(&d[0][0], af[0], wg_desc(t0 + off5, lbo, sbo), 1);
    else if constexpr (MODE == 1) wgmma_o(&d[0][0], af[0], wg_desc(t0 + 2 * 2048, lbo, sbo), 1);
    else if constexpr (MODE == 2) wgmma_ss(&d[0][0], wg_desc(t0 + off5, lbo, sbo), wg_desc(t1 + off5, lbo, sbo), 1);
    else wgmma_ss<1, 1>(&d[0][0], wg_desc(t0 + 2 * 2048, lbo, sbo), wg_desc(t1 + 2 * 2048, lbo, sbo), 1);
    wg_commit();
    wg_wait<0>();
    constexpr int NT = MODE == 1 ? 16 : 8;
    wg_reg_fence<4 * NT>(&d[0][0]);
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) out[(16 * warp + g + 8 * (i >> 1)) * 128 + 8 * n + 2 * t + (i & 1)] = d[n][i];
#endif
}

// one self-test product of `mode` with descriptor strides (lbo, sbo) against the host's; the count
// of wrong elements (the first one in *fm, *fn, *fw: row, column, wanted value)
static int wgmma_selftest_one(const cm_kctx *k, int mode, uint32_t lbo, uint32_t sbo, const bf16 *d, float *dout,
                              const float *ha, float *got, int *fm, int *fn, float *fw) {
    const size_t na = 64 * 16, nt = 64 * 128;
    const float *hT = ha + na, *hT2 = hT + nt;
    CUDA_CHECK(cudaMemsetAsync(dout, 0, nt * sizeof(float), KSTREAM(k)));
    if (mode == 0) k_wgmma_selftest<0><<<1, 128, WG_SELFTEST_SMEM, KSTREAM(k)>>>(d, d + na, d + na + nt, dout, lbo, sbo);
    else if (mode == 1) k_wgmma_selftest<1><<<1, 128, WG_SELFTEST_SMEM, KSTREAM(k)>>>(d, d + na, d + na + nt, dout, lbo, sbo);
    else if (mode == 2) k_wgmma_selftest<2><<<1, 128, WG_SELFTEST_SMEM, KSTREAM(k)>>>(d, d + na, d + na + nt, dout, lbo, sbo);
    else k_wgmma_selftest<3><<<1, 128, WG_SELFTEST_SMEM, KSTREAM(k)>>>(d, d + na, d + na + nt, dout, lbo, sbo);
    CUDA_LAUNCH_CHECK();
    CUDA_CHECK(cudaMemcpyAsync(got, dout, nt * sizeof(float), cudaMemcpyDeviceToHost, KSTREAM(k)));
    CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
    const int N = mode == 1 ? 128 : 64;
    int bad = 0;
    for (int m = 0; m < 64; m++)
        for (int n = 0; n < N; n++) {
            float want = 0.f;
            for (int kk = 0; kk < 16; kk++) {
                float a = mode == 2 ? hT[m * 128 + 80 + kk] : mode == 3 ? hT[(32 + kk) * 128 + m] : ha[m * 16 + kk];
                float b = mode == 0   ? hT[n * 128 + 80 + kk]
                          : mode == 1 ? hT[(32 + kk) * 128 + n]
                          : mode == 2 ? hT2[n * 128 + 80 + kk]
                                      : hT2[(32 + kk) * 128 + n];
                want += a * b;
            }
            if (got[m * 128 + n] != want && !bad++) *fm = m, *fn = n, *fw = want;
        }
    return bad;
}

// the self-test's verdict: NULL when all four products are exact, else what went wrong (static
// text). A product that fails is tried again with every pair of strides from a list, and the
// verdict names the pairs that make it exact: a device that reads the descriptors otherwise than
// the kernels assume says in the same run how it reads them. skew = 0..3 (tests): that mode's
// first try uses the kernels' strides swapped, so the sweep must find the kernels' own.
static const char *wgmma_selftest(const cm_kctx *k, int skew) {
    static char why[640];
    const size_t na = 64 * 16, nt = 64 * 128;
    bf16 *h = (bf16 *)malloc((na + 2 * nt) * sizeof(bf16));
    float *ha = (float *)malloc((na + 2 * nt + nt) * sizeof(float)), *got = ha + na + 2 * nt;
    if (!h || !ha) cm_die("cuda attention", "the wgmma self-test: out of host memory");
    for (size_t i = 0; i < na + 2 * nt; i++) {  // -3..4 from the hash's top bits (every index distinct): exact sums
        ha[i] = (float)((int)(((uint32_t)i * 2654435761u) >> 29) - 3);
        h[i] = __float2bfloat16_rn(ha[i]);
    }
    bf16 *d = (bf16 *)cuda_tmp_alloc(k, (na + 2 * nt) * sizeof(bf16), "wgmma self-test inputs");
    float *dout = (float *)cuda_tmp_alloc(k, nt * sizeof(float), "wgmma self-test output");
    CUDA_CHECK(cudaMemcpyAsync(d, h, (na + 2 * nt) * sizeof(bf16), cudaMemcpyHostToDevice, KSTREAM(k)));
    const char *what[4] = {"B K-major (S = Q K^T)", "B MN-major, transposed (O += P V)",
                           "A and B K-major through descriptors (dK dV)", "A and B MN-major through descriptors (dQ = dS K)"};
    const uint32_t own[4][2] = {{16, 1024}, {WG_HALF, 1024}, {16, 1024}, {WG_HALF, 1024}};  // the kernels' (LBO, SBO)
    const uint32_t cand[5] = {16, 128, 1024, 2048, WG_SWEEP_MAX};
    const char *verdict = NULL;
    static int done[4][16];
    if (!smem_ok(k, k_wgmma_selftest<0>, WG_SELFTEST_SMEM, done[0]) || !smem_ok(k, k_wgmma_selftest<1>, WG_SELFTEST_SMEM, done[1]) ||
        !smem_ok(k, k_wgmma_selftest<2>, WG_SELFTEST_SMEM, done[2]) || !smem_ok(k, k_wgmma_selftest<3>, WG_SELFTEST_SMEM, done[3]))
        verdict = "the self-test's shared memory was refused";
    for (int mode = 0; mode < 4 && !verdict; mode++) {
        uint32_t lbo = own[mode][0], sbo = own[mode][1];
        if (mode == skew) lbo = own[mode][1], sbo = own[mode][0];
        int fm = -1, fn = -1;
        float fw = 0.f;
        const int bad = wgmma_selftest_one(k, mode, lbo, sbo, d, dout, ha, got, &fm, &fn, &fw);
        if (!bad) continue;
        const int N = mode == 1 ? 128 : 64;
        int at = snprintf(why, sizeof why, "the wgmma self-test failed: %s with (LBO, SBO) = (%u, %u): %d of %d wrong, "
                          "first D[%d][%d] = %g (want %g); exact with", what[mode], lbo, sbo, bad, 64 * N, fm, fn,
                          got[fm * 128 + fn], fw);
        int found = 0;
        for (int x = 0; x < 5; x++)
            for (int y = 0; y < 5; y++) {
                int m2, n2;
                float w2;
                if (wgmma_selftest_one(k, mode, cand[x], cand[y], d, dout, ha, got, &m2, &n2, &w2)) continue;
                if (at < (int)sizeof why)
                    at += snprintf(why + at, sizeof why - at, "%s (%u, %u)", found ? "," : "", cand[x], cand[y]);
                found++;
            }
        if (at < (int)sizeof why)
            snprintf(why + at, sizeof why - at, "%s of the 25 strides tried (the kernels use (%u, %u))",
                     found ? "" : " none", own[mode][0], own[mode][1]);
        verdict = why;
    }
    cuda_tmp_free(k, d);
    cuda_tmp_free(k, dout);
    free(h);
    free(ha);
    return verdict;
}

// 1 where this device's build has the wgmma kernels' code (sm_90a), else 0
static int wgmma_probe(const cm_kctx *k) {
    int *d = (int *)cuda_tmp_alloc(k, sizeof(int), "wgmma probe flag"), h = 0;
    k_wgmma_probe<<<1, 1, 0, KSTREAM(k)>>>(d);
    CUDA_LAUNCH_CHECK();
    CUDA_CHECK(cudaMemcpyAsync(&h, d, sizeof h, cudaMemcpyDeviceToHost, KSTREAM(k)));
    CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
    cuda_tmp_free(k, d);
    return h;
}

// tests: the self-test run anew on this device (skew: see wgmma_selftest; -1 none): its verdict,
// NULL when it passes; "no wgmma code" where the build or the device has none
extern "C" const char *cuda_wgmma_selftest(const cm_kctx *k, int skew) {
    if (cuda_ext(k)->cc_major != 9 || !wgmma_probe(k)) return "no wgmma code for this device in this build";
    return wgmma_selftest(k, skew);
}

// sm_90a code in this build and a passing self-test (once per device); else *why says what is missing
static bool wgmma_built(const cm_kctx *k, const char **why) {
    static int known[16];  // per device: 0 not asked, 1 yes, -1 no
    static const char *reason[16];
    const cuda_ctx_ext *c = cuda_ext(k);
    int &v = known[c->index & 15];
    if (!v) {
        const char *r = wgmma_probe(k) ? wgmma_selftest(k, -1) : "this build has no sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a)";
        v = r ? -1 : 1;
        reason[c->index & 15] = r;
        if (r) fprintf(stderr, "cameo: cuda attention: the wgmma kernels (the default on sm_90, CAMEO_ATTN) cannot run: %s; "
                               "the attention runs on mma\n", r);
    }
    *why = reason[c->index & 15];
    return v > 0;
}

// the wgmma kernels apply: a Hopper, sm_90a code in this build, head dim 128, 16-byte K / V rows
bool attn_wgmma_applies(const cm_kctx *k, const att_args &a, const void *K, const int64_t *ks, const void *V,
                        const int64_t *vs) {
    const cuda_ctx_ext *c = cuda_ext(k);
    if (c->cc_major != 9) {
        cm_attn_wgmma_off = "the device is not an sm_90 (Hopper) GPU";
        return false;
    }
    const char *why = NULL;
    if (!wgmma_built(k, &why)) {
        cm_attn_wgmma_off = why;
        return false;
    }
    return a.D == 128 && vec_ok(K, ks, a.D) && vec_ok(V, vs, a.D);
}

bool attn_fwd_wgmma(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                    const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    (void)qs;
    if (!attn_wgmma_applies(k, a, K, ks, V, vs)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_fwd_wgmma, WG_FWD_SMEM, done)) return false;
    dim3 grid((unsigned)((a.Lq + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_fwd_wgmma<<<grid, WG_GROUPS * 128, WG_FWD_SMEM, KSTREAM(k)>>>(a, (bf16 *)O, lse, (const bf16 *)Q, (const bf16 *)K,
                                                                   (const bf16 *)V);
    CUDA_LAUNCH_CHECK();
    cm_attn_wgmma_runs++;
    return true;
}

bool attn_dq_wgmma(const cm_kctx *k, const att_args &a, void *dQ, const void *dO, const float *lse, const float *Dv,
                   const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    (void)qs;
    if (!attn_wgmma_applies(k, a, K, ks, V, vs)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_dq_wgmma, WG_SMEM, done)) return false;
    dim3 grid((unsigned)((a.Lq + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_dq_wgmma<<<grid, WG_GROUPS * 128, WG_SMEM, KSTREAM(k)>>>(a, (bf16 *)dQ, (const bf16 *)dO, lse, Dv, (const bf16 *)Q,
                                                                  (const bf16 *)K, (const bf16 *)V);
    CUDA_LAUNCH_CHECK();
    cm_attn_wgmma_runs++;
    return true;
}

bool attn_dkv_wgmma(const cm_kctx *k, const att_args &a, void *dK, void *dV, const void *dO, const float *lse,
                    const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                    const int64_t *vs) {
    if (!attn_wgmma_applies(k, a, K, ks, V, vs) || !vec_ok(Q, qs, a.D) || !vec_ok_do(a, dO)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_dkv_wgmma<false>, WG_DKV_SMEM, done)) return false;
    dim3 grid((unsigned)((a.Lk + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_dkv_wgmma<false><<<grid, WG_GROUPS * 128, WG_DKV_SMEM, KSTREAM(k)>>>(
        a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse, Dv, (const bf16 *)Q, (const bf16 *)K, (const bf16 *)V, nullptr);
    CUDA_LAUNCH_CHECK();
    cm_attn_wgmma_runs++;
    return true;
}

bool attn_bwd_wgmma(const cm_kctx *k, const att_args &a, void *dQ, void *dK, void *dV, const void *dO, const float *lse,
                    const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                    const int64_t *vs) {
    if (!attn_wgmma_applies(k, a, K, ks, V, vs) || !vec_ok(Q, qs, a.D) || !vec_ok_do(a, dO)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_dkv_wgmma<true>, WG_BWD_SMEM, done)) return false;
    const int64_t n = a.B * a.H * a.Lq * 128;
    float *acc = attn_dq_sums(k, n);
    dim3 grid((unsigned)((a.Lk + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_dkv_wgmma<true><<<grid, WG_GROUPS * 128, WG_BWD_SMEM, KSTREAM(k)>>>(
        a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse, Dv, (const bf16 *)Q, (const bf16 *)K, (const bf16 *)V, acc);
    CUDA_LAUNCH_CHECK();
    attn_dq_round(k, dQ, acc, n, a.scale);
    cuda_tmp_free(k, acc);
    cm_attn_wgmma_runs++;
    return true;
}

// =============================================================================================
// the instruction's ceiling (`cameo bench gpu`)
// =============================================================================================
// a warpgroup a block issuing wgmma m64nNk16 with A from registers — N = 128 as O += P V (B
// MN-major), N = 64 as S = Q K^T (B K-major) — in commit groups of 4 on one accumulator, one group
// in flight while the next is issued; B is a shared tile of ones, A ones: each product adds 16 to
// every element, a thread's sum is N / 2 * 64 * iters (checked by the host)
template <int N> __global__ void __launch_bounds__(128) k_ceiling_wgmma(int iters, float *out) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const uint32_t one = 0x3f803f80u;  // two bf16 ones
    for (int i = threadIdx.x; i < WG_TILE / 16; i += blockDim.x) ((uint4 *)smem)[i] = make_uint4(one, one, one, one);
    fence_proxy_async();
    __syncthreads();
    const uint32_t sb = smem_u32(smem), a[4] = {one, one, one, one};
    float d[N / 2];
#pragma unroll
    for (int i = 0; i < N / 2; i++) d[i] = 0.f;
    for (int i = 0; i < iters; i++) {
        wg_fence();
#pragma unroll
        for (int c = 0; c < 4; c++) {
            if constexpr (N == 128) wgmma_o(d, a, wg_desc(sb + c * 2048, WG_HALF, 1024), 1);
            else wgmma_s(d, a, wg_desc(sb + c * 32, 16, 1024), 1);
        }
        wg_commit();
        wg_wait<1>();
    }
    wg_wait<0>();
    wg_reg_fence<N / 2>(d);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < N / 2; i++) sum += d[i];
    out[(size_t)blockIdx.x * blockDim.x + threadIdx.x] = sum;
#endif
}

// ms a launch of `waves` full waves of blocks x `iters` steps of m64nNk16 (N = 64 or 128); -1: a
// sum was wrong, -2: no wgmma on this device or in this build; *tflops the rate, *nblocks the blocks
extern "C" double cuda_ceiling_wgmma(const cm_kctx *k, int n, int waves, int iters, int reps, double *tflops, int *nblocks) {
    *tflops = 0, *nblocks = 0;
    if (cuda_ext(k)->cc_major != 9 || !wgmma_probe(k)) return -2;
    const size_t smem = WG_TILE + 1024;
    const int blocks = *nblocks = n == 128 ? ceiling_blocks(k, k_ceiling_wgmma<128>, 128, smem, waves)
                                           : ceiling_blocks(k, k_ceiling_wgmma<64>, 128, smem, waves);
    const float want = (float)(n / 2 * 64) * (float)iters;
    const double ms = ceiling_run(k, (int64_t)blocks * 128, want, reps, [&](float *d) {
        if (n == 128) k_ceiling_wgmma<128><<<blocks, 128, smem, KSTREAM(k)>>>(iters, d);
        else k_ceiling_wgmma<64><<<blocks, 128, smem, KSTREAM(k)>>>(iters, d);
    });
    if (ms > 0) *tflops = (double)blocks * iters * 4 * (2.0 * 64 * n * 16) / (ms * 1e-3) / 1e12;
    return ms;
}
