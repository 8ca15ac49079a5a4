// test_autograd_edges.c — the tape at its edges. Misuse of backward stops with a message (each case
// in a child process: exit status and stderr checked) instead of a silent no-op or a wrong result:
// a second backward through a spent graph, a tensor of a spent graph read in a new one (its
// gradient stopped there, unseen), a loss that needs no gradient, a seed of another dtype.
// A recompute scope that gives back its input leaves the input as it was.
// Adversarial graphs (a diamond, a tensor read three times, views of views of a non-contiguous
// tensor, a slice of a transpose concatenated back) match finite differences.
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "autograd/alloc.h"
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *leaf3(void) {
    cm_tensor *x = gc_rand(SHAPE(3), 1, 1.0, 0);
    snprintf(x->name, sizeof x->name, "x");
    return x;
}
static void backward_twice(void) {  // used to return with x.grad unchanged and the seed leaked
    cm_tensor *x = leaf3(), *y = op_mul(x, x), *l = op_sum_all(y);
    snprintf(l->name, sizeof l->name, "loss");
    autograd_backward(l, NULL);
    autograd_backward(l, NULL);
}
static void backward_other_branch(void) {  // l1's backward empties the tape under l2 too
    cm_tensor *x = leaf3(), *l1 = op_sum_all(op_mul(x, x)), *l2 = op_sum_all(op_unary(x, CM_UN_EXP));
    autograd_backward(l1, NULL);
    autograd_backward(l2, NULL);
}
static void backward_after_reset(void) {
    cm_tensor *x = leaf3(), *l = op_sum_all(op_mul(x, x));
    autograd_tape_reset();
    autograd_backward(l, NULL);
}
static void backward_no_grad(void) {  // a loss computed under no-grad: nothing to back-propagate
    cm_tensor *x = leaf3();
    autograd_no_grad_push();
    cm_tensor *l = op_sum_all(op_mul(x, x));
    autograd_no_grad_pop();
    snprintf(l->name, sizeof l->name, "loss");
    autograd_backward(l, NULL);
}
static void backward_frozen(void) {  // nothing under the loss requires a gradient
    cm_tensor *x = tensor_full(CM_F64, SHAPE(3), 2.0, CM_DEV_CPU), *l = op_sum_all(op_mul(x, x));
    autograd_backward(l, NULL);
}
static void seed_dtype(void) {  // an f32 seed for an f64 output: x.grad came out f32
    cm_tensor *x = gc_rand(SHAPE(3, 1), 1, 1.0, 0), *y = op_reshape(x, SHAPE(3));
    autograd_backward(y, tensor_full(CM_F32, SHAPE(3), 1.0, CM_DEV_CPU));
}

static void reuse_spent(void) {  // a kept from step 1 read in step 2: dx stayed at step 1's, the gradient leaked
    cm_tensor *x = leaf3(), *a = op_scale(x, 2.0), *l1 = op_sum_all(a);
    autograd_backward(l1, NULL);
    cm_tensor *l2 = op_sum_all(op_mul(a, a));
    autograd_backward(l2, NULL);
}
static void reuse_after_reset(void) {
    cm_tensor *x = leaf3(), *a = op_scale(x, 2.0);
    autograd_tape_reset();
    autograd_backward(op_sum_all(op_mul(a, x)), NULL);
}

// --- adversarial graphs (f64, checked against central differences) ---
static cm_tensor *sum_of(cm_tensor *t) {
    cm_tensor *s = op_sum_all(t);
    tensor_release(t);
    return s;
}
static cm_tensor *add_to(cm_tensor *acc, cm_tensor *t) {  // consumes both
    cm_tensor *s = op_add(acc, t);
    tensor_release(acc);
    tensor_release(t);
    return s;
}
// x -> a = 2x, b = exp(x) -> a * b + a: two paths meeting twice
static cm_tensor *diamond(cm_tensor **in, void *ctx) {
    (void)ctx;
    cm_tensor *a = op_scale(in[0], 2.0), *b = op_unary(in[0], CM_UN_EXP), *ab = op_mul(a, b), *d = op_add(ab, a);
    tensor_release(a), tensor_release(b), tensor_release(ab);
    return d;
}
// x * x * x + x: one leaf read by three nodes (four uses)
static cm_tensor *thrice(cm_tensor **in, void *ctx) {
    (void)ctx;
    cm_tensor *x = in[0], *xx = op_mul(x, x), *xxx = op_mul(xx, x), *s = op_add(xxx, x);
    tensor_release(xx), tensor_release(xxx);
    return s;
}
// x [4, 6] -> its transpose [6, 4] (not contiguous) -> a slice of it -> a slice of that -> a reshape
// (a copy) broadcast 3 times; the first slice also permuted back and squared
static cm_tensor *views(cm_tensor **in, void *ctx) {
    (void)ctx;
    cm_tensor *t = op_transpose(in[0], 0, 1), *s = op_slice(t, 0, 1, 5), *s2 = op_slice(s, 1, 1, 3);  // [4, 2]
    cm_tensor *r = op_reshape(s2, SHAPE(8)), *u = op_unsqueeze(r, 0), *e = op_expand(u, SHAPE(3, 8));
    cm_tensor *p = op_permute(s, (int[]){1, 0});
    cm_tensor *l = add_to(sum_of(op_mul(p, p)), op_mul(e, e));
    tensor_release(t), tensor_release(s), tensor_release(s2), tensor_release(r), tensor_release(u);
    tensor_release(e), tensor_release(p);
    return l;
}
// x [4, 6] transposed, split into two column slices concatenated in the other order, plus the
// transpose times its contiguous copy (the same storage read through two layouts)
static cm_tensor *reorder(cm_tensor **in, void *ctx) {
    (void)ctx;
    cm_tensor *t = op_transpose(in[0], 0, 1), *a = op_slice(t, 1, 0, 2), *b = op_slice(t, 1, 2, 4);  // [6, 2]
    cm_tensor *cat = op_concat(2, (cm_tensor *[]){b, a}, 0), *ct = op_contiguous(t);  // [12, 2], [6, 4]
    cm_tensor *l = add_to(sum_of(op_mul(cat, cat)), sum_of(op_mul(ct, t)));
    tensor_release(t), tensor_release(a), tensor_release(b), tensor_release(cat), tensor_release(ct);
    return l;
}

