// ip_attn.c — InstantCharacter's 57 IP attention modules (FluxIPAttnProcessor, spec §2.7).
#include "models/ip_attn.h"
#include <math.h>
#include <stdlib.h>

ip_attn_config ip_attn_config_ic(void) {
    return (ip_attn_config){.n_modules = 19 + 38, .heads = 24, .head_dim = 128, .ip_dim = 4096};
}

int64_t ip_attn_param_count(const ip_attn_config *c) {
    int64_t hidden = (int64_t)c->heads * c->head_dim;
    int64_t per = 2 * (hidden * c->ip_dim + hidden) + 2 * (int64_t)c->head_dim;
    return per * c->n_modules;
}

void ip_attn_init(ip_attn *ip, const ip_attn_config *c, cm_params *ps, const char *prefix) {
    char p[NAME_MAX_LEN];
    int64_t hidden = (int64_t)c->heads * c->head_dim;
    ip->cfg = *c;
    ip->blk = calloc((size_t)c->n_modules, sizeof(ip_attn_block));
    CM_CHECK(ip->blk, "ip_attn_init", "out of memory for %d modules", c->n_modules);
    for (int i = 0; i < c->n_modules; i++) {
        ip_attn_block *b = &ip->blk[i];
        // registration order follows the released state dict: norm_ip_q, to_k_ip, norm_ip_k, to_v_ip
        b->norm_ip_q = rms_init(ps, name_fmt(p, "%s.%d.norm_ip_q", prefix, i), "scale", c->head_dim, 1e-6, CM_RMS_IC);
        b->to_k_ip = linear_init(ps, name_fmt(p, "%s.%d.to_k_ip", prefix, i), c->ip_dim, hidden, true);
        b->norm_ip_k = rms_init(ps, name_fmt(p, "%s.%d.norm_ip_k", prefix, i), "scale", c->head_dim, 1e-6, CM_RMS_IC);
        b->to_v_ip = linear_init(ps, name_fmt(p, "%s.%d.to_v_ip", prefix, i), c->ip_dim, hidden, true);
    }
}

void ip_attn_free(ip_attn *ip) {
    free(ip->blk);
    ip->blk = NULL;
}

// [B, L, H*D] -> [B, L, H, D] (a view when x is contiguous)
static cm_tensor *heads_split(cm_tensor *x, int H, int D) {
    return op_reshape(x, 4, (int64_t[]){tensor_dim(x, 0), tensor_dim(x, 1), H, D});
}

// [B, L, H, D] -> [B, H, L, D] view
static cm_tensor *to_bhld(cm_tensor *x) { return op_permute(x, (int[]){0, 2, 1, 3}); }

void ip_attn_qkv(const ip_attn *ip, int i, cm_tensor *img_q, cm_tensor *tokens, cm_tensor **qo, cm_tensor **ko,
                 cm_tensor **vo) {
    CM_CHECK(i >= 0 && i < ip->cfg.n_modules, "ip_attn_qkv", "module %d of %d", i, ip->cfg.n_modules);
    const ip_attn_block *b = &ip->blk[i];
    const int H = ip->cfg.heads, D = ip->cfg.head_dim;
    int64_t B = tensor_dim(img_q, 0), N = tensor_dim(img_q, 1);
    CM_CHECK(tensor_dim(img_q, 2) == (int64_t)H * D && tensor_dim(tokens, 0) == B &&
             tensor_dim(tokens, 2) == ip->cfg.ip_dim, "ip_attn_qkv",
             "img_q [%lld, %lld, %lld] vs tokens [%lld, %lld, %lld], want widths %d and %d",
             (long long)B, (long long)N, (long long)tensor_dim(img_q, 2), (long long)tensor_dim(tokens, 0),
             (long long)tensor_dim(tokens, 1), (long long)tensor_dim(tokens, 2), H * D, ip->cfg.ip_dim);

    cm_tensor *q4 = heads_split(img_q, H, D);         // [B, N, H, D]
    cm_tensor *qn = rms_fwd(&b->norm_ip_q, q4);       // per head, eps added to the RMS
    cm_tensor *q = to_bhld(qn);                       // [B, H, N, D]
    tensor_release(q4);
    tensor_release(qn);

    cm_tensor *kp = linear_fwd(&b->to_k_ip, tokens);  // [B, Lip, hidden]
    cm_tensor *k4 = heads_split(kp, H, D);
    cm_tensor *kn = rms_fwd(&b->norm_ip_k, k4);
    cm_tensor *k = to_bhld(kn);                       // [B, H, Lip, D]
    tensor_release(kp);
    tensor_release(k4);
    tensor_release(kn);

    cm_tensor *vp = linear_fwd(&b->to_v_ip, tokens);  // [B, Lip, hidden]
    cm_tensor *v4 = heads_split(vp, H, D);
    cm_tensor *v = to_bhld(v4);                       // [B, H, Lip, D]
    tensor_release(vp);
    tensor_release(v4);

    *qo = q, *ko = k, *vo = v;
}

cm_tensor *ip_attn_fwd(const ip_attn *ip, int i, cm_tensor *img_q, cm_tensor *tokens) {
    cm_tensor *q, *k, *v;
    ip_attn_qkv(ip, i, img_q, tokens, &q, &k, &v);
    const int64_t B = tensor_dim(img_q, 0), N = tensor_dim(img_q, 1);
    const int H = ip->cfg.heads, D = ip->cfg.head_dim;
    cm_tensor *o = op_sdpa_tokens(q, k, v, NULL, 1.0 / sqrt((double)D));  // [B, N, H, D], no RoPE, no mask
    tensor_release(q);
    tensor_release(k);
    tensor_release(v);
    cm_tensor *out = op_reshape(o, 3, (int64_t[]){B, N, (int64_t)H * D});  // [B, N, hidden]: a view
    tensor_release(o);
    return out;
}
