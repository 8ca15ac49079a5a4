// test_grad_sdpa.c — finite-difference gradient check of sdpa: fused attention: permuted [B, L, H, D] views, Lq != Lk, with and without an additive mask.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *mask;
static cm_tensor *f(cm_tensor **in, void *c) {
  cm_tensor *q = op_permute(in[0], (int[]){0, 2, 1, 3}), *k = op_permute(in[1], (int[]){0, 2, 1, 3}), *v = op_permute(in[2], (int[]){0, 2, 1, 3});
  cm_tensor *a = op_sdpa(q, k, v, NULL, 0), *b = op_sdpa(q, k, v, mask, 0.3); cm_tensor *o = op_add(a, b);
  tensor_release(q); tensor_release(k); tensor_release(v); tensor_release(a); tensor_release(b); return o; }

int main(void) {
    mask = tensor_empty(CM_F32, SHAPE(1, 2, 3, 5), CM_DEV_CPU); tensor_fill_randn(mask, 9, 1.0); cm_tensor *in[3] = {gc_rand(SHAPE(2, 3, 2, 4), 1, 1, 0), gc_rand(SHAPE(2, 5, 2, 4), 2, 1, 0), gc_rand(SHAPE(2, 5, 2, 4), 3, 1, 0)};
    gradcheck("sdpa", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    tensor_release(mask);
    return test_summary("test_grad_sdpa");
}
