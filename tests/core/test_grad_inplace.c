// test_grad_inplace.c — gradients summed in place (autograd_grad_target): a linear's dX / dW added
// by its GEMM into what the input has gathered, a slice's or a concatenation's gradient added into
// its place, the tape's own sums done in place. Checked: finite differences through graphs that
// take every path (several linears on one input, a split into streams and back, an input used
// twice by one op, slices too fragmented for in-place runs); that the sums really are in place
// (the leaf keeps its gradient tensor across backward calls; the allocator's peak during a backward
// of three linears on one input holds one dX, not three); and that a gradient someone else holds
// is never modified.
#include <math.h>
#include <string.h>
#include "autograd/alloc.h"
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *sum_of(cm_tensor *t) {
    cm_tensor *s = op_sum_all(t);
    tensor_release(t);
    return s;
}
static cm_tensor *add_to(cm_tensor *acc, cm_tensor *t) {  // consumes both
    if (!acc) return t;
    cm_tensor *s = op_add(acc, t);
    tensor_release(acc);
    tensor_release(t);
    return s;
}

// x [2, 5, 6] through three linears (one output, the tape's sums), then split into a 2-row and a
// 3-row stream (slices), each stream through its own linear, concatenated back and multiplied by
// a stream used again (concat's gradient added into a gathered one)
static cm_tensor *streams(cm_tensor **in, void *ctx) {
    (void)ctx;
    cm_tensor *x = in[0], *w0 = in[1], *w1 = in[2], *w2 = in[3], *ws = in[4];
    cm_tensor *q = op_linear(x, w0, NULL), *k = op_linear(x, w1, in[5]), *v = op_linear(x, w2, NULL);
    cm_tensor *h = op_add(q, k);
    cm_tensor *h2 = op_mul(h, v);
    tensor_release(q), tensor_release(k), tensor_release(v), tensor_release(h);
    cm_tensor *a = op_slice(h2, 1, 0, 2), *b = op_slice(h2, 1, 2, 5);  // [2, 2, 4], [2, 3, 4]
    cm_tensor *ao = op_linear(a, ws, NULL), *bo = op_linear(b, ws, NULL);
    cm_tensor *cat = op_concat(2, (cm_tensor *[]){ao, bo}, 1);  // [2, 5, 4]
    cm_tensor *o = op_mul(cat, h2);
    cm_tensor *loss = add_to(sum_of(o), sum_of(op_mul(ao, ao)));
    tensor_release(a), tensor_release(b), tensor_release(ao), tensor_release(bo), tensor_release(cat), tensor_release(h2);
    return loss;
}

// one op taking the same tensor twice: x + x and linear(x, x) (dX and dW both land on x)
static cm_tensor *twice(cm_tensor **in, void *ctx) {
    (void)ctx;
    cm_tensor *x = in[0];
    cm_tensor *w = op_linear(in[1], in[0], NULL);  // in[1] [3, 4] @ x^T: x [4, 4]
    cm_tensor *s = op_add(x, x);
    cm_tensor *l = op_linear(x, x, NULL);
    cm_tensor *y = op_mul(l, s);
    cm_tensor *loss = add_to(sum_of(y), sum_of(op_mul(w, w)));
    tensor_release(s), tensor_release(l), tensor_release(w);
    return loss;
}

// slices along the last axis of [80, 6]: 80 runs each, beyond ops_add_into's 64, so the sums
// fall back to out of place; plus a chunk list whose slices all land in one gradient
static cm_tensor *fragmented(cm_tensor **in, void *ctx) {
    (void)ctx;
    cm_tensor *x = in[0], *loss = NULL;
    for (int j = 0; j < 3; j++) {
        cm_tensor *c = op_chunk(x, 3, 1, j);  // [80, 2]
        loss = add_to(loss, sum_of(op_mul(c, c)));
        tensor_release(c);
    }
    cm_tensor *r = op_slice(x, 0, 7, 9);  // [2, 6]: rows, one run
    loss = add_to(loss, sum_of(op_scale(r, 3.0)));
    tensor_release(r);
    return loss;
}

// a middle slice, its input used nowhere else (the backward's own tensor, zeros around the slice):
// a NaN tensor of the input's size is released first, so a region left unwritten reads NaN
static cm_tensor *middle(cm_tensor **in, void *ctx) {
    int axis = *(int *)ctx;
    cm_tensor *poison[16];  // several: the forward's own tensors take some from the cache first
    for (int i = 0; i < 16; i++) poison[i] = tensor_full(in[0]->dtype, in[0]->ndim, in[0]->shape, NAN, CM_DEV_CPU);
    for (int i = 0; i < 16; i++) tensor_release(poison[i]);
    cm_tensor *s = op_slice(in[0], axis, 2, 4);
    cm_tensor *loss = sum_of(op_mul(s, s));
    tensor_release(s);
    return loss;
}

static double *host(const cm_tensor *t) {
    double *h = malloc(sizeof(double) * (size_t)tensor_numel(t));
    tensor_copy_to_host(t, CM_F64, h);
    return h;
}

