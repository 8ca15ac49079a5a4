// test_grad_timestep_embedding.c — finite-difference gradient check of timestep_embedding: sinusoidal timestep embedding, both orders and a shift.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *a = op_timestep_embedding(in[0], 8, true, 0), *b = op_timestep_embedding(in[0], 8, false, 1); cm_tensor *o = op_add(a, b); tensor_release(a); tensor_release(b); return o; }

int main(void) {
    cm_tensor *in[1] = {gc_rand(SHAPE(3), 1, 1, 2)};
    gradcheck("timestep_embedding", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    return test_summary("test_grad_timestep_embedding");
}
