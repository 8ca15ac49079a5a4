// flux_model.c — the FLUX transformer: weight registration under the diffusers names, and the
// forward pass (embeddings, 19 double + 38 single blocks, AdaLayerNormContinuous, proj_out),
// each block optionally inside a recompute scope.
#include <stdlib.h>
#include <string.h>
#include "models/flux.h"
#include "models/ip_attn.h"

// What a recompute replay needs besides its tensor inputs. One variant per distinct
// (ip, ip_scale, Lt) seen by this model; variants never change once made, so a replay always
// reads what its forward used, however many forwards ran before backward.
typedef struct flux_block_ctx {
    const flux_model *m;
    const struct flux_fwd_state *st;
    int idx;
    bool single;
} flux_block_ctx;

typedef struct flux_fwd_state {
    const ip_attn *ip;
    double ip_scale;
    int Lt;
    flux_block_ctx *ctx;  // [num_layers + num_single_layers]
    struct flux_fwd_state *next;
} flux_fwd_state;

static void adanorm_lin(cm_params *ps, cm_linear *l, const char *prefix, int64_t C, int64_t n) {
    *l = linear_init(ps, prefix, C, n * C, true);
}

int flux_init(flux_model *m, const flux_config *c, cm_params *ps, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (flux_config_check(c, err, errlen)) return -1;
    m->cfg = *c;
    const int64_t C = flux_config_hidden(c), D = c->head_dim, F = C * c->mlp_ratio;
    char p[NAME_MAX_LEN];

    m->time1 = linear_init(ps, "time_text_embed.timestep_embedder.linear_1", 256, C, true);
    m->time2 = linear_init(ps, "time_text_embed.timestep_embedder.linear_2", C, C, true);
    if (c->guidance_embeds) {
        m->guid1 = linear_init(ps, "time_text_embed.guidance_embedder.linear_1", 256, C, true);
        m->guid2 = linear_init(ps, "time_text_embed.guidance_embedder.linear_2", C, C, true);
    }
    m->text1 = linear_init(ps, "time_text_embed.text_embedder.linear_1", c->pooled_dim, C, true);
    m->text2 = linear_init(ps, "time_text_embed.text_embedder.linear_2", C, C, true);
    m->context_embedder = linear_init(ps, "context_embedder", c->joint_dim, C, true);
    m->x_embedder = linear_init(ps, "x_embedder", c->in_channels, C, true);

    m->dbl = calloc((size_t)c->num_layers + 1, sizeof(flux_double_block));
    m->sgl = calloc((size_t)c->num_single_layers + 1, sizeof(flux_single_block));
    CM_CHECK(m->dbl && m->sgl, "flux_init", "out of host memory");
    for (int i = 0; i < c->num_layers; i++) {
        flux_double_block *b = &m->dbl[i];
#define N(s) name_fmt(p, "transformer_blocks.%d." s, i)
        adanorm_lin(ps, &b->norm1, N("norm1.linear"), C, 6);
        adanorm_lin(ps, &b->norm1_context, N("norm1_context.linear"), C, 6);
        b->norm_q = rms_init(ps, N("attn.norm_q"), "weight", D, 1e-6, CM_RMS_DIFFUSERS);
        b->norm_k = rms_init(ps, N("attn.norm_k"), "weight", D, 1e-6, CM_RMS_DIFFUSERS);
        b->to_q = linear_init(ps, N("attn.to_q"), C, C, true);
        b->to_k = linear_init(ps, N("attn.to_k"), C, C, true);
        b->to_v = linear_init(ps, N("attn.to_v"), C, C, true);
        b->to_out = linear_init(ps, N("attn.to_out.0"), C, C, true);
        b->norm_added_q = rms_init(ps, N("attn.norm_added_q"), "weight", D, 1e-6, CM_RMS_DIFFUSERS);
        b->norm_added_k = rms_init(ps, N("attn.norm_added_k"), "weight", D, 1e-6, CM_RMS_DIFFUSERS);
        b->add_q = linear_init(ps, N("attn.add_q_proj"), C, C, true);
        b->add_k = linear_init(ps, N("attn.add_k_proj"), C, C, true);
        b->add_v = linear_init(ps, N("attn.add_v_proj"), C, C, true);
        b->to_add_out = linear_init(ps, N("attn.to_add_out"), C, C, true);
        b->ff0 = linear_init(ps, N("ff.net.0.proj"), C, F, true);
        b->ff2 = linear_init(ps, N("ff.net.2"), F, C, true);
        b->ffc0 = linear_init(ps, N("ff_context.net.0.proj"), C, F, true);
        b->ffc2 = linear_init(ps, N("ff_context.net.2"), F, C, true);
#undef N
    }
    for (int i = 0; i < c->num_single_layers; i++) {
        flux_single_block *b = &m->sgl[i];
#define N(s) name_fmt(p, "single_transformer_blocks.%d." s, i)
        adanorm_lin(ps, &b->norm, N("norm.linear"), C, 3);
        b->proj_mlp = linear_init(ps, N("proj_mlp"), C, F, true);
        b->proj_out = linear_init(ps, N("proj_out"), C + F, C, true);
        b->norm_q = rms_init(ps, N("attn.norm_q"), "weight", D, 1e-6, CM_RMS_DIFFUSERS);
        b->norm_k = rms_init(ps, N("attn.norm_k"), "weight", D, 1e-6, CM_RMS_DIFFUSERS);
        b->to_q = linear_init(ps, N("attn.to_q"), C, C, true);
        b->to_k = linear_init(ps, N("attn.to_k"), C, C, true);
        b->to_v = linear_init(ps, N("attn.to_v"), C, C, true);
#undef N
    }
    adanorm_lin(ps, &m->norm_out, "norm_out.linear", C, 2);
    m->proj_out = linear_init(ps, "proj_out", C, c->out_channels, true);
    return 0;
}

