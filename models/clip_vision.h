// clip_vision.h — the CLIP vision tower with its projection (transformers CLIPVisionModelWithProjection,
// the image half of CLIPModel.get_image_features): patch embedding (no bias) and a class token,
// learned positions, pre_layrnorm, pre-LN layers (attention with biases, MLP fc1 -> quick_gelu ->
// fc2), post_layernorm on the class token, visual_projection (no bias). Used by evaluation (CLIP-I,
// CLIP-T), never trained.
// Weights by the published keys of a full CLIPModel: "vision_model.embeddings.{patch_embedding.weight,
// class_embedding,position_embedding.weight}", "vision_model.pre_layrnorm.*",
// "vision_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj,layer_norm1,layer_norm2,mlp.fc1,mlp.fc2}.*",
// "vision_model.post_layernorm.*", "visual_projection.weight"; and for the text side
// "text_projection.weight" (clip_text_projection_init).
// defines: clip_vision_config, clip_vision_model, CLIP_VIT_L14_VISION, clip_vision_* functions,
//          CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, clip_text_projection_init
#pragma once
#include <stddef.h>
#include "models/encoder_layer.h"
#include "models/layers.h"

typedef struct clip_vision_config {
    int64_t hidden;      // D
    int64_t layers;
    int64_t heads;
    int64_t mlp;
    int64_t patch;
    int64_t image_size;  // the position table holds 1 + (image_size / patch)^2 rows
    int64_t channels;
    int64_t proj;        // visual_projection's output (the joint embedding width)
    double eps;
} clip_vision_config;

// openai/clip-vit-large-patch14: 1024 / 24 layers / 16 heads / 4096 / patch 14 / 224 px / 768
extern const clip_vision_config CLIP_VIT_L14_VISION;
// CLIPImageProcessor's normalisation (OpenAI's)
extern const float CLIP_IMAGE_MEAN[3], CLIP_IMAGE_STD[3];

typedef struct clip_vision_model {
    clip_vision_config cfg;
    cm_tensor *patch_w;   // [D, C, p, p]
    cm_tensor *cls;       // [D]
    cm_tensor *pos;       // [1 + N, D]
    cm_lnorm pre_ln, post_ln;
    encoder_layer *layer; // [layers]
    cm_tensor *proj;      // [proj, D]
} clip_vision_model;

void clip_vision_init(clip_vision_model *m, const clip_vision_config *c, cm_params *ps);
void clip_vision_free(clip_vision_model *m);
// the config from a full CLIPModel's weights (shapes; heads from a config.json beside them, its
// "vision_config", else D/64). 0, or -1 with err naming the missing key.
int clip_vision_detect(const char *path, clip_vision_config *c, char *err, size_t errlen);
// x [B, C, S, S] normalised pixels (S = image_size) -> image_embeds [B, proj]
cm_tensor *clip_vision_image_embeds(const clip_vision_model *m, cm_tensor *x);
// "text_projection.weight" [proj, text width], no bias: text_embeds = pooled @ W^T
cm_tensor *clip_text_projection_init(cm_params *ps, int64_t text_hidden, int64_t proj);
