// test_gated_add_fused.c — gated_add (ops_cond.c) against what it replaces in the FLUX blocks,
// op_add(res, op_mul(unsqueeze(gate), y)), on the CPU in f32: the same forward bits, the same bits
// for dres and dy, dgate within 1e-6 (summed in another order), for every mix of inputs needing
// gradients; one tape node, nothing kept when only res learns, y kept only when the gate learns.
// add_rows against what it replaces for the IP output: op_add(a, op_scale(b)) on all rows (double
// block) and slices + add + concat on the last rows (single block): the same bits, every gradient.
#include <math.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"
#include "fused_check.h"

enum { B = 2, L = 37, C = 40 };
static int64_t live(void) { return (int64_t)alloc_stats(CM_DEV_CPU).current; }

static double rel(const cm_tensor *a, const cm_tensor *b) {
    if (!a || !b) return a == b ? 0 : INFINITY;
    double e = 0, m = 1e-30;
    const float *p = tensor_data(a), *q = tensor_data(b);
    for (int64_t i = 0; i < tensor_numel(a); i++) e = test_max(e, fabs((double)p[i] - q[i])), m = fmax(m, fabs((double)q[i]));
    return e / m;
}

// mask bit i: input i of (res, gate, y) needs a gradient
static void one_case(unsigned mask) {
    cm_tensor *in[3] = {fused_rand(3, (int64_t[]){B, L, C}, 1.f, 0.f), fused_rand(2, (int64_t[]){B, C}, .5f, .2f),
                        fused_rand(3, (int64_t[]){B, L, C}, 2.f, 0.f)};
    cm_tensor *gout = fused_rand(3, (int64_t[]){B, L, C}, 1.f, 0.f);
    for (int i = 0; i < 3; i++) tensor_set_requires_grad(in[i], (mask >> i) & 1);
    cm_tensor *g3 = op_unsqueeze(in[1], 1), *gy = op_mul(g3, in[2]), *ref = op_add(in[0], gy);
    tensor_release(g3), tensor_release(gy);
    if (mask) autograd_backward(ref, gout);
    cm_tensor *gref[3];
    for (int i = 0; i < 3; i++) gref[i] = fused_take_grad(in[i]);

    int64_t tape0 = autograd_tape_len(), live0 = live();
    cm_tensor *out = op_gated_add(in[0], in[1], in[2]);
    int64_t kept = live() - live0, want = 512 * ((B * L * C * 4 + 511) / 512);  // the output only: inputs are kept by reference
    TEST_CHECK(autograd_tape_len() == tape0 + (mask ? 1 : 0), "mask %u: one tape node", mask);
    TEST_CHECK(kept <= want, "mask %u: %lld bytes new (the output: %lld)", mask, (long long)kept, (long long)want);
    TEST_CHECK(fused_same(out, ref), "mask %u: forward bits of add(res, mul(gate, y))", mask);
    if (mask) {
        cm_node *n = out->grad_fn;
        TEST_CHECK(n && (n->saved[1] != NULL) == ((mask >> 1) & 1), "mask %u: y kept exactly when the gate learns", mask);
        TEST_CHECK(n && (n->saved[0] != NULL) == ((mask >> 2) & 1), "mask %u: the gate kept exactly when y learns", mask);
        autograd_backward(out, gout);
    }
    static const char *names[3] = {"res", "gate", "y"};
    for (int i = 0; i < 3; i++) {
        cm_tensor *g = fused_take_grad(in[i]);
        if (i == 1) TEST_CHECK((g == NULL) == (gref[i] == NULL) && rel(g, gref[i]) < 1e-6, "mask %u: gradient of gate (%.2g)", mask, rel(g, gref[i]));
        else TEST_CHECK(fused_same(g, gref[i]), "mask %u: gradient of %s, bit for bit (%s)", mask, names[i], g ? "given" : "none");
        tensor_release(g), tensor_release(gref[i]);
    }
    tensor_release(out), tensor_release(ref), tensor_release(gout);
    for (int i = 0; i < 3; i++) tensor_release(in[i]);
}

// add_rows(a, b, alpha, row0) against the blocks' former composition; mask bit i: input i of (a, b) learns
static void add_rows_case(unsigned mask, int64_t Lb) {
    const int64_t row0 = L - Lb;
    cm_tensor *in[2] = {fused_rand(3, (int64_t[]){B, L, C}, 1.f, 0.f), fused_rand(3, (int64_t[]){B, Lb, C}, 2.f, 0.f)};
    cm_tensor *gout = fused_rand(3, (int64_t[]){B, L, C}, 1.f, 0.f);
    for (int i = 0; i < 2; i++) tensor_set_requires_grad(in[i], (mask >> i) & 1);
    cm_tensor *s = op_scale(in[1], 0.6), *ref;
    if (row0 == 0) ref = op_add(in[0], s);
    else {
        cm_tensor *parts[2] = {op_slice(in[0], 1, 0, row0), op_slice(in[0], 1, row0, L)};
        cm_tensor *img = op_add(parts[1], s);
        tensor_release(parts[1]);
        parts[1] = img;
        ref = op_concat(2, parts, 1);
        tensor_release(parts[0]), tensor_release(parts[1]);
    }
    tensor_release(s);
    if (mask) autograd_backward(ref, gout);
    cm_tensor *gref[2];
    for (int i = 0; i < 2; i++) gref[i] = fused_take_grad(in[i]);
    cm_tensor *out = op_add_rows(in[0], in[1], 0.6, row0);
    TEST_CHECK(fused_same(out, ref), "add_rows mask %u Lb %lld: forward bits", mask, (long long)Lb);
    if (mask) autograd_backward(out, gout);
    for (int i = 0; i < 2; i++) {
        cm_tensor *g = fused_take_grad(in[i]);
        TEST_CHECK(fused_same(g, gref[i]), "add_rows mask %u Lb %lld: gradient of %s, bit for bit", mask, (long long)Lb,
                   i ? "b" : "a");
        tensor_release(g), tensor_release(gref[i]);
    }
    tensor_release(out), tensor_release(ref), tensor_release(gout);
    for (int i = 0; i < 2; i++) tensor_release(in[i]);
}

int main(void) {
    for (unsigned mask = 0; mask < 8; mask++) one_case(mask);
    for (unsigned mask = 0; mask < 4; mask++) {
        add_rows_case(mask, L);       // the double block: every row of the image stream
        add_rows_case(mask, L - 12);  // the single block: the image rows after the text
    }
    return test_summary("test_gated_add_fused");
}
