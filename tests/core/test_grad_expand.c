// test_grad_expand.c — finite-difference gradient check of expand: expand (broadcast view) then a product.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *e = op_expand(in[0], 3, (int64_t[]){2, 3, 4}); cm_tensor *o = op_mul(e, in[1]); tensor_release(e); return o; }

int main(void) {
    cm_tensor *in[2] = {gc_rand(SHAPE(3, 1), 1, 1, 0), gc_rand(SHAPE(2, 3, 4), 2, 1, 0)};
    gradcheck("expand", f, NULL, 2, in);
    for (int i = 0; i < 2; i++) tensor_release(in[i]);
    return test_summary("test_grad_expand");
}
