// test_grad_mean.c — finite-difference gradient check of mean: mean over the last axis of a transposed view.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *t = op_transpose(in[0], 0, 2); cm_tensor *o = op_mean(t, 1, (int[]){-1}, false); tensor_release(t); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(2, 3, 4), 1, 1, 0)};
    gradcheck("mean", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_mean");
}
