// test_rope_f32_tables.c — the RoPE ops with f32 cos / sin tables under a wider x (diffusers keeps
// FluxPosEmbed's tables f32 and rotates a bf16 q / k in f32). The CPU computes in f32 / f64, so the
// mixed case here is an f64 x with f32 tables: op_rope and op_rms_rope_heads must give the bits of
// the same tables held as f64, forward and backward (gradients to x and the norm weights only),
// and tables of any other dtype must stop with a message naming them.
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"

enum { B = 2, H = 3, D = 8, LT = 5, LN = 11, L = LT + LN };

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static cm_tensor *rand_t(cm_dtype dt, int ndim, const int64_t *shape, double scale, double shift) {
    cm_tensor *t = tensor_empty(CM_F64, ndim, shape, CM_DEV_CPU);
    double *p = tensor_data(t);
    for (int64_t i = 0; i < tensor_numel(t); i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        p[i] = (float)(shift + scale * ((double)(rng >> 11) / 9007199254740992.0 * 2 - 1));  // f32 values
    }
    if (dt == CM_F64) return t;
    cm_tensor *c = op_cast(t, dt);
    tensor_release(t);
    return c;
}
static int same(const cm_tensor *a, const cm_tensor *b) {
    if (!a || !b) return a == b;
    return a->dtype == b->dtype && tensor_numel(a) == tensor_numel(b) &&
           !memcmp(tensor_data(a), tensor_data(b), (size_t)tensor_numel(a) * dtype_size(a->dtype));
}
static cm_tensor *take_grad(cm_tensor *t) {
    cm_tensor *g = t->grad ? tensor_retain(t->grad) : NULL;
    tensor_zero_grad(t);
    return g;
}

static void check_rope(void) {
    cm_tensor *c32 = rand_t(CM_F32, 2, (int64_t[]){L, D}, 1, 0), *s32 = rand_t(CM_F32, 2, (int64_t[]){L, D}, 1, 0);
    cm_tensor *c64 = op_cast(c32, CM_F64), *s64 = op_cast(s32, CM_F64);
    cm_tensor *x = rand_t(CM_F64, 3, (int64_t[]){B * H, L, D}, 2, 0), *g = rand_t(CM_F64, 3, (int64_t[]){B * H, L, D}, 1, 0);
    tensor_set_requires_grad(x, true);
    cm_tensor *ref = op_rope(x, c64, s64);
    autograd_backward(ref, g);
    cm_tensor *gref = take_grad(x);
    cm_tensor *out = op_rope(x, c32, s32);
    TEST_CHECK(out->dtype == CM_F64, "rope: f64 x, f32 tables -> %s (want f64)", dtype_name(out->dtype));
    TEST_CHECK(same(out, ref), "rope forward: f32 tables give the bits of the same tables as f64");
    autograd_backward(out, g);
    cm_tensor *gx = take_grad(x);
    TEST_CHECK(same(gx, gref), "rope backward: f32 tables give the bits of the same tables as f64");
    cm_tensor *drop[] = {c32, s32, c64, s64, x, g, ref, gref, out, gx};
    for (int i = 0; i < 10; i++) tensor_release(drop[i]);
}

static void check_rms_rope(cm_rmsvariant var) {
    cm_tensor *c32 = rand_t(CM_F32, 2, (int64_t[]){L, D}, 1, 0), *s32 = rand_t(CM_F32, 2, (int64_t[]){L, D}, 1, 0);
    cm_tensor *c64 = op_cast(c32, CM_F64), *s64 = op_cast(s32, CM_F64);
    cm_tensor *in[4] = {rand_t(CM_F64, 3, (int64_t[]){B, LT, H * D}, 2, 0), rand_t(CM_F64, 3, (int64_t[]){B, LN, H * D}, 1, .5),
                        rand_t(CM_F64, 1, (int64_t[]){D}, .5, 1), rand_t(CM_F64, 1, (int64_t[]){D}, .5, 1)};
    cm_tensor *gout = rand_t(CM_F64, 4, (int64_t[]){B, H, L, D}, 1, 0);
    for (int i = 0; i < 4; i++) tensor_set_requires_grad(in[i], true);
    cm_tensor *gref[4], *out[2];
    for (int t = 0; t < 2; t++) {  // t 0: f64 tables (the reference), 1: the same values f32
        out[t] = op_rms_rope_heads(2, in, in + 2, H, 1e-6, var, t ? c32 : c64, t ? s32 : s64);
        autograd_backward(out[t], gout);
        for (int i = 0; i < 4; i++) {
            cm_tensor *gi = take_grad(in[i]);
            if (!t) gref[i] = gi;
            else {
                TEST_CHECK(gi && same(gi, gref[i]), "rms_rope %s: gradient %d with f32 tables, bit for bit",
                           var ? "IC" : "diffusers", i);
                tensor_release(gi), tensor_release(gref[i]);
            }
        }
    }
    TEST_CHECK(out[1]->dtype == CM_F64 && same(out[1], out[0]), "rms_rope %s forward: f32 tables, bit for bit",
               var ? "IC" : "diffusers");
    cm_tensor *drop[] = {c32, s32, c64, s64, gout, out[0], out[1], in[0], in[1], in[2], in[3]};
    for (int i = 0; i < 11; i++) tensor_release(drop[i]);
}

static cm_tensor *z(cm_dtype dt, int nd, const int64_t *s) { return tensor_zeros(dt, nd, s, CM_DEV_CPU); }
static void rope_f64_tables(void) { op_rope(z(CM_F32, SHAPE(2, 3, 4)), z(CM_F64, SHAPE(3, 4)), z(CM_F64, SHAPE(3, 4))); }
static void rope_mixed_tables(void) { op_rope(z(CM_F64, SHAPE(2, 3, 4)), z(CM_F32, SHAPE(3, 4)), z(CM_F64, SHAPE(3, 4))); }
static void rr_f64_tables(void) {
    op_rms_rope_heads(1, (cm_tensor *[]){z(CM_F32, SHAPE(1, 3, 8))}, NULL, 2, 1e-6, CM_RMS_DIFFUSERS,
                      z(CM_F64, SHAPE(3, 4)), z(CM_F64, SHAPE(3, 4)));
}

int main(void) {
    check_rope();
    check_rms_rope(CM_RMS_DIFFUSERS);
    check_rms_rope(CM_RMS_IC);
    // tables wider than x, or cos and sin of two dtypes: stopped, naming both
    test_expect_death("rope f64 tables, f32 x", rope_f64_tables, "cos/sin must have x's dtype or f32", "[3, 4] f64 cpu");
    test_expect_death("rope cos f32, sin f64", rope_mixed_tables, "rope", "dtypes differ");
    test_expect_death("rms_rope f64 tables, f32 x", rr_f64_tables, "cos/sin must have x's dtype or f32", "f64");
    return test_summary("test_rope_f32_tables");
}
