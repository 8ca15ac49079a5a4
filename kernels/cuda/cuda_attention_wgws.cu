// cuda_attention_wgws.cu — the flash attention forward on wgmma, warp-specialised as
// FlashAttention-3 arranges it (CAMEO_ATTN=wgmma3; its backward is wgmma's), head dim 128:
//   producer   a third warpgroup brings every 64-key K / V tile of the block's (b, h) by cp.async
//              into a ring of WS_STAGES stages, and signals each stage full on its own named barrier;
//              it waits for a stage's "empty" barrier before refilling it. It gives up registers
//              (setmaxnreg.dec to 40) so that the consumers may take 232 (setmaxnreg.inc): the
//              register file is split among the SM's four schedulers, and without that a block of
//              12 warps leaves each thread 168 (ptxas then spills and serialises the wgmma)
//   consumers  two warpgroups of 64 queries each, as in k_att_fwd_wgmma (Q in registers, S by 8
//              wgmma m64n64k16, the online softmax in registers, O += P V by 4 wgmma m64n128k16, the
//              softmax of tile j + 1 beside the P V product of tile j), but with no __syncthreads:
//              they wait for a stage's "full" barrier, release it on its "empty" one, and take turns
//              to issue their products (the "turn" barriers: group 0's products, then group 1's,
//              then group 0's next), so that one group's softmax runs while the other's products
//              occupy the tensor cores — FlashAttention-3's ping-pong.
// k_att_fwd_wgmma's rounds ended in a __syncthreads that held both groups in step, their softmax
// at the same time and the tensor cores idle meanwhile; an H200 profile found "no eligible warp"
// in 55 % of cycles (docs/performance.md, session 22). Checked on the CUDA emulator (both thread
// orders; it implements bar.sync / bar.arrive and reports a deadlock or an unfinished barrier);
// not yet timed on a GPU.
#include "cuda_wgmma.cuh"

#define WS_STAGES 4                              // K / V tiles in flight
#define WS_THREADS ((WG_GROUPS + 1) * 128)       // two consumer warpgroups, then the producer's
#define WS_SMEM (2 * WS_STAGES * WG_TILE + 1024)  // stage s: K at tile 2 s, V at 2 s + 1
// named barriers (0 is __syncthreads'): stage s full, stage s empty, consumer group w's turn
#define WS_BAR_FULL(s) (1 + (s))
#define WS_BAR_EMPTY(s) (1 + WS_STAGES + (s))
#define WS_BAR_TURN(w) (1 + 2 * WS_STAGES + (w))
static_assert(WS_BAR_TURN(1) <= 15, "16 named barriers");

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

