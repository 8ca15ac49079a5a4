// test_grad_gelu_tanh.c — finite-difference gradient check of gelu_tanh: GELU, tanh approximation.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_gelu(in[0], true); }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(4, 6), 1, 2, 0)};
    gradcheck("gelu_tanh", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_gelu_tanh");
}
