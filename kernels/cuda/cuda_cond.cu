// cuda_cond.cu — position and conditioning (RoPE, AdaLN modulation, sinusoidal timestep
// embedding) and images (im2col / col2im, PyTorch-exact bicubic resize forward / backward).
#include "cuda_common.cuh"
#include "cuda_rowio.cuh"
#include <math.h>

// ---------------------------------------------------------------------------------------------
// RoPE: x [outer, L, D]; cos, sin [L, D] repeat-interleaved; pairs (2i, 2i+1) rotate:
//   y0 = x0 c0 - x1 s0,  y1 = x1 c1 + x0 s1;  inverse (the transpose): y0 = x0 c0 + x1 s1, y1 = x1 c1 - x0 s0
// The tables are T or f32 (TT): a bf16 x with f32 tables rotates in f32 and rounds once, at the
// store, as diffusers' apply_rotary_emb (x.float() * cos + rotated.float() * sin).to(x.dtype).
// ---------------------------------------------------------------------------------------------
template <typename T, typename TT>
__global__ void k_rope(int64_t outer, int64_t L, int64_t D, int inverse, T *y, const T *x, const TT *cs,
                       const TT *sn) {
    int64_t half = D / 2, n = outer * L * half;
    GRID_STRIDE(i, n) {
        int64_t p = i % half, row = i / half;  // row = o*L + l
        int64_t l = row % L;
        int64_t xi = row * D + 2 * p, ti = l * D + 2 * p;
        float x0 = to_f(x[xi]), x1 = to_f(x[xi + 1]);
        float c0 = to_f(cs[ti]), c1 = to_f(cs[ti + 1]), s0 = to_f(sn[ti]), s1 = to_f(sn[ti + 1]);
        float y0, y1;
        if (!inverse) {
            y0 = x0 * c0 - x1 * s0;
            y1 = x1 * c1 + x0 * s1;
        } else {
            y0 = x0 * c0 + x1 * s1;
            y1 = x1 * c1 - x0 * s0;
        }
        y[xi] = from_f<T>(y0);
        y[xi + 1] = from_f<T>(y1);
    }
}
// dies unless the tables' dtype tdt is x's dt or f32
static void rope_check_tables(const char *op, cm_dtype dt, cm_dtype tdt) {
    if (tdt != dt && tdt != CM_F32)
        cm_die(op, "cos/sin tables of dtype %s with x %s (allowed: x's dtype, or f32)", dtype_name(tdt),
               dtype_name(dt));
}
void cu_rope(const cm_kctx *k, cm_dtype dt, cm_dtype tdt, int64_t outer, int64_t L, int64_t D, int inverse, void *y,
             const void *x, const void *cos, const void *sin) {
    if (D % 2) cm_die("cuda rope", "head dim %lld must be even", (long long)D);
    rope_check_tables("cuda rope", dt, tdt);
    int64_t n = outer * L * (D / 2);
    if (n <= 0) return;
    unsigned g = grid_for(n, 256);
    if (tdt == CM_F32)
        CUDA_DISPATCH("cuda rope", dt,
                      k_rope<T, float><<<g, 256, 0, KSTREAM(k)>>>(outer, L, D, inverse, (T *)y, (const T *)x,
                                                                  (const float *)cos, (const float *)sin));
    else
        CUDA_DISPATCH("cuda rope", dt,
                      k_rope<T, T><<<g, 256, 0, KSTREAM(k)>>>(outer, L, D, inverse, (T *)y, (const T *)x,
                                                              (const T *)cos, (const T *)sin));
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// a FLUX q / k in one pass: RMSNorm over D of each head row (b, l, h) of x [B, Ls, H, D], then RoPE
// at joint position l0 + l, written head-major to row l0 + l of y [B, H, Ly, D]. One warp per row;
// lane i takes pairs i, i + 32, ...: a warp reads 32 adjacent pairs (coalesced), and the normalised
// value stays in f32 between the norm and the rotation (one rounding, at the store). Tables T or
// f32 (TT), as k_rope.
// ---------------------------------------------------------------------------------------------
#define RR_ROWS 8  // warps (rows) per 256-thread block
template <typename T, typename TT>
__global__ void k_rms_rope_fwd(int var, int64_t B, int64_t Ls, int64_t H, int64_t D, float eps, int64_t Ly,
                               int64_t l0, T *y, float *inv, const T *x, const T *w, const TT *cs, const TT *sn) {
    int64_t r = (int64_t)blockIdx.x * RR_ROWS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (r >= B * Ls * H) return;  // whole warps leave together: the shuffles below see full warps
    int64_t b = r / (Ls * H), l = (r / H) % Ls, h = r % H;
    const T *xr = x + r * D;
    const TT *c = cs + (l0 + l) * D, *s = sn + (l0 + l) * D;
    T *yr = y + ((b * H + h) * Ly + l0 + l) * D;
    float sq = 0.f;
    for (int64_t j = lane; j < D; j += 32) {
        float v = to_f(xr[j]);
        sq += v * v;
    }
    float ms = warp_sum(sq) / (float)D;
    float iv = var == CM_RMS_DIFFUSERS ? rsqrtf(ms + eps) : 1.f / (sqrtf(ms) + eps);
    for (int64_t j = 2 * lane; j + 1 < D; j += 64) {
        float w0 = w ? to_f(w[j]) : 1.f, w1 = w ? to_f(w[j + 1]) : 1.f;
        float x0 = to_f(xr[j]) * iv * w0, x1 = to_f(xr[j + 1]) * iv * w1;
        yr[j] = from_f<T>(x0 * to_f(c[j]) - x1 * to_f(s[j]));
        yr[j + 1] = from_f<T>(x1 * to_f(c[j + 1]) + x0 * to_f(s[j + 1]));
    }
    if (lane == 0 && inv) inv[r] = iv;
}
// the backward's first half: g [B, Ls, H, D] = RoPE^T of dy's head-major rows l0 + l. One warp per
// row as the forward (its row's indices divided out once; lane i takes pairs i, i + 32, ...), not
// one thread per pair with three 64-bit divisions each.
template <typename T, typename TT>
__global__ void k_rope_to_tokens(int64_t B, int64_t Ls, int64_t H, int64_t D, int64_t Ly, int64_t l0, T *g,
                                 const T *dy, const TT *cs, const TT *sn) {
    int64_t r = (int64_t)blockIdx.x * RR_ROWS + (threadIdx.x >> 5);  // r = (b * Ls + l) * H + h
    int lane = threadIdx.x & 31;
    if (r >= B * Ls * H) return;
    int64_t b = r / (Ls * H), l = (r / H) % Ls, h = r % H;
    const T *dr = dy + ((b * H + h) * Ly + l0 + l) * D;
    const TT *c = cs + (l0 + l) * D, *s = sn + (l0 + l) * D;
    T *gr = g + r * D;
    for (int64_t j = 2 * lane; j + 1 < D; j += 64) {
        float x0 = to_f(dr[j]), x1 = to_f(dr[j + 1]);
        gr[j] = from_f<T>(x0 * to_f(c[j]) + x1 * to_f(s[j + 1]));
        gr[j + 1] = from_f<T>(x1 * to_f(c[j + 1]) - x0 * to_f(s[j]));
    }
}
static void rr_check(const char *op, cm_dtype dt, cm_dtype tdt, int64_t D, int64_t Ly, int64_t l0, int64_t Ls) {
    rope_check_tables(op, dt, tdt);
    if (D % 2) cm_die(op, "head dim %lld must be even", (long long)D);
    if (l0 < 0 || Ls < 0 || l0 + Ls > Ly)
        cm_die(op, "rows [%lld, %lld) outside a sequence of %lld", (long long)l0, (long long)(l0 + Ls), (long long)Ly);
}
void cu_rms_rope_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                     int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *y, float *inv, const void *x,
                     const void *w, const void *cos, const void *sin) {
    rr_check("cuda rms_rope_fwd", dt, tdt, D, Ly, l0, Ls);
    int64_t rows = B * Ls * H;
    if (rows <= 0 || D <= 0) return;
    unsigned g = (unsigned)((rows + RR_ROWS - 1) / RR_ROWS);
    if (tdt == CM_F32)
        CUDA_DISPATCH("cuda rms_rope_fwd", dt,
                      k_rms_rope_fwd<T, float><<<g, 32 * RR_ROWS, 0, KSTREAM(k)>>>(
                          (int)var, B, Ls, H, D, (float)eps, Ly, l0, (T *)y, inv, (const T *)x, (const T *)w,
                          (const float *)cos, (const float *)sin));
    else
        CUDA_DISPATCH("cuda rms_rope_fwd", dt,
                      k_rms_rope_fwd<T, T><<<g, 32 * RR_ROWS, 0, KSTREAM(k)>>>(
                          (int)var, B, Ls, H, D, (float)eps, Ly, l0, (T *)y, inv, (const T *)x, (const T *)w,
                          (const T *)cos, (const T *)sin));
    CUDA_LAUNCH_CHECK();
}
void cu_rms_rope_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                     int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *dx, void *dw, const void *dy,
                     const void *x, const float *inv, const void *w, const void *cos, const void *sin) {
    rr_check("cuda rms_rope_bwd", dt, tdt, D, Ly, l0, Ls);
    int64_t n = B * Ls * H * D;
    if (n <= 0) {  // no rows: a zero weight gradient
        if (dw && D > 0) cu_fill(k, dt, dw, D, 0.0);
        return;
    }
    size_t es = dt == CM_BF16 ? 2 : dt == CM_F64 ? 8 : 4;
    void *g = cuda_tmp_alloc(k, (size_t)n * es, "rms_rope backward");  // [B, Ls, H, D]
    unsigned gr = (unsigned)((B * Ls * H + RR_ROWS - 1) / RR_ROWS);
    if (tdt == CM_F32)
        CUDA_DISPATCH("cuda rms_rope_bwd", dt,
                      k_rope_to_tokens<T, float><<<gr, 32 * RR_ROWS, 0, KSTREAM(k)>>>(B, Ls, H, D, Ly, l0, (T *)g, (const T *)dy,
                                                                             (const float *)cos, (const float *)sin));
    else
        CUDA_DISPATCH("cuda rms_rope_bwd", dt,
                      k_rope_to_tokens<T, T><<<gr, 32 * RR_ROWS, 0, KSTREAM(k)>>>(B, Ls, H, D, Ly, l0, (T *)g, (const T *)dy,
                                                                         (const T *)cos, (const T *)sin));
    CUDA_LAUNCH_CHECK();
    cu_rmsnorm_bwd(k, var, dt, B * Ls * H, D, eps, dx, dw, g, x, inv, w);
    cuda_tmp_free(k, g);
}

