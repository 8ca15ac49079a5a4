// flux_names.c — FLUX weights as published: size detection from tensor shapes, and the
// single-file BFL release mapped onto the diffusers names the model registers.
//
// The mapping (C = hidden, F = mlp_ratio * C; "rows a..b" = that row range of the fused tensor;
// the same for .weight and .bias unless a norm, whose diffusers ".weight" is BFL ".scale"):
//   x_embedder                               <- img_in
//   context_embedder                         <- txt_in
//   time_text_embed.timestep_embedder.linear_1 / linear_2 <- time_in.in_layer / time_in.out_layer
//   time_text_embed.guidance_embedder.linear_1 / linear_2 <- guidance_in.in_layer / .out_layer
//   time_text_embed.text_embedder.linear_1 / linear_2     <- vector_in.in_layer / .out_layer
//   transformer_blocks.N.norm1.linear        <- double_blocks.N.img_mod.lin
//   transformer_blocks.N.norm1_context.linear <- double_blocks.N.txt_mod.lin
//   transformer_blocks.N.attn.to_q / to_k / to_v          <- double_blocks.N.img_attn.qkv rows 0..C / C..2C / 2C..3C
//   transformer_blocks.N.attn.add_q_proj / add_k_proj / add_v_proj <- double_blocks.N.txt_attn.qkv (same rows)
//   transformer_blocks.N.attn.norm_q / norm_k              <- double_blocks.N.img_attn.norm.query_norm / key_norm (.scale)
//   transformer_blocks.N.attn.norm_added_q / norm_added_k  <- double_blocks.N.txt_attn.norm.query_norm / key_norm
//   transformer_blocks.N.attn.to_out.0       <- double_blocks.N.img_attn.proj
//   transformer_blocks.N.attn.to_add_out     <- double_blocks.N.txt_attn.proj
//   transformer_blocks.N.ff.net.0.proj / ff.net.2          <- double_blocks.N.img_mlp.0 / img_mlp.2
//   transformer_blocks.N.ff_context.net.0.proj / .net.2    <- double_blocks.N.txt_mlp.0 / txt_mlp.2
//   single_transformer_blocks.N.norm.linear  <- single_blocks.N.modulation.lin
//   single_transformer_blocks.N.attn.to_q / to_k / to_v / proj_mlp <- single_blocks.N.linear1 rows 0..C / C..2C / 2C..3C / 3C..3C+F
//   single_transformer_blocks.N.attn.norm_q / norm_k       <- single_blocks.N.norm.query_norm / key_norm
//   single_transformer_blocks.N.proj_out     <- single_blocks.N.linear2
//   norm_out.linear                          <- final_layer.adaLN_modulation.1 with its halves swapped
//                                               (BFL chunks (shift, scale), diffusers (scale, shift))
//   proj_out                                 <- final_layer.linear
// Keys may carry the "model.diffusion_model." prefix of ComfyUI-style files.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "autograd/ops.h"
#include "models/flux.h"
#include "models/safetensors.h"

typedef struct { const char *dif, *bfl; int part; } name_map;  // part: row block (in C) of a fused tensor, -1 none

static const name_map TOP[] = {
    {"x_embedder", "img_in", -1},
    {"context_embedder", "txt_in", -1},
    {"time_text_embed.timestep_embedder.linear_1", "time_in.in_layer", -1},
    {"time_text_embed.timestep_embedder.linear_2", "time_in.out_layer", -1},
    {"time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer", -1},
    {"time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer", -1},
    {"time_text_embed.text_embedder.linear_1", "vector_in.in_layer", -1},
    {"time_text_embed.text_embedder.linear_2", "vector_in.out_layer", -1},
    {"norm_out.linear", "final_layer.adaLN_modulation.1", -1},
    {"proj_out", "final_layer.linear", -1},
};
static const name_map DOUBLE[] = {
    {"norm1.linear", "img_mod.lin", -1},
    {"norm1_context.linear", "txt_mod.lin", -1},
    {"attn.to_q", "img_attn.qkv", 0},
    {"attn.to_k", "img_attn.qkv", 1},
    {"attn.to_v", "img_attn.qkv", 2},
    {"attn.add_q_proj", "txt_attn.qkv", 0},
    {"attn.add_k_proj", "txt_attn.qkv", 1},
    {"attn.add_v_proj", "txt_attn.qkv", 2},
    {"attn.norm_q", "img_attn.norm.query_norm", -1},
    {"attn.norm_k", "img_attn.norm.key_norm", -1},
    {"attn.norm_added_q", "txt_attn.norm.query_norm", -1},
    {"attn.norm_added_k", "txt_attn.norm.key_norm", -1},
    {"attn.to_out.0", "img_attn.proj", -1},
    {"attn.to_add_out", "txt_attn.proj", -1},
    {"ff.net.0.proj", "img_mlp.0", -1},
    {"ff.net.2", "img_mlp.2", -1},
    {"ff_context.net.0.proj", "txt_mlp.0", -1},
    {"ff_context.net.2", "txt_mlp.2", -1},
};
static const name_map SINGLE[] = {
    {"norm.linear", "modulation.lin", -1},
    {"attn.to_q", "linear1", 0},
    {"attn.to_k", "linear1", 1},
    {"attn.to_v", "linear1", 2},
    {"proj_mlp", "linear1", 3},
    {"attn.norm_q", "norm.query_norm", -1},
    {"attn.norm_k", "norm.key_norm", -1},
    {"proj_out", "linear2", -1},
};
#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

