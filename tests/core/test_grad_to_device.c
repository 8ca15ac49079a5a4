// test_grad_to_device.c — the device transfer keeps the gradient path, both ways. The CPU backend
// stands in for cuda:0 (backend_emulate_cuda), so this runs without a GPU. Devices compute in
// f32 only, so the rule is checked exactly instead of by finite differences: for
// y = cpu(cuda(x) * r) + 2x, dL/dx = (r + 2) R with R the upstream gradient (f32 products of
// small integers: exact), and x's gradient is a CPU tensor of x's dtype.
#include <math.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "testutil.h"

extern const cm_backend cm_cpu_backend;
void backend_emulate_cuda(const cm_backend *be, const cm_kctx *(*ctx)(int index));  // kernels/backend.c

static cm_backend stand_in;
static cm_kctx stand_in_ctx = {{CM_CUDA, 0}, NULL, NULL};
static const cm_kctx *stand_in_for(int index) { return index == 0 ? &stand_in_ctx : NULL; }

int main(void) {
    stand_in = cm_cpu_backend;
    stand_in.name = "stand-in";
    backend_emulate_cuda(&stand_in, stand_in_for);
    const cm_device dev = {CM_CUDA, 0};
    enum { N = 12 };
    float xv[N], rv[N], Rv[N];
    for (int i = 0; i < N; i++) xv[i] = (float)(i % 5) - 2, rv[i] = (float)(i % 3) + 1, Rv[i] = (float)(i % 4) - 1.5f;
    cm_tensor *x = tensor_from_host(CM_F32, SHAPE(3, 4), xv, CM_DEV_CPU);
    tensor_set_requires_grad(x, true);
    cm_tensor *r = tensor_from_host(CM_F32, SHAPE(3, 4), rv, dev), *R = tensor_from_host(CM_F32, SHAPE(3, 4), Rv, CM_DEV_CPU);
    cm_tensor *xd = op_to_device(x, dev), *p = op_mul(xd, r), *back = op_to_device(p, CM_DEV_CPU);
    TEST_CHECK(device_eq(xd->storage->dev, dev) && device_eq(back->storage->dev, CM_DEV_CPU), "the tensors sit where asked");
    cm_tensor *x2 = op_scale(x, 2.0), *y = op_add(back, x2), *m = op_mul(y, R), *s = op_sum_all(m);
    autograd_backward(s, NULL);
    TEST_CHECK(x->grad && device_eq(x->grad->storage->dev, CM_DEV_CPU) && x->grad->dtype == CM_F32,
               "x got an f32 CPU gradient");
    int bad = 0;
    for (int i = 0; x->grad && i < N; i++) bad += tensor_get(x->grad, i) != (double)((rv[i] + 2) * Rv[i]);
    TEST_CHECK(x->grad && bad == 0, "dx = (r + 2) R through the device and back (%d wrong)", bad);
    TEST_CHECK(autograd_tape_len() == 0, "tape empty after backward");
    // a leaf on the device: its gradient comes back from the CPU side onto the device
    cm_tensor *w = tensor_from_host(CM_F32, SHAPE(3, 4), xv, dev);
    tensor_set_requires_grad(w, true);
    cm_tensor *wc = op_to_device(w, CM_DEV_CPU), *q = op_mul(wc, R), *sq = op_sum_all(q);
    autograd_backward(sq, NULL);
    TEST_CHECK(w->grad && device_eq(w->grad->storage->dev, dev), "a device leaf's gradient lands on the device");
    bad = 0;
    for (int i = 0; w->grad && i < N; i++) bad += tensor_get(w->grad, i) != (double)Rv[i];
    TEST_CHECK(w->grad && bad == 0, "dw = R (%d wrong)", bad);
    cm_tensor *all[] = {x, r, R, xd, p, back, x2, y, m, s, w, wc, q, sq};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_release(all[i]);
    return test_summary("test_grad_to_device");
}
