// ic_projector.c — CrossLayerCrossScaleProjector (spec §2.5): configs, the weight registrar that
// either allocates or only describes, and the forward pass.
#include "models/ic_projector.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ic_projector_config IC_PROJECTOR_FULL = {
    .inner_dim = 2688, .heads = 42, .head_dim = 64, .cross_dim = 2688, .num_layers = 4, .block_ff_mult = 4,
    .dim = 1280, .depth = 4, .r_heads = 20, .r_head_dim = 64, .num_queries = 1024, .embedding_dim = 2688,
    .output_dim = 4096, .ff_mult = 4, .timestep_in = 320, .flip_sin_to_cos = true, .freq_shift = 0,
};

const ic_projector_config IC_PROJECTOR_TINY = {
    .inner_dim = 32, .heads = 4, .head_dim = 8, .cross_dim = 32, .num_layers = 2, .block_ff_mult = 4,
    .dim = 24, .depth = 2, .r_heads = 3, .r_head_dim = 8, .num_queries = 8, .embedding_dim = 32,
    .output_dim = 16, .ff_mult = 4, .timestep_in = 16, .flip_sin_to_cos = true, .freq_shift = 0,
};

int ic_projector_config_check(const ic_projector_config *c, char *err, size_t errlen) {
    const char *bad = NULL;
    if (c->inner_dim <= 0 || c->heads <= 0 || c->head_dim <= 0 || (int64_t)c->heads * c->head_dim != c->inner_dim)
        bad = "heads * head_dim must equal inner_dim (all > 0)";
    else if (c->cross_dim <= 0) bad = "cross_dim must be > 0";
    else if (c->num_layers < 0 || c->num_layers > IC_MAX_BLOCKS) bad = "num_layers must be in 0..16";
    else if (c->block_ff_mult <= 0 || c->ff_mult <= 0) bad = "ff multipliers must be > 0";
    else if (c->dim <= 0 || c->r_heads <= 0 || c->r_head_dim <= 0) bad = "resampler dim and heads must be > 0";
    else if (c->depth < 1 || c->depth > IC_MAX_DEPTH) bad = "depth must be in 1..16";
    else if (c->num_queries <= 0 || c->output_dim <= 0) bad = "num_queries and output_dim must be > 0";
    else if (c->embedding_dim != c->inner_dim) bad = "embedding_dim must equal inner_dim (the resampler reads the blocks' output)";
    else if (c->timestep_in < 2 || c->timestep_in % 2) bad = "timestep_in must be even and >= 2";
    if (bad) {
        snprintf(err, errlen, "instantcharacter projector config: %s (inner %lld, heads %d x %d, dim %lld, "
                 "resampler heads %d x %d, depth %d, timestep_in %d)", bad, (long long)c->inner_dim, c->heads,
                 c->head_dim, (long long)c->dim, c->r_heads, c->r_head_dim, c->depth, c->timestep_in);
        return -1;
    }
    return 0;
}

cm_tensor *ic_param_normal(cm_params *ps, const char *prefix, const char *name, int ndim, const int64_t *shape,
                           double std) {
    cm_tensor *t = params_new(ps, prefix, name, ndim, shape, CM_INIT_NORMAL);
    ps->items[ps->n - 1].init_std = std;
    return t;
}

bool ic_projector_config_eq(const ic_projector_config *a, const ic_projector_config *b) {
    return a->inner_dim == b->inner_dim && a->heads == b->heads && a->head_dim == b->head_dim &&
           a->cross_dim == b->cross_dim && a->num_layers == b->num_layers && a->block_ff_mult == b->block_ff_mult &&
           a->dim == b->dim && a->depth == b->depth && a->r_heads == b->r_heads && a->r_head_dim == b->r_head_dim &&
           a->num_queries == b->num_queries && a->embedding_dim == b->embedding_dim && a->output_dim == b->output_dim &&
           a->ff_mult == b->ff_mult && a->timestep_in == b->timestep_in && a->flip_sin_to_cos == b->flip_sin_to_cos &&
           a->freq_shift == b->freq_shift;
}

