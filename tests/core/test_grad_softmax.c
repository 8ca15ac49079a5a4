// test_grad_softmax.c — finite-difference gradient check of softmax: softmax over the last axis of a view.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *t = op_transpose(in[0], 0, 1); cm_tensor *o = op_softmax(t); tensor_release(t); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(5, 3), 1, 2, 0)};
    gradcheck("softmax", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_softmax");
}
