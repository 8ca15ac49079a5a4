// dinov2.c — the DINOv2 vision tower: init by published names, shape detection, forward with
// the position table resized to the input grid.
#include "models/dinov2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/attention.h"
#include "models/config_json.h"
#include "models/safetensors.h"

const dino_config DINOV2_GIANT = {
    .hidden = 1536, .layers = 40, .heads = 24, .mlp_hidden = 4096, .patch = 14, .image_size = 518,
    .channels = 3, .swiglu = true, .eps = 1e-6,
};

int64_t dino_swiglu_hidden(int64_t hidden, double mlp_ratio) {
    int64_t h = (int64_t)((double)hidden * mlp_ratio);
    h = (int64_t)((double)h * 2.0 / 3.0);
    return (h + 7) / 8 * 8;
}

int64_t dino_param_count(const dino_config *c) {
    int64_t D = c->hidden, H = c->mlp_hidden, g = c->image_size / c->patch;
    int64_t emb = 2 * D + (g * g + 1) * D + D * c->channels * c->patch * c->patch + D;  // cls, mask, pos, conv
    int64_t mlp = c->swiglu ? (D * 2 * H + 2 * H) + (H * D + D) : (D * H + H) + (H * D + D);
    int64_t layer = 2 * 2 * D + 4 * (D * D + D) + 2 * D + mlp;
    return emb + c->layers * layer + 2 * D;
}

void dino_init(dino_model *m, const dino_config *c, cm_params *ps) {
    char p[NAME_MAX_LEN];
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    int64_t D = c->hidden, H = c->mlp_hidden, g = c->image_size / c->patch;
    m->cls = params_new(ps, NULL, "embeddings.cls_token", SHAPE(1, 1, D), CM_INIT_NORMAL);
    m->mask_token = params_new(ps, NULL, "embeddings.mask_token", SHAPE(1, D), CM_INIT_ZEROS);
    m->pos = params_new(ps, NULL, "embeddings.position_embeddings", SHAPE(1, g * g + 1, D), CM_INIT_NORMAL);
    m->patch_w = params_new(ps, NULL, "embeddings.patch_embeddings.projection.weight", SHAPE(D, c->channels, c->patch, c->patch), CM_INIT_LINEAR_DEFAULT);
    m->patch_b = params_new(ps, NULL, "embeddings.patch_embeddings.projection.bias", SHAPE(D), CM_INIT_ZEROS);
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    CM_CHECK(m->layer, "dino_init", "out of memory for %lld layers", (long long)c->layers);
    for (int i = 0; i < c->layers; i++) {
        dino_layer *L = &m->layer[i];
        L->norm1 = lnorm_init(ps, name_fmt(p, "encoder.layer.%d.norm1", i), D, c->eps, true);
        L->q = linear_init(ps, name_fmt(p, "encoder.layer.%d.attention.attention.query", i), D, D, true);
        L->k = linear_init(ps, name_fmt(p, "encoder.layer.%d.attention.attention.key", i), D, D, true);
        L->v = linear_init(ps, name_fmt(p, "encoder.layer.%d.attention.attention.value", i), D, D, true);
        L->o = linear_init(ps, name_fmt(p, "encoder.layer.%d.attention.output.dense", i), D, D, true);
        L->ls1 = params_new(ps, name_fmt(p, "encoder.layer.%d.layer_scale1", i), "lambda1", SHAPE(D), CM_INIT_ONES);
        L->norm2 = lnorm_init(ps, name_fmt(p, "encoder.layer.%d.norm2", i), D, c->eps, true);
        if (c->swiglu) {
            L->fc_in = linear_init(ps, name_fmt(p, "encoder.layer.%d.mlp.weights_in", i), D, 2 * H, true);
            L->fc_out = linear_init(ps, name_fmt(p, "encoder.layer.%d.mlp.weights_out", i), H, D, true);
        } else {
            L->fc_in = linear_init(ps, name_fmt(p, "encoder.layer.%d.mlp.fc1", i), D, H, true);
            L->fc_out = linear_init(ps, name_fmt(p, "encoder.layer.%d.mlp.fc2", i), H, D, true);
        }
        L->ls2 = params_new(ps, name_fmt(p, "encoder.layer.%d.layer_scale2", i), "lambda1", SHAPE(D), CM_INIT_ONES);
    }
    m->ln = lnorm_init(ps, "layernorm", D, c->eps, true);
}

void dino_free(dino_model *m) {
    free(m->layer);
    memset(m, 0, sizeof *m);
}

