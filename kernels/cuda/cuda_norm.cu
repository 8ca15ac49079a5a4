// cuda_norm.cu — LayerNorm (alone and fused with the adaLN modulation), RMSNorm (diffusers and
// InstantCharacter variants), GroupNorm, forward and backward. Row norms: one warp per row, 16-byte
// loads where the row allows, f32 statistics; weight / bias (and modulation) gradients by a
// two-stage column reduction (no atomics).
#include "cuda_common.cuh"
#include "cuda_rowio.cuh"

#define ROWS_PER_BLOCK 8  // 8 warps of 32

// ---------------------------------------------------------------------------------------------
// LayerNorm, alone (MOD false) or fused with the adaLN modulation (MOD true): the rows are
// [B, L] and row r's output is a * (1 + scale[r / L]) + shift[r / L], a = n * w + b. The fused
// forward never writes n; its backward reads x, the statistics and scale again. In bf16 the
// forward rounds a, 1 + scale and the product to bf16 as the unfused torch ops do.
// ---------------------------------------------------------------------------------------------
// the modulation row of batch row / L, or NULL (MOD false, or no tensor)
template <bool MOD, typename T> __device__ __forceinline__ const T *mod_row(const T *p, int64_t row, int64_t L, int64_t cols) {
    if constexpr (MOD) return p ? p + (row / L) * cols : (const T *)NULL;
    return (const T *)NULL;
}
// dy at one step of a row, times (1 + scale) when sc (the modulation row, already at the step) is given
template <typename IO, typename T> __device__ __forceinline__ void load_da(const T *dy, const T *sc, float *d) {
    IO::load(dy, d);
    if (sc) {
        float s[IO::N];
        IO::load(sc, s);
#pragma unroll
        for (int i = 0; i < IO::N; i++) d[i] *= 1.f + s[i];
    }
}

