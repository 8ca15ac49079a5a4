// cuda_attention_gemm.cu — the attention forward through cuBLAS where no flash kernel applies: head
// dims past 128 (the FLUX VAE's mid-block attention, one head of 512 over 4096 tokens at 512², 16384
// at 1024²) and f32. The generic warp-per-row kernel took 267 ms for one 1024² image's VAE
// attention on an H200 (0.3 % of the bf16 peak; docs/performance.md, session 22).
// Per batch index b and chunk of qc queries, every head at once (batched by the head stride):
//   S = scale Q K^T      f32 [H, qc, Lk]  (cu_gemm_f32c: bf16 or f32 operands, f32 accumulate)
//   lse, P               one block per row: lse = log-sum-exp of S + mask, P = exp(S + mask - lse)
//                        in the operands' type (bf16 P: as the flash kernels round P before P V)
//   O = P V              [H, qc, D] written through O's strides
// Unlike the flash kernels the scores are in memory — H qc Lk (4 + sizeof T) bytes, qc chosen to keep
// them within ATT_GEMM_BYTES — so this is only for the work the generic kernel would take (the
// backward keeps the generic kernels: nothing trains through these shapes).
#include "cuda_attention.cuh"

#define ATT_GEMM_BYTES (256ll << 20)  // scores + probabilities of one chunk
#define ATT_GEMM_THREADS 256

// (m, l) of the online softmax merged with (m2, l2): l is the sum of exp(x - m) over both sets
__device__ __forceinline__ void lse_merge(float &m, float &l, float m2, float l2) {
    float mn = fmaxf(m, m2);
    if (mn == -INFINITY) return;  // both empty
    l = l * __expf(m - mn) + l2 * __expf(m2 - mn);
    m = mn;
}

// one block per row r of S [rows, Lk] (rows = H qc, row r = head r / qc, query q0 + r % qc):
// lse [head * lse_hs + r % qc] (natural log; -inf for a row every key of which is masked out) and
// P = exp(S + mask - lse), 0 where the row is empty. mask: the rows of b's query q0 (NULL: none),
// head stride mh, row stride Lk.
template <typename T>
__global__ void __launch_bounds__(ATT_GEMM_THREADS) k_att_gemm_softmax(const float *S, T *P, float *lse, int64_t lse_hs,
                                                                         int64_t qc, int64_t Lk, const float *mask,
                                                                         int64_t mh) {
    __shared__ float sm[32], sl[32];
    const int64_t r = blockIdx.x, hh = r / qc, i = r % qc;
    const float *s = S + r * Lk, *mr = mask ? mask + hh * mh + i * Lk : NULL;
    float m = -INFINITY, l = 0.f;
    for (int64_t j = threadIdx.x; j < Lk; j += blockDim.x) {
        float v = s[j] + (mr ? mr[j] : 0.f);
        if (v == -INFINITY) continue;
        if (v > m) l = l * __expf(m - v) + 1.f, m = v;
        else l += __expf(v - m);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);
        lse_merge(m, l, m2, l2);
    }
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sm[w] = m, sl[w] = l;
    __syncthreads();
    m = lane < nw ? sm[lane] : -INFINITY;
    l = lane < nw ? sl[lane] : 0.f;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);
        lse_merge(m, l, m2, l2);
    }
    const float L = l > 0.f ? m + logf(l) : -INFINITY;
    T *p = P + r * Lk;
    for (int64_t j = threadIdx.x; j < Lk; j += blockDim.x) {
        float v = s[j] + (mr ? mr[j] : 0.f);
        p[j] = from_f<T>(L == -INFINITY || v == -INFINITY ? 0.f : __expf(v - L));
    }
    if (threadIdx.x == 0) lse[hh * lse_hs + i] = L;
}

bool attn_gemm_applies(const att_args &a) {
    return a.Lk >= 32 && a.B * a.H * a.Lq * a.Lk >= ATT_GEMM_MIN;
}

void attn_fwd_gemm(const cm_kctx *k, cm_dtype dt, const att_args &a, void *O, float *lse, const void *Q, const void *K,
                   const void *V) {
    const int64_t B = a.B, H = a.H, Lq = a.Lq, Lk = a.Lk, D = a.D, es = (int64_t)dtype_size(dt);
    int64_t qc = ATT_GEMM_BYTES / (H * Lk * (4 + es));
    qc = qc < 1 ? 1 : qc > Lq ? Lq : qc;
    float *S = (float *)cuda_tmp_alloc(k, (size_t)(H * qc * Lk) * sizeof(float), "attention scores (GEMM path)");
    void *P = cuda_tmp_alloc(k, (size_t)(H * qc * Lk * es), "attention probabilities (GEMM path)");
    const char *q8 = (const char *)Q, *k8 = (const char *)K, *v8 = (const char *)V;
    char *o8 = (char *)O;
    for (int64_t b = 0; b < B; b++)
        for (int64_t q0 = 0; q0 < Lq; q0 += qc) {
            const int64_t n = Lq - q0 < qc ? Lq - q0 : qc;
            // S [h][i][j] = scale sum_d Q[b, h, q0 + i, d] K[b, h, j, d]
            cu_gemm_f32c(k, dt, 0, 1, n, Lk, D, a.scale, q8 + (b * a.qs0 + q0 * a.qs2) * es, a.qs2, a.qs1,
                         k8 + b * a.ks0 * es, a.ks2, a.ks1, 0.0, S, Lk, n * Lk, H);
            const float *mb = a.mask ? a.mask + b * a.mb + q0 * Lk : NULL;
            CUDA_DISPATCH("cuda attn_fwd (GEMM path)", dt,
                          k_att_gemm_softmax<T><<<(unsigned)(H * n), ATT_GEMM_THREADS, 0, KSTREAM(k)>>>(
                              S, (T *)P, lse + b * H * Lq + q0, Lq, n, Lk, mb, a.mh));
            CUDA_LAUNCH_CHECK();
            // O [b, h, q0 + i, :] = sum_j P [h][i][j] V[b, h, j, :]
            cu_gemm(k, dt, 0, 0, n, D, Lk, 1.0, P, Lk, n * Lk, v8 + b * a.vs0 * es, a.vs2, a.vs1, 0.0,
                    o8 + (b * a.os0 + q0 * a.os2) * es, a.os2, a.os1, H);
        }
    cuda_tmp_free(k, P);
    cuda_tmp_free(k, S);
    __atomic_fetch_add(&cm_attn_gemm_runs, 1, __ATOMIC_RELAXED);
}
