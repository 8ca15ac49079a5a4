// test_grad_swiglu.c — finite-difference gradient check of swiglu: SwiGLU: silu(a) * g.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_swiglu(in[0]); }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(3, 8), 1, 1.5, 0)};
    gradcheck("swiglu", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_swiglu");
}
