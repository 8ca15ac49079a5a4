// bench_encoders.h — the frozen encoders of one training step, timed (`cameo bench blocks
// --encoders`): SigLIP and DINOv2 on the 5 views of each reference, the VAE encoder on the target,
// T5 and CLIP on a caption each, forward under no-grad with random weights, as step_encode runs them.
// defines: enc_size, enc_meas, bench_encoders.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "kernels/backend.h"
#include "models/clip_text.h"
#include "models/t5.h"
#include "models/vae.h"
#include "models/vision_features.h"

typedef enum { ENC_OFF = 0, ENC_TINY = 1, ENC_FULL = 2 } enc_size;

typedef struct enc_meas {
    bool measured;
    enc_size size;
    double vision, vae, text;  // seconds a step, median: SigLIP + DINOv2, VAE encoder, T5 + CLIP
    double weights;            // bytes of the five encoders' weights
    double peak;               // allocator peak above the weights and inputs during a step, bytes
    int64_t ref_side, img_side, t5_len;
    char note[256];            // why not measured, when not
} enc_meas;

// the five encoders' configurations at a size (ENC_TINY: small towers of the same kinds)
typedef struct enc_set {
    siglip_config sc;
    dino_config dc;
    vision_feat_config vfc;
    vae_config vc;
    t5_config tc;
    clip_text_config cc;
} enc_set;
enc_set enc_configs(enc_size size);

// B samples: references of ref_side² (5 views each), targets of img_side², t5_len T5 tokens (CLIP:
// 77). ENC_FULL: SigLIP so400m, DINOv2-giant, FLUX.1-dev's VAE encoder, T5-XXL, CLIP-L; ENC_TINY:
// small towers through the same calls (the CPU's test of this code). Skipped, with m->note, when
// the device has less free memory than the weights and their activations want.
void bench_encoders(cm_device dev, cm_dtype dt, enc_size size, int64_t B, int64_t ref_side, int64_t img_side,
                    int64_t t5_len, int warm, int iters, uint64_t seed, enc_meas *m);
