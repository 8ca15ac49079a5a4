// siglip.c — the SigLIP vision tower: init by published names, shape detection, forward.
#include "models/siglip.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/config_json.h"
#include "models/detect.h"
#include "models/safetensors.h"

const siglip_config SIGLIP_SO400M_P14_384 = {
    .hidden = 1152, .layers = 27, .heads = 16, .mlp = 4304, .patch = 14, .image_size = 384,
    .channels = 3, .eps = 1e-6,
};

#define SIG_PREFIX "vision_model"

int64_t siglip_param_count(const siglip_config *c) {
    int64_t D = c->hidden, M = c->mlp, g = c->image_size / c->patch;
    int64_t emb = D * c->channels * c->patch * c->patch + D + g * g * D;
    int64_t layer = 2 * 2 * D + 4 * (D * D + D) + (D * M + M) + (M * D + D);
    return emb + c->layers * layer + 2 * D;
}

void siglip_init(siglip_model *m, const siglip_config *c, cm_params *ps) {
    char p[NAME_MAX_LEN];
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    int64_t D = c->hidden, g = c->image_size / c->patch;
    m->patch_w = params_new(ps, SIG_PREFIX, "embeddings.patch_embedding.weight", SHAPE(D, c->channels, c->patch, c->patch), CM_INIT_LINEAR_DEFAULT);
    m->patch_b = params_new(ps, SIG_PREFIX, "embeddings.patch_embedding.bias", SHAPE(D), CM_INIT_ZEROS);
    m->pos = params_new(ps, SIG_PREFIX, "embeddings.position_embedding.weight", SHAPE(g * g, D), CM_INIT_NORMAL);
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    CM_CHECK(m->layer, "siglip_init", "out of memory for %lld layers", (long long)c->layers);
    for (int i = 0; i < c->layers; i++) {
        encoder_layer_init(&m->layer[i], ps, name_fmt(p, SIG_PREFIX ".encoder.layers.%d", i), D, c->mlp, c->eps);
    }
    m->post_ln = lnorm_init(ps, SIG_PREFIX ".post_layernorm", D, c->eps, true);
}

void siglip_free(siglip_model *m) {
    free(m->layer);
    memset(m, 0, sizeof *m);
}

// --- detection from shapes ---

int siglip_detect(const char *path, siglip_config *c, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    char p[NAME_MAX_LEN];
    int rc = -1;
    const char *what = "a SigLIP vision tower";  // for detect_need's message
    const st_entry *pw = detect_need(ix, SIG_PREFIX ".embeddings.patch_embedding.weight", 4, what, err, errlen);
    const st_entry *pos = pw ? detect_need(ix, SIG_PREFIX ".embeddings.position_embedding.weight", 2, what, err, errlen) : NULL;
    const st_entry *fc1 = pos ? detect_need(ix, SIG_PREFIX ".encoder.layers.0.mlp.fc1.weight", 2, what, err, errlen) : NULL;
    if (fc1) {
        *c = SIGLIP_SO400M_P14_384;
        c->hidden = pw->shape[0];
        c->channels = pw->shape[1];
        c->patch = pw->shape[2];
        c->mlp = fc1->shape[0];
        int64_t n = pos->shape[0], g = 0;
        while ((g + 1) * (g + 1) <= n) g++;
        // the input side: any size whose valid convolution gives the g x g grid (g*patch .. +patch-1);
        // config.json's image_size where it says (so400m-patch14-384: 384, of which the convolution
        // drops the last 6 px), else the published model's for its geometry, else g * patch
        cJSON *jc = cjson_beside(path);
        int64_t is = (int64_t)cjson_number(jc, "vision_config", "image_size", cjson_number(jc, NULL, "image_size", 0));
        cJSON_Delete(jc);
        const siglip_config *pub = &SIGLIP_SO400M_P14_384;
        if (is <= 0 || is / c->patch != g) is = c->patch == pub->patch && g == pub->image_size / pub->patch ? pub->image_size : g * c->patch;
        c->image_size = is;
        c->layers = 0;
        while (st_index_find(ix, name_fmt(p, SIG_PREFIX ".encoder.layers.%lld.layer_norm1.weight", (long long)c->layers))) c->layers++;
        const st_file *f = st_index_shard_of(ix, SIG_PREFIX ".embeddings.patch_embedding.weight");
        const char *mh = f ? st_meta(f, "num_attention_heads") : NULL;
        cJSON *j = cjson_beside(path);  // a full SiglipConfig nests it under "vision_config"
        c->heads = (int64_t)cjson_number(j, "vision_config", "num_attention_heads", 0);
        cJSON_Delete(j);
        if (!c->heads && mh) c->heads = atoll(mh);
        if (!c->heads) c->heads = c->hidden == 1152 ? 16 : c->hidden / 64;
        if (g * g != n) snprintf(err, errlen, "%s.embeddings.position_embedding.weight: %lld rows is not a square grid", SIG_PREFIX, (long long)n);
        else if (c->heads <= 0 || c->hidden % c->heads) snprintf(err, errlen, "SigLIP width %lld does not split into %lld heads", (long long)c->hidden, (long long)c->heads);
        else rc = 0;
    }
    st_index_close(ix);
    return rc;
}

