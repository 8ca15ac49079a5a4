// test_grad_gated_add.c — finite-difference gradient check of gated_add (res + gate[:, None, :] * y):
// every input, gate as [B, C] and [B, 1, C], and the frozen-FLUX case (no gradient to the gate).
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_gated_add(in[0], in[1], in[2]); }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 5, 6), 1, 1, 0), gc_rand(SHAPE(2, 6), 2, 1, 0.5), gc_rand(SHAPE(2, 5, 6), 3, 1, 0)};
    gradcheck("gated_add", f, NULL, 3, in);
    tensor_set_requires_grad(in[1], false);
    gradcheck("gated_add (frozen gate)", f, NULL, 3, in);
    tensor_set_requires_grad(in[0], false);
    tensor_set_requires_grad(in[1], true);
    tensor_set_requires_grad(in[2], false);
    gradcheck("gated_add (gate only)", f, NULL, 3, in);
    tensor_release(in[1]);
    in[1] = gc_rand(SHAPE(2, 1, 6), 4, 1, 0);
    tensor_set_requires_grad(in[0], true);
    tensor_set_requires_grad(in[2], true);
    gradcheck("gated_add (gate [B, 1, C])", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_gated_add");
}