// ---------------------------------------------------------------------------------------------
// modulate: y = x * (1 + scale) + shift; x [B, L, C], scale / shift [B, C] (NULL = 0)
// ---------------------------------------------------------------------------------------------
template <typename T>
__global__ void k_mod_fwd(int64_t B, int64_t L, int64_t C, T *y, const T *x, const T *scale, const T *shift) {
    int64_t n = B * L * C;
    GRID_STRIDE(i, n) {
        int64_t c = i % C, b = i / (L * C);
        float sc = scale ? to_f(scale[b * C + c]) : 0.f, sh = shift ? to_f(shift[b * C + c]) : 0.f;
        y[i] = from_f<T>(to_f(x[i]) * (1.f + sc) + sh);
    }
}
template <typename T> __global__ void k_mod_dx(int64_t B, int64_t L, int64_t C, T *dx, const T *dy, const T *scale) {
    int64_t n = B * L * C;
    GRID_STRIDE(i, n) {
        int64_t c = i % C, b = i / (L * C);
        float sc = scale ? to_f(scale[b * C + c]) : 0.f;
        dx[i] = from_f<T>(to_f(dy[i]) * (1.f + sc));
    }
}
// dscale[b, c] = sum_l dy*x; dshift[b, c] = sum_l dy: block (32, 16) over 32 channels of one b
template <typename T>
__global__ void k_mod_dparams(int64_t L, int64_t C, T *dscale, T *dshift, const T *dy, const T *x) {
    __shared__ float s1[16][33], s2[16][33];
    int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x, b = blockIdx.y;
    float a1 = 0.f, a2 = 0.f;
    if (c < C)
        for (int64_t l = threadIdx.y; l < L; l += blockDim.y) {
            int64_t i = (b * L + l) * C + c;
            float d = to_f(dy[i]);
            a1 += d * to_f(x[i]);
            a2 += d;
        }
    s1[threadIdx.y][threadIdx.x] = a1;
    s2[threadIdx.y][threadIdx.x] = a2;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t1 = 0.f, t2 = 0.f;
        for (int j = 0; j < (int)blockDim.y; j++) {
            t1 += s1[j][threadIdx.x];
            t2 += s2[j][threadIdx.x];
        }
        if (dscale) dscale[b * C + c] = from_f<T>(t1);
        if (dshift) dshift[b * C + c] = from_f<T>(t2);
    }
}
void cu_modulate_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *y, const void *x,
                     const void *scale, const void *shift) {
    int64_t n = B * L * C;
    if (n <= 0) return;
    CUDA_DISPATCH("cuda modulate_fwd", dt,
                  k_mod_fwd<T><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(B, L, C, (T *)y, (const T *)x,
                                                                        (const T *)scale, (const T *)shift));
    CUDA_LAUNCH_CHECK();
}
void cu_modulate_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dscale,
                     void *dshift, const void *dy, const void *x, const void *scale) {
    int64_t n = B * L * C;
    if (B <= 0 || L < 0 || C <= 0) return;  // L = 0: zero dscale, dshift are still written (sums over no tokens)
    if (B > 65535) cm_die("cuda modulate_bwd", "batch %lld too large", (long long)B);
    CUDA_DISPATCH("cuda modulate_bwd", dt, {
        if (dx && n > 0) {
            k_mod_dx<T><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(B, L, C, (T *)dx, (const T *)dy, (const T *)scale);
            CUDA_LAUNCH_CHECK();
        }
        if (dscale || dshift) {
            dim3 g((unsigned)((C + 31) / 32), (unsigned)B);
            k_mod_dparams<T><<<g, dim3(32, 16), 0, KSTREAM(k)>>>(L, C, (T *)dscale, (T *)dshift, (const T *)dy,
                                                                 (const T *)x);
            CUDA_LAUNCH_CHECK();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// gated residual: out = res + gate[b] * y over [B, L, C] (bf16: gate * y rounded, then the sum);
// VEC: a thread takes 16 bytes of a row (C a multiple of the vector: a vector never straddles two
// rows, so one gate row serves it)
// ---------------------------------------------------------------------------------------------
template <typename T, bool VEC>
__global__ void k_gated_add(int64_t B, int64_t L, int64_t C, T *out, const T *res, const T *gate, const T *y) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    GRID_STRIDE(i, B * L * C / N) {
        int64_t e = i * N, c = e % C, b = e / (L * C);
        float r[N], g[N], v[N];
        IO::load(res + e, r);
        IO::load(gate + b * C + c, g);
        IO::load(y + e, v);
#pragma unroll
        for (int j = 0; j < N; j++) {
            // bf16: the product rounded before the sum, as diffusers' `res + gate * y` in
            // torch.bfloat16 (rounding once moved FLUX-tiny's output further from diffusers')
            if constexpr (sizeof(T) == 2) r[j] += to_f(from_f<T>(g[j] * v[j]));
            else r[j] += g[j] * v[j];
        }
        IO::store(out + e, r);
    }
}
void cu_gated_add(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *out, const void *res,
                  const void *gate, const void *y) {
    int64_t n = B * L * C;
    if (n <= 0) return;
    CUDA_DISPATCH("cuda gated_add", dt, {
        if (row_vec_ok<T>(C, {out, res, gate, y}))
            k_gated_add<T, true><<<grid_for(n / RowIO<T, true>::N, 256), 256, 0, KSTREAM(k)>>>(
                B, L, C, (T *)out, (const T *)res, (const T *)gate, (const T *)y);
        else
            k_gated_add<T, false><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(B, L, C, (T *)out, (const T *)res,
                                                                            (const T *)gate, (const T *)y);
    });
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// add_rows: out = a + alpha * b on rows row0 .. row0+Lb of each batch, a elsewhere; a, out [B, L, C],
// b [B, Lb, C]. VEC: 16 bytes per thread (C a multiple of the vector: one row per vector)
// ---------------------------------------------------------------------------------------------
template <typename T, bool VEC>
__global__ void k_add_rows(int64_t B, int64_t L, int64_t C, int64_t row0, int64_t Lb, float alpha, T *out, const T *a,
                           const T *b) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    GRID_STRIDE(i, B * L * C / N) {
        int64_t e = i * N, r = e / C, c = e % C, l = r % L, bi = r / L;
        float x[N];
        IO::load(a + e, x);
        if (l >= row0 && l < row0 + Lb) {
            float y[N];
            IO::load(b + (bi * Lb + l - row0) * C + c, y);
#pragma unroll
            for (int j = 0; j < N; j++) {
                // bf16: alpha * b rounded before the sum, as InstantCharacter's bf16 `hs + ip_out * scale`
                if constexpr (sizeof(T) == 2) x[j] += to_f(from_f<T>(alpha * y[j]));
                else x[j] += alpha * y[j];
            }
        }
        IO::store(out + e, x);
    }
}
void cu_add_rows(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, int64_t row0, int64_t Lb, double alpha,
                 void *out, const void *a, const void *b) {
    if (row0 < 0 || Lb < 0 || row0 + Lb > L)
        cm_die("cuda add_rows", "rows [%lld, %lld) outside %lld", (long long)row0, (long long)(row0 + Lb), (long long)L);
    int64_t n = B * L * C;
    if (n <= 0) return;
    CUDA_DISPATCH("cuda add_rows", dt, {
        if (row_vec_ok<T>(C, {out, a, b}))
            k_add_rows<T, true><<<grid_for(n / RowIO<T, true>::N, 256), 256, 0, KSTREAM(k)>>>(
                B, L, C, row0, Lb, (float)alpha, (T *)out, (const T *)a, (const T *)b);
        else
            k_add_rows<T, false><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(B, L, C, row0, Lb, (float)alpha, (T *)out,
                                                                           (const T *)a, (const T *)b);
    });
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// timestep embedding (diffusers get_timestep_embedding): half = dim/2,
// freq_j = exp(-ln(max_period) * j / (half - shift)), arg = t * freq_j, y = [sin | cos]
// ([cos | sin] when flip), a zero last column when dim is odd. Arguments in f32 like diffusers.
// ---------------------------------------------------------------------------------------------
template <typename T>
__global__ void k_tstep_fwd(int64_t B, int64_t dim, int flip, float shift, float lnmax, T *y, const T *t) {
    int64_t half = dim / 2, n = B * dim;
    GRID_STRIDE(i, n) {
        int64_t b = i / dim, j = i % dim;
        float v = 0.f;
        if (j < 2 * half) {
            int64_t f = j < half ? j : j - half;
            bool first = j < half;
            float freq = (float)exp((double)(-lnmax * (float)f / ((float)half - shift)));
            float a = to_f(t[b]) * freq;
            bool is_sin = flip ? !first : first;
            v = (float)(is_sin ? sin((double)a) : cos((double)a));  // precise even under --use_fast_math
        }
        y[i] = from_f<T>(v);
    }
}
template <typename T>
__global__ void k_tstep_bwd(int64_t dim, int flip, float shift, float lnmax, T *dtime, const T *t, const T *dy) {
    __shared__ float sh[32];
    int64_t b = blockIdx.x, half = dim / 2;
    float tb = to_f(t[b]), s = 0.f;
    for (int64_t j = threadIdx.x; j < 2 * half; j += blockDim.x) {
        int64_t f = j < half ? j : j - half;
        bool first = j < half;
        float freq = (float)exp((double)(-lnmax * (float)f / ((float)half - shift)));
        float a = tb * freq;
        bool is_sin = flip ? !first : first;
        float d = (float)(is_sin ? freq * cos((double)a) : -freq * sin((double)a));
        s += to_f(dy[b * dim + j]) * d;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) dtime[b] = from_f<T>(s);
}
void cu_timestep_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift, double max_period,
                     void *y, const void *t) {
    if (B * dim <= 0) return;
    CUDA_DISPATCH("cuda timestep_fwd", dt,
                  k_tstep_fwd<T><<<grid_for(B * dim, 256), 256, 0, KSTREAM(k)>>>(
                      B, dim, flip, (float)shift, (float)log(max_period), (T *)y, (const T *)t));
    CUDA_LAUNCH_CHECK();
}
void cu_timestep_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift, double max_period,
                     void *dtime, const void *t, const void *dy) {
    if (B <= 0) return;
    CUDA_DISPATCH("cuda timestep_bwd", dt,
                  k_tstep_bwd<T><<<(unsigned)B, 256, 0, KSTREAM(k)>>>(dim, flip, (float)shift, (float)log(max_period),
                                                                      (T *)dtime, (const T *)t, (const T *)dy));
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// im2col: x [C, H, W] -> col [C*kh*kw, OH*OW], row (c*kh + i)*kw + j, zero outside the image.
// col2im: the adjoint, x += ...; one thread per input pixel gathers (deterministic, no atomics)
// ---------------------------------------------------------------------------------------------
template <typename T>
__global__ void k_im2col(int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t st, int64_t pad, int64_t OH,
                         int64_t OW, T *col, const T *x) {
    int64_t n = C * kh * kw * OH * OW;
    GRID_STRIDE(idx, n) {
        int64_t ow = idx % OW, oh = (idx / OW) % OH, r = idx / (OW * OH);
        int64_t j = r % kw, i = (r / kw) % kh, c = r / (kw * kh);
        int64_t ih = oh * st - pad + i, iw = ow * st - pad + j;
        col[idx] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[(c * H + ih) * W + iw] : from_f<T>(0.f);
    }
}
template <typename T>
__global__ void k_col2im(int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t st, int64_t pad, int64_t OH,
                         int64_t OW, T *x, const T *col) {
    int64_t n = C * H * W;
    GRID_STRIDE(idx, n) {
        int64_t w = idx % W, h = (idx / W) % H, c = idx / (W * H);
        float s = 0.f;
        for (int64_t i = 0; i < kh; i++) {
            int64_t t = h + pad - i;
            if (t < 0 || t % st) continue;
            int64_t oh = t / st;
            if (oh >= OH) continue;
            for (int64_t j = 0; j < kw; j++) {
                int64_t u = w + pad - j;
                if (u < 0 || u % st) continue;
                int64_t ow = u / st;
                if (ow >= OW) continue;
                s += to_f(col[(((c * kh + i) * kw + j) * OH + oh) * OW + ow]);
            }
        }
        x[idx] = from_f<T>(to_f(x[idx]) + s);
    }
}
void cu_im2col(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t stride,
               int64_t pad, int64_t OH, int64_t OW, void *col, const void *x) {
    int64_t n = C * kh * kw * OH * OW;
    if (n <= 0) return;
    CUDA_DISPATCH("cuda im2col", dt,
                  k_im2col<T><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(C, H, W, kh, kw, stride, pad, OH, OW, (T *)col,
                                                                       (const T *)x));
    CUDA_LAUNCH_CHECK();
}
void cu_col2im(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t stride,
               int64_t pad, int64_t OH, int64_t OW, void *x, const void *col) {
    int64_t n = C * H * W;
    if (n <= 0) return;
    CUDA_DISPATCH("cuda col2im", dt,
                  k_col2im<T><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(C, H, W, kh, kw, stride, pad, OH, OW, (T *)x,
                                                                       (const T *)col));
    CUDA_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// bicubic (PyTorch upsample_bicubic2d, align_corners=False, A = -0.75, clamped reads)
// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ void cubic_coeffs(float t, float *w) {
    const float A = -0.75f;
    float x1 = t + 1.f, x2 = t, x3 = 1.f - t, x4 = 2.f - t;
    w[0] = ((A * x1 - 5.f * A) * x1 + 8.f * A) * x1 - 4.f * A;
    w[1] = ((A + 2.f) * x2 - (A + 3.f)) * x2 * x2 + 1.f;
    w[2] = ((A + 2.f) * x3 - (A + 3.f)) * x3 * x3 + 1.f;
    w[3] = ((A * x4 - 5.f * A) * x4 + 8.f * A) * x4 - 4.f * A;
}
// source coordinate: scale * (dst + 0.5) - 0.5 with scale = in / out (no clamp for cubic)
__device__ __forceinline__ void src_index(int64_t o, int64_t in, int64_t out, int64_t &i0, float &t) {
    float scale = (float)in / (float)out;
    float real = scale * ((float)o + 0.5f) - 0.5f;
    i0 = (int64_t)floorf(real);
    if (i0 > in - 1) i0 = in - 1;  // PyTorch's guard_index_and_lambda
    t = fminf(fmaxf(real - (float)i0, 0.f), 1.f);
}
__device__ __forceinline__ int64_t clampi(int64_t v, int64_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); }

template <typename T>
__global__ void k_bicubic_fwd(int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW, T *y, const T *x) {
    int64_t n = NC * OH * OW;
    GRID_STRIDE(idx, n) {
        int64_t ox = idx % OW, oy = (idx / OW) % OH, p = idx / (OW * OH);
        const T *xp = x + p * IH * IW;
        int64_t iy, ix;
        float ty, tx, wy[4], wx[4];
        src_index(oy, IH, OH, iy, ty);
        src_index(ox, IW, OW, ix, tx);
        cubic_coeffs(ty, wy);
        cubic_coeffs(tx, wx);
        float acc = 0.f;
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int64_t r = clampi(iy - 1 + a, IH - 1);
            float row = 0.f;
#pragma unroll
            for (int b = 0; b < 4; b++) row += wx[b] * to_f(xp[r * IW + clampi(ix - 1 + b, IW - 1)]);
            acc += wy[a] * row;
        }
        y[idx] = from_f<T>(acc);
    }
}
// scatter with f32 atomics into an f32 buffer (dx itself when f32, a scratch otherwise)
template <typename T>
__global__ void k_bicubic_bwd(int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW, float *dx, const T *dy) {
    int64_t n = NC * OH * OW;
    GRID_STRIDE(idx, n) {
        int64_t ox = idx % OW, oy = (idx / OW) % OH, p = idx / (OW * OH);
        float *dp = dx + p * IH * IW;
        int64_t iy, ix;
        float ty, tx, wy[4], wx[4];
        src_index(oy, IH, OH, iy, ty);
        src_index(ox, IW, OW, ix, tx);
        cubic_coeffs(ty, wy);
        cubic_coeffs(tx, wx);
        float g = to_f(dy[idx]);
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int64_t r = clampi(iy - 1 + a, IH - 1);
#pragma unroll
            for (int b = 0; b < 4; b++) atomicAdd(&dp[r * IW + clampi(ix - 1 + b, IW - 1)], g * wy[a] * wx[b]);
        }
    }
}
template <typename T> __global__ void k_f32_to(int64_t n, T *dst, const float *src) {
    GRID_STRIDE(i, n) dst[i] = from_f<T>(src[i]);
}
void cu_bicubic_fwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW, void *y,
                    const void *x) {
    int64_t n = NC * OH * OW;
    if (n <= 0) return;
    CUDA_DISPATCH("cuda bicubic_fwd", dt,
                  k_bicubic_fwd<T><<<grid_for(n, 256), 256, 0, KSTREAM(k)>>>(NC, IH, IW, OH, OW, (T *)y, (const T *)x));
    CUDA_LAUNCH_CHECK();
}
void cu_bicubic_bwd(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                    void *dx, const void *dy) {
    int64_t nin = NC * IH * IW, nout = NC * OH * OW;
    if (nin <= 0) return;
    cudaStream_t s = KSTREAM(k);
    cuda_require_float("cuda bicubic_bwd", dt);
    float *acc = dt == CM_F32 ? (float *)dx : (float *)cuda_tmp_alloc(k, (size_t)nin * sizeof(float), "bicubic_bwd");
    CUDA_CHECK(cudaMemsetAsync(acc, 0, (size_t)nin * sizeof(float), s));
    if (nout > 0) {
        CUDA_DISPATCH("cuda bicubic_bwd", dt,
                      k_bicubic_bwd<T><<<grid_for(nout, 256), 256, 0, s>>>(NC, IH, IW, OH, OW, acc, (const T *)dy));
        CUDA_LAUNCH_CHECK();
    }
    if (dt != CM_F32) {
        k_f32_to<bf16><<<grid_for(nin, 256), 256, 0, s>>>(nin, (bf16 *)dx, acc);
        CUDA_LAUNCH_CHECK();
        cuda_tmp_free(k, acc);
    }
}
