// test_grad_add_rows.c — finite-difference gradient check of add_rows (a + alpha * b on rows
// row0 .. row0+Lb of a): b on the last rows (the single block's image tokens), on all rows (the
// double block's image stream), in the middle, and each input alone; fold_rows (the rows after L
// added into the first L at row0) the same ways, and bit for bit add_rows of its two slices.
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "gradcheck.h"
#include "testutil.h"

static int64_t row0;
static cm_tensor *f(cm_tensor **in, void *c) { return op_add_rows(in[0], in[1], 0.7, row0); }
static int64_t fold_n;  // rows folded: x [B, 7 + fold_n, C]
static cm_tensor *g_fold(cm_tensor **in, void *c) { return op_fold_rows(in[0], 7, 0.7, row0); }

int main(void) {
    cm_tensor *a = gc_rand(SHAPE(2, 7, 5), 1, 1, 0);
    cm_tensor *bs[3] = {gc_rand(SHAPE(2, 4, 5), 2, 1, 0), gc_rand(SHAPE(2, 7, 5), 3, 1, 0), gc_rand(SHAPE(2, 2, 5), 4, 1, 0)};
    const int64_t r0[3] = {3, 0, 2};
    const char *names[3] = {"add_rows (last rows)", "add_rows (all rows)", "add_rows (middle rows)"};
    for (int c = 0; c < 3; c++) {
        row0 = r0[c];
        gradcheck(names[c], f, NULL, 2, (cm_tensor *[]){a, bs[c]});
    }
    row0 = 3;
    tensor_set_requires_grad(a, false);
    gradcheck("add_rows (b only)", f, NULL, 2, (cm_tensor *[]){a, bs[0]});
    tensor_set_requires_grad(a, true);
    tensor_set_requires_grad(bs[0], false);
    gradcheck("add_rows (a only)", f, NULL, 2, (cm_tensor *[]){a, bs[0]});
    tensor_release(a);
    for (int c = 0; c < 3; c++) tensor_release(bs[c]);

    // fold_rows: x [2, 7 + Lb, 5] with Lb rows folded in at row0 (last, all, middle)
    const int64_t lb[3] = {4, 7, 2};
    for (int c = 0; c < 3; c++) {
        row0 = r0[c];
        fold_n = lb[c];
        cm_tensor *x = gc_rand(SHAPE(2, 7 + lb[c], 5), 10 + c, 1, 0);
        char nm[48];
        snprintf(nm, sizeof nm, "fold_rows %s", names[c] + 9);
        gradcheck(nm, g_fold, NULL, 1, (cm_tensor *[]){x});
        // the same bits as add_rows on x's two slices, forward and gradient
        cm_tensor *gout = gc_rand(SHAPE(2, 7, 5), 20 + c, 1, 0);
        tensor_set_requires_grad(gout, false);
        tensor_zero_grad(x);  // (gradcheck's)
        cm_tensor *o1 = g_fold((cm_tensor *[]){x}, NULL);
        autograd_backward(o1, gout);
        const size_t gb = (size_t)tensor_numel(x->grad) * sizeof(float);
        float *g1 = malloc(gb);  // (zero_grad clears the gradient tensor in place)
        memcpy(g1, tensor_data(x->grad), gb);
        tensor_zero_grad(x);
        cm_tensor *s1 = op_slice(x, 1, 0, 7), *s2 = op_slice(x, 1, 7, 7 + lb[c]);
        cm_tensor *o2 = op_add_rows(s1, s2, 0.7, row0);
        autograd_backward(o2, gout);
        TEST_CHECK(!memcmp(tensor_data(o1), tensor_data(o2), (size_t)tensor_numel(o1) * sizeof(float)),
                   "fold_rows (%s): the bits of add_rows on the slices", names[c] + 9);
        TEST_CHECK(!memcmp(g1, tensor_data(x->grad), gb),
                   "fold_rows (%s): its gradient, the bits of add_rows on the slices", names[c] + 9);
        tensor_release(s1), tensor_release(s2), tensor_release(o1), tensor_release(o2), free(g1);
        tensor_release(gout), tensor_release(x);
    }
    return test_summary("test_grad_add_rows");
}
