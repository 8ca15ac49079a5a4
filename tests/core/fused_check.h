// fused_check.h — helpers of the tests that hold a fused op to the ops it replaces (f32, CPU):
// seeded uniform tensors, bit-for-bit comparison, taking a leaf's gradient.
#pragma once
#include <string.h>
#include "autograd/autograd.h"

static uint64_t fused_rng = 0x9E3779B97F4A7C15ull;
// f32 values uniform in shift + scale * [-1, 1)
static inline cm_tensor *fused_rand(int ndim, const int64_t *shape, float scale, float shift) {
    cm_tensor *t = tensor_empty(CM_F32, ndim, shape, CM_DEV_CPU);
    float *p = tensor_data(t);
    for (int64_t i = 0; i < tensor_numel(t); i++) {
        fused_rng ^= fused_rng << 13, fused_rng ^= fused_rng >> 7, fused_rng ^= fused_rng << 17;
        p[i] = shift + scale * (float)((double)(fused_rng >> 11) / 9007199254740992.0 * 2 - 1);
    }
    return t;
}
// both absent, or the same f32 bits
static inline int fused_same(const cm_tensor *a, const cm_tensor *b) {
    if (!a || !b) return a == b;
    return tensor_numel(a) == tensor_numel(b) && !memcmp(tensor_data(a), tensor_data(b), (size_t)tensor_numel(a) * 4);
}
// the leaf's gradient (a new reference, or NULL), cleared on the leaf
static inline cm_tensor *fused_take_grad(cm_tensor *t) {
    cm_tensor *g = t->grad ? tensor_retain(t->grad) : NULL;
    tensor_zero_grad(t);
    return g;
}
