// test_grad_concat.c — finite-difference gradient check of concat: concat of three, one of them a view.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *t = op_transpose(in[2], 0, 1); cm_tensor *o = op_concat(3, (cm_tensor *[]){in[0], in[1], t}, 1); tensor_release(t); return o; }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 3), 1, 1, 0), gc_rand(SHAPE(2, 1), 2, 1, 0), gc_rand(SHAPE(4, 2), 3, 1, 0)};
    gradcheck("concat", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_concat");
}
