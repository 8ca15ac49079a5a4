// test_mlp_fused.c — linear_gelu and mlp_gelu (ops_mlp.c: GELU_AUX forward, DGELU backward) against
// the ops they replace, op_linear / op_gelu composed, on the CPU in f32: the same forward bits and
// the same gradient bits for every mix of inputs needing gradients (the frozen-FLUX case: x only),
// one tape node each, and what stays alive for backward: gelu's input, not its output.
// mlp_gelu_cat against concat + linear (not the same bits: two GEMMs summed instead of one).
#include <math.h>
#include <string.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"
#include "fused_check.h"

enum { T = 37, K = 24, H = 96, N = 40 };
static int64_t live(void) { return (int64_t)alloc_stats(CM_DEV_CPU).current; }
static int64_t ru512(int64_t n) { return (n + 511) / 512 * 512; }  // the allocator's size classes below 1 MiB

// mask bit i: input i of (x, w1, b1, w2, b2) needs a gradient
static void mlp_case(unsigned mask) {
    cm_tensor *in[5] = {fused_rand(3, (int64_t[]){1, T, K}, 1.f, 0.f), fused_rand(2, (int64_t[]){H, K}, .3f, 0.f), fused_rand(1, (int64_t[]){H}, 1.f, 0.f),
                        fused_rand(2, (int64_t[]){N, H}, .2f, 0.f), fused_rand(1, (int64_t[]){N}, 1.f, 0.f)};
    cm_tensor *gout = fused_rand(3, (int64_t[]){1, T, N}, 1.f, 0.f);
    for (int i = 0; i < 5; i++) tensor_set_requires_grad(in[i], (mask >> i) & 1);
    // the composition
    cm_tensor *h = op_linear(in[0], in[1], in[2]), *y = op_gelu(h, true), *ref = op_linear(y, in[3], in[4]);
    tensor_release(h), tensor_release(y);
    autograd_backward(ref, gout);
    cm_tensor *gref[5];
    for (int i = 0; i < 5; i++) gref[i] = fused_take_grad(in[i]);
    // the fused op
    int64_t tape0 = autograd_tape_len(), live0 = live();
    cm_tensor *out = op_mlp_gelu(in[0], in[1], in[2], in[3], in[4]);
    TEST_CHECK(autograd_tape_len() == tape0 + 1, "mlp_gelu mask %u: one tape node", mask);
    // alive now: out [T, N], gelu's input [T, H], and x's contiguous copy when w1 needs it (x is)
    int64_t kept = live() - live0, want = ru512(T * N * 4) + ru512(T * H * 4);
    TEST_CHECK(kept <= want, "mlp_gelu mask %u: %lld bytes kept for backward (out + gelu's input = %lld; not its output)",
               mask, (long long)kept, (long long)want);
    TEST_CHECK(fused_same(out, ref), "mlp_gelu mask %u: forward bits of linear / gelu / linear", mask);
    autograd_backward(out, gout);
    static const char *names[5] = {"x", "w1", "b1", "w2", "b2"};
    for (int i = 0; i < 5; i++) {
        cm_tensor *g = fused_take_grad(in[i]);
        TEST_CHECK(fused_same(g, gref[i]), "mlp_gelu mask %u: gradient of %s, bit for bit (%s)", mask, names[i],
                   g ? "given" : "none");
        tensor_release(g), tensor_release(gref[i]);
    }
    // no grad mode: the same forward, nothing recorded
    autograd_no_grad_push();
    cm_tensor *ng = op_mlp_gelu(in[0], in[1], in[2], in[3], in[4]);
    autograd_no_grad_pop();
    TEST_CHECK(fused_same(ng, ref) && !tensor_needs_grad(ng), "mlp_gelu mask %u: no-grad forward, same bits, untaped", mask);
    tensor_release(ng), tensor_release(out), tensor_release(ref), tensor_release(gout);
    for (int i = 0; i < 5; i++) tensor_release(in[i]);
}

