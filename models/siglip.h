// siglip.h — the SigLIP vision tower (transformers SiglipVisionModel, spec §2.3): valid patch
// conv, learned position table (no CLS), pre-LN encoder layers with a gelu_pytorch_tanh MLP,
// post_layernorm. Frozen in training, but its forward is differentiable (inputs and weights).
// Weights by the published keys: "vision_model.embeddings.patch_embedding.weight",
// "vision_model.encoder.layers.N.self_attn.q_proj.weight", "vision_model.post_layernorm.*", ...
// The attention-pooling head ("vision_model.head.*") and a full SiglipModel's text tower are not
// used by InstantCharacter: load with strict=false and they are counted as extra keys.
// defines: siglip_config, siglip_layer, siglip_model, SIGLIP_SO400M_P14_384, siglip_* functions.
#pragma once
#include <stddef.h>
#include "models/encoder_layer.h"
#include "models/layers.h"

typedef struct siglip_config {
    int64_t hidden;      // D
    int64_t layers;
    int64_t heads;
    int64_t mlp;         // intermediate size
    int64_t patch;
    int64_t image_size;  // trained size: the position table holds (image_size / patch)^2 rows
    int64_t channels;
    double eps;          // LayerNorm eps
} siglip_config;

// google/siglip-so400m-patch14-384: 1152 / 27 layers / 16 heads (72) / 4304, patch 14, 384 -> 27x27
extern const siglip_config SIGLIP_SO400M_P14_384;

typedef encoder_layer siglip_layer;  // layer_norm1/2, self_attn.{q,k,v,out}_proj, mlp.fc1/2

typedef struct siglip_model {
    siglip_config cfg;
    cm_tensor *patch_w;     // [D, C, p, p]
    cm_tensor *patch_b;     // [D]
    cm_tensor *pos;         // [N, D] (nn.Embedding weight)
    siglip_layer *layer;    // [layers]
    cm_lnorm post_ln;
} siglip_model;

// parameters of the tower as built here (no pooling head), without allocating anything
int64_t siglip_param_count(const siglip_config *c);
// registers every weight in ps under its published name ("vision_model." prefix)
void siglip_init(siglip_model *m, const siglip_config *c, cm_params *ps);
void siglip_free(siglip_model *m);  // the tensors belong to ps
// the config from a weights file or folder's tensor shapes; heads from a config.json beside the
// weights, else the file's "num_attention_heads" metadata, else 16 for width 1152, else D/64.
int siglip_detect(const char *path, siglip_config *c, char *err, size_t errlen);

// x [B, C, H, W] normalised pixels ((x/255 - 0.5) / 0.5) with (H/p, W/p) the trained grid.
// Returns last_hidden_state [B, N, D] (after post_layernorm). For j < n_hidden, hidden[j] gets
// hidden_states[idx[j]] [B, N, D]: 0 is the embedding output, i the output of layer i (1-based)
// before any final LN. The caller releases all of them.
// 0 when x is [B, C, H, W] with the trained patch grid, else -1 and a message naming the sizes
// (siglip_forward stops with it)
int siglip_check_pixels(const siglip_model *m, const cm_tensor *x, char *err, size_t errlen);
cm_tensor *siglip_forward(const siglip_model *m, cm_tensor *x, int n_hidden, const int *idx, cm_tensor **hidden);
