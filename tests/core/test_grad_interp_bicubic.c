// test_grad_interp_bicubic.c — finite-difference gradient check of interp_bicubic: bicubic resize up and down (PyTorch align_corners=False).
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *a = op_interp_bicubic(in[0], 7, 3); cm_tensor *b = op_interp_bicubic(in[0], 2, 2); cm_tensor *sa = op_sum_all(b); cm_tensor *o = op_add(a, sa);
  tensor_release(a); tensor_release(b); tensor_release(sa); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(1, 2, 4, 5), 1, 1, 0)};
    gradcheck("interp_bicubic", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_interp_bicubic");
}
