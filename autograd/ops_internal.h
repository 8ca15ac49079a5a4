// ops_internal.h — helpers shared by the ops_*.c files (not part of the public API).
#pragma once
#include <stdlib.h>
#include <string.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"

static inline const cm_backend *BE(const cm_tensor *t) { return backend_get(t->storage->dev.type); }
static inline const cm_kctx *KC(const cm_tensor *t) { return backend_ctx(t->storage->dev); }
static inline cm_device DEV(const cm_tensor *t) { return t->storage->dev; }

// dies naming the op and both shapes unless a and b agree in dtype and device
void ops_check_same(const char *op, const cm_tensor *a, const cm_tensor *b);
// dies unless the RoPE tables cos, sin are on x's device, of one dtype: x's, or f32 (a bf16 x with
// f32 tables rotates in f32 and rounds once, as diffusers)
void ops_check_rope_tables(const char *op, const cm_tensor *x, const cm_tensor *cos, const cm_tensor *sin);
// dies unless t is a floating dtype the device's kernels compute in (f32/f64 on CPU, f32/bf16 on CUDA)
void ops_check_compute(const char *op, const cm_tensor *t);
// dies unless x is a compute dtype [B, L, C] and scale, shift are [B, C] (or [B, 1, C]) like it (adaLN)
void ops_check_modulation(const char *op, const cm_tensor *x, const cm_tensor *scale, const cm_tensor *shift);
_Noreturn void ops_die_shapes(const char *op, const char *what, const cm_tensor *a, const cm_tensor *b);
// a contiguous version: a new reference when already contiguous, else a copy (no autograd)
cm_tensor *ops_contig(cm_tensor *t);
// new uninitialised tensor like t's dtype/device with the given shape
cm_tensor *ops_new(const cm_tensor *like, int ndim, const int64_t *shape);
// numpy broadcast of a and b's shapes; returns ndim of the result
int ops_broadcast_shape(const char *op, const cm_tensor *a, const cm_tensor *b, int64_t *shape);
// strides of t read as the broadcast shape (0 where broadcast)
void ops_broadcast_strides(const cm_tensor *t, int ndim, const int64_t *shape, int64_t *stride);
// contiguous cur summed over axis d, keeping it as size 1 (a new tensor)
cm_tensor *ops_sum_axis(cm_tensor *cur, int d);
// sums g (of a broadcast shape) down to shape (ndim, shape); returns a new contiguous tensor
cm_tensor *ops_reduce_to(cm_tensor *g, int ndim, const int64_t *shape);
// shape of a node's input i as a temporary tensor-free description
// rows of a [..., C] tensor: the product of its leading dims (a 0-wide last dim still has its rows)
static inline int64_t ops_rows(const cm_tensor *t) {
    int64_t r = 1;
    for (int d = 0; d + 1 < t->ndim; d++) r *= t->shape[d];
    return r;
}
static inline int64_t ops_cols(const cm_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

// --- linear pieces shared by ops_matmul.c and ops_mlp.c ---
// dies naming op unless x [..., K], w [N, K], b [N] (or NULL) agree
void ops_linear_check(const char *op, cm_tensor *x, cm_tensor *w, cm_tensor *b);
// out [..., N] = act(x @ w^T + b), one gemm_ex; aux [..., N] (GELU only, or NULL) receives the pre-activation
cm_tensor *ops_linear_forward(cm_tensor *x, cm_tensor *w, cm_tensor *b, cm_act act, cm_tensor *aux);
// from gc (contiguous [rows, N], the gradient of x @ w^T + b): *dx shaped (x_ndim, x_shape) when w
// is given, *dw [N, K] when x (contiguous) is given, *db [N] when db is not NULL. dx_acc / dw_acc
// (autograd_grad_target of x / w, or NULL): the GEMM adds into it (beta 1) and *dx / *dw is it,
// retained — no temporary gradient, no summing pass
void ops_linear_grads(cm_tensor *gc, cm_tensor *w, cm_tensor *x, int x_ndim, const int64_t *x_shape, cm_tensor **dx,
                      cm_tensor **dw, cm_tensor **db, cm_tensor *dx_acc, cm_tensor *dw_acc);
// adds g into dst in place (dst: a view of an accumulator from autograd_grad_target, g: dst's shape
// and dtype, any strides), one binary add per contiguous run of dst; returns false without writing
// when that would take more than 64 runs (the caller then sums out of place)
bool ops_add_into(cm_tensor *dst, const cm_tensor *g);
