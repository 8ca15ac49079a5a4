// ops.h — the differentiable ops. Each returns a new tensor (refcount 1, owned by the caller);
// inputs are borrowed, never consumed. Under grad mode, an op with any input that requires a
// gradient records one tape node; an input that does not require one gets no gradient computed
// (a frozen weight's dW is never formed). Shape errors stop with the op name and the shapes.
// The op table (name, forward, backward side by side) lives in the ops_*.c files; see op_table.c.
// defines: op_* functions.
#pragma once
#include "autograd/tensor.h"
#include "kernels/backend.h"

// --- elementwise, numpy broadcasting ---
cm_tensor *op_add(cm_tensor *a, cm_tensor *b);
cm_tensor *op_sub(cm_tensor *a, cm_tensor *b);
cm_tensor *op_mul(cm_tensor *a, cm_tensor *b);
cm_tensor *op_div(cm_tensor *a, cm_tensor *b);
cm_tensor *op_scale(cm_tensor *x, double s);            // s * x
cm_tensor *op_add_scalar(cm_tensor *x, double s);       // x + s

// --- activations ---
cm_tensor *op_gelu(cm_tensor *x, bool tanh_approx);     // tanh: PyTorch approximate='tanh'; else erf
cm_tensor *op_silu(cm_tensor *x);
cm_tensor *op_geglu(cm_tensor *x);                      // [..., 2H] -> [..., H]: a * gelu_erf(g), (a, g) = chunk(2)
cm_tensor *op_swiglu(cm_tensor *x);                     // [..., 2H] -> [..., H]: silu(a) * g
cm_tensor *op_unary(cm_tensor *x, cm_unop u);           // generic: square, exp, neg, ...

// --- reductions ---
cm_tensor *op_sum(cm_tensor *x, int naxes, const int *axes, bool keepdim);
cm_tensor *op_mean(cm_tensor *x, int naxes, const int *axes, bool keepdim);
cm_tensor *op_sum_all(cm_tensor *x);                    // -> [] scalar (ndim 0)
cm_tensor *op_mean_all(cm_tensor *x);

// --- shape (views where possible: reshape of a contiguous tensor, permute, slice, expand) ---
cm_tensor *op_reshape(cm_tensor *x, int ndim, const int64_t *shape);  // one -1 allowed
cm_tensor *op_permute(cm_tensor *x, const int *perm);
cm_tensor *op_transpose(cm_tensor *x, int d0, int d1);
cm_tensor *op_slice(cm_tensor *x, int axis, int64_t start, int64_t end);   // narrow [start, end)
cm_tensor *op_chunk(cm_tensor *x, int n, int axis, int i);                 // i-th of n equal chunks
cm_tensor *op_concat(int n, cm_tensor **xs, int axis);
cm_tensor *op_expand(cm_tensor *x, int ndim, const int64_t *shape);        // broadcast view
cm_tensor *op_contiguous(cm_tensor *x);                                    // a copy when not contiguous (else a new reference)
cm_tensor *op_unsqueeze(cm_tensor *x, int axis);
cm_tensor *op_squeeze(cm_tensor *x, int axis);
// split into n tensors of the given sizes along axis; outs[i] are views
void op_split(cm_tensor *x, int axis, int n, const int64_t *sizes, cm_tensor **outs);

// --- linear algebra ---
// a [..., M, K] (or [..., K, M] if ta), b [..., K, N] (or [..., N, K] if tb); batch dims equal, or b 2-D
cm_tensor *op_matmul_t(cm_tensor *a, cm_tensor *b, bool ta, bool tb);
cm_tensor *op_matmul(cm_tensor *a, cm_tensor *b);
// x [..., K], w [N, K], b [N] or NULL -> [..., N]
cm_tensor *op_linear(cm_tensor *x, cm_tensor *w, cm_tensor *b);
// gelu(linear(x, w, b), tanh) in one GEMM (on the tape it also keeps gelu's input for backward)
cm_tensor *op_linear_gelu(cm_tensor *x, cm_tensor *w, cm_tensor *b);
// linear(gelu(linear(x, w1, b1), tanh), w2, b2): x [..., K], w1 [H, K], w2 [N, H], biases or NULL.
// Keeps only gelu's input [..., H] (and the weights / x its gradients need); backward makes the
// hidden gradient in one GEMM with gelu's derivative fused (ops_mlp.c)
cm_tensor *op_mlp_gelu(cm_tensor *x, cm_tensor *w1, cm_tensor *b1, cm_tensor *w2, cm_tensor *b2);
// linear(concat([pre, gelu(linear(x, w1, b1), tanh)], -1), w2, b2) without the concatenation:
// pre [..., P] (x's leading dims), w2 [N, P + H]; pre NULL is op_mlp_gelu (FLUX single blocks)
cm_tensor *op_mlp_gelu_cat(cm_tensor *pre, cm_tensor *x, cm_tensor *w1, cm_tensor *b1, cm_tensor *w2, cm_tensor *b2);

// --- norms and softmax (over the last axis unless said) ---
cm_tensor *op_layernorm(cm_tensor *x, cm_tensor *w, cm_tensor *b, double eps);   // w, b may be NULL
// x [B, L, C]; scale, shift [B, C] (or [B, 1, C]): op_modulate(op_layernorm(x, w, b, eps), scale, shift) in
// one kernel, without storing the normalised tensor (w, b may be NULL)
cm_tensor *op_layernorm_modulate(cm_tensor *x, cm_tensor *w, cm_tensor *b, double eps, cm_tensor *scale,
                                 cm_tensor *shift);
