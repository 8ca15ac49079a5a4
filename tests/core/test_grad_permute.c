// test_grad_permute.c — finite-difference gradient check of permute: permute of 4 dims, then contiguous.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *p = op_permute(in[0], (int[]){2, 0, 3, 1}); cm_tensor *q = op_contiguous(p); cm_tensor *o = op_mul(q, q); tensor_release(p); tensor_release(q); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(2, 3, 2, 2), 1, 1, 0)};
    gradcheck("permute", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_permute");
}
