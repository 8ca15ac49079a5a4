// t5.c — the T5 v1.1 encoder: init by published names, shape detection, relative position
// buckets, forward.
#include "models/t5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/attention.h"
#include "models/detect.h"
#include "models/safetensors.h"

const t5_config T5_V11_XXL = {
    .vocab = 32128, .d_model = 4096, .d_kv = 64, .heads = 64, .d_ff = 10240, .layers = 24,
    .buckets = 32, .max_distance = 128, .eps = 1e-6,
};

int64_t t5_param_count(const t5_config *c) {
    int64_t D = c->d_model, I = c->heads * c->d_kv, F = c->d_ff;
    int64_t layer = 4 * D * I + 3 * D * F + 2 * D;
    return c->vocab * D + c->buckets * c->heads + c->layers * layer + D;
}

void t5_init(t5_model *m, const t5_config *c, cm_params *ps) {
    char p[NAME_MAX_LEN];
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    int64_t D = c->d_model, I = c->heads * c->d_kv;
    m->shared = params_new(ps, NULL, "shared.weight", SHAPE(c->vocab, D), CM_INIT_NORMAL);
    m->rel_bias = params_new(ps, NULL, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                             SHAPE(c->buckets, c->heads), CM_INIT_NORMAL);
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    CM_CHECK(m->layer, "t5_init", "out of memory for %lld layers", (long long)c->layers);
    for (int i = 0; i < c->layers; i++) {
        t5_layer *L = &m->layer[i];
        L->ln_attn = rms_init(ps, name_fmt(p, "encoder.block.%d.layer.0.layer_norm", i), "weight", D, c->eps, CM_RMS_DIFFUSERS);
        L->q = linear_init(ps, name_fmt(p, "encoder.block.%d.layer.0.SelfAttention.q", i), D, I, false);
        L->k = linear_init(ps, name_fmt(p, "encoder.block.%d.layer.0.SelfAttention.k", i), D, I, false);
        L->v = linear_init(ps, name_fmt(p, "encoder.block.%d.layer.0.SelfAttention.v", i), D, I, false);
        L->o = linear_init(ps, name_fmt(p, "encoder.block.%d.layer.0.SelfAttention.o", i), I, D, false);
        L->ln_ff = rms_init(ps, name_fmt(p, "encoder.block.%d.layer.1.layer_norm", i), "weight", D, c->eps, CM_RMS_DIFFUSERS);
        L->wi0 = linear_init(ps, name_fmt(p, "encoder.block.%d.layer.1.DenseReluDense.wi_0", i), D, c->d_ff, false);
        L->wi1 = linear_init(ps, name_fmt(p, "encoder.block.%d.layer.1.DenseReluDense.wi_1", i), D, c->d_ff, false);
        L->wo = linear_init(ps, name_fmt(p, "encoder.block.%d.layer.1.DenseReluDense.wo", i), c->d_ff, D, false);
    }
    m->final_ln = rms_init(ps, "encoder.final_layer_norm", "weight", D, c->eps, CM_RMS_DIFFUSERS);
}

void t5_free(t5_model *m) {
    free(m->layer);
    memset(m, 0, sizeof *m);
}

// --- detection ---

int t5_detect(const char *path, t5_config *c, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    char p[NAME_MAX_LEN];
    int rc = -1;
    const char *what = "a T5 encoder";  // for detect_need's message
    const st_entry *sh = detect_need(ix, "shared.weight", 2, what, err, errlen);
    const st_entry *rb = sh ? detect_need(ix, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2, what, err, errlen) : NULL;
    const st_entry *q = rb ? detect_need(ix, "encoder.block.0.layer.0.SelfAttention.q.weight", 2, what, err, errlen) : NULL;
    const st_entry *wi = q ? detect_need(ix, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", 2, what, err, errlen) : NULL;
    if (q && !wi && st_index_find(ix, "encoder.block.0.layer.1.DenseReluDense.wi.weight"))
        snprintf(err, errlen, "a T5 v1.0 encoder (DenseReluDense.wi, ReLU): only the v1.1 gated-GELU encoder is supported");
    if (wi) {
        *c = T5_V11_XXL;
        c->vocab = sh->shape[0];
        c->d_model = sh->shape[1];
        c->buckets = rb->shape[0];
        c->heads = rb->shape[1];
        c->d_ff = wi->shape[0];
        c->layers = 0;
        while (st_index_find(ix, name_fmt(p, "encoder.block.%lld.layer.0.SelfAttention.q.weight", (long long)c->layers))) c->layers++;
        if (q->shape[0] % c->heads)
            snprintf(err, errlen, "encoder.block.0.layer.0.SelfAttention.q.weight: %lld rows do not split into %lld heads",
                     (long long)q->shape[0], (long long)c->heads);
        else {
            c->d_kv = q->shape[0] / c->heads;
            rc = 0;
        }
    }
    st_index_close(ix);
    return rc;
}

// --- relative positions ---

int t5_bucket(int64_t rel, int64_t buckets, int64_t max_distance) {
    int64_t nb = buckets / 2, b = rel > 0 ? nb : 0, n = rel < 0 ? -rel : rel;
    int64_t exact = nb / 2;
    if (n < exact) return (int)(b + n);
    // exact + floor(log(n/exact) / log(max_distance/exact) * (nb - exact)), clamped to nb - 1. For
    // max_distance/exact = 16 and nb - exact = 8 that is floor(2 log2(n/exact)): the largest k with
    // n^2 >= exact^2 2^k, found in integers (no rounding at powers of two, as torch gets in f32)
    int64_t big;
    if (max_distance == exact * 16 && nb - exact == 8) {
        int64_t k = 0;
        while (k < 63 && n * n >= (exact * exact << (k + 1))) k++;
        big = exact + k;
    } else {
        float f = logf((float)n / (float)exact) / (float)log((double)max_distance / (double)exact) * (float)(nb - exact);
        big = exact + (int64_t)f;
    }
    if (big > nb - 1) big = nb - 1;
    return (int)(b + big);
}

cm_tensor *t5_position_bias(const t5_model *m, int64_t L) {
    const t5_config *c = &m->cfg;
    int32_t *idx = malloc((size_t)(L * L) * sizeof(int32_t));
    CM_CHECK(idx, "t5_position_bias", "out of memory for %lld positions", (long long)L);
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < L; j++) idx[i * L + j] = t5_bucket(j - i, c->buckets, c->max_distance);  // key - query
    cm_tensor *it = tensor_from_host(CM_I32, SHAPE(L, L), idx, m->rel_bias->storage->dev);
    free(idx);
    cm_tensor *tab = m->rel_bias->dtype == CM_F32 ? tensor_retain(m->rel_bias) : op_cast(m->rel_bias, CM_F32);
    cm_tensor *e = op_embedding(tab, it);                 // [L, L, H]
    cm_tensor *pm = op_permute(e, (int[]){2, 0, 1});      // [H, L, L]
    cm_tensor *pc = op_contiguous(pm);
    cm_tensor *out = op_reshape(pc, SHAPE(1, c->heads, L, L));
    tensor_release(it);
    tensor_release(tab);
    tensor_release(e);
    tensor_release(pm);
    tensor_release(pc);
    return out;
}

