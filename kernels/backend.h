// backend.h — the one interface between autograd and the compute: raw pointers and sizes in,
// no tensors, no autograd. kernels/cpu implements it in C (f32 and f64), kernels/cuda in CUDA
// (f32 and bf16). Every buffer is contiguous row-major unless a stride argument says otherwise.
// defines: cm_backend, cm_kctx, backend_get, the op enums.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "../autograd/tensor.h"

// execution context of one kernel call: the device, its stream, the device's BLAS handle
typedef struct cm_kctx {
    cm_device dev;
    void *stream;  // cudaStream_t on CUDA, unused on CPU
    void *blas;    // cublasLtHandle_t on CUDA, unused on CPU
} cm_kctx;

typedef enum { CM_BIN_ADD = 0, CM_BIN_SUB, CM_BIN_MUL, CM_BIN_DIV } cm_binop;
typedef enum { CM_UN_GELU_TANH = 0, CM_UN_GELU_ERF, CM_UN_SILU, CM_UN_SQUARE, CM_UN_EXP, CM_UN_NEG } cm_unop;
typedef enum { CM_GLU_GEGLU = 0, CM_GLU_SWIGLU } cm_gluop;  // GEGLU: a*gelu_erf(g); SwiGLU: silu(a)*g
typedef enum { CM_RMS_DIFFUSERS = 0, CM_RMS_IC = 1 } cm_rmsvariant;  // eps inside sqrt / eps added to the RMS
// the streams of a device context: kernels and synchronous copies run on COMPUTE (k->stream),
// memcpy_h2d_async on COPY; on the CPU both are "the calling thread"
typedef enum { CM_STREAM_COMPUTE = 0, CM_STREAM_COPY = 1 } cm_stream;
// GEMM epilogue: none; PyTorch's gelu(approximate='tanh') (cuBLASLt's GELU / GELU_BIAS, with
// GELU_AUX(_BIAS) when the pre-activation is kept); or the product times gelu_tanh'(aux), the
// GELU's backward fused into the GEMM that makes its upstream gradient (cuBLASLt's DGELU)
typedef enum { CM_ACT_NONE = 0, CM_ACT_GELU_TANH = 1, CM_ACT_DGELU_TANH = 2 } cm_act;

// one tensor of a multi-tensor AdamW: f32 master p, gradient g (the call's gradient dtype),
// moments m, v (the call's state dtype); n elements each, contiguous. key: the stochastic
// rounding key of bf16 moments (kernels/sr_round.h, cm_sr_key(parameter index, step)); unused for f32.
// w: NULL, or the model's bf16 copy of the master (contiguous), written bf16(p) (round to nearest
// even, as copy_strided casts) once p is updated — one pass instead of a cast pass reading p again.
// ema: NULL, or the f32 moving average of p, made ema = (1 - d) p + d ema (the call's ema_decay d,
// axpby's arithmetic) from the updated p while it is in registers — no pass reading p again
typedef struct cm_adamw_tensor {
    float *p;
    const void *g;
    void *m, *v;
    int64_t n;
    uint64_t key;
    uint16_t *w;
    float *ema;
} cm_adamw_tensor;

// one attention problem of a group (attn_fwd_group / attn_bwd_group): attn_fwd's arguments, and
// attn_bwd's (dQ, dK, dV, dO, gs) for the backward
typedef struct cm_attn_problem {
    int64_t B, H, Lq, Lk, D;
    double scale;
    void *O;
    const int64_t *os;
    float *lse;
    const void *Q, *K, *V;
    const int64_t *qs, *ks, *vs;
    const float *mask;
    int64_t mb, mh;
    void *dQ, *dK, *dV;
    const void *dO;
    const int64_t *gs;
} cm_attn_problem;