// splits "stem.weight" / "stem.bias"; returns the suffix pointer or NULL
static const char *split_suffix(const char *key, char *stem, size_t n) {
    const char *dot = strrchr(key, '.');
    if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias"))) return NULL;
    size_t len = (size_t)(dot - key);
    if (len + 1 > n) return NULL;
    memcpy(stem, key, len);
    stem[len] = 0;
    return dot;
}

int flux_bfl_name(const flux_config *c, const char *key, char *bfl, size_t n, int64_t *r0, int *swap) {
    char stem[NAME_MAX_LEN];
    const char *suf = split_suffix(key, stem, sizeof stem);
    if (!suf) return -1;
    const int64_t C = flux_config_hidden(c);
    *r0 = 0;
    *swap = 0;
    const name_map *tab = NULL;
    int ntab = 0, idx = -1, used = 0;
    const char *rest = stem, *bprefix = "";
    if (sscanf(stem, "transformer_blocks.%d.%n", &idx, &used) == 1 && used > 0) {
        tab = DOUBLE, ntab = COUNT(DOUBLE), rest = stem + used, bprefix = "double_blocks";
    } else if (sscanf(stem, "single_transformer_blocks.%d.%n", &idx, &used) == 1 && used > 0) {
        tab = SINGLE, ntab = COUNT(SINGLE), rest = stem + used, bprefix = "single_blocks";
    } else {
        tab = TOP, ntab = COUNT(TOP);
    }
    for (int i = 0; i < ntab; i++) {
        if (strcmp(rest, tab[i].dif)) continue;
        bool norm = strstr(tab[i].bfl, "_norm") != NULL;  // query_norm / key_norm: ".weight" -> ".scale"
        if (norm && strcmp(suf, ".weight")) return -1;
        const char *bsuf = norm ? ".scale" : suf;
        if (idx >= 0) snprintf(bfl, n, "%s.%d.%s%s", bprefix, idx, tab[i].bfl, bsuf);
        else snprintf(bfl, n, "%s%s", tab[i].bfl, bsuf);
        if (tab[i].part > 0) *r0 = tab[i].part * C;
        if (tab == TOP && !strcmp(tab[i].dif, "norm_out.linear")) *swap = 1;
        return 0;
    }
    return -1;
}

// --- size detection ---

static const st_entry *find2(const st_index *ix, const char *name) {
    const st_entry *e = st_index_find(ix, name);
    if (!e) {
        char p[2 * NAME_MAX_LEN + 32];
        snprintf(p, sizeof p, "model.diffusion_model.%.*s", 2 * NAME_MAX_LEN, name);
        e = st_index_find(ix, p);
    }
    return e;
}

static int max_block(const st_index *ix, const char *fmt) {
    int best = -1;
    for (int i = 0; i < st_index_count(ix); i++) {
        const char *nm = st_index_at(ix, i)->name;
        if (!strncmp(nm, "model.diffusion_model.", 22)) nm += 22;
        int b;
        if (sscanf(nm, fmt, &b) == 1 && b > best) best = b;
    }
    return best + 1;
}

static int need(const st_entry *e, const char *name, int ndim, const char *path, char *err, size_t errlen) {
    if (!e) {
        snprintf(err, errlen, "%s: not a FLUX transformer: no tensor '%s'", path, name);
        return -1;
    }
    if (e->ndim != ndim) {
        snprintf(err, errlen, "%s: '%s' has %d dims, expected %d", path, name, e->ndim, ndim);
        return -1;
    }
    return 0;
}