int main(void) {
    {
        cm_tensor *in[6] = {gc_rand(SHAPE(2, 5, 6), 1, 1, 0), gc_rand(SHAPE(4, 6), 2, 0.5, 0), gc_rand(SHAPE(4, 6), 3, 0.5, 0),
                            gc_rand(SHAPE(4, 6), 4, 0.5, 0), gc_rand(SHAPE(4, 4), 5, 0.5, 0), gc_rand(SHAPE(4), 6, 0.5, 0)};
        gradcheck("linears + streams", streams, NULL, 6, in);
        for (int i = 0; i < 6; i++) tensor_release(in[i]);
    }
    {
        cm_tensor *in[2] = {gc_rand(SHAPE(4, 4), 7, 0.5, 0), gc_rand(SHAPE(3, 4), 8, 1, 0)};
        gradcheck("one tensor twice", twice, NULL, 2, in);
        for (int i = 0; i < 2; i++) tensor_release(in[i]);
    }
    {
        cm_tensor *in[1] = {gc_rand(SHAPE(80, 6), 9, 1, 0)};
        gradcheck("fragmented slices", fragmented, NULL, 1, in);
        tensor_release(in[0]);
    }

    for (int axis = 0; axis < 3; axis++) {  // outer 1, 3 and 21 pieces around the slice
        cm_tensor *in[1] = {gc_rand(SHAPE(6, 7, 5), 10 + axis, 1, 0)};
        char name[40];
        snprintf(name, sizeof name, "middle slice, axis %d", axis);
        gradcheck(name, middle, &axis, 1, in);
        tensor_release(in[0]);
    }

    // a leaf's gradient is summed in place across backward calls (gradient accumulation): the
    // same tensor, twice the values (bit for bit where one path feeds it; the sums' order differs
    // for x, which takes three)
    cm_tensor *in[6] = {gc_rand(SHAPE(2, 5, 6), 11, 1, 0), gc_rand(SHAPE(4, 6), 12, 0.5, 0), gc_rand(SHAPE(4, 6), 13, 0.5, 0),
                        gc_rand(SHAPE(4, 6), 14, 0.5, 0), gc_rand(SHAPE(4, 4), 15, 0.5, 0), gc_rand(SHAPE(4), 16, 0.5, 0)};
    cm_tensor *loss = streams(in, NULL);
    autograd_backward(loss, NULL);
    tensor_release(loss);
    cm_tensor *g1[6];
    double *v1[6];
    for (int i = 0; i < 6; i++) g1[i] = in[i]->grad, v1[i] = host(in[i]->grad);
    loss = streams(in, NULL);
    autograd_backward(loss, NULL);
    tensor_release(loss);
    for (int i = 0; i < 6; i++) {
        TEST_CHECK(in[i]->grad == g1[i], "input %d: its gradient was replaced, not added into", i);
        double *v2 = host(in[i]->grad);
        int bad = 0;
        for (int64_t j = 0; j < tensor_numel(in[i]); j++)
            bad += i ? v2[j] != 2 * v1[i][j] : fabs(v2[j] - 2 * v1[i][j]) > 1e-13 * (1 + fabs(v1[i][j]));
        TEST_CHECK(bad == 0, "input %d: %d elements differ from twice the first backward's", i, bad);
        free(v2);
    }
    // a gradient someone holds is left alone: the next backward sums into a new tensor
    cm_tensor *held = tensor_retain(in[0]->grad);
    double *before = host(held);
    loss = streams(in, NULL);
    autograd_backward(loss, NULL);
    tensor_release(loss);
    TEST_CHECK(in[0]->grad != held, "a held gradient was summed into in place");
    double *after = host(held), *now = host(in[0]->grad);
    int changed = 0, wrong = 0;
    for (int64_t j = 0; j < tensor_numel(held); j++) {
        changed += after[j] != before[j];
        wrong += fabs(now[j] - 1.5 * before[j]) > 1e-12 * (1 + fabs(before[j]));
    }
    TEST_CHECK(changed == 0, "%d elements of a held gradient changed", changed);
    TEST_CHECK(wrong == 0, "%d elements of the new sum are not the held one plus one backward", wrong);
    free(before), free(after), free(now);
    tensor_release(held);
    for (int i = 0; i < 6; i++) free(v1[i]), tensor_release(in[i]);

    // three linears on one input: backward's peak holds one dX (GEMMs adding into it), not a dX per
    // linear plus their sum. x [256, 512] f64 is 1 MiB; w [2, 512] small.
    {
        cm_tensor *x = gc_rand(SHAPE(256, 512), 21, 1, 0);
        cm_tensor *w[3] = {gc_rand(SHAPE(2, 512), 22, 1, 0), gc_rand(SHAPE(2, 512), 23, 1, 0), gc_rand(SHAPE(2, 512), 24, 1, 0)};
        for (int i = 0; i < 3; i++) tensor_set_requires_grad(w[i], false);
        cm_tensor *l = NULL;
        for (int i = 0; i < 3; i++) l = add_to(l, sum_of(op_linear(x, w[i], NULL)));
        size_t xb = tensor_nbytes(x);
        alloc_reset_peak(CM_DEV_CPU);
        size_t base = alloc_stats(CM_DEV_CPU).current;
        autograd_backward(l, NULL);
        size_t peak = alloc_stats(CM_DEV_CPU).peak - base;
        printf("three linears on x (%zu bytes): backward's peak above the start %zu bytes\n", xb, peak);
        TEST_CHECK(peak < xb + xb / 2, "backward's peak %zu bytes: more than one dX of %zu bytes", peak, xb);
        double *gx = host(x->grad);
        double worst = 0;  // every row of dX is the sum of the three weights' column sums
        for (int64_t r = 0; r < 256; r++)
            for (int64_t c = 0; c < 512; c++) {
                double e = 0;
                for (int i = 0; i < 3; i++) e += tensor_get(w[i], c) + tensor_get(w[i], 512 + c);
                worst = test_max(worst, fabs(gx[r * 512 + c] - e));
            }
        TEST_CHECK(worst < 1e-12, "dX differs from the weights' sums by %g", worst);
        free(gx);
        tensor_release(l), tensor_release(x);
        for (int i = 0; i < 3; i++) tensor_release(w[i]);
    }
    return test_summary("test_grad_inplace");
}