// --- detection from shapes ---

int dino_detect(const char *path, dino_config *c, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    char p[NAME_MAX_LEN];
    int rc = -1;
    const st_entry *pw = st_index_find(ix, "embeddings.patch_embeddings.projection.weight");
    const st_entry *pos = st_index_find(ix, "embeddings.position_embeddings");
    const st_entry *win = st_index_find(ix, "encoder.layer.0.mlp.weights_in.weight");
    const st_entry *fc1 = st_index_find(ix, "encoder.layer.0.mlp.fc1.weight");
    const st_entry *reg;
    if (!pw || !pos || (!win && !fc1)) {
        snprintf(err, errlen, "not a DINOv2 model: no tensor \"%s\"",
                 !pw ? "embeddings.patch_embeddings.projection.weight" : !pos ? "embeddings.position_embeddings"
                                                                      : "encoder.layer.0.mlp.weights_in.weight (or mlp.fc1.weight)");
    } else if ((reg = st_index_find(ix, "embeddings.register_tokens")) != NULL) {
        // Dinov2WithRegistersModel: the same names plus R learned tokens after CLS (no positions);
        // run without them every feature would be silently wrong
        snprintf(err, errlen, "a DINOv2 with %lld register tokens (embeddings.register_tokens): only the plain DINOv2 "
                 "(facebook/dinov2-giant, as InstantCharacter uses) is supported",
                 reg->ndim == 3 ? (long long)reg->shape[1] : -1LL);
    } else if (pw->ndim != 4 || pos->ndim != 3) {
        snprintf(err, errlen, "DINOv2 embeddings: patch weight %d dims (want 4), position table %d dims (want 3)", pw->ndim, pos->ndim);
    } else {
        *c = DINOV2_GIANT;
        c->hidden = pw->shape[0];
        c->channels = pw->shape[1];
        c->patch = pw->shape[2];
        c->swiglu = win != NULL;
        c->mlp_hidden = win ? win->shape[0] / 2 : fc1->shape[0];
        int64_t n = pos->shape[1] - 1, g = 0;
        while ((g + 1) * (g + 1) <= n) g++;
        c->image_size = g * c->patch;
        c->layers = 0;
        while (st_index_find(ix, name_fmt(p, "encoder.layer.%lld.norm1.weight", (long long)c->layers))) c->layers++;
        const st_file *f = st_index_shard_of(ix, "embeddings.patch_embeddings.projection.weight");
        const char *mh = f ? st_meta(f, "num_attention_heads") : NULL;
        cJSON *j = cjson_beside(path);
        c->heads = (int64_t)cjson_number(j, NULL, "num_attention_heads", 0);
        cJSON_Delete(j);
        if (!c->heads && mh) c->heads = atoll(mh);
        if (!c->heads) c->heads = c->hidden / 64;  // every published DINOv2 has 64-wide heads
        if (g * g != n) snprintf(err, errlen, "embeddings.position_embeddings: %lld patch rows is not a square grid", (long long)n);
        else if (c->heads <= 0 || c->hidden % c->heads) snprintf(err, errlen, "DINOv2 width %lld does not split into %lld heads", (long long)c->hidden, (long long)c->heads);
        else rc = 0;
    }
    st_index_close(ix);
    return rc;
}

// --- forward ---

// the position table for a gh x gw grid: [1, 1 + gh*gw, D]. As transformers: the table itself when
// the patch count matches and the image is square, else the patch rows resized bicubically in f32.
static cm_tensor *dino_positions(const dino_model *m, int64_t gh, int64_t gw, int64_t H, int64_t W) {
    int64_t D = m->cfg.hidden, g = m->cfg.image_size / m->cfg.patch;
    if (gh * gw == g * g && H == W) return tensor_retain(m->pos);
    cm_tensor *cls = op_slice(m->pos, 1, 0, 1);                  // [1, 1, D]
    cm_tensor *pp = op_slice(m->pos, 1, 1, 1 + g * g);           // [1, g*g, D]
    cm_tensor *pc = op_contiguous(pp);
    cm_tensor *pr = op_reshape(pc, SHAPE(1, g, g, D));
    cm_tensor *pt = op_permute(pr, (int[]){0, 3, 1, 2});         // [1, D, g, g]
    cm_tensor *p32 = op_cast(pt, CM_F32);                        // bicubic in f32 (bf16 shifts it)
    cm_tensor *p32c = op_contiguous(p32);
    cm_tensor *ri = op_interp_bicubic(p32c, gh, gw);             // [1, D, gh, gw]
    cm_tensor *rc = op_cast(ri, m->pos->dtype);
    cm_tensor *rp = op_permute(rc, (int[]){0, 2, 3, 1});         // [1, gh, gw, D]
    cm_tensor *rcc = op_contiguous(rp);
    cm_tensor *rr = op_reshape(rcc, SHAPE(1, gh * gw, D));
    cm_tensor *out = op_concat(2, (cm_tensor *[]){cls, rr}, 1);  // [1, 1 + gh*gw, D]
    cm_tensor *tmp[] = {cls, pp, pc, pr, pt, p32, p32c, ri, rc, rp, rcc, rr};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return out;
}

