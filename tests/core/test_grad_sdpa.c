// test_grad_sdpa.c — finite-difference gradient check of sdpa: fused attention: permuted [B, L, H, D]
// views, Lq != Lk, with and without an additive mask; sdpa_tokens (the output written token-major,
// [B, Lq, H, D]) the same ways, and its forward and gradients bit for bit those of sdpa permuted;
// sdpa_tokens_pair (two problems in one op) by finite differences and bit for bit against two
// sdpa_tokens concatenated.
#include <math.h>
#include <string.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *mask;
static const int perm[4] = {0, 2, 1, 3};
static cm_tensor *f(cm_tensor **in, void *c) {
    cm_tensor *q = op_permute(in[0], perm), *k = op_permute(in[1], perm), *v = op_permute(in[2], perm);
    cm_tensor *a = op_sdpa(q, k, v, NULL, 0), *b = op_sdpa(q, k, v, mask, 0.3);
    cm_tensor *o = op_add(a, b);
    tensor_release(q); tensor_release(k); tensor_release(v); tensor_release(a); tensor_release(b);
    return o;
}
static cm_tensor *f_tok(cm_tensor **in, void *c) {
    cm_tensor *q = op_permute(in[0], perm), *k = op_permute(in[1], perm), *v = op_permute(in[2], perm);
    cm_tensor *a = op_sdpa_tokens(q, k, v, NULL, 0), *b = op_sdpa_tokens(q, k, v, mask, 0.3);
    cm_tensor *o = op_add(a, b);
    tensor_release(q); tensor_release(k); tensor_release(v); tensor_release(a); tensor_release(b);
    return o;
}

static int same_bits(cm_tensor *a, cm_tensor *b) {
    cm_tensor *ac = op_contiguous(a), *bc = op_contiguous(b);
    int ok = tensor_numel(ac) == tensor_numel(bc) &&
             !memcmp(tensor_data(ac), tensor_data(bc), (size_t)tensor_numel(ac) * dtype_size(ac->dtype));
    tensor_release(ac), tensor_release(bc);
    return ok;
}

// sdpa_tokens(q, k, v) against permute(sdpa(q, k, v)), f32: forward and every gradient, same bits
static void tokens_vs_permuted(void) {
    cm_tensor *in[3];
    for (int i = 0; i < 3; i++) {
        in[i] = tensor_empty(CM_F32, SHAPE(2, i ? 9 : 7, 3, 8), CM_DEV_CPU);
        tensor_fill_randn(in[i], 20 + i, 1.0);
        tensor_set_requires_grad(in[i], true);
    }
    cm_tensor *gout = tensor_empty(CM_F32, SHAPE(2, 7, 3, 8), CM_DEV_CPU);
    tensor_fill_randn(gout, 30, 1.0);
    cm_tensor *grads[2][3], *outs[2];
    for (int t = 0; t < 2; t++) {
        cm_tensor *q = op_permute(in[0], perm), *k = op_permute(in[1], perm), *v = op_permute(in[2], perm);
        cm_tensor *o;
        if (t) o = op_sdpa_tokens(q, k, v, mask, 0);
        else {
            cm_tensor *h = op_sdpa(q, k, v, mask, 0);
            o = op_permute(h, perm);
            tensor_release(h);
        }
        autograd_backward(o, gout);
        outs[t] = o;
        for (int i = 0; i < 3; i++) grads[t][i] = tensor_retain(in[i]->grad), tensor_zero_grad(in[i]);
        tensor_release(q), tensor_release(k), tensor_release(v);
    }
    TEST_CHECK(outs[1]->ndim == 4 && tensor_is_contiguous(outs[1]), "sdpa_tokens: a contiguous [B, Lq, H, D]");
    TEST_CHECK(same_bits(outs[0], outs[1]), "sdpa_tokens forward: the bits of sdpa permuted");
    for (int i = 0; i < 3; i++) {
        TEST_CHECK(same_bits(grads[0][i], grads[1][i]), "sdpa_tokens: gradient of input %d, bit for bit", i);
        tensor_release(grads[0][i]), tensor_release(grads[1][i]);
    }
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    tensor_release(outs[0]), tensor_release(outs[1]), tensor_release(gout);
}

