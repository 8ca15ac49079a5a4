// test_grad_groupnorm.c — finite-difference gradient check of groupnorm: GroupNorm with affine over [N, C, H, W].
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_groupnorm(in[0], 2, in[1], in[2], 1e-6); }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 4, 3, 2), 1, 1, 0.3), gc_rand(SHAPE(4), 2, 0.5, 1), gc_rand(SHAPE(4), 3, 1, 0)};
    gradcheck("groupnorm", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_groupnorm");
}
