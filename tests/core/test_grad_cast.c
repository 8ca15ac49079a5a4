// test_grad_cast.c — casts keep the gradient path. Finite differences through an f32 round
// trip are noise at h = 1e-6, so the rule is checked exactly instead: for y = f64(f32(x)) + 2x,
// dL/dx = 3 R (R the upstream gradient), and casting the other way rounds values as expected.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

int main(void) {
    cm_tensor *x = gc_rand(SHAPE(3, 4), 1, 1, 0);
    cm_tensor *R = tensor_empty(CM_F64, SHAPE(3, 4), CM_DEV_CPU);
    tensor_fill_randn(R, 7, 1.0);
    cm_tensor *a = op_cast(x, CM_F32), *b = op_cast(a, CM_F64), *x2 = op_scale(x, 2.0), *y = op_add(b, x2);
    TEST_CHECK(a->dtype == CM_F32 && b->dtype == CM_F64, "dtypes");
    for (int64_t i = 0; i < 12; i++) TEST_NEAR(tensor_get(b, i), (double)(float)tensor_get(x, i), 0, 0, "f32 rounding");
    cm_tensor *m = op_mul(y, R), *s = op_sum_all(m);
    autograd_backward(s, NULL);
    TEST_CHECK(x->grad && x->grad->dtype == CM_F64, "x got an f64 gradient");
    for (int64_t i = 0; x->grad && i < 12; i++) TEST_NEAR(tensor_get(x->grad, i), 3 * tensor_get(R, i), 1e-7, 1e-6, "dx = 3R");
    // bf16 / f16 casts round to nearest even and back
    float v[4] = {1.0f, 1.00390625f, -3.14159f, 65504.0f};
    cm_tensor *h = tensor_from_host(CM_F32, SHAPE(4), v, CM_DEV_CPU);
    cm_tensor *hb = op_cast(h, CM_BF16), *hf = op_cast(h, CM_F16), *hb32 = op_cast(hb, CM_F32), *hf32 = op_cast(hf, CM_F32);
    TEST_NEAR(tensor_get(hb32, 2), -3.140625, 0, 0, "bf16 of pi");
    TEST_NEAR(tensor_get(hf32, 3), 65504.0, 0, 0, "f16 max");
    TEST_NEAR(tensor_get(hf32, 2), -3.140625, 0, 0, "f16 of pi");
    tensor_release(h); tensor_release(hb); tensor_release(hf); tensor_release(hb32); tensor_release(hf32);
    tensor_release(a); tensor_release(b); tensor_release(x2); tensor_release(y); tensor_release(m); tensor_release(s);
    tensor_release(x); tensor_release(R);
    return test_summary("test_grad_cast");
}
