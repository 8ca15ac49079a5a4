// test_grad_modulate.c — finite-difference gradient check of modulate: adaLN modulation x * (1 + scale) + shift.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { return op_modulate(in[0], in[1], in[2]); }

int main(void) {
    cm_tensor *in[3] = {gc_rand(SHAPE(2, 3, 4), 1, 1, 0), gc_rand(SHAPE(2, 4), 2, 1, 0), gc_rand(SHAPE(2, 4), 3, 1, 0)};
    gradcheck("modulate", f, NULL, 3, in);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
    return test_summary("test_grad_modulate");
}
