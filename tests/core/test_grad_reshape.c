// test_grad_reshape.c — finite-difference gradient check of reshape: reshape of a non-contiguous view, unsqueeze and squeeze.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *t = op_transpose(in[0], 0, 1); cm_tensor *r = op_reshape(t, 2, (int64_t[]){2, -1});
  cm_tensor *u = op_unsqueeze(r, 0); cm_tensor *s = op_squeeze(u, 0); cm_tensor *o = op_mul(s, s);
  tensor_release(t); tensor_release(r); tensor_release(u); tensor_release(s); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(3, 4), 1, 1, 0)};
    gradcheck("reshape", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_reshape");
}
