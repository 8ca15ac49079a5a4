// test_grad_conv2d.c — finite-difference gradient check of conv2d: conv2d with stride 2, padding 1 and bias.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_conv2d(in[0], in[1], in[2], 2, 1); }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 2, 5, 4), 1, 1, 0), gc_rand(SHAPE(3, 2, 3, 3), 2, 1, 0), gc_rand(SHAPE(3), 3, 1, 0)};
    gradcheck("conv2d", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_conv2d");
}