// --- projector ---
int ic_projector_init(ic_projector *p, const ic_projector_config *c, cm_params *ps, const char *prefix,
                      char *err, size_t errlen) {
    if (ic_projector_config_check(c, err, errlen)) return -1;
    memset(p, 0, sizeof(*p));
    p->cfg = *c;
    char n[NAME_MAX_LEN];
    for (int j = 0; j < c->num_layers; j++)
        ic_block_init(&p->cross_layer[j], ps, name_fmt(n, "%s.cross_layer_blocks.%d", prefix, j), c->inner_dim,
                      c->cross_dim, c->heads, c->head_dim, c->block_ff_mult);
    for (int j = 0; j < c->num_layers; j++)
        ic_block_init(&p->cross_scale[j], ps, name_fmt(n, "%s.cross_scale_blocks.%d", prefix, j), c->inner_dim,
                      c->cross_dim, c->heads, c->head_dim, c->block_ff_mult);
    ic_mlp_init(&p->proj, ps, name_fmt(n, "%s.proj", prefix), c->inner_dim, 2 * c->inner_dim);
    ic_mlp_init(&p->proj_cross_layer, ps, name_fmt(n, "%s.proj_cross_layer", prefix), c->inner_dim, 2 * c->inner_dim);
    ic_mlp_init(&p->proj_cross_scale, ps, name_fmt(n, "%s.proj_cross_scale", prefix), c->inner_dim, 2 * c->inner_dim);
    ic_resampler_init(&p->resampler, ps, name_fmt(n, "%s.resampler", prefix), c);
    return 0;
}

static void check_input(const cm_tensor *x, const char *what, int64_t B, int64_t C) {
    char buf[96];
    CM_CHECK(x->ndim == 3 && (B < 0 || x->shape[0] == B) && x->shape[2] == C, "ic_projector",
             "%s must be [B, L, %lld]%s, got %s", what, (long long)C, B < 0 ? "" : " with the batch of low_res_deep",
             tensor_shape_str(x, buf, sizeof buf));
}

void ic_projector_fwd(const ic_projector *p, cm_tensor *low_shallow, cm_tensor *low_deep, cm_tensor *high_deep,
                      cm_tensor *t, cm_tensor **tokens, cm_tensor **temb) {
    const ic_projector_config *c = &p->cfg;
    check_input(low_deep, "low_res_deep", -1, c->inner_dim);
    int64_t B = low_deep->shape[0];
    check_input(low_shallow, "low_res_shallow", B, c->cross_dim);
    check_input(high_deep, "high_res_deep", B, c->cross_dim);

    // cross-layer: the deep tokens attend to the shallow layers
    cm_tensor *cl = tensor_retain(low_deep);  // [B, L, C]
    for (int j = 0; j < c->num_layers; j++) {
        cm_tensor *nx = ic_block_fwd(&p->cross_layer[j], cl, low_shallow);
        tensor_release(cl);
        cl = nx;
    }
    cm_tensor *clp = ic_mlp_fwd(&p->proj_cross_layer, cl);
    tensor_release(cl);
    // cross-scale: the deep tokens attend to the four high-resolution crops
    cm_tensor *cs = tensor_retain(low_deep);
    for (int j = 0; j < c->num_layers; j++) {
        cm_tensor *nx = ic_block_fwd(&p->cross_scale[j], cs, high_deep);
        tensor_release(cs);
        cs = nx;
    }
    cm_tensor *csp = ic_mlp_fwd(&p->proj_cross_scale, cs);
    tensor_release(cs);

    cm_tensor *pd = ic_mlp_fwd(&p->proj, low_deep);
    cm_tensor *h0 = op_add(pd, csp);                               // [B, L, C]
    cm_tensor *h = op_concat(2, (cm_tensor *[]){h0, clp}, 1);     // [B, 2L, C]
    tensor_release(pd); tensor_release(csp); tensor_release(h0); tensor_release(clp);
    ic_resampler_fwd(&p->resampler, h, t, tokens, temb);          // [B, Q, out], [B, dim]
    tensor_release(h);
}
