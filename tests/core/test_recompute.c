// test_recompute.c — a recompute scope gives the same gradients bit for bit and holds less
// memory between forward and backward. Also FLUX's pattern: a conditioning tensor (made by an op)
// and a leaf that every block reads, nested scopes, and two backward passes gathering into the
// same gradients (grad_accum): the replays add into what the inputs gathered in the plain tape's
// order, so the bits are the plain tape's; a leaf read through ctx and as a scope input, and one
// tensor given twice, within rounding.
#include <math.h>
#include <stdlib.h>
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

// FLUX-like: h, a conditioning tensor c and tokens k read by every block (c twice per block, as the
// double blocks' two AdaLayerNorms read temb)
typedef struct { cm_tensor *w1, *w2, *wc1, *wc2, *wk, *extra; } cblock;

static cm_tensor *cblock_fn(void *ctx, int n, cm_tensor **in) {
    cblock *b = ctx;
    cm_tensor *c1 = op_linear(in[1], b->wc1, NULL), *c2 = op_linear(in[1], b->wc2, NULL);  // [T, C] each
    cm_tensor *k = op_linear(in[2], b->wk, NULL);
    cm_tensor *u = op_mul(in[0], c1), *v = op_add(u, k), *h = op_linear(v, b->w1, NULL), *a = op_gelu(h, true);
    cm_tensor *o = op_linear(a, b->w2, NULL), *g = op_mul(o, c2), *r = op_add(g, in[0]);
    cm_tensor *tmp[] = {c1, c2, k, u, v, h, a, o, g};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    if (n > 3 && in[3]) {  // a fourth input: read as well (the same tensor as in[1] in one case)
        cm_tensor *e = op_linear(in[3], b->wc1, NULL), *s = op_add(r, e);
        tensor_release(e);
        tensor_release(r);
        r = s;
    }
    if (b->extra) {  // a leaf read through ctx (it is also a scope input in that case)
        cm_tensor *e = op_linear(b->extra, b->wk, NULL), *s = op_add(r, e);
        tensor_release(e);
        tensor_release(r);
        r = s;
    }
    return r;
}

typedef struct { cblock *b; int first; } cpair;  // blocks first, first + 1
typedef struct { cblock *b; int mode, n_in; cpair pairs[8]; } crun;  // mode 0 plain, 1 a scope per block, 2 nested

// a pair of blocks as one scope: its replay opens a scope per block (nested)
static cm_tensor *pair_fn(void *ctx, int n, cm_tensor **in) {
    const cpair *p = ctx;
    (void)n;
    cm_tensor *h = tensor_retain(in[0]);
    for (int i = p->first; i < p->first + 2; i++) {
        cm_tensor *x[3] = {h, in[1], in[2]}, *nx = autograd_recompute(cblock_fn, &p->b[i], 3, x);
        tensor_release(h);
        h = nx;
    }
    return h;
}

// forward and backward of scale * mean(h * c) after nb blocks (nb even); c = silu(e), k a leaf
static void crun_step(crun *r, int nb, cm_tensor *x, cm_tensor *e, cm_tensor *k, double scale) {
    cm_tensor *c = op_silu(e), *h = tensor_retain(x);
    for (int i = 0; i < nb; i++) {
        cm_tensor *in[4] = {h, c, k, r->n_in > 3 ? c : NULL}, *nx;
        if (r->mode == 2) {
            r->pairs[i / 2] = (cpair){r->b, i};
            nx = autograd_recompute(pair_fn, &r->pairs[i / 2], 3, in);
            i++;
        } else nx = r->mode ? autograd_recompute(cblock_fn, &r->b[i], r->n_in, in) : cblock_fn(&r->b[i], r->n_in, in);
        tensor_release(h);
        h = nx;
    }
    cm_tensor *p = op_mul(h, c), *l0 = op_mean_all(p), *l = op_scale(l0, scale);
    tensor_release(p), tensor_release(l0), tensor_release(h), tensor_release(c);
    autograd_backward(l, NULL);
    tensor_release(l);
}

enum { CNB = 4, CT = 24, CC = 16, CH = 48 };

// every gradient of a run, in one host buffer: the blocks' weights, then x, e, k
static int cgrads(cblock *b, cm_tensor *x, cm_tensor *e, cm_tensor *k, float *out) {
    int n = 0;
    for (int i = 0; i < CNB; i++) {
        cm_tensor *w[5] = {b[i].w1, b[i].w2, b[i].wc1, b[i].wc2, b[i].wk};
        for (int j = 0; j < 5; j++) {
            TEST_CHECK(w[j]->grad != NULL, "block %d weight %d has a gradient", i, j);
            if (w[j]->grad) tensor_copy_to_host(w[j]->grad, CM_F32, out + n);
            n += (int)tensor_numel(w[j]);
            tensor_zero_grad(w[j]);
        }
    }
    cm_tensor *l[3] = {x, e, k};
    for (int j = 0; j < 3; j++) {
        TEST_CHECK(l[j]->grad != NULL, "input %d has a gradient", j);
        if (l[j]->grad) tensor_copy_to_host(l[j]->grad, CM_F32, out + n);
        n += (int)tensor_numel(l[j]);
        tensor_zero_grad(l[j]);
    }
    return n;
}

