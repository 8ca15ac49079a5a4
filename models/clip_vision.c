// clip_vision.c — the CLIP vision tower: init by published names, shape detection, forward.
#include "models/clip_vision.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/ops.h"
#include "models/config_json.h"
#include "models/detect.h"
#include "models/safetensors.h"

const clip_vision_config CLIP_VIT_L14_VISION = {
    .hidden = 1024, .layers = 24, .heads = 16, .mlp = 4096, .patch = 14, .image_size = 224, .channels = 3, .proj = 768,
    .eps = 1e-5,
};
const float CLIP_IMAGE_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float CLIP_IMAGE_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

#define CV "vision_model"

void clip_vision_init(clip_vision_model *m, const clip_vision_config *c, cm_params *ps) {
    char p[NAME_MAX_LEN];
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    int64_t D = c->hidden, g = c->image_size / c->patch;
    m->patch_w = params_new(ps, CV, "embeddings.patch_embedding.weight", SHAPE(D, c->channels, c->patch, c->patch), CM_INIT_LINEAR_DEFAULT);
    m->cls = params_new(ps, CV, "embeddings.class_embedding", SHAPE(D), CM_INIT_NORMAL);
    m->pos = params_new(ps, CV, "embeddings.position_embedding.weight", SHAPE(1 + g * g, D), CM_INIT_NORMAL);
    m->pre_ln = lnorm_init(ps, CV ".pre_layrnorm", D, c->eps, true);  // sic: the published key
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    CM_CHECK(m->layer, "clip_vision_init", "out of memory for %lld layers", (long long)c->layers);
    for (int i = 0; i < c->layers; i++)
        encoder_layer_init(&m->layer[i], ps, name_fmt(p, CV ".encoder.layers.%d", i), D, c->mlp, c->eps);
    m->post_ln = lnorm_init(ps, CV ".post_layernorm", D, c->eps, true);
    m->proj = params_new(ps, NULL, "visual_projection.weight", SHAPE(c->proj, D), CM_INIT_LINEAR_DEFAULT);
}

cm_tensor *clip_text_projection_init(cm_params *ps, int64_t text_hidden, int64_t proj) {
    return params_new(ps, NULL, "text_projection.weight", SHAPE(proj, text_hidden), CM_INIT_LINEAR_DEFAULT);
}

void clip_vision_free(clip_vision_model *m) {
    free(m->layer);
    memset(m, 0, sizeof *m);
}

int clip_vision_detect(const char *path, clip_vision_config *c, char *err, size_t errlen) {
    st_index *ix = st_index_open(path, err, errlen);
    if (!ix) return -1;
    char p[NAME_MAX_LEN];
    int rc = -1;
    const char *what = "a CLIP model with its vision tower (a full CLIPModel)";
    const st_entry *pw = detect_need(ix, CV ".embeddings.patch_embedding.weight", 4, what, err, errlen);
    const st_entry *pos = pw ? detect_need(ix, CV ".embeddings.position_embedding.weight", 2, what, err, errlen) : NULL;
    const st_entry *fc1 = pos ? detect_need(ix, CV ".encoder.layers.0.mlp.fc1.weight", 2, what, err, errlen) : NULL;
    const st_entry *vp = fc1 ? detect_need(ix, "visual_projection.weight", 2, what, err, errlen) : NULL;
    if (vp) {
        *c = CLIP_VIT_L14_VISION;
        c->hidden = pw->shape[0];
        c->channels = pw->shape[1];
        c->patch = pw->shape[2];
        c->mlp = fc1->shape[0];
        c->proj = vp->shape[0];
        int64_t n = pos->shape[0] - 1, g = 0;
        while ((g + 1) * (g + 1) <= n) g++;
        c->image_size = g * c->patch;
        c->layers = 0;
        while (st_index_find(ix, name_fmt(p, CV ".encoder.layers.%lld.layer_norm1.weight", (long long)c->layers))) c->layers++;
        cJSON *j = cjson_beside(path);
        c->heads = (int64_t)cjson_number(j, "vision_config", "num_attention_heads", 0);
        double eps = cjson_number(j, "vision_config", "layer_norm_eps", 0);
        int act = cjson_clip_quick_gelu(j, "vision_config", err, errlen);
        cJSON_Delete(j);
        if (eps > 0) c->eps = eps;
        if (!c->heads) c->heads = c->hidden / 64;
        if (act) {
        } else if (g * g != n) snprintf(err, errlen, "%s.embeddings.position_embedding.weight: %lld rows is not 1 + a square grid", CV, (long long)(n + 1));
        else if (c->heads <= 0 || c->hidden % c->heads) snprintf(err, errlen, "CLIP vision width %lld does not split into %lld heads", (long long)c->hidden, (long long)c->heads);
        else rc = 0;
    }
    st_index_close(ix);
    return rc;
}

cm_tensor *clip_vision_image_embeds(const clip_vision_model *m, cm_tensor *x) {
    const clip_vision_config *c = &m->cfg;
    char b[96];
    if (x->ndim != 4 || x->shape[1] != c->channels || x->shape[2] != c->image_size || x->shape[3] != c->image_size)
        cm_die("clip_vision", "pixels must be [B, %lld, %lld, %lld], got %s", (long long)c->channels, (long long)c->image_size,
               (long long)c->image_size, tensor_shape_str(x, b, sizeof b));
    int64_t B = x->shape[0], g = c->image_size / c->patch, N = g * g, D = c->hidden;
    cm_tensor *pe = op_conv2d(x, m->patch_w, NULL, (int)c->patch, 0);  // [B, D, g, g]
    cm_tensor *pr = op_reshape(pe, SHAPE(B, D, N));
    cm_tensor *pt = op_transpose(pr, 1, 2);                           // [B, N, D]
    cm_tensor *c1 = op_reshape(m->cls, SHAPE(1, 1, D));
    cm_tensor *ce = op_expand(c1, SHAPE(B, 1, D));
    cm_tensor *tok = op_concat(2, (cm_tensor *[]){ce, pt}, 1);        // [B, 1 + N, D]: the class token first
    cm_tensor *e = op_add(tok, m->pos);
    cm_tensor *h = lnorm_fwd(&m->pre_ln, e);
    cm_tensor *tmp[] = {pe, pr, pt, c1, ce, tok, e};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    for (int i = 0; i < c->layers; i++) {
        cm_tensor *nh = encoder_layer_fwd(&m->layer[i], h, c->heads, NULL, encoder_quick_gelu);
        tensor_release(h);
        h = nh;
    }
    cm_tensor *cl = op_slice(h, 1, 0, 1), *cr = op_reshape(cl, SHAPE(B, D));  // pooled: the class token
    cm_tensor *pooled = lnorm_fwd(&m->post_ln, cr);
    cm_tensor *out = op_linear(pooled, m->proj, NULL);                  // [B, proj]
    cm_tensor *tmp2[] = {h, cl, cr, pooled};
    for (size_t i = 0; i < sizeof tmp2 / sizeof *tmp2; i++) tensor_release(tmp2[i]);
    return out;
}