// h = x + ls1 * attn(norm1(x)); h + ls2 * mlp(norm2(h))
static cm_tensor *dino_layer_fwd(const dino_layer *l, cm_tensor *x, const dino_config *c) {
    cm_tensor *n1 = lnorm_fwd(&l->norm1, x);
    cm_tensor *a = attention_self(&l->q, &l->k, &l->v, &l->o, n1, c->heads, NULL, 0.0);
    cm_tensor *as = op_mul(a, l->ls1);
    cm_tensor *h = op_add(x, as);                               // [B, L, D]
    tensor_release(n1);
    tensor_release(a);
    tensor_release(as);
    cm_tensor *n2 = lnorm_fwd(&l->norm2, h);
    cm_tensor *f1 = linear_fwd(&l->fc_in, n2);                  // [B, L, 2H] or [B, L, H]
    cm_tensor *g = c->swiglu ? op_swiglu(f1) : op_gelu(f1, false);  // silu(x1) * x2 / exact GELU
    cm_tensor *f2 = linear_fwd(&l->fc_out, g);                  // [B, L, D]
    cm_tensor *fs = op_mul(f2, l->ls2);
    cm_tensor *out = op_add(h, fs);
    cm_tensor *tmp[] = {n2, f1, g, f2, fs, h};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return out;
}

cm_tensor *dino_forward(const dino_model *m, cm_tensor *x, int n_hidden, const int *idx, cm_tensor **hidden) {
    const dino_config *c = &m->cfg;
    char buf[96];
    CM_CHECK(x->ndim == 4 && x->shape[1] == c->channels && x->shape[2] >= c->patch && x->shape[3] >= c->patch,
             "dino_forward", "pixels must be [B, %lld, H, W] with H, W >= %lld, got %s", (long long)c->channels,
             (long long)c->patch, tensor_shape_str(x, buf, sizeof buf));
    for (int j = 0; j < n_hidden; j++) {
        CM_CHECK(idx[j] >= 0 && idx[j] <= c->layers, "dino_forward", "hidden state %d out of range 0..%lld", idx[j], (long long)c->layers);
        hidden[j] = NULL;
    }
    int64_t B = x->shape[0], D = c->hidden, gh = x->shape[2] / c->patch, gw = x->shape[3] / c->patch, N = gh * gw;
    cm_tensor *pe = op_conv2d(x, m->patch_w, m->patch_b, (int)c->patch, 0);  // [B, D, gh, gw]
    cm_tensor *pr = op_reshape(pe, SHAPE(B, D, N));
    cm_tensor *pt = op_transpose(pr, 1, 2);                                   // [B, N, D]
    cm_tensor *cls = op_expand(m->cls, SHAPE(B, 1, D));                       // [B, 1, D]
    cm_tensor *e = op_concat(2, (cm_tensor *[]){cls, pt}, 1);                 // [B, 1 + N, D]
    cm_tensor *pos = dino_positions(m, gh, gw, x->shape[2], x->shape[3]);     // [1, 1 + N, D]
    cm_tensor *h = op_add(e, pos);
    cm_tensor *tmp[] = {pe, pr, pt, cls, e, pos};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    for (int j = 0; j < n_hidden; j++)
        if (idx[j] == 0) hidden[j] = tensor_retain(h);
    for (int i = 0; i < c->layers; i++) {
        cm_tensor *nh = dino_layer_fwd(&m->layer[i], h, c);
        tensor_release(h);
        h = nh;
        for (int j = 0; j < n_hidden; j++)
            if (idx[j] == i + 1) hidden[j] = tensor_retain(h);
    }
    cm_tensor *out = lnorm_fwd(&m->ln, h);                                    // [B, 1 + N, D]
    tensor_release(h);
    return out;
}
