// test_grad_cast.c — casts keep the gradient path. Finite differences through an f32 round
// trip are noise at h = 1e-6, so the rule is checked exactly instead: for y = f64(f32(x)) + 2x,
// dL/dx = 3 R (R the upstream gradient), and casting the other way rounds values as expected.
// A CPU bf16 tensor read twice gets its gradient summed (in f32, rounded once).
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

    // a bf16 tensor on the CPU (stored, never computed in) read twice: by two casts, and by two
    // overlapping slices. Its gradient is bf16 and must be summed (the backward died: no CPU bf16
    // add). z = f32(b) * 3 + f32(b), b = bf16(u); rows 0..2 and 1..4 of b weighted by 1 and 2
    float vv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cm_tensor *u = tensor_from_host(CM_F32, SHAPE(4, 2), vv, CM_DEV_CPU);
    tensor_set_requires_grad(u, true);
    cm_tensor *b16 = op_cast(u, CM_BF16), *c1 = op_cast(b16, CM_F32), *c2 = op_cast(b16, CM_F32), *c1s = op_scale(c1, 3.0);
    cm_tensor *z = op_add(c1s, c2), *zs = op_sum_all(z);
    autograd_backward(zs, NULL);
    bool four = u->grad && u->grad->dtype == CM_F32;
    for (int64_t i = 0; four && i < 8; i++) four = tensor_get(u->grad, i) == 4.0;
    TEST_CHECK(four, "a CPU bf16 tensor read by two casts: dv = 3 + 1 in f32");
    tensor_zero_grad(u);
    cm_tensor *b2 = op_cast(u, CM_BF16), *sa = op_slice(b2, 0, 0, 2), *sb = op_slice(b2, 0, 1, 4), *fa = op_cast(sa, CM_F32), *fb = op_cast(sb, CM_F32);
    cm_tensor *fb2 = op_scale(fb, 2.0), *ta = op_sum_all(fa), *tb = op_sum_all(fb2), *t = op_add(ta, tb);
    autograd_backward(t, NULL);
    const double want[4] = {1, 3, 2, 2};  // per row: in slice a only, both, b only
    bool rows = u->grad != NULL;
    for (int64_t i = 0; rows && i < 8; i++) rows = tensor_get(u->grad, i) == want[i / 2];
    TEST_CHECK(rows, "a CPU bf16 tensor read by two overlapping slices: dv = 1, 3, 2, 2 per row");
    cm_tensor *bt[] = {u, b16, b2, c1, c2, c1s, z, zs, sa, sb, fa, fb, fb2, ta, tb, t};
    for (size_t i = 0; i < sizeof bt / sizeof *bt; i++) tensor_release(bt[i]);
    tensor_release(a); tensor_release(b); tensor_release(x2); tensor_release(y); tensor_release(m); tensor_release(s);
    tensor_release(x); tensor_release(R);
    return test_summary("test_grad_cast");
}
