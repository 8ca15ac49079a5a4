// cuda_attention.cuh — what the attention kernels share (cuda_attention.cu: the WMMA and generic
// kernels and the entry points; cuda_attention_mma.cu: the mma.sync kernels): the argument
// block, tile loads, launch helpers.
#pragma once
#include "cuda_common.cuh"

#define ATT_BQ 64
#define ATT_BK 64
#define ATT_WARPS 4
#define ATT_THREADS (ATT_WARPS * 32)
#define ATT_LDS (ATT_BK + 4)  // f32 score tile row (floats)
#define ATT_LDP (ATT_BK + 8)  // bf16 probability tile row (elements)

// strides (b, h, row; D contiguous) of Q, K, V, the output O and its gradient dO (gs)
struct att_args {
    int64_t B, H, Lq, Lk, D;
    float scale;
    int64_t qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1, vs2, os0, os1, os2, gs0, gs1, gs2;
    const float *mask;
    int64_t mb, mh;
};
// os / gs NULL: contiguous [B, H, Lq, D]
static inline att_args make_args(int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale, const int64_t *qs,
                                 const int64_t *ks, const int64_t *vs, const int64_t *os, const int64_t *gs,
                                 const float *mask, int64_t mb, int64_t mh) {
    att_args a;
    a.B = B, a.H = H, a.Lq = Lq, a.Lk = Lk, a.D = D, a.scale = (float)scale;
    a.qs0 = qs[0], a.qs1 = qs[1], a.qs2 = qs[2];
    a.ks0 = ks[0], a.ks1 = ks[1], a.ks2 = ks[2];
    a.vs0 = vs[0], a.vs1 = vs[1], a.vs2 = vs[2];
    const int64_t contig[3] = {H * Lq * D, Lq * D, D};
    if (!os) os = contig;
    if (!gs) gs = contig;
    a.os0 = os[0], a.os1 = os[1], a.os2 = os[2];
    a.gs0 = gs[0], a.gs1 = gs[1], a.gs2 = gs[2];
    a.mask = mask, a.mb = mb, a.mh = mh;
    return a;
}
__device__ __forceinline__ const float *mask_rows(const att_args &a, int64_t b, int64_t h) {
    return a.mask ? a.mask + b * a.mb + h * a.mh : NULL;
}
// row i of head (b, h) of O and of dO
template <typename T> __device__ __forceinline__ T *o_row(const att_args &a, T *O, int64_t b, int64_t h, int64_t i) {
    return O + b * a.os0 + h * a.os1 + i * a.os2;
}
template <typename T>
__device__ __forceinline__ const T *do_row(const att_args &a, const T *dO, int64_t b, int64_t h, int64_t i) {
    return dO + b * a.gs0 + h * a.gs1 + i * a.gs2;
}

// rows x DP tile of bf16 from global (row stride `rs` elements, `valid` rows, D real columns)
// into shared (row stride LD), zero-padded; vec: 16-byte loads (D, rs, base all multiples of 8)
template <int DP>
__device__ __forceinline__ void tile_load(bf16 *dst, int LD, const bf16 *src, int64_t rs, int valid, int D, bool vec,
                                          int rows) {
    if (vec) {
        constexpr int PER = DP / 8;
        for (int idx = threadIdx.x; idx < rows * PER; idx += blockDim.x) {
            int r = idx / PER, c = (idx % PER) * 8;
            uint4 v = make_uint4(0, 0, 0, 0);
            if (r < valid && c < D) v = *(const uint4 *)(src + r * rs + c);
            *(uint4 *)(dst + r * LD + c) = v;
        }
    } else {
        for (int idx = threadIdx.x; idx < rows * DP; idx += blockDim.x) {
            int r = idx / DP, c = idx % DP;
            dst[r * LD + c] = (r < valid && c < D) ? src[r * rs + c] : __float2bfloat16_rn(0.f);
        }
    }
}

// cuda_attention_gemm.cu: the forward through cuBLAS (scores in memory) for the calls no flash
// kernel takes, where there is enough work (B H Lq Lk >= ATT_GEMM_MIN and Lk >= 32) to beat the generic kernel
#define ATT_GEMM_MIN 32768
bool attn_gemm_applies(const att_args &a);
void attn_fwd_gemm(const cm_kctx *k, cm_dtype dt, const att_args &a, void *O, float *lse, const void *Q, const void *K,
                   const void *V);

