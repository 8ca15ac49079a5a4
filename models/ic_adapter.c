// ic_adapter.c — the InstantCharacter adapter container: projector + IP attention modules,
// their description without allocation, size detection from weights, and loading.
#include "models/ic_adapter.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/safetensors.h"
#include "models/ip_attn.h"

const ic_adapter_config IC_ADAPTER_FULL = {
    .proj = {.inner_dim = 2688, .heads = 42, .head_dim = 64, .cross_dim = 2688, .num_layers = 4,
             .block_ff_mult = 4, .dim = 1280, .depth = 4, .r_heads = 20, .r_head_dim = 64, .num_queries = 1024,
             .embedding_dim = 2688, .output_dim = 4096, .ff_mult = 4, .timestep_in = 320,
             .flip_sin_to_cos = true, .freq_shift = 0},
    .n_ip = 19 + 38, .ip_heads = 24, .ip_head_dim = 128,
};

const ic_adapter_config IC_ADAPTER_TINY = {
    .proj = {.inner_dim = 32, .heads = 4, .head_dim = 8, .cross_dim = 32, .num_layers = 2, .block_ff_mult = 4,
             .dim = 24, .depth = 2, .r_heads = 3, .r_head_dim = 8, .num_queries = 8, .embedding_dim = 32,
             .output_dim = 16, .ff_mult = 4, .timestep_in = 16, .flip_sin_to_cos = true, .freq_shift = 0},
    .n_ip = 3, .ip_heads = 2, .ip_head_dim = 16,
};

int ic_adapter_config_check(const ic_adapter_config *c, char *err, size_t errlen) {
    if (ic_projector_config_check(&c->proj, err, errlen)) return -1;
    if (c->n_ip < 0 || (c->n_ip > 0 && (c->ip_heads <= 0 || c->ip_head_dim <= 0))) {
        snprintf(err, errlen, "instantcharacter adapter config: n_ip %d, ip heads %d x %d (need n_ip >= 0 and "
                 "positive heads)", c->n_ip, c->ip_heads, c->ip_head_dim);
        return -1;
    }
    return 0;
}

bool ic_adapter_config_eq(const ic_adapter_config *a, const ic_adapter_config *b) {
    return ic_projector_config_eq(&a->proj, &b->proj) && a->n_ip == b->n_ip && a->ip_heads == b->ip_heads &&
           a->ip_head_dim == b->ip_head_dim;
}

int ic_adapter_init(ic_adapter *a, const ic_adapter_config *c, cm_params *ps, char *err, size_t errlen) {
    if (ic_adapter_config_check(c, err, errlen)) return -1;
    memset(a, 0, sizeof(*a));
    a->cfg = *c;
    if (ic_projector_init(&a->proj, &c->proj, ps, "image_proj", err, errlen)) return -1;
    char v[32];  // head splits are not in the shapes: saved files carry them (ic_adapter_config_from_weights)
    snprintf(v, sizeof v, "%d", c->proj.head_dim);
    params_set_info(ps, "ic.head_dim", v);
    snprintf(v, sizeof v, "%d", c->proj.r_head_dim);
    params_set_info(ps, "ic.resampler_head_dim", v);
    if (c->n_ip == 0) return 0;
    a->ip = calloc(1, sizeof(ip_attn));
    CM_CHECK(a->ip, "ic_adapter_init", "out of memory");
    ip_attn_config ic = {.n_modules = c->n_ip, .heads = c->ip_heads, .head_dim = c->ip_head_dim,
                         .ip_dim = (int)c->proj.output_dim};
    ip_attn_init(a->ip, &ic, ps, "ip_adapter");
    return 0;
}

void ic_adapter_free(ic_adapter *a) {
    if (a->ip) ip_attn_free(a->ip);
    free(a->ip);
    a->ip = NULL;
}

int ic_adapter_describe(const ic_adapter_config *c, cm_params *meta, char *err, size_t errlen) {
    CM_CHECK(meta->meta, "ic_adapter_describe", "needs a registry made by params_init_meta");
    ic_adapter a;
    if (ic_adapter_init(&a, c, meta, err, errlen)) return -1;
    ic_adapter_free(&a);
    return 0;
}

int64_t ic_params_count_prefix(const cm_params *ps, const char *prefix) {
    int64_t total = 0;
    size_t pl = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < ps->n; i++)
        if (!pl || !strncmp(ps->items[i].name, prefix, pl)) total += tensor_numel(ps->items[i].t);
    return total;
}

// --- size detection ---
static const st_entry *need(const st_index *ix, const char *key, int ndim, const char *path, char *err,
                            size_t errlen) {
    const st_entry *e = st_index_find(ix, key);
    if (!e) snprintf(err, errlen, "%s: no tensor '%s': not an InstantCharacter adapter (keys image_proj.*, "
                     "ip_adapter.*)", path, key);
    else if (e->ndim != ndim) {
        snprintf(err, errlen, "%s: '%s' has %d dims, expected %d", path, key, e->ndim, ndim);
        e = NULL;
    }
    return e;
}

