// test_grad_mlp_gelu.c — finite-difference gradient check of mlp_gelu (w2 gelu_tanh(w1 x + b1) + b2,
// hidden gradient through the DGELU epilogue, dw2 from gelu recomputed): every input, the frozen
// FLUX case (x only), weights only, and without biases; mlp_gelu_cat (an input beside the hidden
// activation, the FLUX single block's [attention | MLP] @ proj_out) the same ways.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_mlp_gelu(in[0], in[1], in[2], in[3], in[4]); }
static cm_tensor *f_nobias(cm_tensor **in, void *c) { return op_mlp_gelu(in[0], in[1], NULL, in[3], NULL); }
static cm_tensor *f_cat(cm_tensor **in, void *c) { return op_mlp_gelu_cat(in[5], in[0], in[1], in[2], in[3], in[4]); }

int main(void) {
    cm_tensor *in[5] = {gc_rand(SHAPE(2, 3, 4), 1, 1, 0), gc_rand(SHAPE(6, 4), 2, 1, 0), gc_rand(SHAPE(6), 3, 1, 0),
                        gc_rand(SHAPE(5, 6), 4, 1, 0), gc_rand(SHAPE(5), 5, 1, 0)};
    gradcheck("mlp_gelu", f, NULL, 5, in);
    for (int i = 1; i < 5; i++) tensor_set_requires_grad(in[i], false);
    gradcheck("mlp_gelu (frozen weights: dx only)", f, NULL, 5, in);
    tensor_set_requires_grad(in[0], false);
    for (int i = 1; i < 5; i++) tensor_set_requires_grad(in[i], true);
    gradcheck("mlp_gelu (weights only)", f, NULL, 5, in);
    tensor_set_requires_grad(in[0], true);
    tensor_set_requires_grad(in[1], false);
    tensor_set_requires_grad(in[2], false);
    gradcheck("mlp_gelu (second layer and x)", f, NULL, 5, in);
    tensor_set_requires_grad(in[1], true);
    tensor_set_requires_grad(in[4], false);  // the biases are not inputs here
    gradcheck("mlp_gelu (no biases)", f_nobias, NULL, 5, in);
    for (int i = 0; i < 5; i++) tensor_release(in[i]);

    // mlp_gelu_cat: [pre | gelu(x w1^T + b1)] w2^T + b2, pre [2, 3, 3], w2 [5, 3 + 6]
    cm_tensor *ic[6] = {gc_rand(SHAPE(2, 3, 4), 6, 1, 0), gc_rand(SHAPE(6, 4), 7, 1, 0), gc_rand(SHAPE(6), 8, 1, 0),
                        gc_rand(SHAPE(5, 9), 9, 1, 0), gc_rand(SHAPE(5), 10, 1, 0), gc_rand(SHAPE(2, 3, 3), 11, 1, 0)};
    gradcheck("mlp_gelu_cat", f_cat, NULL, 6, ic);
    for (int i = 1; i < 5; i++) tensor_set_requires_grad(ic[i], false);
    gradcheck("mlp_gelu_cat (frozen weights: dx, dpre)", f_cat, NULL, 6, ic);
    tensor_set_requires_grad(ic[0], false);
    tensor_set_requires_grad(ic[3], true);
    gradcheck("mlp_gelu_cat (pre and w2 only)", f_cat, NULL, 6, ic);
    for (int i = 0; i < 6; i++) tensor_release(ic[i]);
    return test_summary("test_grad_mlp_gelu");
}