static void linear_gelu_case(unsigned mask) {
    cm_tensor *in[3] = {fused_rand(2, (int64_t[]){T, K}, 1.f, 0.f), fused_rand(2, (int64_t[]){H, K}, .3f, 0.f), fused_rand(1, (int64_t[]){H}, 1.f, 0.f)};
    cm_tensor *gout = fused_rand(2, (int64_t[]){T, H}, 1.f, 0.f);
    for (int i = 0; i < 3; i++) tensor_set_requires_grad(in[i], (mask >> i) & 1);
    cm_tensor *h = op_linear(in[0], in[1], in[2]), *ref = op_gelu(h, true);
    tensor_release(h);
    autograd_backward(ref, gout);
    cm_tensor *gref[3];
    for (int i = 0; i < 3; i++) gref[i] = fused_take_grad(in[i]);
    int64_t tape0 = autograd_tape_len();
    cm_tensor *out = op_linear_gelu(in[0], in[1], in[2]);
    TEST_CHECK(autograd_tape_len() == tape0 + 1, "linear_gelu mask %u: one tape node", mask);
    TEST_CHECK(fused_same(out, ref), "linear_gelu mask %u: forward bits of linear / gelu", mask);
    autograd_backward(out, gout);
    for (int i = 0; i < 3; i++) {
        cm_tensor *g = fused_take_grad(in[i]);
        TEST_CHECK(fused_same(g, gref[i]), "linear_gelu mask %u: gradient of input %d, bit for bit", mask, i);
        tensor_release(g), tensor_release(gref[i]);
    }
    tensor_release(out), tensor_release(ref), tensor_release(gout);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
}

// mlp_gelu_cat against concat + linear: the same products summed in two GEMMs instead of one
// (f32, relative 1e-5), every gradient, and nothing of the concatenation kept
static double rel(const cm_tensor *a, const cm_tensor *b) {
    if (!a || !b) return a == b ? 0 : INFINITY;
    double e = 0, m = 1e-30;
    const float *p = tensor_data(a), *q = tensor_data(b);
    for (int64_t i = 0; i < tensor_numel(a); i++) {
        e = test_max(e, fabs((double)p[i] - q[i]));
        m = fmax(m, fabs((double)q[i]));
    }
    return e / m;
}
static void cat_case(unsigned mask) {
    const int64_t P = 20;
    cm_tensor *in[6] = {fused_rand(3, (int64_t[]){2, T, K}, 1.f, 0.f), fused_rand(2, (int64_t[]){H, K}, .3f, 0.f), fused_rand(1, (int64_t[]){H}, 1.f, 0.f),
                        fused_rand(2, (int64_t[]){N, P + H}, .2f, 0.f), fused_rand(1, (int64_t[]){N}, 1.f, 0.f), fused_rand(3, (int64_t[]){2, T, P}, 1.f, 0.f)};
    cm_tensor *gout = fused_rand(3, (int64_t[]){2, T, N}, 1.f, 0.f);
    for (int i = 0; i < 6; i++) tensor_set_requires_grad(in[i], (mask >> i) & 1);
    cm_tensor *y = op_linear_gelu(in[0], in[1], in[2]);
    cm_tensor *parts[2] = {in[5], y};
    cm_tensor *c = op_concat(2, parts, 2), *ref = op_linear(c, in[3], in[4]);
    tensor_release(y), tensor_release(c);
    autograd_backward(ref, gout);
    cm_tensor *gref[6];
    for (int i = 0; i < 6; i++) gref[i] = fused_take_grad(in[i]);
    int64_t live0 = live();
    cm_tensor *out = op_mlp_gelu_cat(in[5], in[0], in[1], in[2], in[3], in[4]);
    int64_t kept = live() - live0, want = ru512(2 * T * N * 4) + ru512(2 * T * H * 4) + ((mask >> 3) & 1 ? ru512(2 * T * P * 4) : 0);
    TEST_CHECK(kept <= want, "mlp_gelu_cat mask %u: %lld bytes kept (out, gelu's input, pre when w2 learns: %lld)", mask,
               (long long)kept, (long long)want);
    TEST_CHECK(rel(out, ref) < 1e-5, "mlp_gelu_cat mask %u: forward within 1e-5 of concat + linear (%.2g)", mask, rel(out, ref));
    autograd_backward(out, gout);
    static const char *names[6] = {"x", "w1", "b1", "w2", "b2", "pre"};
    for (int i = 0; i < 6; i++) {
        cm_tensor *g = fused_take_grad(in[i]);
        TEST_CHECK((g == NULL) == (gref[i] == NULL) && rel(g, gref[i]) < 1e-5, "mlp_gelu_cat mask %u: gradient of %s (%.2g)",
                   mask, names[i], rel(g, gref[i]));
        tensor_release(g), tensor_release(gref[i]);
    }
    tensor_release(out), tensor_release(ref), tensor_release(gout);
    for (int i = 0; i < 6; i++) tensor_release(in[i]);
}

int main(void) {
    for (unsigned m = 1; m < 32; m++) mlp_case(m);
    for (unsigned m = 1; m < 64; m++) cat_case(m);
    for (unsigned m = 1; m < 8; m++) linear_gelu_case(m);
    return test_summary("test_mlp_fused");
}
