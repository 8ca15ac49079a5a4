// test_grad_add.c — finite-difference gradient check of add: add with broadcasting and a transposed view.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *t = op_transpose(in[0], 0, 1); cm_tensor *o = op_add(t, in[1]); tensor_release(t); return o; }

int main(void) {
    cm_tensor *in[2] = {gc_rand(SHAPE(4, 3), 1, 1, 0), gc_rand(SHAPE(4), 2, 1, 0)};
    gradcheck("add", f, NULL, 2, in);
    for (int i = 0; i < 2; i++) tensor_release(in[i]);
    return test_summary("test_grad_add");
}