typedef struct cm_backend {
    const char *name;
    // --- memory (raw; autograd/alloc.c caches on top) ---
    void *(*alloc)(size_t nbytes);                 // NULL on failure
    void (*free)(void *p);
    void (*memcpy_h2d)(const cm_kctx *k, void *dst, const void *src, size_t n);
    void (*memcpy_d2h)(const cm_kctx *k, void *dst, const void *src, size_t n);
    void (*memcpy_d2d)(const cm_kctx *k, void *dst, const void *src, size_t n);
    void (*sync)(const cm_kctx *k);
    size_t (*mem_free)(const cm_kctx *k);         // bytes free on the device, 0 if unknown
    // --- asynchronous uploads: a copy stream beside the compute stream (k->stream), and events ---
    // host memory the device copies from asynchronously: page-locked (cudaHostAlloc) on CUDA,
    // plain 64-byte aligned memory on the CPU; NULL on failure
    void *(*host_alloc)(size_t nbytes);
    void (*host_free)(void *p);
    // enqueues a copy of n bytes host src -> device dst on the copy stream and returns at once
    // (src from host_alloc: a DMA that overlaps the compute stream's work; pageable memory is
    // staged by the driver first). Ordered against the copy stream only: make the copy stream
    // wait (event_wait) for compute work that still uses dst, make the compute stream wait for
    // the copy before it reads dst, and keep src unchanged until the copy is done (event_sync).
    // The CPU copies at once.
    void (*memcpy_h2d_async)(const cm_kctx *k, void *dst, const void *src, size_t n);
    // an event at the point stream s has reached in the work queued so far (never 0 on CUDA;
    // the CPU, where everything is done at once, returns 0)
    uint64_t (*event_record)(const cm_kctx *k, cm_stream s);
    // stream s's later work waits (device side, the host goes on) for event e; e = 0: nothing
    void (*event_wait)(const cm_kctx *k, cm_stream s, uint64_t e);
    // the host waits for event e; e = 0: nothing
    void (*event_sync)(const cm_kctx *k, uint64_t e);

    // fill n elements with value
    void (*fill)(const cm_kctx *k, cm_dtype dt, void *dst, int64_t n, double value);
    // dst[idx] = cast(src[idx]) over an ndim index space; strides in elements; casts any dtype pair
    void (*copy_strided)(const cm_kctx *k, int ndim, const int64_t *shape,
                         cm_dtype dst_dt, void *dst, const int64_t *dst_stride,
                         cm_dtype src_dt, const void *src, const int64_t *src_stride);

    // --- elementwise ---
    // out (contiguous over shape) = a op b; a, b read through strides (0 = broadcast)
    void (*binary)(const cm_kctx *k, cm_binop op, cm_dtype dt, int ndim, const int64_t *shape, void *out,
                   const void *a, const int64_t *a_stride, const void *b, const int64_t *b_stride);
    void (*axpby)(const cm_kctx *k, cm_dtype dt, int64_t n, double alpha, const void *x, double beta, void *y);  // y = a*x + b*y
    void (*unary_fwd)(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *y, const void *x);
    void (*unary_bwd)(const cm_kctx *k, cm_unop op, cm_dtype dt, int64_t n, void *dx, const void *x, const void *dy);
    // x [rows, 2*half] -> y [rows, half]
    void (*glu_fwd)(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *y, const void *x);
    void (*glu_bwd)(const cm_kctx *k, cm_gluop op, cm_dtype dt, int64_t rows, int64_t half, void *dx, const void *x, const void *dy);

    // --- reductions ---
    // x [outer, red, inner] -> y [outer, inner] (sum over the middle axis, accumulated in >= f32)
    void (*reduce_sum)(const cm_kctx *k, cm_dtype dt, int64_t outer, int64_t red, int64_t inner, void *y, const void *x);
    // sum of squares of n elements, returned on the host
    double (*sumsq)(const cm_kctx *k, cm_dtype dt, int64_t n, const void *x);
    // the sum of sumsq over a host list of nt tensors x[i] of n[i] elements (all of dtype dt): one
    // host synchronisation for all of them. CPU: sumsq added in list order (the same bits).
    double (*sumsq_multi)(const cm_kctx *k, cm_dtype dt, int nt, const void *const *x, const int64_t *n);

    // --- GEMM: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b], row-major, ld in elements ---
    void (*gemm)(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K,
                 double alpha, const void *A, int64_t lda, int64_t strideA,
                 const void *B, int64_t ldb, int64_t strideB,
                 double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch);
    // the same with an epilogue: C[b] = act(P) with P = alpha * op(A[b]) @ op(B[b]) + beta * C[b] + bias,
    // bias (NULL = none) [N] of dtype dt, added to every row of every C[b]. aux (NULL = none) is a
    // matrix laid out like C (ldc, strideC, dtype dt):
    //   CM_ACT_GELU_TANH:  C = gelu_tanh(P); aux, when given, receives P (the pre-activation a
    //                      backward needs) — computed once, C from the unrounded P
    //   CM_ACT_DGELU_TANH: C = P * gelu_tanh'(aux), aux read; needs beta == 0 and no bias
    // gemm(...) is gemm_ex(..., NULL, CM_ACT_NONE, NULL). CUDA: one cuBLASLt call with its BIAS /
    // GELU(_AUX)(_BIAS) / DGELU epilogue (f32 arithmetic, one rounding to C's dtype), or the plain
    // GEMM and one epilogue kernel where cuBLASLt declines (aux ldc not a multiple of 8, say).
    void (*gemm_ex)(const cm_kctx *k, cm_dtype dt, int transA, int transB, int64_t M, int64_t N, int64_t K,
                    double alpha, const void *A, int64_t lda, int64_t strideA,
                    const void *B, int64_t ldb, int64_t strideB,
                    double beta, void *C, int64_t ldc, int64_t strideC, int64_t batch,
                    const void *bias, cm_act act, void *aux);

    // --- norms (mean / rstd / inv saved in f32 for backward) ---
    // x [rows, cols]; w, b [cols] or NULL
    void (*layernorm_fwd)(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                          void *y, float *mean, float *rstd, const void *x, const void *w, const void *b);
    // dw, db: written (not accumulated) when not NULL
    void (*layernorm_bwd)(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols,
                          void *dx, void *dw, void *db, const void *dy, const void *x,
                          const float *mean, const float *rstd, const void *w);
    // inv[r] = 1/sqrt(mean(x^2)+eps) (DIFFUSERS) or 1/(sqrt(mean(x^2))+eps) (IC)
    void (*rmsnorm_fwd)(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                        void *y, float *inv, const void *x, const void *w);
    void (*rmsnorm_bwd)(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, int64_t rows, int64_t cols, double eps,
                        void *dx, void *dw, const void *dy, const void *x, const float *inv, const void *w);
    // x [N, C, HW], G groups; mean/rstd [N, G]
    void (*groupnorm_fwd)(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G, double eps,
                          void *y, float *mean, float *rstd, const void *x, const void *w, const void *b);
    void (*groupnorm_bwd)(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t HW, int64_t G,
                          void *dx, void *dw, void *db, const void *dy, const void *x,
                          const float *mean, const float *rstd, const void *w);

    // --- softmax over the last axis, f32 accumulation ---
    void (*softmax_fwd)(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *y, const void *x);
    void (*softmax_bwd)(const cm_kctx *k, cm_dtype dt, int64_t rows, int64_t cols, void *dx, const void *y, const void *dy);

    // --- fused attention: O = softmax(scale * Q K^T + mask) V ---
    // Q [B, H, Lq, D], K/V [B, H, Lk, D] read through strides (sb, sh, sl; the D axis is contiguous).
    // O [B, H, Lq, D] written through os (NULL: contiguous; [3] {sb, sh, sl} otherwise, e.g. the
    // token-major [B, Lq, H, D] the output projection reads); lse [B, H, Lq] f32 (natural
    // log-sum-exp of the scaled, masked scores).
    // mask: additive f32 [Lq, Lk] rows, with batch / head strides mb, mh (0 = broadcast), or NULL.
    void (*attn_fwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale,
                     void *O, const int64_t *os, float *lse, const void *Q, const int64_t *qs, const void *K,
                     const int64_t *ks, const void *V, const int64_t *vs, const float *mask, int64_t mb, int64_t mh);
    // dQ, dK, dV contiguous [B, H, L, D], written (not accumulated); dO and O read through gs and os
    // (NULL: contiguous), as attn_fwd's O
    void (*attn_bwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D, double scale,
                     void *dQ, void *dK, void *dV, const void *dO, const int64_t *gs, const void *O, const int64_t *os,
                     const float *lse, const void *Q, const int64_t *qs, const void *K, const int64_t *ks,
                     const void *V, const int64_t *vs, const float *mask, int64_t mb, int64_t mh);

    // the same for n problems at once (cm_attn_problem: attn_fwd's / attn_bwd's arguments), as the
    // FLUX blocks' joint attention and the IP attention beside it: a backend may run them in one
    // launch (CUDA: the wgmma3 kernels, two problems); NULL: the caller runs them one by one
    void (*attn_fwd_group)(const cm_kctx *k, cm_dtype dt, int n, const struct cm_attn_problem *p);
    void (*attn_bwd_group)(const cm_kctx *k, cm_dtype dt, int n, const struct cm_attn_problem *p);

    // --- position and conditioning ---
    // x [outer, L, D] contiguous; cos, sin [L, D] (already repeat-interleaved); adjacent pairs rotate.
    // inverse != 0 applies the transpose rotation (the backward). The tables' dtype tdt is dt or f32
    // (a bf16 x with f32 tables, as diffusers: the rotation in f32, one rounding at the store).
    void (*rope)(const cm_kctx *k, cm_dtype dt, cm_dtype tdt, int64_t outer, int64_t L, int64_t D, int inverse,
                 void *y, const void *x, const void *cos, const void *sin);
    // a FLUX q / k in one pass: RMSNorm over D of each head of x [B, Ls, H, D] (contiguous; inv, w
    // [D] or NULL as rmsnorm_fwd), then RoPE at joint positions l0 + l (cos, sin [Ly, D] of dtype
    // tdt, as rope), written head-major to y[b, h, l0 + l, :] of y [B, H, Ly, D] (other rows
    // untouched); inv [B*Ls*H] f32
    void (*rms_rope_fwd)(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                         int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *y, float *inv,
                         const void *x, const void *w, const void *cos, const void *sin);
    // its backward: g = RoPE^T of dy's rows l0 .. l0+Ls (as rope inverse) back in x's layout, then
    // rmsnorm_bwd on g: dx [B, Ls, H, D] and dw [D] written (each only when not NULL)
    void (*rms_rope_bwd)(const cm_kctx *k, cm_rmsvariant var, cm_dtype dt, cm_dtype tdt, int64_t B, int64_t Ls,
                         int64_t H, int64_t D, double eps, int64_t Ly, int64_t l0, void *dx, void *dw,
                         const void *dy, const void *x, const float *inv, const void *w, const void *cos,
                         const void *sin);
    // y = x * (1 + scale) + shift; x [B, L, C], scale/shift [B, C]
    void (*modulate_fwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C,
                         void *y, const void *x, const void *scale, const void *shift);
    // dx = dy*(1+scale); dscale = sum_L dy*x; dshift = sum_L dy  (each written when not NULL)
    void (*modulate_bwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C,
                         void *dx, void *dscale, void *dshift, const void *dy, const void *x, const void *scale);
    // the gated residual of the FLUX blocks: out = res + gate[b] * y; res, y, out [B, L, C], gate [B, C]
    // (its backward is a broadcast mul and modulate_bwd's dscale)
    void (*gated_add)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, void *out, const void *res,
                      const void *gate, const void *y);
    // an attention output plus a scaled side branch on some of its rows (the IP output on the image
    // tokens): out = a + alpha * b on rows row0 .. row0+Lb of each batch, out = a elsewhere;
    // a, out [B, L, C], b [B, Lb, C]
    void (*add_rows)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, int64_t row0, int64_t Lb,
                     double alpha, void *out, const void *a, const void *b);
    // LayerNorm fused with the modulation (one pass, the normalised tensor never stored):
    // n = (x - mean) * rstd over each row of C; a = n * w + b (w, b [C] or NULL: a = n; b needs w);
    // y = a * (1 + scale[b]) + shift[b]. x, y [B, L, C]; scale, shift [B, C] (NULL = 0);
    // mean, rstd [B*L] f32, saved for backward (either may be NULL)
    void (*layernorm_mod_fwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C, double eps,
                              void *y, float *mean, float *rstd, const void *x, const void *w, const void *b,
                              const void *scale, const void *shift);
    // with da = dy * (1 + scale[b]): dx = rstd * (da*w - mean_C(da*w) - n * mean_C(da*w*n)) (w = 1 when
    // NULL); dw = sum_rows da*n; db = sum_rows da; dscale[b] = sum_L dy*a; dshift[b] = sum_L dy.
    // Each output written (not accumulated) when not NULL; f32 accumulation (f64 on the CPU)
    void (*layernorm_mod_bwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t L, int64_t C,
                              void *dx, void *dw, void *db, void *dscale, void *dshift, const void *dy,
                              const void *x, const float *mean, const float *rstd, const void *w, const void *b,
                              const void *scale);
    // y [B, dim]: freq_j = exp(-ln(max_period) * j / (half - shift)); [sin, cos] or [cos, sin] if flip
    void (*timestep_fwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift,
                         double max_period, void *y, const void *t);
    // dt[b] = sum_j dy * d(emb)/dt
    void (*timestep_bwd)(const cm_kctx *k, cm_dtype dt, int64_t B, int64_t dim, int flip, double shift,
                         double max_period, void *dtime, const void *t, const void *dy);

    // --- images ---
    // one image: x [C, H, W] -> col [C*kh*kw, OH*OW]; col2im accumulates (+=) into x
    void (*im2col)(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                   int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *col, const void *x);
    void (*col2im)(const cm_kctx *k, cm_dtype dt, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                   int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *x, const void *col);
    // PyTorch upsample_bicubic2d, align_corners=False, A=-0.75, clamped borders; x [NC, IH, IW]
    void (*bicubic_fwd)(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                        void *y, const void *x);
    // dx written (zeroed, then accumulated)
    void (*bicubic_bwd)(const cm_kctx *k, cm_dtype dt, int64_t NC, int64_t IH, int64_t IW, int64_t OH, int64_t OW,
                        void *dx, const void *dy);
    // optional (NULL = not provided): y [N, O, OH, OW] = conv2d(x [N, C, H, W], w [O, C, kh, kw]) + b [O]
    // (b may be NULL), all contiguous, stride/pad as im2col's. Returns 0 without touching y when it
    // does not handle this case (dtype, sizes): the caller then runs im2col + gemm.
    int (*conv2d_fwd)(const cm_kctx *k, cm_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                      int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t OH, int64_t OW, void *y,
                      const void *x, const void *w, const void *b);

    // --- lookup ---
    // y[i] = table[idx[i]] rows of width D; idx int32 [n]
    void (*gather_rows)(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *y, const void *table, const int32_t *idx);
    // dtable[idx[i]] += dy[i]
    void (*scatter_add_rows)(const cm_kctx *k, cm_dtype dt, int64_t n, int64_t D, void *dtable, const void *dy, const int32_t *idx);

    // --- loss and optimizer ---
    // out[0] = mean((a-b)^2) (out: one element of dt, device memory; f64 sum, one rounding). The
    // loss stays on the device: no host synchronisation between a step's forward and backward.
    void (*mse_fwd)(const cm_kctx *k, cm_dtype dt, int64_t n, const void *a, const void *b, void *out);
    // da = g * gp[0] * 2 (a - b) / n; gp: one element of dt in device memory (the upstream gradient,
    // read there, not on the host), or NULL for 1
    void (*mse_bwd)(const cm_kctx *k, cm_dtype dt, int64_t n, double g, const void *gp, void *da, const void *a,
                    const void *b);
    // AdamW on f32 master weights p, f32 moments m, v; g of dtype gdt; bc1 = 1-b1^t, bc2 = 1-b2^t
    void (*adamw)(const cm_kctx *k, int64_t n, float *p, cm_dtype gdt, const void *g, float *m, float *v,
                  double lr, double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale);
    // the same update on a list of tensors (host array t[nt]; every g of dtype gdt, every m, v of
    // dtype sdt): with f32 moments each element gets exactly adamw's arithmetic, so the results are
    // those of nt adamw calls, bit for bit; bf16 moments are read as f32, updated alike, and stored
    // with stochastic rounding (kernels/sr_round.h, bits from (t[i].key, element)).
    // CUDA: one launch per up to 56 tensors, a grid over (tensor, chunk). ema_decay: the d of
    // every t[i].ema (unused where all are NULL)
    void (*adamw_multi)(const cm_kctx *k, int nt, const cm_adamw_tensor *t, cm_dtype gdt, cm_dtype sdt,
                        double lr, double b1, double b2, double eps, double wd, double bc1, double bc2, double gscale,
                        double ema_decay);

    // --- timing, for the op profiler (kernels/profile.c) ---
    // a mark at the point the compute stream has reached (CUDA: a timing event from a pool of the
    // context, never 0; the CPU: the monotonic clock in ns)
    uint64_t (*timer_mark)(const cm_kctx *k);
    // milliseconds from mark a to mark b (waits for b to be reached)
    double (*timer_ms)(const cm_kctx *k, uint64_t a, uint64_t b);
    // the marks taken so far are done with: their events may be recorded again
    void (*timer_reset)(const cm_kctx *k);
} cm_backend;

