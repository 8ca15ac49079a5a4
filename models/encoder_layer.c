// encoder_layer.c — the CLIP-family pre-LN encoder layer: init by published names, forward.
#include "models/encoder_layer.h"

#include "models/attention.h"

void encoder_layer_init(encoder_layer *l, cm_params *ps, const char *prefix, int64_t dim, int64_t mlp, double eps) {
    char p[NAME_MAX_LEN];
    l->ln1 = lnorm_init(ps, name_fmt(p, "%s.layer_norm1", prefix), dim, eps, true);
    l->q = linear_init(ps, name_fmt(p, "%s.self_attn.q_proj", prefix), dim, dim, true);
    l->k = linear_init(ps, name_fmt(p, "%s.self_attn.k_proj", prefix), dim, dim, true);
    l->v = linear_init(ps, name_fmt(p, "%s.self_attn.v_proj", prefix), dim, dim, true);
    l->o = linear_init(ps, name_fmt(p, "%s.self_attn.out_proj", prefix), dim, dim, true);
    l->ln2 = lnorm_init(ps, name_fmt(p, "%s.layer_norm2", prefix), dim, eps, true);
    l->fc1 = linear_init(ps, name_fmt(p, "%s.mlp.fc1", prefix), dim, mlp, true);
    l->fc2 = linear_init(ps, name_fmt(p, "%s.mlp.fc2", prefix), mlp, dim, true);
}

cm_tensor *encoder_layer_fwd(const encoder_layer *l, cm_tensor *x, int64_t heads, cm_tensor *mask,
                             cm_tensor *(*act)(cm_tensor *)) {
    cm_tensor *n1 = lnorm_fwd(&l->ln1, x);
    cm_tensor *a = attention_self(&l->q, &l->k, &l->v, &l->o, n1, heads, mask, 0.0);  // 1/sqrt(dh)
    cm_tensor *h = op_add(x, a);                // [B, L, D]
    tensor_release(n1);
    tensor_release(a);
    cm_tensor *n2 = lnorm_fwd(&l->ln2, h);
    cm_tensor *f1 = linear_fwd(&l->fc1, n2);    // [B, L, M]
    cm_tensor *g = act(f1);
    cm_tensor *f2 = linear_fwd(&l->fc2, g);     // [B, L, D]
    cm_tensor *out = op_add(h, f2);
    cm_tensor *tmp[] = {n2, f1, g, f2, h};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return out;
}

cm_tensor *encoder_quick_gelu(cm_tensor *x) {
    cm_tensor *s = op_scale(x, 1.702);
    cm_tensor *y = op_silu(s);
    cm_tensor *out = op_scale(y, 1.0 / 1.702);
    tensor_release(s);
    tensor_release(y);
    return out;
}
