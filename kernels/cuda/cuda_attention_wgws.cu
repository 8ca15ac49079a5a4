// cuda_attention_wgws.cu — the flash attention forward, dQ and dK dV kernels on wgmma,
// warp-specialised as FlashAttention-3 arranges them (CAMEO_ATTN=wgmma3), head dim 128, the same
// products as cuda_attention_wgmma.cu's split kernels (their steps shared: cuda_wgmma.cuh). The forward:
//   producer   a third warpgroup brings every 64-key K / V tile of the block's (b, h) by cp.async
//              into a ring of stages (ws_ring), and signals each stage full on its own named barriers;
//              it waits for a stage's "empty" barrier before refilling it. It gives up registers
//              (setmaxnreg.dec to 32) so that the consumers may take 240 (setmaxnreg.inc): the
//              register file is split among the SM's four schedulers, and without that a block of
//              12 warps leaves each thread 168 (ptxas then spills and serialises the wgmma)
//   consumers  two warpgroups of 64 queries each, as in k_att_fwd_wgmma (Q in registers, S by 8
//              wgmma m64n64k16, the online softmax in registers, O += P V by 4 wgmma m64n128k16, the
//              softmax of tile j + 1 beside the P V product of tile j), but with no __syncthreads:
//              each waits for a stage's "full" barrier (one per group, so the groups do not meet
//              there: session 25; one shared "full" held them in step at every tile, and the
//              tensor cores idle during the second group's softmax), release it on its "empty"
//              one, and take turns
//              to issue their products (the "turn" barriers: group 0's products, then group 1's,
//              then group 0's next), so that one group's softmax runs while the other's products
//              occupy the tensor cores — FlashAttention-3's ping-pong.
// k_att_fwd_wgmma's rounds ended in a __syncthreads that held both groups in step, their softmax
// at the same time and the tensor cores idle meanwhile; an H200 profile found "no eligible warp"
// in 55 % of cycles (docs/performance.md, session 22). Checked on the CUDA emulator (both thread
// orders; it implements bar.sync / bar.arrive and reports a deadlock or an unfinished barrier);
// not yet timed on a GPU.
#include "cuda_wgmma.cuh"

#define WS_THREADS ((WG_GROUPS + 1) * 128)  // two consumer warpgroups, then the producer's
#define WS_FULL_N (2 * 128)                 // a "full" barrier's threads: the producer and one group
// the ring of the forward and dQ kernels: stages of KT 64-key tiles of K, then KT of V (KT = 2:
// the forward's 128 keys a step, CAMEO_WGMMA3_KEYS=128), and its named barriers (0 is
// __syncthreads'): stage s full for consumer group w (the producer's arrival and that group's
// wait; a "full" both groups waited on would hold them in step at every tile, so that one group
// could not issue its next products while the other is in its softmax), stage s empty (the
// producer waits, both groups arrive), consumer group w's turn
template <int KT> struct ws_ring {
    static constexpr int stages = KT == 1 ? 4 : 3;  // 128 KiB / 192 KiB in flight
    static constexpr int keys = 64 * KT;
    static constexpr int stage_bytes = 2 * KT * WG_TILE;
    static constexpr int smem = stages * stage_bytes + 1024;
    __host__ __device__ static constexpr int full(int st, int w) { return 1 + st * WG_GROUPS + w; }
    __host__ __device__ static constexpr int empty(int st) { return 1 + stages * WG_GROUPS + st; }
    __host__ __device__ static constexpr int turn(int w) { return 1 + stages * (WG_GROUPS + 1) + w; }
};
static_assert(ws_ring<1>::turn(1) <= 15 && ws_ring<2>::turn(1) <= 15, "16 named barriers");

// the producer publishes a stage to each consumer group (its copies landed and fenced)
__device__ __forceinline__ void ws_publish(int full0) {
    for (int w = 0; w < WG_GROUPS; w++) nb_arrive(full0 + w, WS_FULL_N);
}