// --- forward ---

// gated-GELU feed-forward: wo(gelu_new(wi_0 x) * wi_1 x)
static cm_tensor *t5_ff(const t5_layer *l, cm_tensor *x) {
    cm_tensor *g = linear_gelu_fwd(&l->wi0, x);  // [B, L, F], gelu_new = tanh approximation
    cm_tensor *h1 = linear_fwd(&l->wi1, x);
    cm_tensor *p = op_mul(g, h1);
    cm_tensor *out = linear_fwd(&l->wo, p);   // [B, L, D]
    tensor_release(g);
    tensor_release(h1);
    tensor_release(p);
    return out;
}

cm_tensor *t5_embed(const t5_model *m, cm_tensor *ids) {
    CM_CHECK(ids->dtype == CM_I32 && ids->ndim == 2, "t5_embed", "ids must be i32 [B, L]");
    return op_embedding(m->shared, ids);
}

cm_tensor *t5_forward_embeds(const t5_model *m, cm_tensor *x) {
    const t5_config *c = &m->cfg;
    CM_CHECK(x->ndim == 3 && x->shape[2] == c->d_model, "t5_forward", "input must be [B, L, %lld]", (long long)c->d_model);
    cm_tensor *bias = t5_position_bias(m, x->shape[1]);  // [1, H, L, L], shared by every layer
    cm_tensor *h = tensor_retain(x);
    for (int i = 0; i < c->layers; i++) {
        const t5_layer *l = &m->layer[i];
        cm_tensor *n1 = rms_fwd(&l->ln_attn, h);
        // self-attention with the additive position bias, no scaling: scores = q k^T + bias
        cm_tensor *a = attention_self(&l->q, &l->k, &l->v, &l->o, n1, c->heads, bias, 1.0);  // [B, L, D]
        cm_tensor *h1 = op_add(h, a);
        tensor_release(n1);
        tensor_release(a);
        tensor_release(h);
        cm_tensor *n2 = rms_fwd(&l->ln_ff, h1);
        cm_tensor *f = t5_ff(l, n2);
        h = op_add(h1, f);
        tensor_release(n2);
        tensor_release(f);
        tensor_release(h1);
    }
    cm_tensor *out = rms_fwd(&m->final_ln, h);  // [B, L, D]
    tensor_release(h);
    tensor_release(bias);
    return out;
}

cm_tensor *t5_forward(const t5_model *m, cm_tensor *ids) {
    cm_tensor *x = t5_embed(m, ids);
    cm_tensor *out = t5_forward_embeds(m, x);
    tensor_release(x);
    return out;
}

cm_tensor *t5_encode_prompts(const t5_model *m, t5_tok *tok, int n, const char *const *texts, int max_len,
                             char *err, size_t errlen) {
    int32_t *ids = malloc((size_t)n * (size_t)max_len * sizeof(int32_t));  // [n, max_len]
    CM_CHECK(ids, "t5_encode_prompts", "out of memory");
    for (int b = 0; b < n; b++) {
        t5_tok_encode_padded(tok, texts[b], max_len, ids + (size_t)b * (size_t)max_len, NULL);
        for (int j = 0; j < max_len; j++) {
            int32_t id = ids[(size_t)b * (size_t)max_len + (size_t)j];
            if (id < 0 || id >= m->cfg.vocab) {
                snprintf(err, errlen, "prompt %d: token id %d is outside the T5 vocabulary of %lld (tokenizer and "
                         "weights do not match)", b, id, (long long)m->cfg.vocab);
                free(ids);
                return NULL;
            }
        }
    }
    cm_tensor *it = tensor_from_host(CM_I32, SHAPE(n, max_len), ids, m->shared->storage->dev);
    free(ids);
    cm_tensor *out = t5_forward(m, it);  // [n, max_len, D]
    tensor_release(it);
    return out;
}
