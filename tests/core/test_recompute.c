// test_recompute.c — a recompute scope gives the same gradients bit for bit and holds less
// memory between forward and backward.
#include <string.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"

typedef struct { cm_tensor *w1, *w2; } block;

// a residual MLP block with several large intermediates
static cm_tensor *block_fn(void *ctx, int n, cm_tensor **in) {
    block *b = ctx;
    cm_tensor *h = op_linear(in[0], b->w1, NULL), *a = op_gelu(h, true), *g = op_mul(a, h), *o = op_linear(g, b->w2, NULL);
    cm_tensor *r = op_add(o, in[0]);
    tensor_release(h); tensor_release(a); tensor_release(g); tensor_release(o);
    return r;
}

static void run(bool recompute, block *blocks, int nb, cm_tensor *x, size_t *peak_held) {
    alloc_reset_peak(CM_DEV_CPU);
    cm_tensor *h = tensor_retain(x);
    for (int i = 0; i < nb; i++) {
        cm_tensor *nx = recompute ? autograd_recompute(block_fn, &blocks[i], 1, &h) : block_fn(&blocks[i], 1, &h);
        tensor_release(h);
        h = nx;
    }
    cm_tensor *l = op_mean_all(h);
    tensor_release(h);
    *peak_held = alloc_stats(CM_DEV_CPU).current;  // what the forward keeps for backward
    autograd_backward(l, NULL);
    tensor_release(l);
}

int main(void) {
    enum { NB = 4, T = 128, C = 64, H = 256 };
    block blocks[NB];
    for (int i = 0; i < NB; i++) {
        blocks[i].w1 = tensor_empty(CM_F32, SHAPE(H, C), CM_DEV_CPU);
        blocks[i].w2 = tensor_empty(CM_F32, SHAPE(C, H), CM_DEV_CPU);
        tensor_fill_randn(blocks[i].w1, 10 + i, 0.05);
        tensor_fill_randn(blocks[i].w2, 20 + i, 0.05);
        tensor_set_requires_grad(blocks[i].w1, true);
        tensor_set_requires_grad(blocks[i].w2, true);
    }
    cm_tensor *x = tensor_empty(CM_F32, SHAPE(T, C), CM_DEV_CPU);
    tensor_fill_randn(x, 1, 1.0);
    tensor_set_requires_grad(x, true);

    size_t held_plain, held_rc;
    run(false, blocks, NB, x, &held_plain);
    float ref[NB][2][H * C], xref[T * C];
    for (int i = 0; i < NB; i++) {
        tensor_copy_to_host(blocks[i].w1->grad, CM_F32, ref[i][0]);
        tensor_copy_to_host(blocks[i].w2->grad, CM_F32, ref[i][1]);
        tensor_zero_grad(blocks[i].w1);
        tensor_zero_grad(blocks[i].w2);
    }
    tensor_copy_to_host(x->grad, CM_F32, xref);
    tensor_zero_grad(x);

    run(true, blocks, NB, x, &held_rc);
    float got[H * C];
    for (int i = 0; i < NB; i++)
        for (int k = 0; k < 2; k++) {
            cm_tensor *g = k ? blocks[i].w2->grad : blocks[i].w1->grad;
            TEST_CHECK(g != NULL, "block %d weight %d has a gradient under recompute", i, k);
            if (!g) continue;
            tensor_copy_to_host(g, CM_F32, got);
            TEST_CHECK(!memcmp(got, ref[i][k], sizeof(float) * H * C), "block %d weight %d: gradients differ with recompute", i, k);
        }
    tensor_copy_to_host(x->grad, CM_F32, got);
    TEST_CHECK(!memcmp(got, xref, sizeof(float) * T * C), "input gradient differs with recompute");
    printf("bytes held between forward and backward: plain %zu, recompute %zu\n", held_plain, held_rc);
    TEST_CHECK(held_rc * 2 < held_plain, "recompute holds less than half the activations (%zu vs %zu)", held_rc, held_plain);
    TEST_CHECK(autograd_tape_len() == 0, "tape empty");
    for (int i = 0; i < NB; i++) { tensor_release(blocks[i].w1); tensor_release(blocks[i].w2); }
    tensor_release(x);
    return test_summary("test_recompute");
}
