// vision_features.h — InstantCharacter's image features from the two frozen towers (spec §2.4):
// the low-resolution view and the four crops of the 2x view, each through SigLIP and DINOv2.
//   low_res_deep    [B, N, Ds+Dd]   = cat(siglip_deep(low), dino_deep(low)[:, 1:])
//   low_res_shallow [B, 3N, Ds+Dd]  = cat(cat_i siglip_hidden_i(low), cat_i dino_hidden_i(low)[:, 1:])
//   high_res_deep   [B, 4N, Ds+Dd]  = crops TL, TR, BL, BR, each in raster order
// Full size: N = 729, Ds + Dd = 1152 + 1536 = 2688, shallow layers SigLIP (7, 13, 26), DINOv2 (9, 19, 29).
// defines: vision_feat_config, VISION_FEAT_IC, vision_features, vision_features_* functions.
#pragma once
#include "models/dinov2.h"
#include "models/siglip.h"

#define VISION_MAX_SHALLOW 8

typedef struct vision_feat_config {
    int n_shallow;                          // 3
    int siglip_layers[VISION_MAX_SHALLOW];  // hidden_states indices (1-based layer outputs)
    int dino_layers[VISION_MAX_SHALLOW];
} vision_feat_config;

extern const vision_feat_config VISION_FEAT_IC;  // {7, 13, 26} and {9, 19, 29}

typedef struct vision_features {
    cm_tensor *low_res_deep;     // [B, N, Ds+Dd]
    cm_tensor *low_res_shallow;  // [B, n_shallow*N, Ds+Dd]
    cm_tensor *high_res_deep;    // [B, 4N, Ds+Dd]
} vision_features;

// low [B, 3, S, S] and high [B, 3, 2S, 2S]: RGB in [0, 1], already resized (bicubic) by the data
// pipeline. Each tower gets its own normalisation (SigLIP: (x - 0.5) / 0.5; DINOv2: ImageNet
// mean / std), and the 5 views of a sample go through each tower as one batch of 5B.
// Differentiable; training calls it under no-grad. The towers' patch grids must agree.
void vision_features_compute(const siglip_model *sig, const dino_model *dino, const vision_feat_config *fc,
                             cm_tensor *low, cm_tensor *high, vision_features *out);
// the same from view batches already normalised per tower (the data loader's output):
// vs (SigLIP-normalised) and vd (DINOv2-normalised) [5B, 3, S, S], rows 0..B-1 the full views,
// then sample b's crops at B + 4b + (TL, TR, BL, BR)
void vision_features_from_views(const siglip_model *sig, const dino_model *dino, const vision_feat_config *fc,
                                int64_t B, cm_tensor *vs, cm_tensor *vd, vision_features *out);
void vision_features_release(vision_features *f);  // releases the three and sets them NULL
