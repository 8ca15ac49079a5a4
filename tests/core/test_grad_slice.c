// test_grad_slice.c — finite-difference gradient check of slice: slice, chunk and split used together (overlapping gradient paths).
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *a = op_chunk(in[0], 2, 1, 1); cm_tensor *parts[2]; op_split(in[0], 1, 2, (int64_t[]){1, 5}, parts);
  cm_tensor *b = op_slice(in[0], 0, 1, 3); cm_tensor *s1 = op_sum_all(parts[0]); cm_tensor *m = op_mul(a, a); cm_tensor *x = op_add(m, s1); cm_tensor *bb = op_sum_all(b); cm_tensor *o = op_add(x, bb);
  tensor_release(a); tensor_release(parts[0]); tensor_release(parts[1]); tensor_release(b); tensor_release(s1); tensor_release(m); tensor_release(x); tensor_release(bb); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(3, 6), 1, 1, 0)};
    gradcheck("slice", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_slice");
}