// two passes (grad_accum 2) of each way, against the plain tape's
static void test_shared_inputs(void) {
    cblock b[CNB];
    memset(b, 0, sizeof b);
    for (int i = 0; i < CNB; i++) {
        cm_tensor **w[5] = {&b[i].w1, &b[i].w2, &b[i].wc1, &b[i].wc2, &b[i].wk};
        int64_t sh[5][2] = {{CH, CC}, {CC, CH}, {CC, CC}, {CC, CC}, {CC, CC}};
        for (int j = 0; j < 5; j++) {
            *w[j] = tensor_empty(CM_F32, 2, sh[j], CM_DEV_CPU);
            tensor_fill_randn(*w[j], 100 + 10 * i + j, 0.2);
            tensor_set_requires_grad(*w[j], true);
        }
    }
    cm_tensor *x = tensor_empty(CM_F32, SHAPE(CT, CC), CM_DEV_CPU), *e = tensor_empty(CM_F32, SHAPE(CT, CC), CM_DEV_CPU),
              *k = tensor_empty(CM_F32, SHAPE(CT, CC), CM_DEV_CPU);
    tensor_fill_randn(x, 2, 1.0), tensor_fill_randn(e, 3, 1.0), tensor_fill_randn(k, 4, 1.0);
    tensor_set_requires_grad(x, true), tensor_set_requires_grad(e, true), tensor_set_requires_grad(k, true);
    size_t total = 0;
    for (int i = 0; i < CNB; i++) total += (size_t)(2 * CH * CC + 3 * CC * CC);
    total += 3 * CT * CC;
    float *ref = malloc(total * sizeof(float)), *got = malloc(total * sizeof(float));

    const char *names[3] = {"plain", "a scope per block", "nested scopes (pairs of blocks)"};
    for (int mode = 0; mode < 3; mode++) {
        crun r = {.b = b, .mode = mode, .n_in = 3};
        crun_step(&r, CNB, x, e, k, 1.0);
        crun_step(&r, CNB, x, e, k, 0.5);  // a second micro-batch: added into the gradients gathered
        TEST_CHECK(autograd_tape_len() == 0, "%s: tape empty", names[mode]);
        int n = cgrads(b, x, e, k, mode ? got : ref);
        TEST_CHECK((size_t)n == total, "gradient count %d", n);
        if (!mode) continue;
        size_t diff = 0;
        for (size_t i = 0; i < total; i++) diff += memcmp(&got[i], &ref[i], sizeof(float)) != 0;
        TEST_CHECK(diff == 0, "%s: %zu of %zu gradient elements differ from the plain tape's (inputs every block "
                   "reads, two backward passes)", names[mode], diff, total);
    }

    // one tensor given twice to a scope, and a leaf read through ctx that is also a scope input:
    // the gradients gathered apart are summed (rounding only)
    for (int way = 0; way < 2; way++) {
        for (int mode = 0; mode < 2; mode++) {
            crun r = {.b = b, .mode = mode, .n_in = way == 0 ? 4 : 3};
            for (int i = 0; i < CNB; i++) b[i].extra = way == 1 ? k : NULL;
            crun_step(&r, CNB, x, e, k, 1.0);
            crun_step(&r, CNB, x, e, k, 0.5);
            cgrads(b, x, e, k, mode ? got : ref);
        }
        double worst = 0, scale = 0;
        for (size_t i = 0; i < total; i++) {
            worst = test_max(worst, fabs((double)got[i] - ref[i]));
            scale = test_max(scale, fabs((double)ref[i]));
        }
        TEST_CHECK(scale > 0 && worst <= 1e-5 * scale, "%s: recompute changes gradients by %.3g (scale %.3g)",
                   way == 0 ? "an input given twice" : "a leaf read through ctx and as an input", worst, scale);
    }
    for (int i = 0; i < CNB; i++) {
        b[i].extra = NULL;
        tensor_release(b[i].w1), tensor_release(b[i].w2), tensor_release(b[i].wc1), tensor_release(b[i].wc2),
            tensor_release(b[i].wk);
    }
    tensor_release(x), tensor_release(e), tensor_release(k);
    free(ref), free(got);
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
    test_shared_inputs();
    return test_summary("test_recompute");
}
