// test_grad_rmsnorm.c — finite-difference gradient check of rmsnorm: RMSNorm, diffusers (eps in sqrt) and InstantCharacter (eps added to the RMS).
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *f(cm_tensor **in, void *c) { cm_tensor *a = op_rmsnorm(in[0], in[1], 1e-6, CM_RMS_DIFFUSERS); cm_tensor *b = op_rmsnorm(in[0], in[1], 1e-2, CM_RMS_IC); cm_tensor *d = op_rmsnorm(in[0], NULL, 1e-6, CM_RMS_DIFFUSERS);
  cm_tensor *s = op_add(a, b), *o = op_add(s, d); tensor_release(a); tensor_release(b); tensor_release(d); tensor_release(s); return o; }

int main(void) {
    cm_tensor *in[2] = {gc_rand(SHAPE(4, 8), 1, 1, 0), gc_rand(SHAPE(8), 2, 0.5, 1)};
    gradcheck("rmsnorm", f, NULL, 2, in);
    for (int i = 0; i < 2; i++) tensor_release(in[i]);
    return test_summary("test_grad_rmsnorm");
}
