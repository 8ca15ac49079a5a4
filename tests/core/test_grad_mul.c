// test_grad_mul.c — finite-difference gradient check of mul: mul with broadcasting and a sliced view.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *s = op_slice(in[0], 1, 1, 4); cm_tensor *o = op_mul(s, in[1]); tensor_release(s); return o; }

int main(void) {
    cm_tensor *in[2] = {gc_rand(SHAPE(2, 5, 3), 1, 1, 0), gc_rand(SHAPE(1, 3, 1), 2, 1, 0)};
    gradcheck("mul", f, NULL, 2, in);
    for (int i = 0; i < 2; i++) tensor_release(in[i]);
    return test_summary("test_grad_mul");
}
