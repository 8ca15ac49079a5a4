// cuda_attention_frag.cuh — what the register-tiled flash-attention kernels share (mma.sync in
// cuda_attention_mma.cu, wgmma in cuda_attention_wgmma.cu): bf16 packing, the accumulator as the
// next product's A fragment, rows loaded straight into A fragments, cp.async, the masked score and
// one step of the online softmax. The accumulator layout of mma.m16n8k16 and of wgmma's m64nNk16
// (each warp its 16 rows) is the same: c[i] of 8-column tile n is (row g + 8 (i >> 1), col
// 8 n + 2t + (i & 1)), g = lane / 4, t = lane % 4.
#pragma once
#include "cuda_attention.cuh"

// softmax in base 2: exp(x) = exp2(x log2 e), one MUFU.EX2 with the scale folded into an FFMA
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    bf16 l = __float2bfloat16_rn(lo), h = __float2bfloat16_rn(hi);
    return (uint32_t)__bfloat16_as_ushort(l) | ((uint32_t)__bfloat16_as_ushort(h) << 16);
}

// two adjacent m16n8 accumulators (columns c..c+15) as the A fragment of the next product
__device__ __forceinline__ void acc_to_a(uint32_t *a, const float *lo, const float *hi) {
    a[0] = pack2(lo[0], lo[1]);
    a[1] = pack2(lo[2], lo[3]);
    a[2] = pack2(hi[0], hi[1]);
    a[3] = pack2(hi[2], hi[3]);
}

// rows r0..r0+15 of a bf16 matrix (row stride rs, `rows` valid, D columns) as NK A fragments,
// zero past the rows and columns
template <int NK>
__device__ __forceinline__ void rows_to_a(uint32_t (*f)[4], const bf16 *src, int64_t rs, int64_t r0, int64_t rows,
                                          int D, int g, int t) {
#pragma unroll
    for (int kk = 0; kk < NK; kk++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t i = r0 + g + 8 * (j & 1);
            int c = kk * 16 + 2 * t + 8 * (j >> 1);
            const bf16 *r = src + i * rs;
            f[kk][j] = pack2(i < rows && c < D ? __bfloat162float(r[c]) : 0.f, i < rows && c + 1 < D ? __bfloat162float(r[c + 1]) : 0.f);
        }
}

// 16 bytes global -> shared without a trip through registers (cp.async.cg: L2 only), the bytes
// past n (16 or 0) zero-filled; lands at a cp_async_wait covering its group, and the other
// threads see it after the barrier that follows
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int n) {
#ifdef CAMEO_CUDA_EMULATED
    emu_cp_async(dst, src, 16, n);
#else
    uint32_t d = (uint32_t)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(n) : "memory");
#endif
}
// p[0] += x, p[1] += y atomically, nothing returned (p 8-byte aligned): sm_90's vector reduction,
// two scalar ones before it
__device__ __forceinline__ void red_add2(float *p, float x, float y) {
#ifdef CAMEO_CUDA_EMULATED
    atomicAdd((float2 *)p, make_float2(x, y));
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(p), "f"(x), "f"(y) : "memory");
#else
    atomicAdd(p, x);
    atomicAdd(p + 1, y);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#ifdef CAMEO_CUDA_EMULATED
    emu_cp_async_commit();
