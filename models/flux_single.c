// flux_single.c — the single-stream block (diffusers FluxSingleTransformerBlock, spec §5.4) on
// the joint sequence [txt; img], with the InstantCharacter IP branch added to the image-token
// slice of the attention output before proj_out (§2.7).
#include "models/flux_internal.h"
#include "models/ip_attn.h"

cm_tensor *flux_single_fwd(const flux_model *m, int i, cm_tensor *h, int Lt, cm_tensor *temb_act,
                           cm_tensor *cos, cm_tensor *sin,
                           const ip_attn *ip, cm_tensor *ip_tokens, double ip_scale) {
    const flux_single_block *b = &m->sgl[i];
    const int H = m->cfg.heads;
    const int64_t L = tensor_dim(h, 1);

    cm_tensor *mod = linear_fwd(&b->norm, temb_act);  // [B, 3C]: shift, scale, gate
    cm_tensor *shift = op_chunk(mod, 3, 1, 0), *scale = op_chunk(mod, 3, 1, 1), *gate = op_chunk(mod, 3, 1, 2);
    tensor_release(mod);
    cm_tensor *n = flux_adanorm(h, scale, shift);     // [B, L, C]
    tensor_release(shift);
    tensor_release(scale);

    cm_tensor *q = linear_fwd(&b->to_q, n);           // [B, L, C] raw: its image slice is the IP query
    cm_tensor *k = linear_fwd(&b->to_k, n);
    cm_tensor *v = linear_fwd(&b->to_v, n);
    cm_tensor *Q = flux_qk(1, &q, (const cm_rms *[]){&b->norm_q}, H, cos, sin);  // [B, H, L, D]
    cm_tensor *K = flux_qk(1, &k, (const cm_rms *[]){&b->norm_k}, H, cos, sin);
    cm_tensor *V = flux_v(1, &v, H);
    tensor_release(k);
    tensor_release(v);
    cm_tensor *O;  // [B, L, C]
    if (ip && ip_tokens) {
        // only the image tokens receive the IP output; the text tokens' rows are unchanged
        cm_tensor *img_q = op_slice(q, 1, Lt, L);  // [B, N, C]
        O = flux_joint_ip_attention(Q, K, V, ip, m->cfg.num_layers + i, img_q, ip_tokens, ip_scale, Lt);
        tensor_release(img_q);
    } else
        O = flux_joint_attention(Q, K, V);
    tensor_release(Q);
    tensor_release(K);
    tensor_release(V);
    tensor_release(q);

    // proj_out([O | gelu(proj_mlp(n))]) as one op: the [B, L, 5C] concatenation is never built and
    // the MLP keeps only gelu's input [B, L, 4C] (ops_mlp.c)
    cm_tensor *y = op_mlp_gelu_cat(O, n, b->proj_mlp.w, b->proj_mlp.b, b->proj_out.w, b->proj_out.b);  // [B, L, C]
    tensor_release(O);
    tensor_release(n);
    cm_tensor *out = flux_gated_add(h, gate, y);
    tensor_release(gate);
    tensor_release(y);
    return out;
}
