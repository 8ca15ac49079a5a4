// test_leaf_hook.c — autograd's leaf hook (what the gradient reducer launches buckets from): a
// tagged leaf fires exactly once per backward, when its gradient is final — its .grad at the
// moment of firing is the .grad after backward, bit for bit — in backward's order; inside a
// recompute scope after the scope's replay; never for untagged leaves, never on a tape reset.
// A leaf a recompute scope reads is unknown to the tape until the scope replays: one also used
// outside the scope, or in two scopes, fires once per holder — the reducer refuses that (the
// models use each adapter weight inside one FLUX block's scope only). A hook may change .grad in place
// without touching any other gradient (one buffer each, even after a pass-through backward).
#include <math.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"

enum { T = 16, C = 8, NW = 5 };

typedef struct {
    cm_tensor *w[NW];
    int order[16], n_fired;  // tags in firing order
    float at_fire[NW][C * C];
} rig;

static void on_leaf(cm_tensor *leaf, void *ctx) {
    rig *r = ctx;
    int i = leaf->hook_tag - 1;
    if (r->n_fired < 16) r->order[r->n_fired] = i;
    r->n_fired++;
    TEST_CHECK(leaf == r->w[i] && leaf->grad, "the hook gets the tagged leaf, with a gradient");
    if (leaf->grad) tensor_copy_to_host(leaf->grad, CM_F32, r->at_fire[i]);
}

// w[3] and w[4] in a recompute scope
static cm_tensor *scope_fn(void *ctx, int n, cm_tensor **in) {
    rig *r = ctx;
    (void)n;
    cm_tensor *h = op_linear(in[0], r->w[3], NULL), *g = op_gelu(h, true), *o = op_linear(g, r->w[4], NULL);
    tensor_release(h);
    tensor_release(g);
    return o;
}

// x → w0 → w1 (twice) → scope(w3, w4) [→ w4] → w2 → mean: backward meets w2 first, w0 last
static cm_tensor *forward(rig *r, cm_tensor *x, bool recompute, bool w4_outside) {
    cm_tensor *a = op_linear(x, r->w[0], NULL), *b = op_linear(a, r->w[1], NULL), *c = op_linear(b, r->w[1], NULL);
    cm_tensor *d = recompute ? autograd_recompute(scope_fn, r, 1, &c) : scope_fn(r, 1, &c);
    cm_tensor *e = w4_outside ? op_linear(d, r->w[4], NULL) : tensor_retain(d), *f = op_linear(e, r->w[2], NULL), *l = op_mean_all(f);
    cm_tensor *tmp[] = {a, b, c, d, e, f};
    for (int i = 0; i < 6; i++) tensor_release(tmp[i]);
    return l;
}

static void check_run(rig *r, cm_tensor *x, bool recompute, bool w4_outside) {
    r->n_fired = 0;
    for (int i = 0; i < NW; i++) tensor_zero_grad(r->w[i]);
    autograd_set_leaf_hook(on_leaf, r);
    cm_tensor *l = forward(r, x, recompute, w4_outside);
    TEST_CHECK(r->n_fired == 0, "nothing fires during the forward");
    autograd_backward(l, NULL);
    autograd_set_leaf_hook(NULL, NULL);
    tensor_release(l);
    TEST_CHECK(r->n_fired == NW - 1, "%s: %d fires for the %d tagged leaves (each once; w0 untagged)", recompute ? "recompute" : "plain",
               r->n_fired, NW - 1);
    // backward's order: w2, then w4 (its scope use after its outside one), w3, w1; w0 has no tag
    int want[] = {2, 4, 3, 1};
    for (int k = 0; k < 4 && k < r->n_fired; k++)
        TEST_CHECK(r->order[k] == want[k], "%s: fire %d is w%d, expected w%d", recompute ? "recompute" : "plain", k, r->order[k], want[k]);
    float fin[C * C];
    for (int i = 1; i < NW; i++) {
        tensor_copy_to_host(r->w[i]->grad, CM_F32, fin);
        TEST_CHECK(!memcmp(fin, r->at_fire[i], sizeof fin), "%s: w%d's gradient changed after it fired", recompute ? "recompute" : "plain", i);
    }
    for (int i = 0; i < NW; i++) TEST_CHECK(r->w[i]->pending_uses == 0, "w%d: no use left after backward", i);
}

// what the reducer does in the hook: change the gradient in place (here: halve it)
static void halve(cm_tensor *leaf, void *ctx) {
    (void)ctx;
    float *g = tensor_data(leaf->grad);
    for (int64_t i = 0; i < tensor_numel(leaf->grad); i++) g[i] *= 0.5f;
}