cm_tensor *op_rmsnorm(cm_tensor *x, cm_tensor *w, double eps, cm_rmsvariant v);  // w may be NULL
cm_tensor *op_groupnorm(cm_tensor *x, int groups, cm_tensor *w, cm_tensor *b, double eps);  // x [N, C, ...]
cm_tensor *op_softmax(cm_tensor *x);

// --- attention: q [B, H, Lq, D], k, v [B, H, Lk, D] (any strides with D contiguous) -> [B, H, Lq, D]
// mask: additive f32 [Lq, Lk], [B|1, H|1, Lq, Lk], or NULL. scale <= 0 means 1/sqrt(D).
cm_tensor *op_sdpa(cm_tensor *q, cm_tensor *k, cm_tensor *v, cm_tensor *mask, double scale);
// the same attention with the output token-major, [B, Lq, H, D]: op_sdpa permuted, written so by the
// kernel (a [B, Lq, H*D] view of it is what an output projection reads; no copy either way)
cm_tensor *op_sdpa_tokens(cm_tensor *q, cm_tensor *k, cm_tensor *v, cm_tensor *mask, double scale);
// two attentions in one op, no masks, one scale: q1 [B, H, Lq1, D] over k1, v1 [B, H, Lk1, D] and q2
// [B, H, Lq2, D] over k2, v2 [B, H, Lk2, D] -> [B, Lq1 + Lq2, H, D] token-major, problem 1's rows
// first (the FLUX blocks' joint attention and the IP attention: one launch where the backend can)
cm_tensor *op_sdpa_tokens_pair(cm_tensor *q1, cm_tensor *k1, cm_tensor *v1, cm_tensor *q2, cm_tensor *k2, cm_tensor *v2,
                               double scale);

// --- positions and conditioning ---
// x [..., L, D]; cos, sin [L, D] (FLUX: repeat-interleaved per pair); adjacent pairs rotate
cm_tensor *op_rope(cm_tensor *x, cm_tensor *cos, cm_tensor *sin);
// a FLUX attention's q / k in one op: segments xs[s] (n <= 2 streams, text first) [B, Ls, H*D] or
// [B, Ls, H, D], each RMS-normalised per head with ws[s] [D] (ws NULL: no weights; eps and variant as
// op_rmsnorm), then RoPE (cos, sin [L, D], L = sum of Ls) at its rows of the joint sequence.
// Returns [B, H, L, D], the layout op_sdpa reads: rmsnorm + concat + permute + rope as one pass.
cm_tensor *op_rms_rope_heads(int n, cm_tensor **xs, cm_tensor **ws, int H, double eps, cm_rmsvariant var,
                             cm_tensor *cos, cm_tensor *sin);
// x [B, L, C], scale, shift [B, C] -> x * (1 + scale) + shift
cm_tensor *op_modulate(cm_tensor *x, cm_tensor *scale, cm_tensor *shift);
// the FLUX blocks' gated residual res + gate[:, None, :] * y (op_add(res, op_mul(gate, y)) in one pass);
// res, y [B, L, C], gate [B, C] or [B, 1, C]
cm_tensor *op_gated_add(cm_tensor *res, cm_tensor *gate, cm_tensor *y);
// a + alpha * b added on rows row0 .. row0+Lb of a (a [B, L, C], b [B, Lb, C]): the IP output on
// the image tokens of an attention output, one pass (was op_scale + op_add, and slices + concat)
cm_tensor *op_add_rows(cm_tensor *a, cm_tensor *b, double alpha, int64_t row0);
// x [B, L + N, C] -> [B, L, C]: x's rows 0..L-1 with alpha * its rows L.. added at rows row0..
// (row0 + N <= L): op_sdpa_tokens_pair's output folded, one pass each way
cm_tensor *op_fold_rows(cm_tensor *x, int64_t L, double alpha, int64_t row0);
// t [B] -> [B, dim]; diffusers get_timestep_embedding (max_period 10000)
cm_tensor *op_timestep_embedding(cm_tensor *t, int dim, bool flip_sin_to_cos, double downscale_freq_shift);

// --- images ---
// x [N, C, H, W], w [O, C, kh, kw], b [O] or NULL -> [N, O, OH, OW]
cm_tensor *op_conv2d(cm_tensor *x, cm_tensor *w, cm_tensor *b, int stride, int pad);
// x [N, C, H, W] -> [N, C, OH, OW]; PyTorch bicubic, align_corners=False
cm_tensor *op_interp_bicubic(cm_tensor *x, int64_t OH, int64_t OW);

// --- lookup, loss, dtype, device ---
cm_tensor *op_embedding(cm_tensor *table, cm_tensor *idx);   // table [V, D], idx i32 [...] -> [..., D]
cm_tensor *op_mse(cm_tensor *a, cm_tensor *b);               // mean((a-b)^2) -> [] scalar
cm_tensor *op_cast(cm_tensor *x, cm_dtype dt);
cm_tensor *op_to_device(cm_tensor *x, cm_device dev);
cm_tensor *op_detach(cm_tensor *x);                          // shares storage, no grad history