// --- forward ---

static cm_tensor *gelu_tanh(cm_tensor *x) { return op_gelu(x, true); }  // gelu_pytorch_tanh

static void keep_hidden(int n_hidden, const int *idx, cm_tensor **hidden, int layer, cm_tensor *h) {
    for (int j = 0; j < n_hidden; j++)
        if (idx[j] == layer) hidden[j] = tensor_retain(h);
}

int siglip_check_pixels(const siglip_model *m, const cm_tensor *x, char *err, size_t errlen) {
    const siglip_config *c = &m->cfg;
    char buf[96];
    if (x->ndim != 4 || x->shape[1] != c->channels) {
        snprintf(err, errlen, "SigLIP pixels must be [B, %lld, H, W], got %s", (long long)c->channels, tensor_shape_str(x, buf, sizeof buf));
        return -1;
    }
    int64_t gh = x->shape[2] / c->patch, gw = x->shape[3] / c->patch, g = c->image_size / c->patch;
    if (gh != g || gw != g) {
        snprintf(err, errlen, "a %lldx%lld image gives a %lldx%lld patch grid; this SigLIP tower's position table is %lldx%lld "
                 "(resize the image to %lldx%lld)", (long long)x->shape[2], (long long)x->shape[3], (long long)gh,
                 (long long)gw, (long long)g, (long long)g, (long long)c->image_size, (long long)c->image_size);
        return -1;
    }
    return 0;
}

cm_tensor *siglip_forward(const siglip_model *m, cm_tensor *x, int n_hidden, const int *idx, cm_tensor **hidden) {
    const siglip_config *c = &m->cfg;
    char err[320];
    if (siglip_check_pixels(m, x, err, sizeof err)) cm_die("siglip_forward", "%s", err);
    for (int j = 0; j < n_hidden; j++) {
        CM_CHECK(idx[j] >= 0 && idx[j] <= c->layers, "siglip_forward", "hidden state %d out of range 0..%lld", idx[j], (long long)c->layers);
        hidden[j] = NULL;
    }
    int64_t B = x->shape[0], gh = x->shape[2] / c->patch, gw = x->shape[3] / c->patch;
    int64_t D = c->hidden, N = gh * gw;
    cm_tensor *pe = op_conv2d(x, m->patch_w, m->patch_b, (int)c->patch, 0);  // [B, D, gh, gw] (valid)
    cm_tensor *pr = op_reshape(pe, SHAPE(B, D, N));
    cm_tensor *pt = op_transpose(pr, 1, 2);                                   // [B, N, D]
    cm_tensor *h = op_add(pt, m->pos);                                        // + [N, D]
    tensor_release(pe);
    tensor_release(pr);
    tensor_release(pt);
    keep_hidden(n_hidden, idx, hidden, 0, h);
    for (int i = 0; i < c->layers; i++) {
        cm_tensor *nh = encoder_layer_fwd(&m->layer[i], h, c->heads, NULL, gelu_tanh);
        tensor_release(h);
        h = nh;
        keep_hidden(n_hidden, idx, hidden, i + 1, h);
    }
    cm_tensor *out = lnorm_fwd(&m->post_ln, h);                               // [B, N, D]
    tensor_release(h);
    return out;
}
