// test_grad_gelu_erf.c — finite-difference gradient check of gelu_erf: GELU, erf form, on a permuted view.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *t = op_transpose(in[0], 0, 1); cm_tensor *o = op_gelu(t, false); tensor_release(t); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(4, 6), 1, 2, 0)};
    gradcheck("gelu_erf", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_gelu_erf");
}
