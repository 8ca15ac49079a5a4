// ic_blocks.c — the projector's transformer block (diffusers BasicTransformerBlock as
// InstantCharacter configures it: layer_norm eps 1e-6, self-attention, cross-attention whose
// K/V read the context WITHOUT a norm, GEGLU feed-forward) and timm's Mlp (GELU tanh).
#include "models/ic_projector.h"
#include "models/attention.h"
#include <math.h>

static void attn_init(ic_attn *a, cm_params *ps, const char *prefix, int64_t dim, int64_t kv_dim, int heads,
                      int head_dim) {
    char n[NAME_MAX_LEN];
    int64_t inner = (int64_t)heads * head_dim;
    a->to_q = linear_init(ps, name_fmt(n, "%s.to_q", prefix), dim, inner, false);
    a->to_k = linear_init(ps, name_fmt(n, "%s.to_k", prefix), kv_dim, inner, false);
    a->to_v = linear_init(ps, name_fmt(n, "%s.to_v", prefix), kv_dim, inner, false);
    a->to_out = linear_init(ps, name_fmt(n, "%s.to_out.0", prefix), inner, dim, true);
    a->heads = heads;
    a->head_dim = head_dim;
}

// x [B, L, C] (already normed), ctx [B, S, Cc] -> [B, L, C]; SDPA scale 1/sqrt(head_dim)
static cm_tensor *attn_fwd(const ic_attn *a, cm_tensor *x, cm_tensor *ctx) {
    cm_tensor *q = linear_fwd(&a->to_q, x);    // [B, L, H*D]
    cm_tensor *k = linear_fwd(&a->to_k, ctx);  // [B, S, H*D]
    cm_tensor *v = linear_fwd(&a->to_v, ctx);
    cm_tensor *o = attention_mha(q, k, v, a->heads, NULL, 1.0 / sqrt((double)a->head_dim));
    cm_tensor *out = linear_fwd(&a->to_out, o);  // [B, L, C]
    tensor_release(q); tensor_release(k); tensor_release(v); tensor_release(o);
    return out;
}

void ic_block_init(ic_block *b, cm_params *ps, const char *prefix, int64_t dim, int64_t cross_dim, int heads,
                   int head_dim, int ff_mult) {
    char n[NAME_MAX_LEN];
    b->norm1 = lnorm_init(ps, name_fmt(n, "%s.norm1", prefix), dim, 1e-6, true);
    attn_init(&b->attn1, ps, name_fmt(n, "%s.attn1", prefix), dim, dim, heads, head_dim);
    b->norm2 = lnorm_init(ps, name_fmt(n, "%s.norm2", prefix), dim, 1e-6, true);
    attn_init(&b->attn2, ps, name_fmt(n, "%s.attn2", prefix), dim, cross_dim, heads, head_dim);
    b->norm3 = lnorm_init(ps, name_fmt(n, "%s.norm3", prefix), dim, 1e-6, true);
    int64_t F = (int64_t)ff_mult * dim;
    b->ff_in = linear_init(ps, name_fmt(n, "%s.ff.net.0.proj", prefix), dim, 2 * F, true);
    b->ff_out = linear_init(ps, name_fmt(n, "%s.ff.net.2", prefix), F, dim, true);
}

cm_tensor *ic_block_fwd(const ic_block *b, cm_tensor *x, cm_tensor *ctx) {
    // h = h + attn1(norm1(h))
    cm_tensor *n1 = lnorm_fwd(&b->norm1, x);     // [B, L, C]
    cm_tensor *a1 = attn_fwd(&b->attn1, n1, n1);
    cm_tensor *h1 = op_add(x, a1);
    tensor_release(n1); tensor_release(a1);
    // h = h + attn2(norm2(h), ctx): the context enters raw
    cm_tensor *n2 = lnorm_fwd(&b->norm2, h1);
    cm_tensor *a2 = attn_fwd(&b->attn2, n2, ctx);
    cm_tensor *h2 = op_add(h1, a2);
    tensor_release(n2); tensor_release(a2); tensor_release(h1);
    // h = h + ff(norm3(h)), GEGLU: a * gelu_erf(g) with (a, g) = chunk(proj(x), 2)
    cm_tensor *n3 = lnorm_fwd(&b->norm3, h2);
    cm_tensor *p = linear_fwd(&b->ff_in, n3);    // [B, L, 2F]
    cm_tensor *g = op_geglu(p);                  // [B, L, F]
    cm_tensor *f = linear_fwd(&b->ff_out, g);    // [B, L, C]
    cm_tensor *out = op_add(h2, f);
    tensor_release(n3); tensor_release(p); tensor_release(g); tensor_release(f); tensor_release(h2);
    return out;
}

void ic_mlp_init(ic_mlp *m, cm_params *ps, const char *prefix, int64_t dim, int64_t hidden) {
    char n[NAME_MAX_LEN];
    m->fc1 = linear_init(ps, name_fmt(n, "%s.fc1", prefix), dim, hidden, true);
    m->fc2 = linear_init(ps, name_fmt(n, "%s.fc2", prefix), hidden, dim, true);
}

// fc2(gelu(fc1(x))), GELU(approximate='tanh'); the [..., hidden] activation only inside the op
cm_tensor *ic_mlp_fwd(const ic_mlp *m, cm_tensor *x) { return mlp_gelu_fwd(&m->fc1, &m->fc2, x); }
