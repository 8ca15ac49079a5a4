// test_grad_matmul.c — finite-difference gradient check of matmul: batched matmul with every transpose combination and a shared 2-D operand.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) {
  cm_tensor *a = op_matmul_t(in[0], in[1], false, false);            // [2,3,4]@[2,4,5]
  cm_tensor *b = op_matmul_t(in[0], in[2], false, true);             // [2,3,4]@[5,4]^T
  cm_tensor *at = op_transpose(in[0], 1, 2);                         // [2,4,3] view
  cm_tensor *d = op_matmul_t(at, in[1], true, false);                // ([2,4,3])^T @ [2,4,5]
  cm_tensor *s = op_add(a, b), *o = op_add(s, d);
  tensor_release(a); tensor_release(b); tensor_release(at); tensor_release(d); tensor_release(s); return o; }

// views whose size-1 batch dim has a stride unrelated to the batch's (a slice along dim 1 of
// [2, 2, 3, 4]: strides [24, 12, 4, 1]); and a transposed a against a shared 2-D b (backward
// computes dA with the shared operand second)
static cm_tensor *f2(cm_tensor **in, void *c) {
  cm_tensor *s = op_slice(in[0], 1, 1, 2);                           // [2,1,3,4] at offset 12
  cm_tensor *a = op_matmul(s, in[1]);                                // @ [2,1,4,5]
  cm_tensor *b = op_matmul_t(in[2], in[3], true, false);             // ([2,4,3])^T @ [4,5]
  cm_tensor *r = op_reshape(a, 3, (int64_t[]){2, 3, 5}), *o = op_add(r, b);
  tensor_release(s); tensor_release(a); tensor_release(b); tensor_release(r); return o; }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 3, 4), 1, 1, 0), gc_rand(SHAPE(2, 4, 5), 2, 1, 0), gc_rand(SHAPE(5, 4), 3, 1, 0)};
    gradcheck("matmul", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    cm_tensor *in2[4] = {gc_rand(SHAPE(2, 2, 3, 4), 4, 1, 0), gc_rand(SHAPE(2, 1, 4, 5), 5, 1, 0), gc_rand(SHAPE(2, 4, 3), 6, 1, 0),
                         gc_rand(SHAPE(4, 5), 7, 1, 0)};
    gradcheck("matmul of strided batch views, ta with a shared b", f2, NULL, 4, in2);
    // the forward on the view equals the forward on its contiguous copy, exactly
    cm_tensor *s = op_slice(in2[0], 1, 1, 2), *sc = op_contiguous(s), *m1 = op_matmul(s, in2[1]), *m2 = op_matmul(sc, in2[1]);
    double worst = 0;
    for (int64_t i = 0; i < tensor_numel(m1); i++) worst = fmax(worst, fabs(tensor_get(m1, i) - tensor_get(m2, i)));
    TEST_CHECK(worst == 0, "matmul of a [2,1,3,4] slice view equals its contiguous copy's (max diff %g)", worst);
    cm_tensor *rel[] = {s, sc, m1, m2, in2[0], in2[1], in2[2], in2[3]};
    for (int i = 0; i < 8; i++) tensor_release(rel[i]);
    return test_summary("test_grad_matmul");
}