void flux_free(flux_model *m) {
    for (flux_fwd_state *s = m->states, *nx; s; s = nx) {
        nx = s->next;
        free(s->ctx);
        free(s);
    }
    free(m->dbl);
    free(m->sgl);
    memset(m, 0, sizeof *m);
}

int flux_describe(const flux_config *c, cm_params *meta, char *err, size_t errlen) {
    flux_model m;
    if (flux_init(&m, c, meta, err, errlen)) return -1;
    flux_free(&m);
    return 0;
}

static flux_fwd_state *state_for(flux_model *m, const ip_attn *ip, double ip_scale, int Lt) {
    for (flux_fwd_state *s = m->states; s; s = s->next)
        if (s->ip == ip && s->ip_scale == ip_scale && s->Lt == Lt) return s;
    int nb = m->cfg.num_layers + m->cfg.num_single_layers;
    flux_fwd_state *s = calloc(1, sizeof *s);
    CM_CHECK(s, "flux_forward", "out of host memory");
    s->ctx = calloc((size_t)nb + 1, sizeof(flux_block_ctx));
    CM_CHECK(s->ctx, "flux_forward", "out of host memory");
    s->ip = ip;
    s->ip_scale = ip_scale;
    s->Lt = Lt;
    for (int i = 0; i < nb; i++)
        s->ctx[i] = (flux_block_ctx){.m = m, .st = s, .idx = i < m->cfg.num_layers ? i : i - m->cfg.num_layers,
                                     .single = i >= m->cfg.num_layers};
    s->next = m->states;
    m->states = s;
    return s;
}

// inputs: h [B, L, C], temb_act [B, C], rope [2, L, D] (cos; sin), ip_tokens [B, Lip, ip_dim] (optional)
static cm_tensor *block_fn(void *vctx, int n, cm_tensor **in) {
    const flux_block_ctx *c = vctx;
    cm_tensor *cs = op_slice(in[2], 0, 0, 1), *sn = op_slice(in[2], 0, 1, 2);  // [1, L, D]
    cm_tensor *cos = op_squeeze(cs, 0), *sin = op_squeeze(sn, 0);              // [L, D]
    tensor_release(cs);
    tensor_release(sn);
    cm_tensor *tok = n > 3 ? in[3] : NULL;
    cm_tensor *out = c->single
        ? flux_single_fwd(c->m, c->idx, in[0], c->st->Lt, in[1], cos, sin, c->st->ip, tok, c->st->ip_scale)
        : flux_double_fwd(c->m, c->idx, in[0], c->st->Lt, in[1], cos, sin, c->st->ip, tok, c->st->ip_scale);
    tensor_release(cos);
    tensor_release(sin);
    return out;
}