int flux_config_from_weights(const char *path, flux_config *c, flux_layout *layout, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    flux_config k = flux_config_dev();
    bool bfl = find2(ix, "img_in.weight") != NULL;
    const char *nx = bfl ? "img_in.weight" : "x_embedder.weight";
    const char *nc = bfl ? "txt_in.weight" : "context_embedder.weight";
    const char *np = bfl ? "vector_in.in_layer.weight" : "time_text_embed.text_embedder.linear_1.weight";
    const char *ng = bfl ? "guidance_in.in_layer.weight" : "time_text_embed.guidance_embedder.linear_1.weight";
    const char *no = bfl ? "final_layer.linear.weight" : "proj_out.weight";
    const st_entry *ex = find2(ix, nx), *ec = find2(ix, nc), *ep = find2(ix, np), *eo = find2(ix, no);
    int rc = need(ex, nx, 2, path, err, errlen) || need(ec, nc, 2, path, err, errlen) ||
             need(ep, np, 2, path, err, errlen) || need(eo, no, 2, path, err, errlen) ? -1 : 0;
    if (!rc) {
        k.in_channels = (int)ex->shape[1];
        k.joint_dim = (int)ec->shape[1];
        k.pooled_dim = (int)ep->shape[1];
        k.out_channels = (int)eo->shape[0];
        k.guidance_embeds = find2(ix, ng) != NULL;
        k.num_layers = max_block(ix, bfl ? "double_blocks.%d." : "transformer_blocks.%d.");
        k.num_single_layers = max_block(ix, bfl ? "single_blocks.%d." : "single_transformer_blocks.%d.");
        int64_t C = ex->shape[0];
        // head_dim from a q-norm weight, the MLP width from a feed-forward
        char nq[96], nf[96];
        if (k.num_layers > 0) {
            snprintf(nq, sizeof nq, bfl ? "double_blocks.0.img_attn.norm.query_norm.scale" : "transformer_blocks.0.attn.norm_q.weight");
            snprintf(nf, sizeof nf, bfl ? "double_blocks.0.img_mlp.0.weight" : "transformer_blocks.0.ff.net.0.proj.weight");
        } else {
            snprintf(nq, sizeof nq, bfl ? "single_blocks.0.norm.query_norm.scale" : "single_transformer_blocks.0.attn.norm_q.weight");
            snprintf(nf, sizeof nf, bfl ? "single_blocks.0.linear2.weight" : "single_transformer_blocks.0.proj_mlp.weight");
        }
        const st_entry *eq = find2(ix, nq), *ef = find2(ix, nf);
        rc = need(eq, nq, 1, path, err, errlen) || need(ef, nf, 2, path, err, errlen) ? -1 : 0;
        if (!rc) {
            k.head_dim = (int)eq->shape[0];
            k.heads = (int)(C / k.head_dim);
            int64_t F = (k.num_layers > 0 || !bfl) ? ef->shape[0] : ef->shape[1] - C;
            k.mlp_ratio = (int)(F / C);
            flux_default_axes(k.head_dim, k.axes_dim);  // RoPE axes are not in the weights
            if (C % k.head_dim || F % C) {
                snprintf(err, errlen, "%s: hidden %lld is not heads x %d, or MLP width %lld not a multiple of it",
                         path, (long long)C, k.head_dim, (long long)F);
                rc = -1;
            } else {
                rc = flux_config_check(&k, err, errlen);
            }
        }
    }
    st_index_close(ix);
    if (rc) return -1;
    *c = k;
    if (layout) *layout = bfl ? FLUX_LAYOUT_BFL : FLUX_LAYOUT_DIFFUSERS;
    return 0;
}

// --- loading the BFL layout ---

// copies `rows` rows of e starting at row r0 into rows [dst_row, dst_row + rows) of p
static void copy_rows(cm_tensor *p, int64_t dst_row, const st_entry *e, int64_t r0, int64_t rows) {
    int64_t cols = e->ndim == 2 ? e->shape[1] : 1;
    size_t esz = dtype_size(e->dtype);
    const char *src = (const char *)e->data + (size_t)(r0 * cols) * esz;
    int64_t shape[2] = {rows, cols};
    autograd_no_grad_push();
    cm_tensor *h = tensor_wrap_host(e->dtype, 2, shape, (void *)src);
    cm_tensor *cv = op_cast(h, p->dtype);
    cm_tensor *dv = op_to_device(cv, p->storage->dev);
    autograd_no_grad_pop();
    const cm_backend *be = backend_get(p->storage->dev.type);
    char *dst = (char *)tensor_data(p) + (size_t)(dst_row * cols) * dtype_size(p->dtype);
    be->memcpy_d2d(backend_ctx(p->storage->dev), dst, tensor_data(dv), (size_t)(rows * cols) * dtype_size(p->dtype));
    tensor_release(h);
    tensor_release(cv);
    tensor_release(dv);
}