static inline bool vec_ok(const void *p, const int64_t *s, int64_t D) {
    if (((uintptr_t)p & 15) || D % 8) return false;
    if (s) return s[0] % 8 == 0 && s[1] % 8 == 0 && s[2] % 8 == 0;
    return true;
}
// dO rows can be loaded 16 bytes at a time
static inline bool vec_ok_do(const att_args &a, const void *dO) {
    const int64_t gs[3] = {a.gs0, a.gs1, a.gs2};
    return vec_ok(dO, gs, a.D);
}
// raises a kernel's dynamic shared-memory limit once; false when the device cannot give `bytes`
template <typename F> static bool smem_ok(const cm_kctx *k, F kern, size_t bytes, int *done) {
    const cuda_ctx_ext *c = cuda_ext(k);
    if (bytes > c->smem_optin) return false;
    if (!done[c->index]) {
        CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
        done[c->index] = 1;
    }
    return true;
}

// the instruction ceilings (`cameo bench gpu`; cuda_attention_mma.cu, cuda_attention_wgmma.cu):
// blocks of a ceiling kernel for `waves` full waves of the device (as many as fit an SM at once,
// so that no partial wave dilutes the rate), at least 1; waves 0: two blocks (a smoke run)
template <class K> static int ceiling_blocks(const cm_kctx *k, K kern, int threads, size_t smem, int waves) {
    if (waves <= 0) return 2;
    int per_sm = 0, sms = 0;
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, threads, smem));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cuda_ext(k)->index));
    return per_sm * sms * waves > 0 ? per_sm * sms * waves : 1;
}
// launch(out) runs the ceiling kernel once, writing n sums; it runs reps times after a warm-up, and
// every sum must be `want` (A and B are ones: a wrong fragment layout or a dropped loop changes
// them). Milliseconds a launch, or -1 when a sum is wrong.
template <class F> static double ceiling_run(const cm_kctx *k, int64_t n, float want, int reps, F launch) {
    float *d = (float *)cuda_tmp_alloc(k, (size_t)n * sizeof(float), "instruction ceiling sums");
    const double ms = cuda_time_ms(k, 1, reps, [&] {
        launch(d);
        CUDA_LAUNCH_CHECK();
    });
    float *h = (float *)malloc((size_t)n * sizeof(float));
    if (!h) cm_die("cuda bench", "out of host memory for %lld ceiling sums", (long long)n);
    CUDA_CHECK(cudaMemcpyAsync(h, d, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, KSTREAM(k)));
    CUDA_CHECK(cudaStreamSynchronize(KSTREAM(k)));
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += h[i] != want;
    if (bad) fprintf(stderr, "cameo bench gpu: instruction ceiling: %lld of %lld sums wrong (first %g, want %g)\n",
                     (long long)bad, (long long)n, h[0], want);
    free(h);
    cuda_tmp_free(k, d);
    return bad ? -1 : ms;
}

// the mma.sync (m16n8k16) kernels, head dims padded to dp = 64, 80 or 128, forward and dQ blocks
// of `warps` (4 or 8) x 16 queries, forward warps of `mtiles` (1, or 2 with 4 warps) x 16 queries
// (cuda_attention_mma.cu); false when the device cannot give their shared memory
bool attn_fwd_mma(const cm_kctx *k, int dp, int warps, int mtiles, const att_args &a, void *O, float *lse,
                  const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V, const int64_t *vs);
// the wgmma kernels apply: a Hopper, sm_90a code in this build (self-test passed), head dim 128,
// 16-byte K / V rows (cuda_attention_wgmma.cu)
bool attn_wgmma_applies(const cm_kctx *k, const att_args &a, const void *K, const int64_t *ks, const void *V,
                        const int64_t *vs);
// the wgmma forward (cuda_attention_wgmma.cu; sm_90a, head dim 128, 16-byte K / V rows); false
// where it does not apply (the caller runs mma)
bool attn_fwd_wgmma(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                    const void *K, const int64_t *ks, const void *V, const int64_t *vs);
// the wgmma backward's two kernels (the same conditions; dK dV also 16-byte Q and dO rows); where
// one does not apply, attn_bwd_mma does its part
bool attn_dq_wgmma(const cm_kctx *k, const att_args &a, void *dQ, const void *dO, const float *lse, const float *Dv,
                   const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V, const int64_t *vs);
