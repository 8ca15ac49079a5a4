// test_grad_scale.c — finite-difference gradient check of scale: scale and add_scalar.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *a = op_scale(in[0], -1.7); cm_tensor *o = op_add_scalar(a, 0.3); tensor_release(a); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(3, 5), 1, 1, 0)};
    gradcheck("scale", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_scale");
}
