// test_grad_layernorm.c — finite-difference gradient check of layernorm: LayerNorm affine and non-affine.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *a = op_layernorm(in[0], in[1], in[2], 1e-5); cm_tensor *b = op_layernorm(in[0], NULL, NULL, 1e-6); cm_tensor *o = op_add(a, b); tensor_release(a); tensor_release(b); return o; }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(3, 7), 1, 1, 0.5), gc_rand(SHAPE(7), 2, 0.5, 1), gc_rand(SHAPE(7), 3, 1, 0)};
    gradcheck("layernorm", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_layernorm");
}
