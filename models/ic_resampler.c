// ic_resampler.c — InstantCharacter's TimeResampler (spec §2.6): a timestep-conditioned Perceiver
// that turns the projector's [B, S, 2688] features into [B, 1024, 4096] IP tokens.
//   temb = linear_2(silu(linear_1(Timesteps(t))))                  [B, dim]
//   x    = proj_in(h) + temb                                       [B, S, dim]  (fixed over layers)
//   per layer: shift_a, scale_a, shift_f, scale_f = ada(silu(temb)).chunk(4)
//     L += to_out(attn(q = to_q(lm), kv = to_kv(cat(LN1(x), lm))))  with lm = LN2(L)*(1+scale_a)+shift_a
//     L += ff2(gelu_erf(ff1(LN_ff(L)*(1+scale_f)+shift_f)))
//   out  = norm_out(proj_out(L))                                   [B, Q, out]
#include "models/ic_projector.h"
#include <math.h>
#include "models/attention.h"

static void perceiver_init(ic_perceiver *a, cm_params *ps, const char *prefix, int64_t dim, int64_t inner) {
    char n[NAME_MAX_LEN];
    a->norm1 = lnorm_init(ps, name_fmt(n, "%s.norm1", prefix), dim, 1e-5, true);
    a->norm2 = lnorm_init(ps, name_fmt(n, "%s.norm2", prefix), dim, 1e-5, true);
    a->to_q = linear_init(ps, name_fmt(n, "%s.to_q", prefix), dim, inner, false);
    a->to_kv = linear_init(ps, name_fmt(n, "%s.to_kv", prefix), dim, 2 * inner, false);
    a->to_out = linear_init(ps, name_fmt(n, "%s.to_out", prefix), inner, dim, false);
}

void ic_resampler_init(ic_resampler *rs, cm_params *ps, const char *prefix, const ic_projector_config *c) {
    char n[NAME_MAX_LEN];
    int64_t dim = c->dim, inner = (int64_t)c->r_heads * c->r_head_dim;
    // randn / sqrt(dim), as the reference initialises it
    rs->latents = ic_param_normal(ps, prefix, "latents", 3, (int64_t[]){1, c->num_queries, dim}, 1.0 / sqrt((double)dim));
    rs->proj_in = linear_init(ps, name_fmt(n, "%s.proj_in", prefix), c->embedding_dim, dim, true);
    rs->proj_out = linear_init(ps, name_fmt(n, "%s.proj_out", prefix), dim, c->output_dim, true);
    rs->norm_out = lnorm_init(ps, name_fmt(n, "%s.norm_out", prefix), c->output_dim, 1e-5, true);
    for (int j = 0; j < c->depth; j++) {
        ic_rlayer *l = &rs->layers[j];
        perceiver_init(&l->attn, ps, name_fmt(n, "%s.layers.%d.0", prefix, j), dim, inner);
        l->ff_norm = lnorm_init(ps, name_fmt(n, "%s.layers.%d.1.0", prefix, j), dim, 1e-5, true);
        l->ff1 = linear_init(ps, name_fmt(n, "%s.layers.%d.1.1", prefix, j), dim, (int64_t)c->ff_mult * dim, false);
        l->ff2 = linear_init(ps, name_fmt(n, "%s.layers.%d.1.3", prefix, j), (int64_t)c->ff_mult * dim, dim, false);
        l->ada = linear_init(ps, name_fmt(n, "%s.layers.%d.2.1", prefix, j), dim, 4 * dim, true);
    }
    rs->time1 = linear_init(ps, name_fmt(n, "%s.time_embedding.linear_1", prefix), c->timestep_in, dim, true);
    rs->time2 = linear_init(ps, name_fmt(n, "%s.time_embedding.linear_2", prefix), dim, dim, true);
    rs->depth = c->depth;
    rs->heads = c->r_heads;
    rs->head_dim = c->r_head_dim;
    rs->timestep_in = c->timestep_in;
    rs->flip_sin_to_cos = c->flip_sin_to_cos;
    rs->freq_shift = c->freq_shift;
}

