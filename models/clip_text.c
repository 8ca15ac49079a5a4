// clip_text.c — the CLIP text transformer: init by published names, detection, forward, pooling.
#include "models/clip_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/config_json.h"
#include "models/detect.h"
#include "models/safetensors.h"

const clip_text_config CLIP_VIT_L14_TEXT = {
    .vocab = 49408, .hidden = 768, .layers = 12, .heads = 12, .mlp = 3072, .max_pos = 77, .eps = 1e-5,
    .eos_token_id = 2,
};

#define CT "text_model"

int64_t clip_text_param_count(const clip_text_config *c) {
    int64_t D = c->hidden, M = c->mlp;
    int64_t layer = 4 * (D * D + D) + 2 * 2 * D + (D * M + M) + (M * D + D);
    return c->vocab * D + c->max_pos * D + c->layers * layer + 2 * D;
}

void clip_text_init(clip_text_model *m, const clip_text_config *c, cm_params *ps) {
    char p[NAME_MAX_LEN];
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    int64_t D = c->hidden;
    m->tok_emb = params_new(ps, CT, "embeddings.token_embedding.weight", SHAPE(c->vocab, D), CM_INIT_NORMAL);
    m->pos_emb = params_new(ps, CT, "embeddings.position_embedding.weight", SHAPE(c->max_pos, D), CM_INIT_NORMAL);
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    CM_CHECK(m->layer, "clip_text_init", "out of memory for %lld layers", (long long)c->layers);
    for (int i = 0; i < c->layers; i++) {
        encoder_layer_init(&m->layer[i], ps, name_fmt(p, CT ".encoder.layers.%d", i), D, c->mlp, c->eps);
    }
    m->final_ln = lnorm_init(ps, CT ".final_layer_norm", D, c->eps, true);
}

void clip_text_free(clip_text_model *m) {
    free(m->layer);
    memset(m, 0, sizeof *m);
}

// --- detection ---

int clip_text_detect(const char *path, clip_text_config *c, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    char p[NAME_MAX_LEN];
    int rc = -1;
    const char *what = "a CLIP text model";  // for detect_need's message
    const st_entry *te = detect_need(ix, CT ".embeddings.token_embedding.weight", 2, what, err, errlen);
    const st_entry *pe = te ? detect_need(ix, CT ".embeddings.position_embedding.weight", 2, what, err, errlen) : NULL;
    const st_entry *fc1 = pe ? detect_need(ix, CT ".encoder.layers.0.mlp.fc1.weight", 2, what, err, errlen) : NULL;
    if (fc1) {
        *c = CLIP_VIT_L14_TEXT;
        c->vocab = te->shape[0];
        c->hidden = te->shape[1];
        c->max_pos = pe->shape[0];
        c->mlp = fc1->shape[0];
        c->layers = 0;
        while (st_index_find(ix, name_fmt(p, CT ".encoder.layers.%lld.layer_norm1.weight", (long long)c->layers))) c->layers++;
        cJSON *j = cjson_beside(path);  // a full CLIPModel's config nests them under "text_config"
        int64_t heads = (int64_t)cjson_number(j, "text_config", "num_attention_heads", 0);
        int64_t eos = (int64_t)cjson_number(j, "text_config", "eos_token_id", -1);
        int act = cjson_clip_quick_gelu(j, "text_config", err, errlen);
        cJSON_Delete(j);
        c->heads = heads ? heads : c->hidden / 64;
        c->eos_token_id = eos >= 0 ? eos : 2;
        if (act) {
        } else if (c->heads <= 0 || c->hidden % c->heads)
            snprintf(err, errlen, "CLIP text width %lld does not split into %lld heads", (long long)c->hidden, (long long)c->heads);
        else rc = 0;
    }
    st_index_close(ix);
    return rc;
}

// --- forward ---


// the pooled position in one row of L host ids (the rule in clip_text.h)
static int64_t eos_in_row(const clip_text_config *c, const int32_t *row, int64_t L) {
    int64_t best = 0;
    for (int64_t j = 0; j < L; j++) {
        if (c->eos_token_id == 2) {  // legacy: first argmax of the ids
            if (row[j] > row[best]) best = j;
        } else if (row[j] == c->eos_token_id) {
            return j;
        }
    }
    return best;
}

// every row's pooled position: the ids are read to the host once (one transfer, not one per id)
static int64_t *eos_all(const clip_text_config *c, const cm_tensor *ids) {
    int64_t B = ids->shape[0], L = ids->shape[1];
    int32_t *h = malloc((size_t)(B * L) * sizeof *h);
    int64_t *e = malloc((size_t)B * sizeof *e);
    CM_CHECK(h && e, "clip_text", "out of host memory");
    tensor_copy_to_host(ids, CM_I32, h);
    for (int64_t b = 0; b < B; b++) e[b] = eos_in_row(c, h + b * L, L);
    free(h);
    return e;
}

int64_t clip_text_eos_index(const clip_text_config *c, const cm_tensor *ids, int64_t b) {
    int64_t *e = eos_all(c, ids), r = e[b];
    free(e);
    return r;
}

cm_tensor *clip_text_embed_tokens(const clip_text_model *m, cm_tensor *ids) {
    CM_CHECK(ids->dtype == CM_I32 && ids->ndim == 2, "clip_text_embed_tokens", "ids must be i32 [B, L]");
    return op_embedding(m->tok_emb, ids);
}

