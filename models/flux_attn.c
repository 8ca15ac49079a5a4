// flux_attn.c — the pieces every FLUX block shares: q / k (per-head RMSNorm + RoPE, one op) and v
// of the joint sequence, the attention, adaptive LayerNorm modulation, gated residuals and the feed-forward.
#include <math.h>
#include "models/flux_internal.h"
#include "models/ip_attn.h"

cm_tensor *flux_qk(int n, cm_tensor **xs, const cm_rms *const *norms, int H, cm_tensor *cos, cm_tensor *sin) {
    cm_tensor *ws[2];
    CM_CHECK(n >= 1 && n <= 2, "flux_qk", "%d streams", n);
    for (int s = 0; s < n; s++) {
        ws[s] = norms[s]->w;
        CM_CHECK(norms[s]->eps == norms[0]->eps && norms[s]->v == norms[0]->v, "flux_qk",
                 "the streams' q/k norms differ in eps or variant");
    }
    return op_rms_rope_heads(n, xs, ws, H, norms[0]->eps, norms[0]->v, cos, sin);
}

cm_tensor *flux_v(int n, cm_tensor **xs, int H) {
    cm_tensor *v4[2];
    for (int s = 0; s < n; s++) {
        int64_t C = tensor_dim(xs[s], 2);
        v4[s] = op_reshape(xs[s], 4, (int64_t[]){tensor_dim(xs[s], 0), tensor_dim(xs[s], 1), H, C / H});  // [B, Ls, H, D]
    }
    cm_tensor *v = n == 1 ? tensor_retain(v4[0]) : op_concat(n, v4, 1);  // [B, L, H, D]
    cm_tensor *vt = op_permute(v, (int[]){0, 2, 1, 3});                  // [B, H, L, D] view: SDPA reads it in place
    for (int s = 0; s < n; s++) tensor_release(v4[s]);
    tensor_release(v);
    return vt;
}

cm_tensor *flux_joint_attention(cm_tensor *q, cm_tensor *k, cm_tensor *v) {
    int64_t B = tensor_dim(q, 0), H = tensor_dim(q, 1), L = tensor_dim(q, 2), D = tensor_dim(q, 3);
    cm_tensor *o = op_sdpa_tokens(q, k, v, NULL, 1.0 / sqrt((double)D));    // [B, L, H, D], written so
    cm_tensor *out = op_reshape(o, 3, (int64_t[]){B, L, H * D});             // [B, L, C]: a view
    tensor_release(o);
    return out;
}

cm_tensor *flux_joint_ip_attention(cm_tensor *q, cm_tensor *k, cm_tensor *v, const ip_attn *ip, int module,
                                   cm_tensor *img_q, cm_tensor *ip_tokens, double ip_scale, int64_t Lt) {
    const int64_t B = tensor_dim(q, 0), H = tensor_dim(q, 1), L = tensor_dim(q, 2), D = tensor_dim(q, 3);
    if (ip->cfg.heads != H || ip->cfg.head_dim != D) {  // heads unlike the block's: two attentions
        cm_tensor *O = flux_joint_attention(q, k, v);
        cm_tensor *ipo = ip_attn_fwd(ip, module, img_q, ip_tokens);
        cm_tensor *out = op_add_rows(O, ipo, ip_scale, Lt);
        tensor_release(O);
        tensor_release(ipo);
        return out;
    }
    cm_tensor *qi, *ki, *vi;
    ip_attn_qkv(ip, module, img_q, ip_tokens, &qi, &ki, &vi);
    const int64_t N = tensor_dim(qi, 2);
    cm_tensor *o = op_sdpa_tokens_pair(q, k, v, qi, ki, vi, 1.0 / sqrt((double)D));  // [B, L + N, H, D]
    cm_tensor *o3 = op_reshape(o, 3, (int64_t[]){B, L + N, H * D});                  // a view
    cm_tensor *out = op_fold_rows(o3, L, ip_scale, Lt);                               // [B, L, C]
    tensor_release(qi);
    tensor_release(ki);
    tensor_release(vi);
    tensor_release(o);
    tensor_release(o3);
    return out;
}

cm_tensor *flux_gated_add(cm_tensor *res, cm_tensor *gate, cm_tensor *y) { return op_gated_add(res, gate, y); }

cm_tensor *flux_adanorm(cm_tensor *x, cm_tensor *scale, cm_tensor *shift) {
    return op_layernorm_modulate(x, NULL, NULL, 1e-6, scale, shift);  // one kernel; no normalised tensor kept
}

cm_tensor *flux_ff(const cm_linear *l0, const cm_linear *l2, cm_tensor *x) { return mlp_gelu_fwd(l0, l2, x); }
