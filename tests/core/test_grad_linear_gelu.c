// test_grad_linear_gelu.c — finite-difference gradient check of linear_gelu (gelu_tanh(x w^T + b)
// in one GEMM that keeps gelu's input): all inputs, then a frozen weight (dx only).
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_linear_gelu(in[0], in[1], in[2]); }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 3, 4), 1, 1, 0), gc_rand(SHAPE(5, 4), 2, 1, 0), gc_rand(SHAPE(5), 3, 1, 0)};
    gradcheck("linear_gelu", f, NULL, 3, in);
    tensor_set_requires_grad(in[1], false);
    tensor_set_requires_grad(in[2], false);
    gradcheck("linear_gelu (frozen weight and bias)", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_linear_gelu");
}
