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

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 3, 4), 1, 1, 0), gc_rand(SHAPE(2, 4, 5), 2, 1, 0), gc_rand(SHAPE(5, 4), 3, 1, 0)};
    gradcheck("matmul", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_matmul");
}
