// flux_double.c — the double-stream block (diffusers FluxTransformerBlock, spec §5.3) with the
// InstantCharacter IP branch added to the image tokens' attention output before to_out (§2.7).
#include "models/flux_internal.h"
#include "models/ip_attn.h"

// the 6 AdaLayerNormZero chunks of Linear(silu(temb)): shift_msa, scale_msa, gate_msa,
// shift_mlp, scale_mlp, gate_mlp, each a [B, C] view
static void ada6(const cm_linear *l, cm_tensor *temb_act, cm_tensor *out[6]) {
    cm_tensor *mod = linear_fwd(l, temb_act);  // [B, 6C]
    for (int j = 0; j < 6; j++) out[j] = op_chunk(mod, 6, 1, j);
    tensor_release(mod);
}

static void release_n(cm_tensor **t, int n) {
    for (int j = 0; j < n; j++) tensor_release(t[j]);
}

// one stream's second half: x1 = x + gate_msa * attn_out; x2 = x1 + gate_mlp * FF(adanorm(x1))
static cm_tensor *stream_finish(cm_tensor *x, cm_tensor *const mod[6], cm_tensor *attn_out,
                                const cm_linear *ff0, const cm_linear *ff2) {
    cm_tensor *x1 = flux_gated_add(x, mod[2], attn_out);
    cm_tensor *n = flux_adanorm(x1, mod[4], mod[3]);
    cm_tensor *f = flux_ff(ff0, ff2, n);
    cm_tensor *x2 = flux_gated_add(x1, mod[5], f);
    tensor_release(x1);
    tensor_release(n);
    tensor_release(f);
    return x2;
}

cm_tensor *flux_double_fwd(const flux_model *m, int i, cm_tensor *h, int Lt, cm_tensor *temb_act,
                           cm_tensor *cos, cm_tensor *sin,
                           const ip_attn *ip, cm_tensor *ip_tokens, double ip_scale) {
    const flux_double_block *b = &m->dbl[i];
    const int H = m->cfg.heads;
    const int64_t L = tensor_dim(h, 1);
    cm_tensor *c = op_slice(h, 1, 0, Lt);  // [B, Lt, C] text stream
    cm_tensor *x = op_slice(h, 1, Lt, L);  // [B, N, C]  image stream

    cm_tensor *mx[6], *mc[6];
    ada6(&b->norm1, temb_act, mx);
    ada6(&b->norm1_context, temb_act, mc);
    cm_tensor *nx = flux_adanorm(x, mx[1], mx[0]);  // [B, N, C]
    cm_tensor *nc = flux_adanorm(c, mc[1], mc[0]);  // [B, Lt, C]

    cm_tensor *q = linear_fwd(&b->to_q, nx);        // [B, N, C] raw: also the IP query
    cm_tensor *k = linear_fwd(&b->to_k, nx);
    cm_tensor *v = linear_fwd(&b->to_v, nx);
    cm_tensor *cq = linear_fwd(&b->add_q, nc);      // [B, Lt, C]
    cm_tensor *ck = linear_fwd(&b->add_k, nc);
    cm_tensor *cv = linear_fwd(&b->add_v, nc);
    tensor_release(nx);
    tensor_release(nc);

    // q / k normalised per head and rotated, text rows first: [B, H, L, D] (one op each)
    cm_tensor *Q = flux_qk(2, (cm_tensor *[]){cq, q}, (const cm_rms *[]){&b->norm_added_q, &b->norm_q}, H, cos, sin);
    cm_tensor *K = flux_qk(2, (cm_tensor *[]){ck, k}, (const cm_rms *[]){&b->norm_added_k, &b->norm_k}, H, cos, sin);
    cm_tensor *V = flux_v(2, (cm_tensor *[]){cv, v}, H);
    tensor_release(k);
    tensor_release(v);
    tensor_release(cq);
    tensor_release(ck);
    tensor_release(cv);

    // [B, L, C]; the IP output joins the image tokens' rows, scaled (beside the joint attention)
    cm_tensor *O = ip && ip_tokens ? flux_joint_ip_attention(Q, K, V, ip, i, q, ip_tokens, ip_scale, Lt)
                                   : flux_joint_attention(Q, K, V);
    tensor_release(Q);
    tensor_release(K);
    tensor_release(V);
    cm_tensor *oc = op_slice(O, 1, 0, Lt);  // [B, Lt, C]
    cm_tensor *ox = op_slice(O, 1, Lt, L);  // [B, N, C]
    tensor_release(O);
    tensor_release(q);

    cm_tensor *ax = linear_fwd(&b->to_out, ox);      // [B, N, C]
    cm_tensor *ac = linear_fwd(&b->to_add_out, oc);  // [B, Lt, C]
    tensor_release(ox);
    tensor_release(oc);

    cm_tensor *out[2];
    out[1] = stream_finish(x, mx, ax, &b->ff0, &b->ff2);
    out[0] = stream_finish(c, mc, ac, &b->ffc0, &b->ffc2);
    tensor_release(ax);
    tensor_release(ac);
    release_n(mx, 6);
    release_n(mc, 6);
    tensor_release(x);
    tensor_release(c);

    cm_tensor *h2 = op_concat(2, out, 1);  // [B, Lt + N, C]
    release_n(out, 2);
    return h2;
}