// a hook changing .grad in place changes only that leaf's gradient: y = 3q + p (add's backward hands
// both inputs views of one gradient; p's fired while q's was still to flow, and halved it too), and
// a + b of two tagged leaves (their gradients shared one buffer: each halved twice)
static void test_inplace_hook(void) {
    cm_tensor *q = tensor_full(CM_F32, SHAPE(2, 3), 1.0, CM_DEV_CPU), *p = tensor_full(CM_F32, SHAPE(2, 3), 2.0, CM_DEV_CPU);
    tensor_set_requires_grad(q, true);
    tensor_set_requires_grad(p, true);
    p->hook_tag = 1;
    autograd_set_leaf_hook(halve, NULL);
    cm_tensor *x = op_scale(q, 3.0), *y = op_add(x, p), *l = op_sum_all(y);
    autograd_backward(l, NULL);
    TEST_CHECK(q->grad && tensor_get(q->grad, 0) == 3.0 && tensor_get(q->grad, 5) == 3.0,
               "a hook halving p's gradient left q's alone (dq %g, expected 3)", q->grad ? tensor_get(q->grad, 0) : NAN);
    TEST_CHECK(p->grad && tensor_get(p->grad, 0) == 0.5, "p's gradient halved once (%g)", p->grad ? tensor_get(p->grad, 0) : NAN);
    cm_tensor *a = tensor_full(CM_F32, SHAPE(4), 1.0, CM_DEV_CPU), *b = tensor_full(CM_F32, SHAPE(4), 1.0, CM_DEV_CPU);
    tensor_set_requires_grad(a, true);
    tensor_set_requires_grad(b, true);
    a->hook_tag = 1;
    b->hook_tag = 2;
    cm_tensor *z = op_add(a, b), *lz = op_sum_all(z);
    autograd_backward(lz, NULL);
    autograd_set_leaf_hook(NULL, NULL);
    TEST_CHECK(a->grad && b->grad && tensor_get(a->grad, 0) == 0.5 && tensor_get(b->grad, 3) == 0.5,
               "a + b: each gradient halved once (%g, %g)", a->grad ? tensor_get(a->grad, 0) : NAN,
               b->grad ? tensor_get(b->grad, 3) : NAN);
    cm_tensor *all[] = {q, p, x, y, l, a, b, z, lz};
    for (int i = 0; i < 9; i++) tensor_release(all[i]);
}

int main(void) {
    test_inplace_hook();
    rig r = {0};
    for (int i = 0; i < NW; i++) {
        r.w[i] = tensor_empty(CM_F32, SHAPE(C, C), CM_DEV_CPU);
        tensor_fill_randn(r.w[i], 30 + i, 0.3);
        tensor_set_requires_grad(r.w[i], true);
        if (i) r.w[i]->hook_tag = i + 1;  // w0 stays untagged
    }
    cm_tensor *x = tensor_empty(CM_F32, SHAPE(T, C), CM_DEV_CPU);
    tensor_fill_randn(x, 1, 1.0);

    check_run(&r, x, false, true);
    check_run(&r, x, false, false);
    check_run(&r, x, true, false);

    // uses are counted while the tape holds them; a reset lets them go without firing
    r.n_fired = 0;
    autograd_set_leaf_hook(on_leaf, &r);
    cm_tensor *l = forward(&r, x, false, true);
    TEST_CHECK(r.w[1]->pending_uses == 2 && r.w[4]->pending_uses == 2, "uses counted: w1 %d (2), w4 %d (2)", r.w[1]->pending_uses,
               r.w[4]->pending_uses);
    autograd_tape_reset();
    tensor_release(l);
    TEST_CHECK(r.n_fired == 0, "a tape reset fires nothing (%d)", r.n_fired);
    for (int i = 0; i < NW; i++) TEST_CHECK(r.w[i]->pending_uses == 0, "w%d: no use left after a reset", i);

    // a leaf read in a recompute scope and outside it fires once for each (the outside use is
    // consumed first, before the scope replays)
    r.n_fired = 0;
    for (int i = 0; i < NW; i++) tensor_zero_grad(r.w[i]);
    l = forward(&r, x, true, true);
    autograd_backward(l, NULL);
    tensor_release(l);
    int w4 = 0;
    for (int k = 0; k < r.n_fired && k < 16; k++) w4 += r.order[k] == 4;
    TEST_CHECK(w4 == 2, "a leaf inside a scope and outside fires twice (%d)", w4);

    // a leaf in two recompute scopes is let go once per scope: fires twice
    r.n_fired = 0;
    for (int i = 0; i < NW; i++) tensor_zero_grad(r.w[i]);
    cm_tensor *a = autograd_recompute(scope_fn, &r, 1, &x), *b = autograd_recompute(scope_fn, &r, 1, &a), *m = op_mean_all(b);
    autograd_backward(m, NULL);
    autograd_set_leaf_hook(NULL, NULL);
    int w3 = 0;
    for (int k = 0; k < r.n_fired && k < 16; k++) w3 += r.order[k] == 3;
    TEST_CHECK(w3 == 2, "a leaf in two scopes fires once per scope (%d)", w3);
    tensor_release(a);
    tensor_release(b);
    tensor_release(m);

    // no hook: backward as always, counts kept
    l = forward(&r, x, true, true);
    autograd_backward(l, NULL);
    tensor_release(l);
    for (int i = 0; i < NW; i++) TEST_CHECK(r.w[i]->pending_uses == 0, "w%d: no use left without a hook", i);
    TEST_CHECK(autograd_tape_len() == 0, "tape empty");
    for (int i = 0; i < NW; i++) tensor_release(r.w[i]);
    tensor_release(x);
    return test_summary("test_leaf_hook");
}