__global__ void __launch_bounds__(WS_THREADS, 1) k_att_fwd_wgws(att_args a, bf16 *O, float *lse, const bf16 *Q,
                                                                 const bf16 *K, const bf16 *V) {
#ifdef WG_ENABLED
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *smem = wg_smem(smem_raw);
    const uint32_t sbase = smem_u32(smem);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, wg = warp >> 2;
    const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const bf16 *Kb = K + b * a.ks0 + h * a.ks1, *Vb = V + b * a.vs0 + h * a.vs1;
    const int64_t nt = (a.Lk + WG_KEYS - 1) / WG_KEYS;

    if (wg == WG_GROUPS) {  // the producer warpgroup
        wg_regs_dec<40>();
        const int pt = threadIdx.x - WG_GROUPS * 128;
        for (int64_t j = 0; j < nt; j++) {
            const int st = (int)(j % WS_STAGES);
            if (j >= WS_STAGES) nb_sync(WS_BAR_EMPTY(st), WS_THREADS);  // tile j - WS_STAGES consumed
            const int64_t k0 = j * WG_KEYS;
            const int kvalid = (int)min((int64_t)WG_KEYS, a.Lk - k0);
            for (int idx = pt; idx < 2 * WG_KEYS * 16; idx += 128) {
                const int v = idx >= WG_KEYS * 16, r = (idx >> 4) & (WG_KEYS - 1), c = (idx & 15) * 8;
                const bf16 *src = v ? Vb + (k0 + r) * a.vs2 + c : Kb + (k0 + r) * a.ks2 + c;
                const bool in = r < kvalid;
                cp_async16(smem + (2 * st + v) * WG_TILE + wg_swz(r, c), in ? src : (v ? Vb : Kb), in ? 16 : 0);
            }
            cp_async_commit();
            if (j > 0) {  // tile j - 1 has landed (this thread's copies): published to the consumers
                cp_async_wait<1>();
                fence_proxy_async();
                nb_arrive(WS_BAR_FULL((int)((j - 1) % WS_STAGES)), WS_THREADS);
            }
        }
        cp_async_wait<0>();
        fence_proxy_async();
        nb_arrive(WS_BAR_FULL((int)((nt - 1) % WS_STAGES)), WS_THREADS);
        return;
    }

    wg_regs_inc<232>();
    const int64_t q0 = (int64_t)blockIdx.x * (64 * WG_GROUPS) + warp * 16;  // this warp's 16 rows
    const bf16 *Qb = Q + b * a.qs0 + h * a.qs1;
    const float *mr = mask_rows(a, b, h);
    uint32_t qf[8][4];
    rows_to_a<8>(qf, Qb, a.qs2, q0, a.Lq, 128, g, t);
    float o[16][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < 16; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    auto ktile = [&](int64_t j) { return sbase + (uint32_t)(2 * (j % WS_STAGES)) * WG_TILE; };
    float s[8][4], alpha[2];
    uint32_t pa[4][4];
    auto issue_s = [&](int64_t j) { wg_issue_s(s, qf, ktile(j)); };  // S = Q K^T for tile j
    auto issue_pv = [&](int64_t j) { wg_issue_pv(o, pa, ktile(j) + WG_TILE); };  // O += P V for tile j
    auto softmax_of = [&](int64_t j) {
        const int64_t k0 = j * WG_KEYS;
        const bool plain = !mr && k0 + WG_KEYS <= a.Lk && a.scale > 0.f;
        online_softmax<8>(s, m, l, alpha, a, mr, q0, k0, plain, g, t);
    };
    // turns: each group issues nt + 1 times (S of tile 0, nt - 1 rounds, the last P V); group 0
    // first. Group w waits at its own barrier and, having issued, arrives at the other's; group 1
    // starts with one arrival and leaves out its last, so each barrier sees nt + 1 whole phases.
    auto turn_take = [&] { nb_sync(WS_BAR_TURN(wg), WG_GROUPS * 128); };
    auto turn_give = [&](bool last) {
        if (!(wg == 1 && last)) nb_arrive(WS_BAR_TURN(wg ^ 1), WG_GROUPS * 128);
    };
    if (wg == 1) nb_arrive(WS_BAR_TURN(0), WG_GROUPS * 128);

    nb_sync(WS_BAR_FULL(0), WS_THREADS);
    turn_take();
    issue_s(0);
    turn_give(false);
    wg_wait<0>();
    wg_reg_fence<32>(&s[0][0]);
    softmax_of(0);  // O is still zero: alpha has nothing to scale
#pragma unroll
    for (int c = 0; c < 4; c++) acc_to_a(pa[c], s[2 * c], s[2 * c + 1]);
    for (int64_t j = 0; j + 1 < nt; j++) {
        nb_sync(WS_BAR_FULL((int)((j + 1) % WS_STAGES)), WS_THREADS);
        turn_take();
        issue_s(j + 1);  // its wgmma.fence also orders the writes of pa and o
        issue_pv(j);
        turn_give(false);
        wg_wait<1>();  // S of tile j + 1; P V may still run
        wg_reg_fence<32>(&s[0][0]);
        softmax_of(j + 1);
        wg_wait<0>();
        wg_reg_fence<64>(&o[0][0]);
        // tile j is done with (its S in the last round, its P V now): the producer may refill its
        // stage, if it has a tile left for it
        if (j + WS_STAGES < nt) nb_arrive(WS_BAR_EMPTY((int)(j % WS_STAGES)), WS_THREADS);
        wg_rescale_pack(o, alpha, pa, s);
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

// launches of the kernel: the tests prove CAMEO_ATTN=wgmma3 ran it, not wgmma's forward
static int64_t g_wgws_runs;
extern "C" int64_t cuda_attn_wgws_runs(void) { return __atomic_load_n(&g_wgws_runs, __ATOMIC_RELAXED); }

bool attn_fwd_wgws(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                   const void *K, const int64_t *ks, const void *V, const int64_t *vs) {
    (void)qs;
    if (!attn_wgmma_applies(k, a, K, ks, V, vs)) return false;
    static int done[16];
    if (!smem_ok(k, k_att_fwd_wgws, WS_SMEM, done)) return false;
    dim3 grid((unsigned)((a.Lq + 64 * WG_GROUPS - 1) / (64 * WG_GROUPS)), (unsigned)(a.B * a.H));
    k_att_fwd_wgws<<<grid, WS_THREADS, WS_SMEM, KSTREAM(k)>>>(a, (bf16 *)O, lse, (const bf16 *)Q, (const bf16 *)K,
                                                             (const bf16 *)V);
    CUDA_LAUNCH_CHECK();
    cm_attn_wgmma_runs++;
    __atomic_fetch_add(&g_wgws_runs, 1, __ATOMIC_RELAXED);
    return true;
}