static int count_indexed(const st_index *ix, const char *fmt, int max) {
    char n[NAME_MAX_LEN];
    int k = 0;
    while (k < max && st_index_find(ix, name_fmt(n, fmt, k))) k++;
    return k;
}

static int meta_int(const st_index *ix, const char *any_key, const char *meta, int dflt) {
    const st_file *f = st_index_shard_of(ix, any_key);
    const char *v = f ? st_meta(f, meta) : NULL;
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

int ic_adapter_config_from_weights(const char *path, ic_adapter_config *c, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    int rc = -1;
    const st_entry *e;
    ic_adapter_config d = IC_ADAPTER_FULL;
    ic_projector_config *p = &d.proj;
    const char *k0 = "image_proj.cross_layer_blocks.0.norm1.weight";
    if (!(e = need(ix, k0, 1, path, err, errlen))) goto out;
    p->inner_dim = e->shape[0];
    p->head_dim = meta_int(ix, k0, "ic.head_dim", 64);
    p->heads = (int)(p->inner_dim / p->head_dim);
    if (p->inner_dim % p->head_dim) {
        snprintf(err, errlen, "%s: projector width %lld is not a multiple of the head size %d (set the metadata key "
                 "ic.head_dim to give the head split)", path, (long long)p->inner_dim, p->head_dim);
        goto out;
    }
    if (!(e = need(ix, "image_proj.cross_layer_blocks.0.attn2.to_k.weight", 2, path, err, errlen))) goto out;
    p->cross_dim = e->shape[1];
    p->num_layers = count_indexed(ix, "image_proj.cross_layer_blocks.%d.norm1.weight", IC_MAX_BLOCKS + 1);
    if (!(e = need(ix, "image_proj.cross_layer_blocks.0.ff.net.0.proj.weight", 2, path, err, errlen))) goto out;
    p->block_ff_mult = (int)(e->shape[0] / (2 * p->inner_dim));
    if (!(e = need(ix, "image_proj.resampler.proj_in.weight", 2, path, err, errlen))) goto out;
    p->dim = e->shape[0];
    p->embedding_dim = e->shape[1];
    p->depth = count_indexed(ix, "image_proj.resampler.layers.%d.0.to_q.weight", IC_MAX_DEPTH + 1);
    p->r_head_dim = meta_int(ix, k0, "ic.resampler_head_dim", 64);
    if (!(e = need(ix, "image_proj.resampler.layers.0.0.to_q.weight", 2, path, err, errlen))) goto out;
    p->r_heads = (int)(e->shape[0] / p->r_head_dim);
    if (e->shape[0] % p->r_head_dim) {
        snprintf(err, errlen, "%s: resampler attention width %lld is not a multiple of the head size %d (set the "
                 "metadata key ic.resampler_head_dim)", path, (long long)e->shape[0], p->r_head_dim);
        goto out;
    }
    if (!(e = need(ix, "image_proj.resampler.latents", 3, path, err, errlen))) goto out;
    p->num_queries = e->shape[1];
    if (!(e = need(ix, "image_proj.resampler.proj_out.weight", 2, path, err, errlen))) goto out;
    p->output_dim = e->shape[0];
    if (!(e = need(ix, "image_proj.resampler.layers.0.1.1.weight", 2, path, err, errlen))) goto out;
    p->ff_mult = (int)(e->shape[0] / p->dim);
    if (!(e = need(ix, "image_proj.resampler.time_embedding.linear_1.weight", 2, path, err, errlen))) goto out;
    p->timestep_in = (int)e->shape[1];
    d.n_ip = count_indexed(ix, "ip_adapter.%d.to_k_ip.weight", 100000);
    if (d.n_ip) {
        if (!(e = need(ix, "ip_adapter.0.norm_ip_q.scale", 1, path, err, errlen))) goto out;
        d.ip_head_dim = (int)e->shape[0];
        if (!(e = need(ix, "ip_adapter.0.to_k_ip.weight", 2, path, err, errlen))) goto out;
        d.ip_heads = (int)(e->shape[0] / d.ip_head_dim);
    }
    if (ic_adapter_config_check(&d, err, errlen)) goto out;
    *c = d;
    rc = 0;
out:
    st_index_close(ix);
    return rc;
}

int ic_adapter_load(cm_params *ps, const char *path, bool strict, char *err, size_t errlen) {
    int n_extra = 0;
    if (params_load(ps, path, NULL, strict, &n_extra, err, errlen)) return -1;
    if (n_extra) cm_warn("%s: %d tensors that are not part of the adapter were ignored", path, n_extra);
    return 0;
}