// setmaxnreg: this warpgroup's registers a thread, raised (waiting for the pool) or lowered
template <int N> __device__ __forceinline__ void wg_regs_inc() {
#ifndef CAMEO_CUDA_EMULATED
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N> __device__ __forceinline__ void wg_regs_dec() {
#ifndef CAMEO_CUDA_EMULATED
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// the producer of the forward and dQ kernels (the third warpgroup): every step of keys (KT 64-key
// K / V tiles) of the block's (b, h) into the ring, each published on its stage's "full" barriers
// once this thread's copies landed, a stage refilled after its "empty" one. Each thread copies
// chunk c of rows r0, r0 + 8, ... (the swizzle of r0 + 8 k is r0's, the row 1024 bytes on): few
// live registers at the producer's 32.
template <int KT>
__device__ __forceinline__ void ws_kv_produce(unsigned char *smem, const att_args &a, const bf16 *Kb, const bf16 *Vb,
                                              int64_t nt) {
    using R = ws_ring<KT>;
    wg_regs_dec<32>();
    const int pt = threadIdx.x - WG_GROUPS * 128, r0 = pt >> 4, c = (pt & 15) * 8;
    for (int64_t j = 0; j < nt; j++) {
        const int st = (int)(j % R::stages);
        if (j >= R::stages) nb_sync(R::empty(st), WS_THREADS);  // step j - stages consumed
        for (int i = 0; i < KT; i++) {
            const int64_t k0 = j * R::keys + i * WG_KEYS;
            const int kvalid = (int)max((int64_t)0, min((int64_t)WG_KEYS, a.Lk - k0));
            for (int v = 0; v < 2; v++) {
                const int64_t rs = v ? a.vs2 : a.ks2;
                const bf16 *base = v ? Vb : Kb, *src = base + (k0 + r0) * rs + c;
                unsigned char *dst = smem + (size_t)st * R::stage_bytes + (v * KT + i) * WG_TILE + wg_swz(r0, c);
#pragma unroll 1
                for (int r = r0; r < WG_KEYS; r += 8, src += 8 * rs, dst += 1024)
                    cp_async16(dst, r < kvalid ? src : base, r < kvalid ? 16 : 0);
            }
        }
        cp_async_commit();
        if (j > 0) {  // step j - 1 has landed (this thread's copies): published to the consumers
            cp_async_wait<1>();
            fence_proxy_async();
            ws_publish(R::full((int)((j - 1) % R::stages), 0));
        }
    }
    cp_async_wait<0>();
    fence_proxy_async();
    ws_publish(R::full((int)((nt - 1) % R::stages), 0));
}

// the kernels' bodies: the block's query (key) tile bx of head bh = b * H + h. The forward takes
// KT 64-key tiles a step (64 or 128 keys)
template <int KT>
__device__ __forceinline__ void att_fwd_wgws(const att_args &a, bf16 *O, float *lse, const bf16 *Q, const bf16 *K,
                                             const bf16 *V, int64_t bx, int64_t bh) {
    using R = ws_ring<KT>;
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const uint32_t sbase = smem_u32(smem);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, wg = warp >> 2;
    const int64_t b = bh / a.H, h = bh % a.H;
    const bf16 *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const int64_t nt = (a.Lk + R::keys - 1) / R::keys;

    if (wg == WG_GROUPS) {  // the producer warpgroup
        ws_kv_produce<KT>(smem, a, Kb, Vb, nt);
        return;
    }

    wg_regs_inc<240>();
    const int64_t q0 = bx * (64 * WG_GROUPS) + warp * 16;  // this warp's 16 rows
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1;
    const float *mr = mask_rows(a, b, h);
    uint32_t qf[8][4];
    rows_to_a<8>(qf, Qb, a.qs2, q0, a.Lq, 128, g, t);
    float o[16][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < 16; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    auto ktile = [&](int64_t j) { return sbase + (uint32_t)(j % R::stages) * R::stage_bytes; };
    float s[8 * KT][4], alpha[2];
    uint32_t pa[4 * KT][4];
    wg_zero<32 * KT>(&s[0][0]);
    auto issue_s = [&](int64_t j) { wg_issue_s<KT>(s, qf, ktile(j)); };  // S = Q K^T for step j
    auto issue_pv = [&](int64_t j) { wg_issue_pv<KT>(o, pa, ktile(j) + KT * WG_TILE); };  // O += P V for step j
    auto softmax_of = [&](int64_t j) {
        const int64_t k0 = j * R::keys;
        const bool plain = !mr && k0 + R::keys <= a.Lk && a.scale > 0.f;
        online_softmax<8 * KT>(s, m, l, alpha, a, mr, q0, k0, plain, g, t);
    };
    // turns: each group issues nt + 1 times (S of tile 0, nt - 1 rounds, the last P V); group 0
    // first. Group w waits at its own barrier and, having issued, arrives at the other's; group 1
    // starts with one arrival and leaves out its last, so each barrier sees nt + 1 whole phases.
    auto turn_take = [&] { nb_sync(R::turn(wg), WG_GROUPS * 128); };
    auto turn_give = [&](bool last) {
        if (!(wg == 1 && last)) nb_arrive(R::turn(wg ^ 1), WG_GROUPS * 128);
    };
    if (wg == 1) nb_arrive(R::turn(0), WG_GROUPS * 128);

    nb_sync(R::full(0, wg), WS_FULL_N);
    turn_take();
    issue_s(0);
    turn_give(false);
    wg_wait<0>();
    wg_reg_fence<32 * KT>(&s[0][0]);
    softmax_of(0);  // O is still zero: alpha has nothing to scale
#pragma unroll
    for (int c = 0; c < 4 * KT; c++) acc_to_a(pa[c], s[2 * c], s[2 * c + 1]);
    for (int64_t j = 0; j + 1 < nt; j++) {
        nb_sync(R::full((int)((j + 1) % R::stages), wg), WS_FULL_N);
        turn_take();
        issue_s(j + 1);  // its wgmma.fence also orders the writes of pa and o
        issue_pv(j);
        turn_give(false);
        wg_wait<1>();  // S of step j + 1; P V may still run
        wg_reg_fence<32 * KT>(&s[0][0]);
        softmax_of(j + 1);
        wg_wait<0>();
        wg_reg_fence<64>(&o[0][0]);
        // tile j is done with (its S in the last round, its P V now): the producer may refill its
        // stage, if it has a tile left for it
        if (j + R::stages < nt) nb_arrive(R::empty((int)(j % R::stages)), WS_THREADS);
        wg_rescale_pack<KT>(o, alpha, pa, s);
    }
    turn_take();
    wg_fence();
    issue_pv(nt - 1);
    turn_give(true);
    wg_wait<0>();
    wg_reg_fence<64>(&o[0][0]);
    softmax_store<16>(a, O, lse, o, m, l, b, h, q0, g, t);
#endif
}

// dQ (CAMEO_ATTN=wgmma3's query side): the forward's producer and ring of K / V tiles; the
// consumers' steps are k_att_dq_wgmma's (S and dP, dS, dQ += dS K), their S and dP issued in turns
__device__ __forceinline__ void att_dq_wgws(const att_args &a, bf16 *dQ, const bf16 *dO, const float *lse, const float *Dv,
                                            const bf16 *Q, const bf16 *K, const bf16 *V, int64_t bx, int64_t bh) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const uint32_t sbase = smem_u32(smem);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, wg = warp >> 2;
    const int64_t b = bh / a.H, h = bh % a.H;
    const bf16 *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const int64_t nt = (a.Lk + WG_KEYS - 1) / WG_KEYS;
    if (wg == WG_GROUPS) {
        ws_kv_produce<1>(smem, a, Kb, Vb, nt);
        return;
    }

    wg_regs_inc<240>();
    const int64_t q0 = bx * (64 * WG_GROUPS) + warp * 16;  // this warp's 16 rows
    const float *mr = mask_rows(a, b, h);
    uint32_t qf[8][4], of[8][4];  // this warp's Q and dO rows as A fragments
    rows_to_a<8>(qf, Q + b * a.qs0 + h * a.qs1, a.qs2, q0, a.Lq, 128, g, t);
    rows_to_a<8>(of, do_row(a, dO, b, h, 0), a.gs2, q0, a.Lq, 128, g, t);
    float L[2], Di[2], dq[16][4];  // L: log2 units
    bwd_row_stats(a, lse, Dv, bh, q0, g, L, Di);
#pragma unroll
    for (int n = 0; n < 16; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
    using R = ws_ring<1>;
    if (wg == 1) nb_arrive(R::turn(0), WG_GROUPS * 128);  // turns: nt issues a group, group 0 first
    float s[8][4], dp[8][4];  // S, dP of each tile (overwritten by its first products)
    wg_zero<32>(&s[0][0]);
    wg_zero<32>(&dp[0][0]);
    for (int64_t j = 0; j < nt; j++) {
        const int st = (int)(j % R::stages);
        const uint32_t kt = sbase + (uint32_t)st * R::stage_bytes, vt = kt + WG_TILE;
        nb_sync(R::full(st, wg), WS_FULL_N);
        nb_sync(R::turn(wg), WG_GROUPS * 128);
        dq_issue_sdp(s, dp, qf, of, kt, vt);
        if (!(wg == 1 && j + 1 == nt)) nb_arrive(R::turn(wg ^ 1), WG_GROUPS * 128);
        wg_wait<0>();
        wg_reg_fence<32>(&s[0][0]);
        wg_reg_fence<32>(&dp[0][0]);
        dq_probs_issue(dq, s, dp, L, Di, a, mr, q0, j * WG_KEYS, g, t, kt);
        wg_wait<0>();
        wg_reg_fence<64>(&dq[0][0]);
        if (j + R::stages < nt) nb_arrive(R::empty(st), WS_THREADS);  // the stage's readers are done
    }
    dq_store<16>(a, dQ, dq, bh, q0, g, t);
#endif
}

// dK, dV (CAMEO_ATTN=wgmma3's key side; dQ stays wgmma's): one block per (128 keys, b*h), the
// same products per query tile as k_att_dkv_wgmma (split), warp-specialised as the forward: the
// producer warpgroup brings the block's K and V tiles once ("K V loaded"), then each 64-query tile
// of Q and dO with its lse (log2 units) and D into a ring of WB_STAGES stages ("full" / "empty");
// the two consumer warpgroups (64 keys each) take turns to issue S^T and dP^T, so that one's
// elementwise P^T, dS^T overlaps the other's products, where k_att_dkv_wgmma's __syncthreads at
// every tile held them in step.
// FUSED (CAMEO_ATTN_BWD=fused): dQ too, as k_att_dkv_wgmma<true> (cuda_wgmma.cuh, ds_store /
// dq_from_ds), with no dQ kernel: each group stores its dS^T, and after the "dS" barrier (both
// groups' stored) each takes its half of the tile's dQ from both. Two buffers, query tiles
// alternating: the groups do not meet at "full", so a group may store tile u + 1's while the other
// still reads tile u's; it stores tile u + 2's only past tile u + 1's "dS" barrier, which the other
// group reaches once its tile u dQ has landed.
#define WB_STAGES 3
#define WB_STAGE (2 * WG_TILE + 1024)  // Q, dO; then lse [64], D [64] (512 bytes, the stage kept 1024-aligned)
#define WB_SMEM (4 * WG_TILE + WB_STAGES * WB_STAGE + 1024)
#define WB_SMEM_FUSED (WB_SMEM + 2 * WG_GROUPS * WG_DS_TILE)  // and the dS^T tiles: two buffers of both groups
#define WB_BAR_KV 1  // K and V loaded: the producer and both groups, once
#define WB_BAR_FULL(s, w) (2 + (s) * WG_GROUPS + (w))  // as ws_ring's: WS_FULL_N threads
#define WB_BAR_EMPTY(s) (2 + WB_STAGES * WG_GROUPS + (s))
#define WB_BAR_TURN(w) (2 + WB_STAGES * (WG_GROUPS + 1) + (w))
#define WB_BAR_DS (WB_BAR_TURN(WG_GROUPS))  // FUSED: both consumer groups' dS^T of the tile stored
static_assert(WB_BAR_DS <= 15, "16 named barriers");

template <bool FUSED>
__device__ __forceinline__ void att_dkv_wgws(const att_args &a, bf16 *dK, bf16 *dV, const bf16 *dO, const float *lse,
                                             const float *Dv, const bf16 *Q, const bf16 *K, const bf16 *V, int64_t bx,
                                             int64_t bh, float *dqacc) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, wg = warp >> 2;
    const int64_t b = bh / a.H, h = bh % a.H;
    const int64_t kb = bx * (64 * WG_GROUPS);  // the block's keys
    const int64_t nq = (a.Lq + 63) / 64;
    // K of group w at tile w, V at 2 + w; stage s: Q, dO, stats
    auto tile = [&](int i) { return smem + (size_t)i * WG_TILE; };
    auto stage = [&](int st) { return smem + 4 * WG_TILE + (size_t)st * WB_STAGE; };
    // FUSED: buffer i of the dS^T tiles (group 0's, then group 1's), after the stages
    auto dsbuf = [&](int64_t i) { return smem + 4 * WG_TILE + WB_STAGES * WB_STAGE + (size_t)(i & 1) * WG_GROUPS * WG_DS_TILE; };

    if (wg == WG_GROUPS) {  // the producer warpgroup
        wg_regs_dec<32>();
        const int pt = threadIdx.x - WG_GROUPS * 128;
        const bf16 *Qb = Q + b * a.qs0 + h * a.qs1, *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
        const bf16 *Ob = do_row(a, dO, b, h, 0);
        for (int idx = pt; idx < 2 * 2 * 64 * 16; idx += 128) {  // the block's K and V rows (both groups)
            const int v = idx >> 11, grp = (idx >> 10) & 1, r = (idx >> 4) & 63, c = (idx & 15) * 8;
            const int64_t j = kb + 64 * grp + r;
            const bf16 *src = v ? Vb + j * a.vs2 + c : Kb + j * a.ks2 + c;
            const bool in = j < a.Lk;
            cp_async16(tile(2 * v + grp) + wg_swz(r, c), in ? src : (v ? Vb : Kb), in ? 16 : 0);
        }
        cp_async_commit();
        for (int64_t u = 0; u < nq; u++) {
            const int st = (int)(u % WB_STAGES);
            if (u >= WB_STAGES) nb_sync(WB_BAR_EMPTY(st), WS_THREADS);  // tile u - WB_STAGES consumed
            const int64_t q0 = u * 64;
            const int qvalid = (int)min((int64_t)64, a.Lq - q0);
            unsigned char *sp = stage(st);
            // this thread: chunk c of rows r0, r0 + 8, ... of Q, then of dO (the swizzle of r0 + 8 k
            // is r0's, the row 1024 bytes on): few live registers at the producer's 32
            const int r0 = pt >> 4, c = (pt & 15) * 8;
            for (int o = 0; o < 2; o++) {
                const int64_t rs = o ? a.gs2 : a.qs2;
                const bf16 *base = o ? Ob : Qb, *src = base + (q0 + r0) * rs + c;
                unsigned char *dst = sp + o * WG_TILE + wg_swz(r0, c);
#pragma unroll 1
                for (int r = r0; r < 64; r += 8, src += 8 * rs, dst += 1024)
                    cp_async16(dst, r < qvalid ? src : base, r < qvalid ? 16 : 0);
            }
            float *Ls = (float *)(sp + 2 * WG_TILE), *Ds = Ls + 64;
            if (pt < 64) {
                Ls[pt] = pt < qvalid ? lse[bh * a.Lq + q0 + pt] * LOG2E : -INFINITY;
                Ds[pt] = pt < qvalid ? Dv[bh * a.Lq + q0 + pt] : 0.f;
            }
            cp_async_commit();
            cp_async_wait<1>();  // K and V (u = 0) or tile u - 1: landed (this thread's copies)
            fence_proxy_async();
            if (u == 0) nb_arrive(WB_BAR_KV, WS_THREADS);
            else ws_publish(WB_BAR_FULL((int)((u - 1) % WB_STAGES), 0));
        }
        cp_async_wait<0>();
        fence_proxy_async();
        ws_publish(WB_BAR_FULL((int)((nq - 1) % WB_STAGES), 0));
        return;
    }

    wg_regs_inc<240>();
    const int64_t j0 = kb + 64 * wg + 16 * (warp & 3);  // this warp's 16 keys
    const float *mr = mask_rows(a, b, h);
    const bool plain = !mr && kb + 64 * WG_GROUPS <= a.Lk;  // every key of the block real, no mask
    float dk[16][4], dv[16][4];
#pragma unroll
    for (int n = 0; n < 16; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) dk[n][i] = dv[n][i] = 0.f;
    const uint32_t kt = smem_u32(tile(wg)), vt = smem_u32(tile(2 + wg));
    // turns as in the forward: each group issues S^T, dP^T nq times, group 0 first
    if (wg == 1) nb_arrive(WB_BAR_TURN(0), WG_GROUPS * 128);
    nb_sync(WB_BAR_KV, WS_THREADS);
    float s[8][4], dp[8][4];  // S^T, dP^T of each tile: rows = this warp's keys, columns = the tile's queries
    wg_zero<32>(&s[0][0]);
    wg_zero<32>(&dp[0][0]);
    for (int64_t u = 0; u < nq; u++) {
        const int st = (int)(u % WB_STAGES);
        unsigned char *sp = stage(st);
        const uint32_t qt = smem_u32(sp), ot = qt + WG_TILE;
        const float *Ls = (const float *)(sp + 2 * WG_TILE), *Ds = Ls + 64;
        nb_sync(WB_BAR_FULL(st, wg), WS_FULL_N);
        nb_sync(WB_BAR_TURN(wg), WG_GROUPS * 128);
        dkv_issue_sdp(s, dp, kt, vt, qt, ot);
        if (!(wg == 1 && u + 1 == nq)) nb_arrive(WB_BAR_TURN(wg ^ 1), WG_GROUPS * 128);
        wg_wait<0>();
        wg_reg_fence<32>(&s[0][0]);
        wg_reg_fence<32>(&dp[0][0]);
        uint32_t pa[4][4], da[4][4];
        dkv_probs(s, dp, pa, da, Ls, Ds, a, mr, plain, u * 64, j0, g, t);
        if constexpr (FUSED) ds_store(dsbuf(u) + wg * WG_DS_TILE, da, warp, g, t);
        dkv_issue_grads(dv, dk, pa, da, ot, qt);
        if constexpr (FUSED) {
            nb_sync(WB_BAR_DS, WG_GROUPS * 128);  // both groups' dS^T of tile u are stored
            dq_from_ds(dqacc, a, smem_u32(dsbuf(u)), smem_u32(tile(0)), wg, bh, u * 64, warp, g, t);
        } else
            wg_wait<0>();
        wg_reg_fence<64>(&dv[0][0]);
        wg_reg_fence<64>(&dk[0][0]);
        if (u + WB_STAGES < nq) nb_arrive(WB_BAR_EMPTY(st), WS_THREADS);  // the stage's readers are done
    }
    dkv_store(a, dK, dV, dk, dv, bh, j0, g, t);
#endif
}

// One problem a launch (grid: tiles x B*H), or two in one launch (a FLUX block's joint attention
// and its IP attention, which reads the block's raw query, not the joint attention's output): their
// blocks on one 1-D grid, the first problem's first, so the second's fill the SMs the first's last
// wave leaves idle — at the 512² step's shapes 288 blocks of the joint attention are 2.2 waves of
// the H200's 132 SMs and 192 of the IP attention 1.5: 5 rounds of blocks apart, about 4 together.
// job_of: this block's problem and its (tile, head) there (the jobs read where the launch put
// them: __grid_constant__)
__device__ __forceinline__ const att_job &job_of(const att_jobs &p, int64_t &bx, int64_t &bh) {
    const int w = (int64_t)blockIdx.x >= p.n0;
    const att_job &J = p.j[w];
    const int64_t i = (int64_t)blockIdx.x - (w ? p.n0 : 0);
    bx = i % J.tiles, bh = i / J.tiles;
    return J;
}

template <int KT>
__global__ void __launch_bounds__(WS_THREADS, 1) k_att_fwd_wgws(att_args a, bf16 *O, float *lse, const bf16 *Q,
                                                                 const bf16 *K, const bf16 *V) {
    att_fwd_wgws<KT>(a, O, lse, Q, K, V, blockIdx.x, blockIdx.y);
}
template <int KT>
__global__ void __launch_bounds__(WS_THREADS, 1) k_att_fwd_wgws2(const __grid_constant__ att_jobs p) {
    int64_t bx, bh;
    const att_job &J = job_of(p, bx, bh);
    att_fwd_wgws<KT>(J.a, J.O, J.lse, J.Q, J.K, J.V, bx, bh);
}
__global__ void __launch_bounds__(WS_THREADS, 1) k_att_dq_wgws(att_args a, bf16 *dQ, const bf16 *dO, const float *lse,
                                                                const float *Dv, const bf16 *Q, const bf16 *K,
                                                                const bf16 *V) {
    att_dq_wgws(a, dQ, dO, lse, Dv, Q, K, V, blockIdx.x, blockIdx.y);
}
__global__ void __launch_bounds__(WS_THREADS, 1) k_att_dq_wgws2(const __grid_constant__ att_jobs p) {
    int64_t bx, bh;
    const att_job &J = job_of(p, bx, bh);
    att_dq_wgws(J.a, J.dQ, J.dO, J.lse, J.Dv, J.Q, J.K, J.V, bx, bh);
}
template <bool FUSED>
__global__ void __launch_bounds__(WS_THREADS, 1) k_att_dkv_wgws(att_args a, bf16 *dK, bf16 *dV, const bf16 *dO,
                                                                 const float *lse, const float *Dv, const bf16 *Q,
                                                                 const bf16 *K, const bf16 *V, float *dqacc) {
    att_dkv_wgws<FUSED>(a, dK, dV, dO, lse, Dv, Q, K, V, blockIdx.x, blockIdx.y, dqacc);
}
template <bool FUSED>
__global__ void __launch_bounds__(WS_THREADS, 1) k_att_dkv_wgws2(const __grid_constant__ att_jobs p) {
    int64_t bx, bh;
    const att_job &J = job_of(p, bx, bh);
    att_dkv_wgws<FUSED>(J.a, J.dK, J.dV, J.dO, J.lse, J.Dv, J.Q, J.K, J.V, bx, bh, J.dqacc);
}

// launches of the kernels: the tests prove CAMEO_ATTN=wgmma3 ran them, not wgmma's
// (0 forward, 1 dQ, 2 dK dV, 3 the pair launches of either pass, 4 the fused backward, 5 forwards
// of 128 keys a step)
static int64_t g_wgws_runs[6];
extern "C" int64_t cuda_attn_wgws_runs(int which) { return __atomic_load_n(&g_wgws_runs[which], __ATOMIC_RELAXED); }

// the forward's keys a step: 64, or 128 with CAMEO_WGMMA3_KEYS=128 (FlashAttention-3 takes 128 or
// more at head dim 128: half the barriers, turns and waits per product; 192 KiB of ring for three
// stages, 64 and 32 more registers a thread for S and P). cuda_attn_wgws_keys_use: the benchmark's
// override (0: back to the environment)
static int g_wgws_keys = -1, g_wgws_keys_force;
extern "C" void cuda_attn_wgws_keys_use(int keys) { g_wgws_keys_force = keys == 64 || keys == 128 ? keys : 0; }
static int wgws_keys(void) {
    if (g_wgws_keys_force) return g_wgws_keys_force;
    if (g_wgws_keys < 0) {
        const char *e = getenv("CAMEO_WGMMA3_KEYS");
        g_wgws_keys = e && *e ? atoi(e) : 64;
        if (g_wgws_keys != 64 && g_wgws_keys != 128)
            cm_die("cuda attention", "CAMEO_WGMMA3_KEYS='%s' (allowed: 64, 128)", e);
    }
    return g_wgws_keys;
}

// the forward launches at KT 64-key tiles a step (one problem, or a pair: which counts as 0 or 3)
template <int KT> static void fwd_wgws_counted(int which) {
    cm_attn_wgmma_runs++;
    __atomic_fetch_add(&g_wgws_runs[which], 1, __ATOMIC_RELAXED);
    if (KT == 2) __atomic_fetch_add(&g_wgws_runs[5], 1, __ATOMIC_RELAXED);
}
template <int KT>
static bool fwd_wgws_at(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const void *K,
                        const void *V) {
    static int done[16];
    if (!smem_ok(k, k_att_fwd_wgws<KT>, ws_ring<KT>::smem, done)) return false;
    dim3 grid((unsigned)((a.Lq + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_fwd_wgws<KT><<<grid, WS_THREADS, ws_ring<KT>::smem, KSTREAM(k)>>>(a, (bf16 *)O, lse, (const bf16 *)Q,
                                                                          (const bf16 *)K, (const bf16 *)V);
    CUDA_LAUNCH_CHECK();
    fwd_wgws_counted<KT>(0);
    return true;
}

bool attn_fwd_wgws(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                   const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    (void)qs;
    if (!attn_wgmma_applies(k, a, K, ks, V, vs)) return false;
    return wgws_keys() == 128 ? fwd_wgws_at<2>(k, a, O, lse, Q, K, V) : fwd_wgws_at<1>(k, a, O, lse, Q, K, V);
}

bool attn_dkv_wgws(const cm_kctx *k, const att_args &a, void *dK, void *dV, const void *dO, const float *lse,
                   const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                   const int64_t *vs) {
    if (!attn_wgmma_applies(k, a, K, ks, V, vs) || !vec_ok(Q, qs, a.D) || !vec_ok_do(a, dO)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_dkv_wgws<false>, WB_SMEM, done)) return false;
    dim3 grid((unsigned)((a.Lk + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_dkv_wgws<false><<<grid, WS_THREADS, WB_SMEM, KSTREAM(k)>>>(a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse,
                                                                    Dv, (const bf16 *)Q, (const bf16 *)K,
                                                                    (const bf16 *)V, nullptr);
    CUDA_LAUNCH_CHECK();
    cm_attn_wgmma_runs++;
    __atomic_fetch_add(&g_wgws_runs[2], 1, __ATOMIC_RELAXED);
    return true;
}

// the fused backward (CAMEO_ATTN_BWD=fused): dK, dV and dQ in one warp-specialised kernel, dQ's f32
// sums by atomics (their order, so dQ's last bits, vary from run to run), then rounded
bool attn_bwd_wgws(const cm_kctx *k, const att_args &a, void *dQ, void *dK, void *dV, const void *dO, const float *lse,
                   const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                   const int64_t *vs) {
    if (!attn_wgmma_applies(k, a, K, ks, V, vs) || !vec_ok(Q, qs, a.D) || !vec_ok_do(a, dO)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_dkv_wgws<true>, WB_SMEM_FUSED, done)) return false;
    const int64_t n = a.B * a.H * a.Lq * 128;
    float *acc = attn_dq_sums(k, n);
    dim3 grid((unsigned)((a.Lk + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_dkv_wgws<true><<<grid, WS_THREADS, WB_SMEM_FUSED, KSTREAM(k)>>>(
        a, (bf16 *)dK, (bf16 *)dV, (const bf16 *)dO, lse, Dv, (const bf16 *)Q, (const bf16 *)K, (const bf16 *)V, acc);
    CUDA_LAUNCH_CHECK();
    attn_dq_round(k, dQ, acc, n, a.scale);
    cuda_tmp_free(k, acc);
    cm_attn_wgmma_runs++;
    __atomic_fetch_add(&g_wgws_runs[4], 1, __ATOMIC_RELAXED);
    return true;
}

bool attn_dq_wgws(const cm_kctx *k, const att_args &a, void *dQ, const void *dO, const float *lse, const float *Dv,
                  const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    (void)qs;
    if (!attn_wgmma_applies(k, a, K, ks, V, vs)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_dq_wgws, ws_ring<1>::smem, done)) return false;
    dim3 grid((unsigned)((a.Lq + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_dq_wgws<<<grid, WS_THREADS, ws_ring<1>::smem, KSTREAM(k)>>>(a, (bf16 *)dQ, (const bf16 *)dO, lse, Dv, (const bf16 *)Q,
                                                            (const bf16 *)K, (const bf16 *)V);
    CUDA_LAUNCH_CHECK();
    cm_attn_wgmma_runs++;
    __atomic_fetch_add(&g_wgws_runs[1], 1, __ATOMIC_RELAXED);
    return true;
}

// the pair launches (attention of two problems in one grid): both problems bf16, head dim 128, for
// these kernels (attn_wgmma_applies, 16-byte Q / dO rows for the backward); false where not
bool attn_pair_applies(const cm_kctx *k, const att_job *j, bool bwd) {
    for (int w = 0; w < 2; w++) {
        const att_args &a = j[w].a;
        const int64_t qs[3] = {a.qs0, a.qs1, a.qs2}, ks[3] = {a.ks0, a.ks1, a.ks2}, vs[3] = {a.vs0, a.vs1, a.vs2};
        if (!attn_wgmma_applies(k, a, j[w].K, ks, j[w].V, vs)) return false;
        if (bwd && (!vec_ok(j[w].Q, qs, a.D) || !vec_ok_do(a, j[w].dO))) return false;
    }
    return true;
}
// the grid of a pair: tiles of 128 rows (queries, or keys for dK dV) of each problem, x B*H
static unsigned attn_pair_grid(att_jobs &p, bool keys) {
    for (int w = 0; w < 2; w++) p.j[w].tiles = ((keys ? p.j[w].a.Lk : p.j[w].a.Lq) + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS);
    p.n0 = p.j[0].tiles * p.j[0].a.B * p.j[0].a.H;
    return (unsigned)(p.n0 + p.j[1].tiles * p.j[1].a.B * p.j[1].a.H);
}

template <int KT> static bool fwd_wgws2_at(const cm_kctx *k, const att_job *j) {
    static int done[16];
    if (!smem_ok(k, k_att_fwd_wgws2<KT>, ws_ring<KT>::smem, done)) return false;
    att_jobs p = {{j[0], j[1]}, 0};
    const unsigned blocks = attn_pair_grid(p, false);
    k_att_fwd_wgws2<KT><<<blocks, WS_THREADS, ws_ring<KT>::smem, KSTREAM(k)>>>(p);
    CUDA_LAUNCH_CHECK();
    fwd_wgws_counted<KT>(3);
    return true;
}

bool attn_fwd_wgws2(const cm_kctx *k, const att_job *j) {
    if (!attn_pair_applies(k, j, false)) return false;
    return wgws_keys() == 128 ? fwd_wgws2_at<2>(k, j) : fwd_wgws2_at<1>(k, j);
}

bool attn_bwd_wgws2(const cm_kctx *k, const att_job *j) {
    static int done_q[16], done_kv[16];
    if (!attn_pair_applies(k, j, true) || !smem_ok(k, k_att_dq_wgws2, ws_ring<1>::smem, done_q) ||
        !smem_ok(k, k_att_dkv_wgws2<false>, WB_SMEM, done_kv))
        return false;
    att_jobs p = {{j[0], j[1]}, 0};
    unsigned blocks = attn_pair_grid(p, false);
    k_att_dq_wgws2<<<blocks, WS_THREADS, ws_ring<1>::smem, KSTREAM(k)>>>(p);
    CUDA_LAUNCH_CHECK();
    blocks = attn_pair_grid(p, true);
    k_att_dkv_wgws2<false><<<blocks, WS_THREADS, WB_SMEM, KSTREAM(k)>>>(p);
    CUDA_LAUNCH_CHECK();
    cm_attn_wgmma_runs++;
    __atomic_fetch_add(&g_wgws_runs[3], 1, __ATOMIC_RELAXED);
    return true;
}

bool attn_bwd_wgws2_fused(const cm_kctx *k, const att_job *j) {
    static int done[16];
    if (!attn_pair_applies(k, j, true) || !smem_ok(k, k_att_dkv_wgws2<true>, WB_SMEM_FUSED, done)) return false;
    att_jobs p = {{j[0], j[1]}, 0};
    int64_t n[2];
    for (int w = 0; w < 2; w++) {
        const att_args &a = p.j[w].a;
        n[w] = a.B * a.H * a.Lq * 128;
        p.j[w].dqacc = attn_dq_sums(k, n[w]);
    }
    const unsigned blocks = attn_pair_grid(p, true);
    k_att_dkv_wgws2<true><<<blocks, WS_THREADS, WB_SMEM_FUSED, KSTREAM(k)>>>(p);
    CUDA_LAUNCH_CHECK();
    for (int w = 0; w < 2; w++) {
        attn_dq_round(k, p.j[w].dQ, p.j[w].dqacc, n[w], p.j[w].a.scale);
        cuda_tmp_free(k, p.j[w].dqacc);
    }
    cm_attn_wgmma_runs++;
    __atomic_fetch_add(&g_wgws_runs[3], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&g_wgws_runs[4], 1, __ATOMIC_RELAXED);
    return true;
}