bool attn_dkv_wgmma(const cm_kctx *k, const att_args &a, void *dK, void *dV, const void *dO, const float *lse,
                    const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                    const int64_t *vs);
// the fused wgmma backward: dK, dV and dQ in one kernel (dQ summed in f32 by atomics, then rounded);
// the same conditions as attn_dkv_wgmma; false where they do not hold (the caller runs the split one)
bool attn_bwd_wgmma(const cm_kctx *k, const att_args &a, void *dQ, void *dK, void *dV, const void *dO, const float *lse,
                    const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                    const int64_t *vs);
// the warp-specialised forward, dQ and dK dV kernels (cuda_attention_wgws.cu; CAMEO_ATTN=wgmma3)
bool attn_fwd_wgws(const cm_kctx *k, const att_args &a, void *O, float *lse, const void *Q, const int64_t *qs,
                   const void *K, const int64_t *ks, const void *V, const int64_t *vs);
bool attn_dq_wgws(const cm_kctx *k, const att_args &a, void *dQ, const void *dO, const float *lse, const float *Dv,
                  const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V, const int64_t *vs);
bool attn_dkv_wgws(const cm_kctx *k, const att_args &a, void *dK, void *dV, const void *dO, const float *lse,
                   const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                   const int64_t *vs);
// the forward's keys a step (64, or 128 with CAMEO_WGMMA3_KEYS=128): this overrides the
// environment's (64 / 128; 0 gives it back)
extern "C" void cuda_attn_wgws_keys_use(int keys);
// and its fused backward (CAMEO_ATTN_BWD=fused), as attn_bwd_wgmma
bool attn_bwd_wgws(const cm_kctx *k, const att_args &a, void *dQ, void *dK, void *dV, const void *dO, const float *lse,
                   const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks, const void *V,
                   const int64_t *vs);
// one problem of a launch that runs two (cuda_attention_wgws.cu): its arguments, its tensors (the
// forward's O, lse (written), Q, K, V; the backward's dQ, dK, dV, dO, lse (read), Dv, Q, K, V;
// the fused backward's dQ sums, dqacc) and its blocks along x (set by the launcher)
struct att_job {
    att_args a;
    bf16 *O, *dQ, *dK, *dV;
    float *lse, *dqacc;
    const float *Dv;
    const bf16 *Q, *K, *V, *dO;
    int64_t tiles;
};
struct att_jobs {
    att_job j[2];
    int64_t n0;  // blocks of the first problem (tiles x B*H)
};
// the pair launches of CAMEO_ATTN=wgmma3 (forward; dQ then dK dV): false where either problem is
// not for them, nothing launched
bool attn_fwd_wgws2(const cm_kctx *k, const att_job *j);
bool attn_bwd_wgws2(const cm_kctx *k, const att_job *j);
// the fused backward's pair launch (CAMEO_ATTN_BWD=fused): one dK dV kernel with dQ for both
bool attn_bwd_wgws2_fused(const cm_kctx *k, const att_job *j);
// both problems for them (head dim 128 on a Hopper; the backward's 16-byte Q / dO rows)
bool attn_pair_applies(const cm_kctx *k, const att_job *j, bool bwd);
// a fused backward's dQ: n f32 sums, zeroed (freed with cuda_tmp_free), summed by atomics, then
// rounded: dQ[i] = bf16(scale * acc[i]) for i < n
float *attn_dq_sums(const cm_kctx *k, int64_t n);
void attn_dq_round(const cm_kctx *k, void *dQ, const float *acc, int64_t n, double scale);
// with_dq false: dK and dV only (dQ written by another kernel). fused: dQ inside the dK dV kernel
// (f32 sums by atomics, then rounded) where the head dim is 64 or 128; two kernels otherwise
bool attn_bwd_mma(const cm_kctx *k, int dp, int warps, const att_args &a, void *dQ, void *dK, void *dV, const void *dO,
                  const float *lse, const float *Dv, const void *Q, const int64_t *qs, const void *K, const int64_t *ks,
                  const void *V, const int64_t *vs, bool with_dq, bool fused);