// a recompute scope that gives back its input (op_contiguous of a contiguous tensor is the tensor)
static cm_tensor *rc_same(void *ctx, int n, cm_tensor **in) {
    (void)ctx, (void)n;
    return op_contiguous(in[0]);
}
// two steps through such a scope, on a leaf and on an op's output: the scope's node used to go on
// the input itself — the leaf stopped being one (its second step's gradient went to the spent
// node, lost) and the op's output lost its own node (leaked)
static void recompute_identity(void) {
    cm_tensor *x = gc_rand(SHAPE(3), 3, 1.0, 0), *w = gc_rand(SHAPE(3), 4, 1.0, 0);
    for (int step = 1; step <= 2; step++) {
        cm_tensor *y = autograd_recompute(rc_same, NULL, 1, &x), *l = op_sum_all(y);
        TEST_CHECK(x->grad_fn == NULL, "step %d: x is still a leaf", step);
        autograd_backward(l, NULL);
        TEST_NEAR(tensor_get(x->grad, 1), (double)step, 0, 0, "d sum(x) / dx gathered over the steps");
        tensor_release(y), tensor_release(l);
    }
    tensor_zero_grad(x);
    for (int step = 1; step <= 2; step++) {
        cm_tensor *h = op_mul(x, w), *y = autograd_recompute(rc_same, NULL, 1, &h), *l = op_sum_all(y);
        TEST_CHECK(h->grad_fn && !strcmp(h->grad_fn->op->name, "mul"), "step %d: h keeps its own node", step);
        autograd_backward(l, NULL);
        TEST_NEAR(tensor_get(x->grad, 1), step * tensor_get(w, 1), 1e-15, 1e-15, "d sum(x * w) / dx through the scope");
        tensor_release(h), tensor_release(y), tensor_release(l);
    }
    tensor_release(x), tensor_release(w);
}

int main(void) {
    // the children first: the parent has run no kernel (libgomp does not survive a fork)
    test_expect_death("backward twice", backward_twice, "'loss' [] f64 cpu (made by sum): its graph is already spent", NULL);
    test_expect_death("other branch", backward_other_branch, "graph is already spent", NULL);
    test_expect_death("after reset", backward_after_reset, "graph is already spent", NULL);
    test_expect_death("reuse spent", reuse_spent, "input 0 of mul was made by scale in a graph already spent", NULL);
    test_expect_death("reuse after reset", reuse_after_reset, "input 0 of mul was made by scale in a graph already spent", NULL);
    test_expect_death("under no-grad", backward_no_grad, "'loss' [] f64 cpu does not require a gradient", NULL);
    test_expect_death("frozen", backward_frozen, "does not require a gradient", NULL);
    test_expect_death("seed dtype", seed_dtype, "seed gradient [3] f32 cpu differs in dtype or device from the output [3] f64 cpu",
                 NULL);

    recompute_identity();
    cm_tensor *x = gc_rand(SHAPE(3, 4), 1, 0.5, 0);
    gradcheck("diamond", diamond, NULL, 1, &x);
    gradcheck("thrice", thrice, NULL, 1, &x);
    tensor_release(x);
    x = gc_rand(SHAPE(4, 6), 2, 1.0, 0);
    gradcheck("views of views", views, NULL, 1, &x);
    gradcheck("reorder", reorder, NULL, 1, &x);
    tensor_release(x);
    return test_summary("test_autograd_edges");
}
