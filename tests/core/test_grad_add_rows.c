// test_grad_add_rows.c — finite-difference gradient check of add_rows (a + alpha * b on rows
// row0 .. row0+Lb of a): b on the last rows (the single block's image tokens), on all rows (the
// double block's image stream), in the middle, and each input alone.
#include "gradcheck.h"
#include "testutil.h"

static int64_t row0;
static cm_tensor *f(cm_tensor **in, void *c) { return op_add_rows(in[0], in[1], 0.7, row0); }

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
    return test_summary("test_grad_add_rows");
}
