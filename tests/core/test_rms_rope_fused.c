// test_rms_rope_fused.c — rms_rope_heads (ops_heads.c) against the ops it replaces in the FLUX
// blocks, composed (per-head rmsnorm of each stream, concat text-first, permute to head-major,
// rope), on the CPU in f32: the same forward bits and the same gradient bits for every mix of
// inputs needing gradients, both RMS variants, one tape node, and less kept for backward.
#include <math.h>
#include <string.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "testutil.h"
#include "fused_check.h"

enum { B = 2, H = 3, D = 8, LT = 5, LN = 11, L = LT + LN };

static int64_t live(void) { return (int64_t)alloc_stats(CM_DEV_CPU).current; }

// the blocks' former path: flux_heads (reshape + rmsnorm), concat, permute, rope
static cm_tensor *composed(cm_tensor **in, cm_rmsvariant var, cm_tensor *cs, cm_tensor *sn) {
    cm_tensor *h[2];
    for (int s = 0; s < 2; s++) {
        cm_tensor *x4 = op_reshape(in[s], 4, (int64_t[]){B, tensor_dim(in[s], 1), H, D});
        h[s] = op_rmsnorm(x4, in[2 + s], 1e-6, var);
        tensor_release(x4);
    }
    cm_tensor *c = op_concat(2, h, 1), *p = op_permute(c, (int[]){0, 2, 1, 3}), *out = op_rope(p, cs, sn);
    tensor_release(h[0]), tensor_release(h[1]), tensor_release(c), tensor_release(p);
    return out;
}

// mask bit i: input i of (x_text, x_image, w_text, w_image) needs a gradient
static void one_case(unsigned mask, cm_rmsvariant var, cm_tensor *cs, cm_tensor *sn) {
    cm_tensor *in[4] = {fused_rand(3, (int64_t[]){B, LT, H * D}, 2.f, 0.f), fused_rand(3, (int64_t[]){B, LN, H * D}, 1.f, .5f),
                        fused_rand(1, (int64_t[]){D}, .5f, 1.f), fused_rand(1, (int64_t[]){D}, .5f, 1.f)};
    cm_tensor *gout = fused_rand(4, (int64_t[]){B, H, L, D}, 1.f, 0.f);
    for (int i = 0; i < 4; i++) tensor_set_requires_grad(in[i], (mask >> i) & 1);
    cm_tensor *ref = composed(in, var, cs, sn);
    if (mask) autograd_backward(ref, gout);
    cm_tensor *gref[4];
    for (int i = 0; i < 4; i++) gref[i] = fused_take_grad(in[i]);

    int64_t tape0 = autograd_tape_len(), live0 = live();
    cm_tensor *out = op_rms_rope_heads(2, (cm_tensor *[]){in[0], in[1]}, (cm_tensor *[]){in[2], in[3]}, H, 1e-6, var, cs, sn);
    // kept: the output and the f32 inverse RMS per head row (the inputs are contiguous: no copies)
    int64_t kept = live() - live0, most = 512 * ((B * H * L * D * 4 + 511) / 512) + 2 * 512 * ((B * LN * H * 4 + 511) / 512);
    TEST_CHECK(autograd_tape_len() == tape0 + (mask ? 1 : 0), "mask %u: one tape node", mask);
    TEST_CHECK(kept <= most, "mask %u: %lld bytes kept for backward (at most %lld: out + inv)", mask, (long long)kept,
               (long long)most);
    TEST_CHECK(fused_same(out, ref), "mask %u %s: forward bits of rmsnorm / concat / permute / rope", mask,
               var ? "IC" : "diffusers");
    if (mask) autograd_backward(out, gout);
    static const char *names[4] = {"x_text", "x_image", "w_text", "w_image"};
    for (int i = 0; i < 4; i++) {
        cm_tensor *g = fused_take_grad(in[i]);
        TEST_CHECK(fused_same(g, gref[i]), "mask %u %s: gradient of %s, bit for bit (%s)", mask, var ? "IC" : "diffusers",
                   names[i], g ? "given" : "none");
        tensor_release(g), tensor_release(gref[i]);
    }
    tensor_release(out), tensor_release(ref), tensor_release(gout);
    for (int i = 0; i < 4; i++) tensor_release(in[i]);
}

int main(void) {
    float cv[L * D], sv[L * D];
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            double a = (l + 1) * pow(10000.0, -(double)(d / 2) / (D / 2));
            cv[l * D + d] = (float)cos(a);
            sv[l * D + d] = (float)sin(a);
        }
    cm_tensor *cs = tensor_from_host(CM_F32, 2, (int64_t[]){L, D}, cv, CM_DEV_CPU);
    cm_tensor *sn = tensor_from_host(CM_F32, 2, (int64_t[]){L, D}, sv, CM_DEV_CPU);
    for (int var = 0; var < 2; var++)
        for (unsigned mask = 0; mask < 16; mask++) one_case(mask, (cm_rmsvariant)var, cs, sn);
    tensor_release(cs), tensor_release(sn);
    return test_summary("test_rms_rope_fused");
}
