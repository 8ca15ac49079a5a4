// dinov2.h — the DINOv2 vision tower (transformers Dinov2Model, spec §2.3): patch conv + CLS,
// the trained position table bicubically resized to the input's patch grid, pre-LN layers with
// LayerScale on both branches, a SwiGLU FFN (giant) or a GELU MLP (small configs), final
// layernorm. Frozen in training; its forward is differentiable.
// Weights by the published keys: "embeddings.cls_token", "embeddings.position_embeddings",
// "embeddings.patch_embeddings.projection.weight", "encoder.layer.N.attention.attention.query.weight",
// "encoder.layer.N.attention.output.dense.weight", "encoder.layer.N.layer_scale1.lambda1",
// "encoder.layer.N.mlp.weights_in.weight" (SwiGLU, [2H, D] = cat(gate, up)) or "mlp.fc1.weight", ...
// defines: dino_config, dino_layer, dino_model, DINOV2_GIANT, dino_* functions.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "models/layers.h"

typedef struct dino_config {
    int64_t hidden;      // D
    int64_t layers;
    int64_t heads;
    int64_t mlp_hidden;  // H: SwiGLU hidden (dino_swiglu_hidden) or int(D * mlp_ratio)
    int64_t patch;
    int64_t image_size;  // trained size: the position table holds (image_size / patch)^2 + 1 rows
    int64_t channels;
    bool swiglu;         // use_swiglu_ffn
    double eps;          // LayerNorm eps
} dino_config;

// facebook/dinov2-giant: 1536 / 40 layers / 24 heads (64), SwiGLU 4096, patch 14, trained 518 (37x37)
extern const dino_config DINOV2_GIANT;

// transformers' Dinov2SwiGLUFFN width: ((int(int(D * ratio) * 2 / 3) + 7) // 8) * 8
int64_t dino_swiglu_hidden(int64_t hidden, double mlp_ratio);

typedef struct dino_layer {
    cm_lnorm norm1, norm2;
    cm_linear q, k, v, o;       // attention.attention.{query,key,value}, attention.output.dense
    cm_linear fc_in, fc_out;    // mlp.weights_in / weights_out (SwiGLU) or mlp.fc1 / fc2
    cm_tensor *ls1, *ls2;       // layer_scale{1,2}.lambda1 [D]
} dino_layer;

typedef struct dino_model {
    dino_config cfg;
    cm_tensor *cls;             // [1, 1, D]
    cm_tensor *mask_token;      // [1, D]: in the published files, unused here (no masking)
    cm_tensor *pos;             // [1, 1 + Nt, D]
    cm_tensor *patch_w, *patch_b;  // [D, C, p, p], [D]
    dino_layer *layer;          // [layers]
    cm_lnorm ln;                // final layernorm
} dino_model;

int64_t dino_param_count(const dino_config *c);  // no allocation
void dino_init(dino_model *m, const dino_config *c, cm_params *ps);
void dino_free(dino_model *m);  // the tensors belong to ps
// the config from a weights file or folder's tensor shapes (SwiGLU from "mlp.weights_in"); heads
// from a config.json beside the weights, else the "num_attention_heads" metadata, else D/64.
int dino_detect(const char *path, dino_config *c, char *err, size_t errlen);

// x [B, C, H, W] ImageNet-normalised pixels, any size of at least one patch (the position table
// is resized to (H/p, W/p) as transformers does: bicubic, align_corners=False, in f32).
// Returns last_hidden_state [B, 1 + N, D] (CLS first, after the final layernorm). For j < n_hidden,
// hidden[j] gets hidden_states[idx[j]] [B, 1 + N, D] (0 = embeddings, i = output of layer i).
cm_tensor *dino_forward(const dino_model *m, cm_tensor *x, int n_hidden, const int *idx, cm_tensor **hidden);
