// test_grad_rms_rope_heads.c — finite-difference gradient check of rms_rope_heads (per-head RMSNorm,
// RoPE at joint positions, head-major output): two streams with weights (every input, x only as in a
// frozen FLUX, weights only), the IC variant, no weights, one stream, and [B, L, H, D] inputs.
#include <math.h>
#include "gradcheck.h"
#include "testutil.h"

enum { B = 2, H = 3, D = 4, LT = 2, LN = 3, L = LT + LN };
static cm_tensor *cs, *sn;
static cm_rmsvariant var = CM_RMS_DIFFUSERS;
static cm_tensor *f2(cm_tensor **in, void *c) {
    return op_rms_rope_heads(2, (cm_tensor *[]){in[0], in[1]}, (cm_tensor *[]){in[2], in[3]}, H, 1e-6, var, cs, sn);
}
static cm_tensor *f2_now(cm_tensor **in, void *c) {
    return op_rms_rope_heads(2, (cm_tensor *[]){in[0], in[1]}, NULL, H, 1e-6, var, cs, sn);
}
static cm_tensor *f1(cm_tensor **in, void *c) {  // one stream of all L rows
    return op_rms_rope_heads(1, (cm_tensor *[]){in[0]}, (cm_tensor *[]){in[1]}, H, 1e-6, var, cs, sn);
}

int main(void) {
    double cv[L * D], sv[L * D];
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            double a = (l + 1) * (d / 2 + 1) * 0.7;
            cv[l * D + d] = cos(a);
            sv[l * D + d] = sin(a);
        }
    cs = tensor_from_host(CM_F64, SHAPE(L, D), cv, CM_DEV_CPU);
    sn = tensor_from_host(CM_F64, SHAPE(L, D), sv, CM_DEV_CPU);

    cm_tensor *in[4] = {gc_rand(SHAPE(B, LT, H * D), 1, 1, 0), gc_rand(SHAPE(B, LN, H * D), 2, 1, 0.3),
                        gc_rand(SHAPE(D), 3, 0.5, 1), gc_rand(SHAPE(D), 4, 0.5, 1)};
    gradcheck("rms_rope_heads (two streams)", f2, NULL, 4, in);
    var = CM_RMS_IC;
    gradcheck("rms_rope_heads (IC variant)", f2, NULL, 4, in);
    var = CM_RMS_DIFFUSERS;
    tensor_set_requires_grad(in[2], false);
    tensor_set_requires_grad(in[3], false);
    gradcheck("rms_rope_heads (frozen weights: dx only)", f2, NULL, 4, in);
    tensor_set_requires_grad(in[0], false);
    tensor_set_requires_grad(in[1], false);
    tensor_set_requires_grad(in[3], true);
    gradcheck("rms_rope_heads (one weight only)", f2, NULL, 4, in);
    tensor_set_requires_grad(in[0], true);
    tensor_set_requires_grad(in[1], true);
    gradcheck("rms_rope_heads (no weights)", f2_now, NULL, 2, in);
    for (int i = 0; i < 4; i++) tensor_release(in[i]);

    cm_tensor *one[2] = {gc_rand(SHAPE(B, L, H, D), 5, 1, -0.2), gc_rand(SHAPE(D), 6, 0.5, 1)};
    gradcheck("rms_rope_heads (one stream, [B, L, H, D])", f1, NULL, 2, one);
    for (int i = 0; i < 2; i++) tensor_release(one[i]);
    tensor_release(cs);
    tensor_release(sn);
    return test_summary("test_grad_rms_rope_heads");
}
