// test_empty_shapes.c — ops over tensors with a 0-sized dim, forward and backward: a linear with
// no input features (every row is the bias; dW of shape [4, 0], db the row count), LayerNorm and
// RMSNorm over no rows (their weight gradients zero) — these divided by zero (SIGFPE) before —
// and LayerNorm fused with the modulation over no batches (zero weight gradients; they were left
// unwritten before); the fused GELU MLP over no rows (its backward died in the DGELU GEMM).
#include <math.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"

static cm_tensor *param(int ndim, const int64_t *shape, float v) {
    cm_tensor *t = tensor_zeros(CM_F32, ndim, shape, CM_DEV_CPU);
    for (int64_t i = 0; i < tensor_numel(t); i++) ((float *)tensor_data(t))[i] = v + 0.5f * (float)i;
    tensor_set_requires_grad(t, true);
    return t;
}

int main(void) {
    // linear over K = 0 features: y = b on every row; db = the row count per output, dW empty
    cm_tensor *x = param(2, (int64_t[]){3, 0}, 0), *w = param(2, (int64_t[]){4, 0}, 0), *b = param(1, (int64_t[]){4}, 1);
    cm_tensor *y = op_linear(x, w, b), *s = op_sum_all(y);
    bool rows_are_b = y->shape[0] == 3 && y->shape[1] == 4;
    for (int64_t i = 0; rows_are_b && i < 12; i++) rows_are_b = tensor_get(y, i) == tensor_get(b, i % 4);
    TEST_CHECK(rows_are_b, "linear with no input features: every row is the bias");
    autograd_backward(s, NULL);
    bool db3 = b->grad && tensor_numel(b->grad) == 4;
    for (int64_t i = 0; db3 && i < 4; i++) db3 = tensor_get(b->grad, i) == 3;
    TEST_CHECK(db3 && (!w->grad || tensor_numel(w->grad) == 0), "its gradients: db = 3 each, dW empty");
    cm_tensor *t1[] = {x, w, b, y, s};
    for (int i = 0; i < 5; i++) tensor_release(t1[i]);

    // LayerNorm over no rows ([0, 8]) and RMSNorm over [2, 0, 8]: weight gradients zero
    cm_tensor *xl = param(2, (int64_t[]){0, 8}, 0), *wl = param(1, (int64_t[]){8}, 1), *bl = param(1, (int64_t[]){8}, 0);
    cm_tensor *yl = op_layernorm(xl, wl, bl, 1e-5), *sl = op_sum_all(yl);
    autograd_backward(sl, NULL);
    double m = 0;
    for (int64_t i = 0; wl->grad && i < 8; i++) m = fmax(m, fabs(tensor_get(wl->grad, i)) + fabs(tensor_get(bl->grad, i)));
    TEST_CHECK(wl->grad && bl->grad && m == 0, "layernorm over no rows: zero weight and bias gradients");
    cm_tensor *xr = param(3, (int64_t[]){2, 0, 8}, 0), *wr = param(1, (int64_t[]){8}, 1);
    cm_tensor *yr = op_rmsnorm(xr, wr, 1e-6, CM_RMS_DIFFUSERS), *sr = op_sum_all(yr);
    autograd_backward(sr, NULL);
    m = 0;
    for (int64_t i = 0; wr->grad && i < 8; i++) m = fmax(m, fabs(tensor_get(wr->grad, i)));
    TEST_CHECK(wr->grad && m == 0, "rmsnorm over no rows: zero weight gradient");
    cm_tensor *t2[] = {xl, wl, bl, yl, sl, xr, wr, yr, sr};
    for (int i = 0; i < 9; i++) tensor_release(t2[i]);

    // LayerNorm fused with the modulation over no batches ([0, 3, 8]): zero weight and bias
    // gradients (they were left as the allocator's memory held them). A released buffer of the
    // same size, filled first, makes stale memory visible.
    cm_tensor *junk = param(1, (int64_t[]){8}, 100);
    tensor_release(junk);
    cm_tensor *xm = param(3, (int64_t[]){0, 3, 8}, 0), *wm = param(1, (int64_t[]){8}, 1), *bm = param(1, (int64_t[]){8}, 0);
    cm_tensor *scm = param(2, (int64_t[]){0, 8}, 0), *shm = param(2, (int64_t[]){0, 8}, 0);
    cm_tensor *ym = op_layernorm_modulate(xm, wm, bm, 1e-6, scm, shm), *sm = op_sum_all(ym);
    autograd_backward(sm, NULL);
    m = 0;
    for (int64_t i = 0; wm->grad && bm->grad && i < 8; i++)
        m = fmax(m, fabs(tensor_get(wm->grad, i)) + fabs(tensor_get(bm->grad, i)));
    TEST_CHECK(wm->grad && bm->grad && m == 0, "layernorm_modulate over no batches: zero weight and bias gradients (max %g)", m);
    cm_tensor *t3[] = {xm, wm, bm, scm, shm, ym, sm};
    for (int i = 0; i < 7; i++) tensor_release(t3[i]);

    // the fused GELU MLP over no rows ([0, 4] -> [0, 6] -> [0, 5]): its backward died in the DGELU
    // GEMM (no pre-activation data to read); weight gradients zero, db2 zero
    cm_tensor *xg = param(2, (int64_t[]){0, 4}, 0), *w1 = param(2, (int64_t[]){6, 4}, 1), *b1 = param(1, (int64_t[]){6}, 0);
    cm_tensor *w2 = param(2, (int64_t[]){5, 6}, 1), *b2 = param(1, (int64_t[]){5}, 0);
    cm_tensor *yg = op_mlp_gelu(xg, w1, b1, w2, b2), *sg = op_sum_all(yg);
    TEST_CHECK(yg->shape[0] == 0 && yg->shape[1] == 5, "mlp_gelu over no rows: output [0, 5]");
    autograd_backward(sg, NULL);
    cm_tensor *pg[] = {w1, b1, w2, b2};
    m = 0;
    bool all = true;
    for (int k = 0; k < 4; k++) {
        all &= pg[k]->grad && tensor_numel(pg[k]->grad) == tensor_numel(pg[k]);
        for (int64_t i = 0; pg[k]->grad && i < tensor_numel(pg[k]->grad); i++) m = fmax(m, fabs(tensor_get(pg[k]->grad, i)));
    }
    TEST_CHECK(all && m == 0, "mlp_gelu over no rows: zero weight and bias gradients (max %g)", m);
    cm_tensor *t4[] = {xg, w1, b1, w2, b2, yg, sg};
    for (int i = 0; i < 7; i++) tensor_release(t4[i]);
    return test_summary("test_empty_shapes");
}
