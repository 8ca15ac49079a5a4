// test_grad_sum.c — finite-difference gradient check of sum: sum over two axes, keepdim and not.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *a = op_sum(in[0], 2, (int[]){0, 2}, false); cm_tensor *b = op_sum(in[0], 1, (int[]){1}, true);
  cm_tensor *sa = op_sum_all(a), *sb = op_mul(b, b); cm_tensor *o = op_add(sb, sa); tensor_release(a); tensor_release(b); tensor_release(sa); tensor_release(sb); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(2, 3, 4), 1, 1, 0)};
    gradcheck("sum", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_sum");
}