// the backend for a device type; NULL (with a message) when that backend was not built
const cm_backend *backend_get(cm_devtype t);
// the context for a device (default stream, shared BLAS handle)
const cm_kctx *backend_ctx(cm_device d);
// registered by kernels/cuda when built with CUDA
extern const cm_backend *cm_cuda_backend;
const cm_kctx *cuda_backend_ctx(int index);

// the caching allocator above the backends (autograd/alloc.c) gives its cached blocks of device d
// back to the backend: what a backend calls when its own scratch allocation (kernel workspaces,
// which the cache cannot serve) fails, before it retries once. Set by autograd/alloc.c; NULL: none
extern void (*cm_release_cached)(cm_device d);

// instrumentation: counts of GEMM calls per backend (tests prove frozen weights skip dW)
extern int64_t cm_gemm_calls;
// work the CUDA backend enqueued: its kernels and cuBLAS GEMMs (bench blocks: launches per pass,
// beside the host time taken to issue them — the launch-bound share of small batches)
extern int64_t cm_dev_launches;
// launches of the wgmma attention kernels (CAMEO_ATTN=wgmma): the test proves they ran, not mma's fallback
extern int64_t cm_attn_wgmma_runs;
// launches of the mma family's fused backward (CAMEO_ATTN_BWD=fused): the same proof for it
extern int64_t cm_attn_mma_fused_runs;
// CUDA attention forwards that went through GEMMs (cuda_attention_gemm.cu): the tests prove the path ran
extern int64_t cm_attn_gemm_runs;
extern const char *cm_attn_wgmma_off;  // why it cannot run on the device in use (NULL: it can)