// two problems, [B, L, H, D] storage: q1 k1 v1 (Lq1 3, Lk1 5), q2 k2 v2 (Lq2 4, Lk2 2)
static cm_tensor *f_pair(cm_tensor **in, void *c) {
    cm_tensor *t[6];
    for (int i = 0; i < 6; i++) t[i] = op_permute(in[i], perm);
    cm_tensor *o = op_sdpa_tokens_pair(t[0], t[1], t[2], t[3], t[4], t[5], c ? 0.3 : 0);
    for (int i = 0; i < 6; i++) tensor_release(t[i]);
    return o;
}
// sdpa_tokens_pair against concat(sdpa_tokens, sdpa_tokens) on the rows, f32: the same bits
static void pair_vs_two(void) {
    const int64_t L[6] = {7, 9, 9, 5, 4, 4};
    cm_tensor *in[6];
    for (int i = 0; i < 6; i++) {
        in[i] = tensor_empty(CM_F32, SHAPE(2, L[i], 3, 8), CM_DEV_CPU);
        tensor_fill_randn(in[i], 40 + i, 1.0);
        tensor_set_requires_grad(in[i], true);
    }
    cm_tensor *gout = tensor_empty(CM_F32, SHAPE(2, 12, 3, 8), CM_DEV_CPU);
    tensor_fill_randn(gout, 50, 1.0);
    cm_tensor *grads[2][6], *outs[2];
    for (int t = 0; t < 2; t++) {
        cm_tensor *o;
        if (t) o = f_pair(in, NULL);
        else {
            cm_tensor *p[6];
            for (int i = 0; i < 6; i++) p[i] = op_permute(in[i], perm);
            cm_tensor *ab[2] = {op_sdpa_tokens(p[0], p[1], p[2], NULL, 0), op_sdpa_tokens(p[3], p[4], p[5], NULL, 0)};
            o = op_concat(2, ab, 1);
            for (int i = 0; i < 6; i++) tensor_release(p[i]);
            tensor_release(ab[0]), tensor_release(ab[1]);
        }
        autograd_backward(o, gout);
        outs[t] = o;
        for (int i = 0; i < 6; i++) grads[t][i] = tensor_retain(in[i]->grad), tensor_zero_grad(in[i]);
    }
    TEST_CHECK(outs[1]->ndim == 4 && outs[1]->shape[1] == 12 && tensor_is_contiguous(outs[1]),
               "sdpa_tokens_pair: a contiguous [B, Lq1 + Lq2, H, D]");
    TEST_CHECK(same_bits(outs[0], outs[1]), "sdpa_tokens_pair forward: the bits of two sdpa_tokens concatenated");
    for (int i = 0; i < 6; i++) {
        TEST_CHECK(same_bits(grads[0][i], grads[1][i]), "sdpa_tokens_pair: gradient of input %d, bit for bit", i);
        tensor_release(grads[0][i]), tensor_release(grads[1][i]);
    }
    for (int i = 0; i < 6; i++) tensor_release(in[i]);
    tensor_release(outs[0]), tensor_release(outs[1]), tensor_release(gout);
}

int main(void) {
    mask = tensor_empty(CM_F32, SHAPE(1, 3, 7, 9), CM_DEV_CPU);
    tensor_fill_randn(mask, 9, 1.0);
    tokens_vs_permuted();
    tensor_release(mask);
    mask = tensor_empty(CM_F32, SHAPE(1, 2, 3, 5), CM_DEV_CPU);
    tensor_fill_randn(mask, 9, 1.0);
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 3, 2, 4), 1, 1, 0), gc_rand(SHAPE(2, 5, 2, 4), 2, 1, 0), gc_rand(SHAPE(2, 5, 2, 4), 3, 1, 0)};
    gradcheck("sdpa", f, NULL, 3, in);
    gradcheck("sdpa_tokens", f_tok, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    tensor_release(mask);
    pair_vs_two();
    cm_tensor *pin[6] = {gc_rand(SHAPE(2, 3, 2, 4), 11, 1, 0), gc_rand(SHAPE(2, 5, 2, 4), 12, 1, 0),
                         gc_rand(SHAPE(2, 5, 2, 4), 13, 1, 0), gc_rand(SHAPE(2, 4, 2, 4), 14, 1, 0),
                         gc_rand(SHAPE(2, 2, 2, 4), 15, 1, 0), gc_rand(SHAPE(2, 2, 2, 4), 16, 1, 0)};
    gradcheck("sdpa_tokens_pair", f_pair, NULL, 6, pin);
    gradcheck("sdpa_tokens_pair, scale 0.3", f_pair, (void *)1, 6, pin);
    for (int i = 0; i < 6; i++) tensor_release(pin[i]);
    return test_summary("test_grad_sdpa");
}