static int load_bfl(flux_model *m, cm_params *ps, const char *path, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    int loaded = 0, rc = 0;
    for (int i = 0; i < ps->n && !rc; i++) {
        cm_tensor *p = ps->items[i].t;
        const char *key = ps->items[i].name;
        char bname[NAME_MAX_LEN + 32];
        int64_t r0;
        int swap;
        if (flux_bfl_name(&m->cfg, key, bname, sizeof bname, &r0, &swap)) continue;  // not a FLUX weight
        const st_entry *e = find2(ix, bname);
        int64_t rows = p->shape[0], cols = p->ndim == 2 ? p->shape[1] : 1;
        if (!e) {
            snprintf(err, errlen, "%s: missing '%s' (mapped from %s)", path, bname, key);
            rc = -1;
            break;
        }
        if (e->dtype == CM_NDTYPES || !dtype_is_float(e->dtype)) {
            snprintf(err, errlen, "%s: '%s' has dtype %s; FLUX weights must be F32, BF16 or F16", path, bname, e->dtype_str);
            rc = -1;
            break;
        }
        // a fused tensor holds several diffusers tensors stacked by rows
        const int64_t C = flux_config_hidden(&m->cfg);
        int64_t total = strstr(bname, ".qkv.") ? 3 * C
                      : strstr(bname, ".linear1.") ? 3 * C + C * m->cfg.mlp_ratio : rows;
        int64_t ecols = e->ndim == 2 ? e->shape[1] : 1;
        if (e->ndim != p->ndim || ecols != cols || e->shape[0] != total || r0 + rows > total) {
            snprintf(err, errlen, "%s: '%s' has shape [%lld, %lld] (%d dims), expected [%lld, %lld] (%d dims) holding %s",
                     path, bname, (long long)e->shape[0], (long long)ecols, e->ndim, (long long)total,
                     (long long)cols, p->ndim, key);
            rc = -1;
            break;
        }
        if (swap) {  // diffusers [scale; shift] from BFL [shift; scale]
            copy_rows(p, 0, e, rows / 2, rows / 2);
            copy_rows(p, rows / 2, e, 0, rows / 2);
        } else {
            copy_rows(p, 0, e, r0, rows);
        }
        loaded++;
    }
    st_index_close(ix);
    if (!rc && loaded == 0) {
        snprintf(err, errlen, "%s: the registry holds no FLUX weights to load", path);
        rc = -1;
    }
    return rc;
}

int flux_load(flux_model *m, cm_params *ps, const char *path, char *err, size_t errlen) {
    flux_config found;
    flux_layout layout;
    if (flux_config_from_weights(path, &found, &layout, err, errlen)) return -1;
    const flux_config *c = &m->cfg;
    if (found.in_channels != c->in_channels || found.out_channels != c->out_channels ||
        found.num_layers != c->num_layers || found.num_single_layers != c->num_single_layers ||
        found.heads != c->heads || found.head_dim != c->head_dim || found.joint_dim != c->joint_dim ||
        found.pooled_dim != c->pooled_dim || found.guidance_embeds != c->guidance_embeds || found.mlp_ratio != c->mlp_ratio) {
        snprintf(err, errlen, "%s: holds a FLUX with %d+%d blocks, %d x %d heads, in %d, joint %d, pooled %d, guidance %d; "
                 "the model was built with %d+%d, %d x %d, in %d, joint %d, pooled %d, guidance %d", path,
                 found.num_layers, found.num_single_layers, found.heads, found.head_dim, found.in_channels,
                 found.joint_dim, found.pooled_dim, found.guidance_embeds, c->num_layers, c->num_single_layers,
                 c->heads, c->head_dim, c->in_channels, c->joint_dim, c->pooled_dim, c->guidance_embeds);
        return -1;
    }
    if (layout == FLUX_LAYOUT_BFL) return load_bfl(m, ps, path, err, errlen);
    int n_extra = 0;
    return params_load(ps, path, NULL, false, &n_extra, err, errlen);
}
