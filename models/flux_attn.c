// flux_attn.c — the pieces every FLUX block shares: head split with q/k RMSNorm, the joint
// RoPE attention, adaptive LayerNorm modulation, gated residuals and the feed-forward.
#include <math.h>
#include "models/flux_internal.h"

cm_tensor *flux_heads(cm_tensor *x, int H, int D, const cm_rms *norm) {
    cm_tensor *x4 = op_reshape(x, 4, (int64_t[]){tensor_dim(x, 0), tensor_dim(x, 1), H, D});  // [B, L, H, D]
    if (!norm) return x4;
    cm_tensor *y = rms_fwd(norm, x4);
    tensor_release(x4);
    return y;
}

cm_tensor *flux_joint_attention(cm_tensor *q, cm_tensor *k, cm_tensor *v, cm_tensor *cos, cm_tensor *sin) {
    const int perm[4] = {0, 2, 1, 3};
    int64_t B = tensor_dim(q, 0), L = tensor_dim(q, 1), H = tensor_dim(q, 2), D = tensor_dim(q, 3);
    CM_CHECK(tensor_dim(cos, 0) == L && tensor_dim(cos, 1) == D, "flux_joint_attention",
             "RoPE table [%lld, %lld] for a sequence of %lld x %lld", (long long)tensor_dim(cos, 0),
             (long long)tensor_dim(cos, 1), (long long)L, (long long)D);
    cm_tensor *qt = op_permute(q, perm), *kt = op_permute(k, perm), *vt = op_permute(v, perm);  // [B, H, L, D]
    cm_tensor *qr = op_rope(qt, cos, sin), *kr = op_rope(kt, cos, sin);
    tensor_release(qt);
    tensor_release(kt);
    cm_tensor *o = op_sdpa(qr, kr, vt, NULL, 1.0 / sqrt((double)D));  // [B, H, L, D]
    tensor_release(qr);
    tensor_release(kr);
    tensor_release(vt);
    cm_tensor *ot = op_permute(o, perm);                                // [B, L, H, D]
    cm_tensor *out = op_reshape(ot, 3, (int64_t[]){B, L, H * D});       // [B, L, C]
    tensor_release(o);
    tensor_release(ot);
    return out;
}

cm_tensor *flux_gated_add(cm_tensor *res, cm_tensor *gate, cm_tensor *y) {
    cm_tensor *g = op_unsqueeze(gate, 1);  // [B, 1, C]
    cm_tensor *gy = op_mul(g, y);
    cm_tensor *out = op_add(res, gy);
    tensor_release(g);
    tensor_release(gy);
    return out;
}

cm_tensor *flux_adanorm(cm_tensor *x, cm_tensor *scale, cm_tensor *shift) {
    return op_layernorm_modulate(x, NULL, NULL, 1e-6, scale, shift);  // one kernel; no normalised tensor kept
}

cm_tensor *flux_ff(const cm_linear *l0, const cm_linear *l2, cm_tensor *x) { return mlp_gelu_fwd(l0, l2, x); }