// x [B, S, dim] (proj_in + temb), lat [B, Q, dim], shift/scale [B, dim] -> [B, Q, dim]
static cm_tensor *perceiver_fwd(const ic_perceiver *a, int heads, int head_dim, cm_tensor *x, cm_tensor *lat,
                                cm_tensor *shift, cm_tensor *scale) {
    cm_tensor *xn = lnorm_fwd(&a->norm1, x);            // [B, S, dim]
    cm_tensor *lm = lnorm_mod_fwd(&a->norm2, lat, scale, shift);  // norm2(lat) * (1 + scale) + shift [B, Q, dim]
    cm_tensor *q = linear_fwd(&a->to_q, lm);            // [B, Q, inner]
    cm_tensor *kvin = op_concat(2, (cm_tensor *[]){xn, lm}, 1);  // [B, S+Q, dim]
    cm_tensor *kv = linear_fwd(&a->to_kv, kvin);        // [B, S+Q, 2*inner]
    cm_tensor *k = op_chunk(kv, 2, -1, 0);              // [B, S+Q, inner]
    cm_tensor *v = op_chunk(kv, 2, -1, 1);
    // The reference scales q and k by dh^-1/4 each before q·kᵀ; that is exactly a 1/sqrt(dh)
    // softmax scale (softmax in f32 in both), so the fused SDPA is used with 1/sqrt(dh).
    cm_tensor *o = attention_mha(q, k, v, heads, NULL, 1.0 / sqrt((double)head_dim));  // [B, Q, inner]
    cm_tensor *out = linear_fwd(&a->to_out, o);         // [B, Q, dim]
    tensor_release(xn); tensor_release(lm); tensor_release(q); tensor_release(kvin);
    tensor_release(kv); tensor_release(k); tensor_release(v); tensor_release(o);
    return out;
}

void ic_resampler_fwd(const ic_resampler *rs, cm_tensor *h, cm_tensor *t, cm_tensor **out, cm_tensor **temb_out) {
    int64_t B = h->shape[0];
    CM_CHECK(t->ndim == 1 && t->shape[0] == B, "ic_resampler", "t must be [%lld] (one timestep per sample)",
             (long long)B);
    // timestep embedding: Timesteps(tin) -> Linear -> SiLU -> Linear
    cm_tensor *tp = op_timestep_embedding(t, rs->timestep_in, rs->flip_sin_to_cos, rs->freq_shift);  // [B, tin]
    cm_tensor *t1 = linear_fwd(&rs->time1, tp);   // [B, dim]
    cm_tensor *ts = op_silu(t1);
    cm_tensor *temb = linear_fwd(&rs->time2, ts);  // [B, dim]
    tensor_release(tp); tensor_release(t1); tensor_release(ts);

    cm_tensor *xp = linear_fwd(&rs->proj_in, h);   // [B, S, dim]
    cm_tensor *te = op_unsqueeze(temb, 1);         // [B, 1, dim]
    cm_tensor *x = op_add(xp, te);                 // [B, S, dim]
    tensor_release(xp); tensor_release(te);
    cm_tensor *temb_act = op_silu(temb);           // adaLN input, shared by every layer
    int64_t Q = rs->latents->shape[1], dim = rs->latents->shape[2];
    cm_tensor *lat = op_expand(rs->latents, SHAPE(B, Q, dim));  // [B, Q, dim] (repeat over B)

    for (int j = 0; j < rs->depth; j++) {
        const ic_rlayer *l = &rs->layers[j];
        cm_tensor *mod = linear_fwd(&l->ada, temb_act);  // [B, 4*dim]
        cm_tensor *shift_a = op_chunk(mod, 4, 1, 0), *scale_a = op_chunk(mod, 4, 1, 1);  // [B, dim]
        cm_tensor *shift_f = op_chunk(mod, 4, 1, 2), *scale_f = op_chunk(mod, 4, 1, 3);
        tensor_release(mod);

        cm_tensor *a = perceiver_fwd(&l->attn, rs->heads, rs->head_dim, x, lat, shift_a, scale_a);
        cm_tensor *lat2 = op_add(a, lat);              // [B, Q, dim]
        tensor_release(a); tensor_release(lat);

        cm_tensor *fm = lnorm_mod_fwd(&l->ff_norm, lat2, scale_f, shift_f);  // [B, Q, dim]
        cm_tensor *f1 = linear_fwd(&l->ff1, fm);       // [B, Q, mult*dim]
        cm_tensor *fg = op_gelu(f1, false);            // nn.GELU(): erf
        cm_tensor *f2 = linear_fwd(&l->ff2, fg);       // [B, Q, dim]
        lat = op_add(f2, lat2);
        tensor_release(fm); tensor_release(f1); tensor_release(fg); tensor_release(f2);
        tensor_release(lat2);
        tensor_release(shift_a); tensor_release(scale_a); tensor_release(shift_f); tensor_release(scale_f);
    }
    cm_tensor *po = linear_fwd(&rs->proj_out, lat);   // [B, Q, out]
    *out = lnorm_fwd(&rs->norm_out, po);
    tensor_release(po); tensor_release(lat); tensor_release(x); tensor_release(temb_act);
    *temb_out = temb;
}
