// test_grad_unary.c — finite-difference gradient checks of the generic unary op's other forms
// (square, exp, neg: gelu and silu have their own tests) and of mean_all, the ops in the table
// that had none. Each form on its own, so a wrong rule for one cannot hide behind the others.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *un(cm_tensor **in, void *c) { return op_unary(in[0], *(cm_unop *)c); }

// mean over every element, weighted by the check's random R (a scalar output: R is one number)
static cm_tensor *mean_all(cm_tensor **in, void *c) {
    (void)c;
    cm_tensor *sq = op_mul(in[0], in[0]), *o = op_mean_all(sq);
    tensor_release(sq);
    return o;
}

int main(void) {
    const cm_unop ops[3] = {CM_UN_SQUARE, CM_UN_EXP, CM_UN_NEG};
    const char *names[3] = {"unary square", "unary exp", "unary neg"};
    for (int k = 0; k < 3; k++) {
        cm_tensor *in[1] = {gc_rand(SHAPE(3, 5), 10 + k, 1, 0.2)};
        cm_unop u = ops[k];
        gradcheck(names[k], un, &u, 1, in);
        tensor_release(in[0]);
    }
    cm_tensor *in[1] = {gc_rand(SHAPE(2, 3, 4), 20, 1, 0)};
    gradcheck("mean_all", mean_all, NULL, 1, in);
    tensor_release(in[0]);
    return test_summary("test_grad_unary");
}
