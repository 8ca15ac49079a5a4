// test_grad_sub.c — finite-difference gradient check of sub: sub with broadcasting on both sides.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_sub(in[0], in[1]); }

int main(void) {
    cm_tensor *in[2] = {gc_rand(SHAPE(2, 1, 4), 1, 1, 0), gc_rand(SHAPE(3, 1), 2, 1, 0)};
    gradcheck("sub", f, NULL, 2, in);
    for (int i = 0; i < 2; i++) tensor_release(in[i]);
    return test_summary("test_grad_sub");
}
