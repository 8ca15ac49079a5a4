// test_grad_div.c — finite-difference gradient check of div: div with broadcasting; divisor kept away from 0.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_div(in[0], in[1]); }

int main(void) {
    cm_tensor *in[2] = {gc_rand(SHAPE(3, 4), 1, 1, 0), gc_rand(SHAPE(4), 2, 0.2, 2.0)};
    gradcheck("div", f, NULL, 2, in);
    for (int i = 0; i < 2; i++) tensor_release(in[i]);
    return test_summary("test_grad_div");
}
