// test_grad_silu.c — finite-difference gradient check of silu: SiLU.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_silu(in[0]); }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(5, 3), 1, 2, 0)};
    gradcheck("silu", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_silu");
}