// the forward with the pooled rows' positions given on the host (eos [B], or NULL without pooling)
static cm_tensor *forward_eos(const clip_text_model *m, cm_tensor *tok, const int64_t *eos, cm_tensor **pooled) {
    const clip_text_config *c = &m->cfg;
    int64_t B = tok->shape[0], L = tok->shape[1], D = c->hidden;
    CM_CHECK(tok->ndim == 3 && tok->shape[2] == D, "clip_text_forward", "token embeddings must be [B, L, %lld]", (long long)D);
    CM_CHECK(L <= c->max_pos, "clip_text_forward", "sequence of %lld tokens exceeds the %lld positions (tokenize with "
             "max_length %lld)", (long long)L, (long long)c->max_pos, (long long)c->max_pos);
    // causal mask [L, L]: 0 on and below the diagonal, a large negative above (exp underflows to 0)
    float *mk = malloc((size_t)(L * L) * sizeof(float));
    CM_CHECK(mk, "clip_text_forward", "out of memory");
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < L; j++) mk[i * L + j] = j > i ? -1e9f : 0.0f;
    cm_tensor *mask = tensor_from_host(CM_F32, SHAPE(L, L), mk, tok->storage->dev);
    free(mk);
    cm_tensor *pos = op_slice(m->pos_emb, 0, 0, L);   // [L, D]
    cm_tensor *h = op_add(tok, pos);                  // [B, L, D]
    tensor_release(pos);
    for (int i = 0; i < c->layers; i++) {
        cm_tensor *nh = encoder_layer_fwd(&m->layer[i], h, c->heads, mask, encoder_quick_gelu);
        tensor_release(h);
        h = nh;
    }
    cm_tensor *out = lnorm_fwd(&m->final_ln, h);      // [B, L, D]
    tensor_release(h);
    tensor_release(mask);
    if (pooled) {  // row b * L + eos[b] of out as [B * L, D]: one gather for any batch size
        int32_t *at = malloc((size_t)B * sizeof *at);
        CM_CHECK(at, "clip_text_forward", "out of host memory for %lld rows", (long long)B);
        for (int64_t b = 0; b < B; b++) {
            CM_CHECK(b * L + eos[b] <= INT32_MAX, "clip_text_forward", "%lld x %lld tokens exceed 32-bit row indices",
                     (long long)B, (long long)L);
            at[b] = (int32_t)(b * L + eos[b]);
        }
        cm_tensor *idx = tensor_from_host(CM_I32, SHAPE(B), at, out->storage->dev);  // [B]
        cm_tensor *flat = op_reshape(out, SHAPE(B * L, D));                          // [B * L, D]
        *pooled = op_embedding(flat, idx);                                            // [B, D]
        free(at);
        tensor_release(flat);
        tensor_release(idx);
    }
    return out;
}

cm_tensor *clip_text_forward_embeds(const clip_text_model *m, cm_tensor *tok, const cm_tensor *ids, cm_tensor **pooled) {
    int64_t B = tok->shape[0], L = tok->ndim == 3 ? tok->shape[1] : 0;
    CM_CHECK(!pooled || (ids && ids->ndim == 2 && ids->shape[0] == B && ids->shape[1] == L), "clip_text_forward",
             "pooling needs the ids [B, L]");
    int64_t *eos = pooled ? eos_all(&m->cfg, ids) : NULL;
    cm_tensor *out = forward_eos(m, tok, eos, pooled);
    free(eos);
    return out;
}

cm_tensor *clip_text_forward(const clip_text_model *m, cm_tensor *ids, cm_tensor **pooled) {
    cm_tensor *tok = clip_text_embed_tokens(m, ids);
    cm_tensor *out = clip_text_forward_embeds(m, tok, ids, pooled);
    tensor_release(tok);
    return out;
}

cm_tensor *clip_text_encode_prompts(const clip_text_model *m, clip_tok *tok, int n, const char *const *texts,
                                    cm_tensor **hidden, char *err, size_t errlen) {
    int64_t L = m->cfg.max_pos;
    int32_t *ids = malloc((size_t)n * (size_t)L * sizeof(int32_t));  // [n, L]
    CM_CHECK(ids, "clip_text_encode_prompts", "out of memory");
    for (int b = 0; b < n; b++) {
        clip_tok_encode_padded(tok, texts[b], (int)L, ids + (size_t)b * (size_t)L, NULL);
        for (int64_t j = 0; j < L; j++) {
            int32_t id = ids[(size_t)b * (size_t)L + (size_t)j];
            if (id < 0 || id >= m->cfg.vocab) {
                snprintf(err, errlen, "prompt %d: token id %d is outside the CLIP vocabulary of %lld (tokenizer and "
                         "weights do not match)", b, id, (long long)m->cfg.vocab);
                free(ids);
                return NULL;
            }
        }
    }
    int64_t *eos = malloc((size_t)n * sizeof *eos);  // from the host ids: no read back from the device
    CM_CHECK(eos, "clip_text_encode_prompts", "out of memory");
    for (int b = 0; b < n; b++) eos[b] = eos_in_row(&m->cfg, ids + (size_t)b * (size_t)L, L);
    cm_tensor *it = tensor_from_host(CM_I32, SHAPE(n, L), ids, m->tok_emb->storage->dev);
    free(ids);
    cm_tensor *pooled = NULL, *te = clip_text_embed_tokens(m, it);
    cm_tensor *h = forward_eos(m, te, eos, &pooled);  // [n, L, D], [n, D]
    free(eos);
    tensor_release(te);
    tensor_release(it);
    if (hidden) *hidden = h;
    else tensor_release(h);
    return pooled;
}