#else
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
// every committed group but the N most recent has landed (for this thread)
template <int N> __device__ __forceinline__ void cp_async_wait() {
#ifdef CAMEO_CUDA_EMULATED
    emu_cp_async_wait(N);
#else
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// the score of row i (query), column j (key) after scale and mask; -inf past the keys
__device__ __forceinline__ float score(const att_args &a, const float *mr, float s, int64_t i, int64_t j) {
    if (j >= a.Lk) return -INFINITY;
    s *= a.scale;
    if (mr && i < a.Lq) s += mr[i * a.Lk + j];
    return s;
}

// one online-softmax step of a warp's 16 query rows (qm..) over NT 8-key accumulator tiles s (keys
// k0..): s becomes P = exp2(score log2 e - m), m (log2 units) and l (this lane's partial row sums,
// for rows g and g + 8) take the new keys in, alpha[r] rescales row r's O accumulators. plain: a
// whole step of keys, no mask, scale > 0 — the raw products' max, then one FFMA + EX2 per score
template <int NT>
__device__ __forceinline__ void online_softmax(float (*s)[4], float *m, float *l, float *alpha, const att_args &a,
                                               const float *mr, int64_t qm, int64_t k0, bool plain, int g, int t) {
    const float sl2 = a.scale * LOG2E;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (!plain) s[n][i] = score(a, mr, s[n][i], qm + g + 8 * (i >> 1), k0 + n * 8 + 2 * t + (i & 1)) * LOG2E;
            mx[i >> 1] = fmaxf(mx[i >> 1], s[n][i]);
        }
    float shift[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        if (plain) mx[r] *= sl2;
        float mn = fmaxf(m[r], mx[r]);
        shift[r] = mn == -INFINITY ? 0.f : mn;  // a row masked so far: every p is 0
        alpha[r] = exp2f(m[r] - shift[r]);
        m[r] = mn;
        l[r] *= alpha[r];
    }
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            s[n][i] = plain ? exp2f(fmaf(s[n][i], sl2, -shift[i >> 1])) : exp2f(s[n][i] - shift[i >> 1]);
            l[i >> 1] += s[n][i];
        }
}

// the end of a warp's 16 rows (q0..): the row sums gathered over the quad, O / l written as bf16
// (D columns of the ND 8-column tiles), lse = m ln 2 + ln l (natural units; -inf for a row that saw
// no key)
template <int ND>
__device__ __forceinline__ void softmax_store(const att_args &a, bf16 *O, float *lse, const float (*o)[4], float *m,
                                              float *l, int64_t b, int64_t h, int64_t q0, int g, int t) {
    const int D = (int)a.D;
    const int64_t bh = b * a.H + h;
#pragma unroll
    for (int r = 0; r < 2; r++) {  // the row sums were partial per lane
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int64_t i = q0 + g + 8 * r;
        if (i >= a.Lq) continue;
        float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
        bf16 *orow = o_row(a, O, b, h, i);
#pragma unroll
        for (int n = 0; n < ND; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int c = n * 8 + 2 * t + e;
                if (c < D) orow[c] = __float2bfloat16_rn(o[n][2 * r + e] * inv);
            }
        if (t == 0) lse[bh * a.Lq + i] = l[r] > 0.f ? m[r] * LN2 + logf(l[r]) : -INFINITY;  // m: log2 units
    }
}

// the backward's constants of rows g and g + 8 of a warp's 16 (q0..): lse in log2 units (-inf past
// Lq: P = 0 there) and D = rowsum(dO * O)
__device__ __forceinline__ void bwd_row_stats(const att_args &a, const float *lse, const float *Dv, int64_t bh, int64_t q0,
                                              int g, float *L, float *Di) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int64_t i = q0 + g + 8 * r;
        L[r] = i < a.Lq ? lse[bh * a.Lq + i] * LOG2E : -INFINITY;
        Di[r] = i < a.Lq ? Dv[bh * a.Lq + i] : 0.f;
    }
}

// a warp's 16 rows of dQ (q0..; ND 8-column tiles, D columns) scaled, as bf16, contiguous [B, H, Lq, D]
template <int ND>
__device__ __forceinline__ void dq_store(const att_args &a, bf16 *dQ, const float (*dq)[4], int64_t bh, int64_t q0, int g,
                                         int t) {
    const int D = (int)a.D;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int64_t i = q0 + g + 8 * r;
        if (i >= a.Lq) continue;
        bf16 *row = dQ + (bh * a.Lq + i) * a.D;
#pragma unroll
        for (int n = 0; n < ND; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int c = n * 8 + 2 * t + e;
                if (c < D) row[c] = __float2bfloat16_rn(dq[n][2 * r + e] * a.scale);
            }
    }
}