template <typename T, bool VEC, bool MOD>
__global__ void k_ln_fwd(int64_t rows, int64_t cols, int64_t L, float eps, T *y, float *mean, float *rstd, const T *x,
                         const T *w, const T *b, const T *scale, const T *shift) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    int64_t row = (int64_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T *xr = x + row * cols;
    const T *sc = mod_row<MOD>(scale, row, L, cols), *sh = mod_row<MOD>(shift, row, L, cols);
    T *yr = y + row * cols;
    float f[N];
    float mu = row_sum<IO>(xr, cols, lane, false, 0.f) / (float)cols;
    float rs = rsqrtf(row_sum<IO>(xr, cols, lane, true, mu) / (float)cols + eps);
    for (int64_t c = lane * N; c < cols; c += 32 * N) {
        float wf[N], bf[N];
        IO::load(xr + c, f);
        IO::load_or(w ? w + c : NULL, wf, 1.f);
        IO::load_or(b ? b + c : NULL, bf, 0.f);
#pragma unroll
        for (int i = 0; i < N; i++) f[i] = (f[i] - mu) * rs * wf[i] + bf[i];
        if constexpr (MOD) {
            float sf[N], hf[N];
            IO::load_or(sc ? sc + c : NULL, sf, 0.f);
            IO::load_or(sh ? sh + c : NULL, hf, 0.f);
#pragma unroll
            for (int i = 0; i < N; i++) {
                if constexpr (sizeof(T) == 2) {
                    // bf16: round where diffusers' `norm(x) * (1 + scale) + shift` in torch.bfloat16
                    // does (the norm, 1 + scale, the product; the sum at the store) — one rounding
                    // of the f32 result put FLUX-tiny's output twice as far from diffusers' bf16
                    float a = to_f(from_f<T>(f[i])), s1 = to_f(from_f<T>(1.f + sf[i]));
                    f[i] = to_f(from_f<T>(a * s1)) + hf[i];
                } else {
                    f[i] = f[i] * (1.f + sf[i]) + hf[i];
                }
            }
        }
        IO::store(yr + c, f);
    }
    if (lane == 0) {
        if (mean) mean[row] = mu;
        if (rstd) rstd[row] = rs;
    }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = da * w, da = dy (* (1 + scale) when MOD)
template <typename T, bool VEC, bool MOD>
__global__ void k_ln_bwd_dx(int64_t rows, int64_t cols, int64_t L, T *dx, const T *dy, const T *x, const float *mean,
                            const float *rstd, const T *w, const T *scale) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    int64_t row = (int64_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T *xr = x + row * cols, *dyr = dy + row * cols, *sc = mod_row<MOD>(scale, row, L, cols);
    T *dxr = dx + row * cols;
    float mu = mean[row], rs = rstd[row];
    float sg = 0.f, sgx = 0.f;
    float f[N], d[N], wf[N];
    for (int64_t c = lane * N; c < cols; c += 32 * N) {
        IO::load(xr + c, f);
        load_da<IO>(dyr + c, sc ? sc + c : NULL, d);
        IO::load_or(w ? w + c : NULL, wf, 1.f);
#pragma unroll
        for (int i = 0; i < N; i++) {
            float g = d[i] * wf[i];
            sg += g;
            sgx += g * (f[i] - mu) * rs;
        }
    }
    sg = warp_sum(sg) / (float)cols;
    sgx = warp_sum(sgx) / (float)cols;
    for (int64_t c = lane * N; c < cols; c += 32 * N) {
        IO::load(xr + c, f);
        load_da<IO>(dyr + c, sc ? sc + c : NULL, d);
        IO::load_or(w ? w + c : NULL, wf, 1.f);
#pragma unroll
        for (int i = 0; i < N; i++) f[i] = rs * (d[i] * wf[i] - sg - (f[i] - mu) * rs * sgx);
        IO::store(dxr + c, f);
    }
}

// weight / bias gradients: stage 1 writes per-chunk column partials [chunks, cols] (f32), stage 2
// sums the chunks. mode 0: layernorm (xhat = (x-mean)*rs), 1: rmsnorm (xhat = x*rs). The rows are
// B batches of L (a plain norm: one batch of every row), cpb chunks of rows_per rows per batch, so no
// chunk crosses a batch. pw, pb get sum da*xhat, sum da; MOD: da = dy * (1 + msc[b]), and ps, ph get
// the modulation's sum dy*(xhat*w + bias), sum dy, which stage 2 sums per batch.
template <typename T, bool MOD>
__global__ void k_wgrad_partial(int mode, int64_t L, int64_t cols, int64_t cpb, int64_t rows_per, const T *dy,
                                const T *x, const float *mean, const float *rs, const T *w, const T *bias,
                                const T *msc, float *pw, float *pb, float *ps, float *ph) {
    constexpr int NS = MOD ? 4 : 2;
    __shared__ float part[NS][16][33];
    int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x, bb = blockIdx.y / cpb;
    int64_t r0 = bb * L + (blockIdx.y % cpb) * rows_per, r1 = min(bb * L + L, r0 + rows_per);
    float acc[NS] = {};
    if (c < cols) {
        float s1 = 1.f, wv = 1.f, bv = 0.f;
        if constexpr (MOD) {
            s1 += msc ? to_f(msc[bb * cols + c]) : 0.f;
            wv = w ? to_f(w[c]) : 1.f;
            bv = bias ? to_f(bias[c]) : 0.f;
        }
        for (int64_t r = r0 + threadIdx.y; r < r1; r += blockDim.y) {
            float d = to_f(dy[r * cols + c]), xv = to_f(x[r * cols + c]);
            float xh = mode == 0 ? (xv - mean[r]) * rs[r] : xv * rs[r];
            acc[0] += d * s1 * xh;
            acc[1] += d * s1;
            if constexpr (MOD) {
                acc[2] += d * (xh * wv + bv);
                acc[3] += d;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < NS; i++) part[i][threadIdx.y][threadIdx.x] = acc[i];
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float *out[4] = {pw, pb, ps, ph};
#pragma unroll
        for (int i = 0; i < NS; i++) {
            float t = 0.f;
            for (int j = 0; j < (int)blockDim.y; j++) t += part[i][j][threadIdx.x];
            out[i][blockIdx.y * cols + c] = t;
        }
    }
}
// stage 2: o[g, c] = sum over the cpg chunks of group g, in order, of p[chunk, c] (for p1 -> o1, p2 -> o2)
template <typename T>
__global__ void k_wgrad_final(int64_t groups, int64_t cpg, int64_t cols, const float *p1, const float *p2, T *o1,
                              T *o2) {
    GRID_STRIDE(i, groups * cols) {
        int64_t g = i / cols, c = i % cols;
        float t1 = 0.f, t2 = 0.f;
        for (int64_t j = g * cpg; j < (g + 1) * cpg; j++) {
            t1 += p1[j * cols + c];
            t2 += p2[j * cols + c];
        }
        if (o1) o1[i] = from_f<T>(t1);
        if (o2) o2[i] = from_f<T>(t2);
    }
}
// dw, db (and MOD: dscale, dshift [B, cols]) of B batches of L rows; any output may be NULL
template <typename T, bool MOD>
static void wgrad(const cm_kctx *k, int mode, int64_t B, int64_t L, int64_t cols, T *dw, T *db, T *dscale, T *dshift,
                  const T *dy, const T *x, const float *mean, const float *rs, const T *w, const T *bias,
                  const T *msc) {
    if (!dw && !db && !dscale && !dshift) return;
    cudaStream_t s = KSTREAM(k);
    int64_t cpb = (L + 255) / 256, cap = B < 256 ? 256 / B : 1;  // ~256 chunks in all, at least one per batch
    if (cpb > cap) cpb = cap;
    if (cpb < 1) cpb = 1;
    int64_t chunks = B * cpb, rows_per = (L + cpb - 1) / cpb, np = (MOD ? 4 : 2) * chunks * cols;
    if (chunks > 65535) cm_die("cuda norm weight-gradient", "batch %lld too large", (long long)B);
    float *part = (float *)cuda_tmp_alloc(k, (size_t)np * sizeof(float), "norm weight-gradient");
    float *pw = part, *pb = pw + chunks * cols, *ps = MOD ? pb + chunks * cols : NULL, *ph = MOD ? ps + chunks * cols : NULL;
    dim3 g((unsigned)((cols + 31) / 32), (unsigned)chunks);
    k_wgrad_partial<T, MOD><<<g, dim3(32, 16), 0, s>>>(mode, L, cols, cpb, rows_per, dy, x, mean, rs, w, bias, msc, pw,
                                                       pb, ps, ph);
    CUDA_LAUNCH_CHECK();
    if (dw || db) {
        k_wgrad_final<T><<<grid_for(cols, 256), 256, 0, s>>>(1, chunks, cols, pw, pb, dw, db);
        CUDA_LAUNCH_CHECK();
    }
    if (MOD && (dscale || dshift)) {
        k_wgrad_final<T><<<grid_for(B * cols, 256), 256, 0, s>>>(B, cpb, cols, ps, ph, dscale, dshift);
        CUDA_LAUNCH_CHECK();
    }
    cuda_tmp_free(k, part);
}

// forward launch: 16-byte rows when cols and every pointer allow
template <typename T, bool MOD>
static void ln_fwd_launch(const cm_kctx *k, int64_t rows, int64_t cols, int64_t L, double eps, T *y, float *mean,
                          float *rstd, const T *x, const T *w, const T *b, const T *scale, const T *shift) {
    unsigned g = (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    if (row_vec_ok<T>(cols, {y, x, w, b, scale, shift}))
        k_ln_fwd<T, true, MOD><<<g, 256, 0, KSTREAM(k)>>>(rows, cols, L, (float)eps, y, mean, rstd, x, w, b, scale, shift);
    else
        k_ln_fwd<T, false, MOD><<<g, 256, 0, KSTREAM(k)>>>(rows, cols, L, (float)eps, y, mean, rstd, x, w, b, scale, shift);
    CUDA_LAUNCH_CHECK();
}
template <typename T, bool MOD>
static void ln_dx_launch(const cm_kctx *k, int64_t rows, int64_t cols, int64_t L, T *dx, const T *dy, const T *x,
                         const float *mean, const float *rstd, const T *w, const T *scale) {
    if (!dx || rows <= 0) return;
    unsigned g = (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    if (row_vec_ok<T>(cols, {dx, dy, x, w, scale}))
        k_ln_bwd_dx<T, true, MOD><<<g, 256, 0, KSTREAM(k)>>>(rows, cols, L, dx, dy, x, mean, rstd, w, scale);
    else
        k_ln_bwd_dx<T, false, MOD><<<g, 256, 0, KSTREAM(k)>>>(rows, cols, L, dx, dy, x, mean, rstd, w, scale);
    CUDA_LAUNCH_CHECK();
}

void cu_layernorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, double eps, void *y, float *mean,
                      float *rstd, const void *x, const void *w, const void *b) {
    if (rows <= 0 || cols <= 0) return;
    CUDA_DISPATCH("cuda layernorm_fwd", dt,
                  ln_fwd_launch<T, false>(k, rows, cols, rows, eps, (T *)y, mean, rstd, (const T *)x, (const T *)w,
                                          (const T *)b, (const T *)NULL, (const T *)NULL));
}
void cu_layernorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, void *dw, void *db,
                      const void *dy, const void *x, const float *mean, const float *rstd, const void *w) {
    if (rows < 0 || cols <= 0) return;  // rows = 0: zero dw, db are still written (sums over no rows)
    CUDA_DISPATCH("cuda layernorm_bwd", dt, {
        ln_dx_launch<T, false>(k, rows, cols, rows, (T *)dx, (const T *)dy, (const T *)x, mean, rstd, (const T *)w,
                               (const T *)NULL);
        wgrad<T, false>(k, 0, 1, rows, cols, (T *)dw, (T *)db, (T *)NULL, (T *)NULL, (const T *)dy, (const T *)x, mean,
                        rstd, (const T *)NULL, (const T *)NULL, (const T *)NULL);
    });
}
void cu_layernorm_mod_fwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, double eps, void *y,
                          float *mean, float *rstd, const void *x, const void *w, const void *b, const void *scale,
                          const void *shift) {
    if (B <= 0 || L <= 0 || C <= 0) return;
    if (b && !w) cm_die("cuda layernorm_mod_fwd", "a bias needs a weight");
    CUDA_DISPATCH("cuda layernorm_mod_fwd", dt,
                  ln_fwd_launch<T, true>(k, B * L, C, L, eps, (T *)y, mean, rstd, (const T *)x, (const T *)w,
                                         (const T *)b, (const T *)scale, (const T *)shift));
}
void cu_layernorm_mod_bwd(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *dx, void *dw,
                          void *db, void *dscale, void *dshift, const void *dy, const void *x, const float *mean,
                          const float *rstd, const void *w, const void *b, const void *scale) {
    if (B <= 0 || L < 0 || C <= 0) return;  // L = 0: zero dw, db, dscale, dshift are still written
    if (b && !w) cm_die("cuda layernorm_mod_bwd", "a bias needs a weight");
    CUDA_DISPATCH("cuda layernorm_mod_bwd", dt, {
        ln_dx_launch<T, true>(k, B * L, C, L, (T *)dx, (const T *)dy, (const T *)x, mean, rstd, (const T *)w,
                              (const T *)scale);
        wgrad<T, true>(k, 0, B, L, C, (T *)dw, (T *)db, (T *)dscale, (T *)dshift, (const T *)dy, (const T *)x, mean,
                       rstd, (const T *)w, (const T *)b, (const T *)scale);
    });
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: DIFFUSERS inv = 1/sqrt(ms + eps); IC inv = 1/(sqrt(ms) + eps); y = x * inv * w
// ---------------------------------------------------------------------------------------------
template <typename T, bool VEC>
__global__ void k_rms_fwd(int var, int64_t rows, int64_t cols, float eps, T *y, float *inv, const T *x, const T *w) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    int64_t row = (int64_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T *xr = x + row * cols;
    T *yr = y + row * cols;
    float f[N];
    float ms = row_sum<IO>(xr, cols, lane, true, 0.f) / (float)cols;
    float iv = var == CM_RMS_DIFFUSERS ? rsqrtf(ms + eps) : 1.f / (sqrtf(ms) + eps);
    for (int64_t c = lane * N; c < cols; c += 32 * N) {
        float wf[N];
        IO::load(xr + c, f);
        IO::load_or(w ? w + c : NULL, wf, 1.f);
#pragma unroll
        for (int i = 0; i < N; i++) f[i] = f[i] * iv * wf[i];
        IO::store(yr + c, f);
    }
    if (lane == 0 && inv) inv[row] = iv;
}
// dx = inv*g - x * coef * sum(g*x),  g = dy*w;
// DIFFUSERS coef = inv^3 / cols;  IC coef = inv^2 / (cols * rms), rms = 1/inv - eps
template <typename T, bool VEC>
__global__ void k_rms_bwd_dx(int var, int64_t rows, int64_t cols, float eps, T *dx, const T *dy, const T *x,
                             const float *inv, const T *w) {
    typedef RowIO<T, VEC> IO;
    constexpr int N = IO::N;
    int64_t row = (int64_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const T *xr = x + row * cols, *dyr = dy + row * cols;
    T *dxr = dx + row * cols;
    float iv = inv[row];
    float f[N], d[N], wf[N], sgx = 0.f;
    for (int64_t c = lane * N; c < cols; c += 32 * N) {
        IO::load(xr + c, f);
        IO::load(dyr + c, d);
        IO::load_or(w ? w + c : NULL, wf, 1.f);
#pragma unroll
        for (int i = 0; i < N; i++) sgx += d[i] * wf[i] * f[i];
    }
    sgx = warp_sum(sgx);
    float coef;
    if (var == CM_RMS_DIFFUSERS) coef = iv * iv * iv / (float)cols;
    else {
        float rms = 1.f / iv - eps;
        coef = rms > 0.f ? iv * iv / ((float)cols * rms) : 0.f;
    }
    for (int64_t c = lane * N; c < cols; c += 32 * N) {
        IO::load(xr + c, f);
        IO::load(dyr + c, d);
        IO::load_or(w ? w + c : NULL, wf, 1.f);
#pragma unroll
        for (int i = 0; i < N; i++) f[i] = iv * d[i] * wf[i] - f[i] * coef * sgx;
        IO::store(dxr + c, f);
    }
}
void cu_rmsnorm_fwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps, void *y,
                    float *inv, const void *x, const void *w) {
    if (rows <= 0 || cols <= 0) return;
    unsigned g = (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CUDA_DISPATCH("cuda rmsnorm_fwd", dt, {
        if (row_vec_ok<T>(cols, {y, x, w}))
            k_rms_fwd<T, true><<<g, 256, 0, KSTREAM(k)>>>((int)var, rows, cols, (float)eps, (T *)y, inv, (const T *)x,
                                                          (const T *)w);
        else
            k_rms_fwd<T, false><<<g, 256, 0, KSTREAM(k)>>>((int)var, rows, cols, (float)eps, (T *)y, inv, (const T *)x,
                                                           (const T *)w);
    });
    CUDA_LAUNCH_CHECK();
}
void cu_rmsnorm_bwd(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                    void *dx, void *dw, const void *dy, const void *x, const float *inv, const void *w) {
    if (rows < 0 || cols <= 0) return;  // rows = 0: a zero dw is still written
    unsigned g = (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CUDA_DISPATCH("cuda rmsnorm_bwd", dt, {
        if (dx && rows > 0) {
            if (row_vec_ok<T>(cols, {dx, dy, x, w}))
                k_rms_bwd_dx<T, true><<<g, 256, 0, KSTREAM(k)>>>((int)var, rows, cols, (float)eps, (T *)dx,
                                                                 (const T *)dy, (const T *)x, inv, (const T *)w);
            else
                k_rms_bwd_dx<T, false><<<g, 256, 0, KSTREAM(k)>>>((int)var, rows, cols, (float)eps, (T *)dx,
                                                                  (const T *)dy, (const T *)x, inv, (const T *)w);
            CUDA_LAUNCH_CHECK();
        }
        wgrad<T, false>(k, 1, 1, rows, cols, (T *)dw, (T *)NULL, (T *)NULL, (T *)NULL, (const T *)dy, (const T *)x, NULL,
                        inv, (const T *)NULL, (const T *)NULL, (const T *)NULL);
    });
}

// ---------------------------------------------------------------------------------------------
// GroupNorm: x [N, C, HW]; a group is the contiguous span of C/G channels x HW; one block each
// ---------------------------------------------------------------------------------------------
template <typename T>
__global__ void k_gn_fwd(int64_t C, int64_t HW, int64_t G, float eps, T *y, float *mean, float *rstd, const T *x,
                         const T *w, const T *b) {
    __shared__ float sh[32];
    int64_t ng = blockIdx.x;  // n*G + g
    int64_t cpg = C / G, span = cpg * HW;
    int64_t g = ng % G;
    const T *xs = x + ng * span;
    T *ys = y + ng * span;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < span; i += blockDim.x) s += to_f(xs[i]);
    float mu = block_sum(s, sh) / (float)span;
    float v = 0.f;
    for (int64_t i = threadIdx.x; i < span; i += blockDim.x) {
        float d = to_f(xs[i]) - mu;
        v += d * d;
    }
    float rs = rsqrtf(block_sum(v, sh) / (float)span + eps);
    for (int64_t i = threadIdx.x; i < span; i += blockDim.x) {
        int64_t c = g * cpg + i / HW;
        float wv = w ? to_f(w[c]) : 1.f, bv = b ? to_f(b[c]) : 0.f;
        ys[i] = from_f<T>((to_f(xs[i]) - mu) * rs * wv + bv);
    }
    if (threadIdx.x == 0) {
        if (mean) mean[ng] = mu;
        if (rstd) rstd[ng] = rs;
    }
}
template <typename T>
__global__ void k_gn_bwd_dx(int64_t C, int64_t HW, int64_t G, T *dx, const T *dy, const T *x, const float *mean,
                            const float *rstd, const T *w) {
    __shared__ float sh[32];
    int64_t ng = blockIdx.x;
    int64_t cpg = C / G, span = cpg * HW;
    int64_t g = ng % G;
    int64_t off = ng * span;
    float mu = mean[ng], rs = rstd[ng];
    float sg = 0.f, sgx = 0.f;
    for (int64_t i = threadIdx.x; i < span; i += blockDim.x) {
        int64_t c = g * cpg + i / HW;
        float gv = to_f(dy[off + i]) * (w ? to_f(w[c]) : 1.f);
        sg += gv;
        sgx += gv * (to_f(x[off + i]) - mu) * rs;
    }
    sg = block_sum(sg, sh) / (float)span;
    sgx = block_sum(sgx, sh) / (float)span;
    for (int64_t i = threadIdx.x; i < span; i += blockDim.x) {
        int64_t c = g * cpg + i / HW;
        float gv = to_f(dy[off + i]) * (w ? to_f(w[c]) : 1.f);
        float xh = (to_f(x[off + i]) - mu) * rs;
        dx[off + i] = from_f<T>(rs * (gv - sg - xh * sgx));
    }
}
// dw[c] = sum_{n,hw} dy * xhat, db[c] = sum dy: one block per channel
template <typename T>
__global__ void k_gn_wgrad(int64_t N, int64_t C, int64_t HW, int64_t G, T *dw, T *db, const T *dy, const T *x,
                           const float *mean, const float *rstd) {
    __shared__ float sh[32];
    int64_t c = blockIdx.x;
    int64_t g = c / (C / G);
    float aw = 0.f, ab = 0.f;
    for (int64_t n = 0; n < N; n++) {
        float mu = mean[n * G + g], rs = rstd[n * G + g];
        const T *dyp = dy + (n * C + c) * HW, *xp = x + (n * C + c) * HW;
        for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) {
            float d = to_f(dyp[i]);
            aw += d * (to_f(xp[i]) - mu) * rs;
            ab += d;
        }
    }
    aw = block_sum(aw, sh);
    ab = block_sum(ab, sh);
    if (threadIdx.x == 0) {
        if (dw) dw[c] = from_f<T>(aw);
        if (db) db[c] = from_f<T>(ab);
    }
}
void cu_groupnorm_fwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, double eps,
                      void *y, float *mean, float *rstd, const void *x, const void *w, const void *b) {
    if (N * C * HW <= 0) return;
    if (G <= 0 || C % G) cm_die("cuda groupnorm_fwd", "C=%lld not divisible by G=%lld", (long long)C, (long long)G);
    CUDA_DISPATCH("cuda groupnorm_fwd", dt,
                  k_gn_fwd<T><<<(unsigned)(N * G), 512, 0, KSTREAM(k)>>>(C, HW, G, (float)eps, (T *)y, mean, rstd,
                                                                        (const T *)x, (const T *)w, (const T *)b));
    CUDA_LAUNCH_CHECK();
}
void cu_groupnorm_bwd(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, void *dx, void *dw,
                      void *db, const void *dy, const void *x, const float *mean, const float *rstd, const void *w) {
    if (C <= 0 || N < 0 || HW < 0) return;  // N = 0 or HW = 0: zero dw, db are still written (sums over nothing)
    if (G <= 0 || C % G) cm_die("cuda groupnorm_bwd", "C=%lld not divisible by G=%lld", (long long)C, (long long)G);
    CUDA_DISPATCH("cuda groupnorm_bwd", dt, {
        if (dx && N * HW > 0) {
            k_gn_bwd_dx<T><<<(unsigned)(N * G), 512, 0, KSTREAM(k)>>>(C, HW, G, (T *)dx, (const T *)dy, (const T *)x,
                                                                      mean, rstd, (const T *)w);
            CUDA_LAUNCH_CHECK();
        }
        if (dw || db) {
            k_gn_wgrad<T><<<(unsigned)C, 256, 0, KSTREAM(k)>>>(N, C, HW, G, (T *)dw, (T *)db, (const T *)dy,
                                                               (const T *)x, mean, rstd);
            CUDA_LAUNCH_CHECK();
        }
    });
}