cm_tensor *flux_forward(flux_model *m, cm_tensor *x, cm_tensor *txt, cm_tensor *pooled,
                        cm_tensor *sigma, cm_tensor *guidance, int gh, int gw,
                        const ip_attn *ip, cm_tensor *ip_tokens, double ip_scale, int recompute) {
    const flux_config *c = &m->cfg;
    CM_CHECK(x->ndim == 3 && x->shape[1] == (int64_t)gh * gw && x->shape[2] == c->in_channels, "flux_forward",
             "x must be [B, %d*%d, %d] packed latents, got [%lld, %lld, %lld]", gh, gw, c->in_channels,
             (long long)x->shape[0], (long long)(x->ndim > 1 ? x->shape[1] : 0), (long long)(x->ndim > 2 ? x->shape[2] : 0));
    CM_CHECK(txt->ndim == 3 && txt->shape[0] == x->shape[0] && txt->shape[2] == c->joint_dim, "flux_forward",
             "txt must be [B, Lt, %d]", c->joint_dim);
    const int64_t B = x->shape[0];
    const int Lt = (int)txt->shape[1];
    if (ip && ip_tokens) {
        CM_CHECK(ip->cfg.n_modules == c->num_layers + c->num_single_layers &&
                 (int64_t)ip->cfg.heads * ip->cfg.head_dim == flux_config_hidden(c) && ip_tokens->ndim == 3 &&
                 ip_tokens->shape[0] == B, "flux_forward",
                 "IP adapter (%d modules, %d x %d) does not fit this FLUX (%d + %d blocks, %d x %d) or batch %lld",
                 ip->cfg.n_modules, ip->cfg.heads, ip->cfg.head_dim, c->num_layers, c->num_single_layers, c->heads,
                 c->head_dim, (long long)B);
    } else {
        ip = NULL;
        ip_tokens = NULL;
    }

    cm_tensor *xe = linear_fwd(&m->x_embedder, x);           // [B, N, C]
    cm_tensor *temb = flux_conditioning(m, sigma, guidance, pooled);  // [B, C]
    cm_tensor *ce = linear_fwd(&m->context_embedder, txt);   // [B, Lt, C]
    cm_tensor *parts[2] = {ce, xe};
    cm_tensor *h = op_concat(2, parts, 1);                   // [B, Lt + N, C]
    tensor_release(ce);
    tensor_release(xe);
    // every AdaLayerNorm applies SiLU to temb before its Linear: do it once
    cm_tensor *temb_act = op_silu(temb);
    tensor_release(temb);

    cm_tensor *cos, *sin;
    flux_rope_tables(c, Lt, gh, gw, h->dtype, h->storage->dev, &cos, &sin);  // [L, D]
    // one tensor [2, L, D] (cos; sin) so a recompute scope keeps it with at most 4 inputs
    cm_tensor *cs[2] = {op_unsqueeze(cos, 0), op_unsqueeze(sin, 0)};
    cm_tensor *rope = op_concat(2, cs, 0);
    tensor_release(cs[0]);
    tensor_release(cs[1]);
    tensor_release(cos);
    tensor_release(sin);

    flux_fwd_state *st = state_for(m, ip, ip_scale, Lt);
    const int nb = c->num_layers + c->num_single_layers;
    for (int i = 0; i < nb; i++) {
        cm_tensor *in[4] = {h, temb_act, rope, ip_tokens};
        int n = ip_tokens ? 4 : 3;
        bool rc = recompute < 0 || i < recompute;
        cm_tensor *h2 = rc ? autograd_recompute(block_fn, &st->ctx[i], n, in) : block_fn(&st->ctx[i], n, in);
        tensor_release(h);
        h = h2;
    }
    tensor_release(rope);

    const int64_t L = tensor_dim(h, 1);
    cm_tensor *img = op_slice(h, 1, Lt, L);                  // [B, N, C]
    tensor_release(h);
    cm_tensor *emb = linear_fwd(&m->norm_out, temb_act);     // [B, 2C]: scale first, then shift
    tensor_release(temb_act);
    cm_tensor *scale = op_chunk(emb, 2, 1, 0), *shift = op_chunk(emb, 2, 1, 1);
    tensor_release(emb);
    cm_tensor *nm = op_layernorm_modulate(img, NULL, NULL, 1e-6, scale, shift);  // norm_out, fused [B, N, C]
    tensor_release(img);
    tensor_release(scale);
    tensor_release(shift);
    cm_tensor *out = linear_fwd(&m->proj_out, nm);           // [B, N, Cout]
    tensor_release(nm);
    return out;
}
