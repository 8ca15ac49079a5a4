// test_autograd.c — the tape's contract: frozen weights never get a dW GEMM, gradients
// accumulate with +=, saved tensors are released by backward, no-grad records nothing.
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include <string.h>
#include "testutil.h"

static cm_tensor *randt(uint64_t seed, int nd, const int64_t *shape, bool grad) {
    cm_tensor *t = tensor_empty(CM_F32, nd, shape, CM_DEV_CPU);
    tensor_fill_randn(t, seed, 1.0);
    if (grad) tensor_set_requires_grad(t, true);
    return t;
}

// a two-layer MLP: y = W2 gelu(W1 x); returns the number of GEMMs one fwd+bwd issued
static int64_t mlp_gemms(bool w1_trainable, bool x_needs, cm_tensor **w1_out) {
    cm_tensor *x = randt(1, SHAPE(4, 8), x_needs), *w1 = randt(2, SHAPE(16, 8), w1_trainable), *w2 = randt(3, SHAPE(8, 16), true);
    int64_t before = cm_gemm_calls;
    cm_tensor *h = op_linear(x, w1, NULL), *a = op_gelu(h, true), *y = op_linear(a, w2, NULL), *l = op_mean_all(y);
    autograd_backward(l, NULL);
    int64_t n = cm_gemm_calls - before;
    TEST_CHECK(w2->grad != NULL, "trainable w2 has a gradient");
    TEST_CHECK((w1->grad != NULL) == w1_trainable, "w1 gradient present iff trainable");
    TEST_CHECK((x->grad != NULL) == x_needs, "x gradient present iff requested");
    if (w1_out) *w1_out = tensor_retain(w1);
    tensor_release(x); tensor_release(w1); tensor_release(w2); tensor_release(h); tensor_release(a); tensor_release(y); tensor_release(l);
    return n;
}

// an op whose backward notes which op autograd says is running (out-of-memory messages name it)
static const char *g_seen;
static void probe_backward(cm_node *n, cm_tensor *g, cm_tensor **gin) {
    (void)n;
    g_seen = autograd_backward_op();
    gin[0] = tensor_retain(g);
}
static const cm_opdef OP_PROBE = {"probe", probe_backward};

int main(void) {
    // forward: 2 GEMMs. backward, all trainable: dW2, dA, dW1, dX = 4.
    TEST_CHECK(mlp_gemms(true, true, NULL) == 6, "all trainable: 6 GEMMs");
    // frozen W1, x needs no grad: nothing below W2 is on the tape, so only dW2 — no dA, dW1, dX
    int64_t g = mlp_gemms(false, false, NULL);
    TEST_CHECK(g == 3, "frozen first layer: expected 3 GEMMs (2 fwd + dW2), got %lld", (long long)g);
    // frozen W1 but x needs a grad (the FLUX case: frozen weights, trainable inputs): dA and dX, never dW1
    g = mlp_gemms(false, true, NULL);
    TEST_CHECK(g == 5, "frozen W1 with x needing grad: expected 5 GEMMs (no dW1), got %lld", (long long)g);

    // += accumulation across two backward passes
    cm_tensor *w = randt(5, SHAPE(3, 3), true), *x = randt(6, SHAPE(2, 3), false);
    for (int rep = 0; rep < 2; rep++) {
        cm_tensor *y = op_linear(x, w, NULL), *l = op_sum_all(y);
        autograd_backward(l, NULL);
        tensor_release(y); tensor_release(l);
    }
    // d sum(x W^T) / dW[i][j] = sum_b x[b][j]; twice
    for (int j = 0; j < 3; j++) {
        double e = 2 * (tensor_get(x, j) + tensor_get(x, 3 + j));
        TEST_NEAR(tensor_get(w->grad, j), e, 1e-5, 1e-5, "accumulated gradient");
    }
    tensor_zero_grad(w);
    TEST_CHECK(w->grad == NULL, "zero_grad releases");

    // no-grad scope records nothing
    autograd_no_grad_push();
    cm_tensor *y = op_linear(x, w, NULL);
    TEST_CHECK(autograd_tape_len() == 0 && y->grad_fn == NULL && !y->requires_grad, "no tape under no-grad");
    autograd_no_grad_pop();
    tensor_release(y);

    // backward releases saved activations: live bytes return to the level before the forward
    cm_alloc_stats s0 = alloc_stats(CM_DEV_CPU);
    cm_tensor *big = randt(7, SHAPE(64, 256), false), *wb = randt(8, SHAPE(256, 256), true);
    cm_tensor *h1 = op_linear(big, wb, NULL), *h2 = op_gelu(h1, false), *h3 = op_linear(h2, wb, NULL), *l = op_mean_all(h3);
    tensor_release(h1); tensor_release(h2); tensor_release(h3);
    size_t held = alloc_stats(CM_DEV_CPU).current;
    autograd_backward(l, NULL);
    tensor_release(l);
    TEST_CHECK(autograd_tape_len() == 0, "tape empty after backward");
    cm_alloc_stats s1 = alloc_stats(CM_DEV_CPU);
    size_t expect = s0.current + 2 * (64 * 256 * 4) + 2 * (256 * 256 * 4);  // big, wb, wb.grad (+ rounding slack)
    TEST_CHECK(s1.current <= expect + 4096, "saved tensors released: %zu live bytes after backward (held %zu during), expected <= %zu",
               s1.current, held, expect + 4096);
    tensor_release(big); tensor_release(wb);

    // tape reset drops everything without a backward
    cm_tensor *p = randt(9, SHAPE(4), true), *q = op_mul(p, p);
    autograd_tape_reset();
    TEST_CHECK(autograd_tape_len() == 0, "tape reset");
    tensor_release(q); tensor_release(p);
    tensor_release(w); tensor_release(x);

    // the op whose backward runs is known while it runs, and only then
    cm_tensor *px = randt(10, SHAPE(3), true), *py = tensor_zeros_like(px);
    autograd_record(&OP_PROBE, py, 1, &px);
    cm_tensor *pl = op_sum_all(py);
    TEST_CHECK(autograd_backward_op() == NULL, "no backward running yet");
    autograd_backward(pl, NULL);
    TEST_CHECK(g_seen && !strcmp(g_seen, "probe"), "inside its backward: '%s'", g_seen ? g_seen : "(null)");
    TEST_CHECK(autograd_backward_op() == NULL, "no backward running after");
    tensor_release(pl); tensor_release(py); tensor_release(px);
    return test_summary("test_autograd");
}
