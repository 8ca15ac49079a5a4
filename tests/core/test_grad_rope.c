// test_grad_rope.c — finite-difference gradient check of rope: RoPE, FLUX adjacent-pair form.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

static cm_tensor *cs, *sn;
static cm_tensor *f(cm_tensor **in, void *c) { return op_rope(in[0], cs, sn); }

int main(void) {
    double ang[3 * 4]; for (int l = 0; l < 3; l++) for (int d = 0; d < 4; d++) ang[l * 4 + d] = (l + 1) * (d / 2 + 1) * 0.7;
  double cv[12], sv[12]; for (int i = 0; i < 12; i++) { cv[i] = cos(ang[i]); sv[i] = sin(ang[i]); }
  cs = tensor_from_host(CM_F64, SHAPE(3, 4), cv, CM_DEV_CPU); sn = tensor_from_host(CM_F64, SHAPE(3, 4), sv, CM_DEV_CPU);
  cm_tensor *in[1] = {gc_rand(SHAPE(2, 2, 3, 4), 1, 1, 0)};
    gradcheck("rope", f, NULL, 1, in);
    for (int i = 0; i < 1; i++) tensor_release(in[i]);
    tensor_release(cs);
    tensor_release(sn);
    return test_summary("test_grad_rope");
}
