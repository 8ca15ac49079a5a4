// test_grad_layernorm_modulate.c — finite-difference gradient check of layernorm_modulate (LayerNorm
// fused with the adaLN modulation), affine and non-affine; and, in f32, the fused op against
// op_modulate(op_layernorm(...)): outputs and every gradient within 1e-6 / 1e-5 normwise (the
// forward does the unfused roundings in the same order; the backward sums in another order).
#include <math.h>
#include <stdio.h>
#include "gradcheck.h"
#include "testutil.h"

// in: x [2, 3, 7], w [7], b [7], scale [2, 7], shift [2, 1, 7]
static cm_tensor *f_affine(cm_tensor **in, void *c) { return op_layernorm_modulate(in[0], in[1], in[2], 1e-5, in[3], in[4]); }
// in: x, scale, shift (FLUX's adaLN: no affine, eps 1e-6)
static cm_tensor *f_plain(cm_tensor **in, void *c) { return op_layernorm_modulate(in[0], NULL, NULL, 1e-6, in[1], in[2]); }

// max |a - b| / max(1e-6, max |b|) over two tensors of the same size
static double rel_diff(cm_tensor *a, cm_tensor *b) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < tensor_numel(b); i++) {
        double x = tensor_get(a, i), y = tensor_get(b, i);
        if (fabs(x - y) > d || isnan(x)) d = isnan(x) ? INFINITY : fabs(x - y);
        if (fabs(y) > m) m = fabs(y);
    }
    return d / (m > 1e-6 ? m : 1e-6);
}

// an f32 leaf with N(0, 1) * scale + shift values
static cm_tensor *f32_leaf(int nd, const int64_t *shape, uint64_t seed, double scale, double shift) {
    cm_tensor *t = tensor_empty(CM_F32, nd, shape, CM_DEV_CPU);
    tensor_fill_randn(t, seed, scale);
    float *p = tensor_data(t);
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] += (float)shift;
    tensor_set_requires_grad(t, true);
    return t;
}

// fused against unfused in f32 at a shape whose rows span several chunks: [3, 50, 40]
static void fused_vs_unfused(bool affine) {
    int64_t B = 3, L = 50, C = 40;
    cm_tensor *in[5] = {f32_leaf(SHAPE(B, L, C), 11, 1, 0.3), f32_leaf(SHAPE(C), 12, 0.5, 1), f32_leaf(SHAPE(C), 13, 1, 0),
                        f32_leaf(SHAPE(B, C), 14, 0.5, 0), f32_leaf(SHAPE(B, 1, C), 15, 1, 0)};
    cm_tensor *w = affine ? in[1] : NULL, *b = affine ? in[2] : NULL;
    cm_tensor *gout = tensor_empty(CM_F32, SHAPE(B, L, C), CM_DEV_CPU);
    tensor_fill_randn(gout, 16, 1.0);
    cm_tensor *grads[2][5] = {{0}}, *outs[2];
    for (int fused = 0; fused < 2; fused++) {
        for (int i = 0; i < 5; i++) tensor_zero_grad(in[i]);
        if (fused) outs[1] = op_layernorm_modulate(in[0], w, b, 1e-6, in[3], in[4]);
        else {
            cm_tensor *n = op_layernorm(in[0], w, b, 1e-6);
            outs[0] = op_modulate(n, in[3], in[4]);
            tensor_release(n);
        }
        autograd_backward(outs[fused], gout);
        for (int i = 0; i < 5; i++) grads[fused][i] = in[i]->grad ? tensor_retain(in[i]->grad) : NULL;
    }
    double e = rel_diff(outs[1], outs[0]);
    TEST_CHECK(e <= 1e-6, "fused forward%s: normwise difference %.3g from layernorm + modulate", affine ? " (affine)" : "", e);
    printf("fused vs unfused%s: forward %.3g", affine ? " (affine)" : "", e);
    const char *names[5] = {"x", "w", "b", "scale", "shift"};
    for (int i = 0; i < 5; i++) {
        if (!affine && (i == 1 || i == 2)) {
            TEST_CHECK(!grads[1][i], "fused: a gradient for the unused %s", names[i]);
            continue;
        }
        TEST_CHECK(grads[0][i] && grads[1][i], "d%s missing", names[i]);
        if (!grads[0][i] || !grads[1][i]) continue;
        e = rel_diff(grads[1][i], grads[0][i]);
        TEST_CHECK(e <= 1e-5, "fused d%s%s: normwise difference %.3g from layernorm + modulate", names[i],
                   affine ? " (affine)" : "", e);
        printf(", d%s %.3g", names[i], e);
    }
    printf("\n");
    for (int f = 0; f < 2; f++) {
        tensor_release(outs[f]);
        for (int i = 0; i < 5; i++) tensor_release(grads[f][i]);
    }
    for (int i = 0; i < 5; i++) tensor_release(in[i]);
    tensor_release(gout);
}

int main(void) {
    cm_tensor *in[5] = {gc_rand(SHAPE(2, 3, 7), 1, 1, 0.5), gc_rand(SHAPE(7), 2, 0.5, 1), gc_rand(SHAPE(7), 3, 1, 0),
                        gc_rand(SHAPE(2, 7), 4, 0.5, 0), gc_rand(SHAPE(2, 1, 7), 5, 1, 0)};
    gradcheck("layernorm_modulate affine", f_affine, NULL, 5, in);
    cm_tensor *plain[3] = {in[0], in[3], in[4]};
    gradcheck("layernorm_modulate", f_plain, NULL, 3, plain);
    for (int i = 0; i < 5; i++) tensor_release(in[i]);
    fused_vs_unfused(false);
    fused_vs_unfused(true);
    return test_summary("test_grad_layernorm_modulate");
}
