// step.h — one InstantCharacter training micro-step (spec §4.2): frozen encoders without a tape,
// σ and noise from a counter-based RNG, projector + FLUX with the IP branch, rectified-flow loss.
// defines: step_opts, step_times, step_batch, step_batch_upload, step_forward
#pragma once
#include "data/loader.h"
#include "train/models.h"

typedef enum { STEP_T_LOGIT_NORMAL = 0, STEP_T_FLUX_SHIFT = 1, STEP_T_UNIFORM = 2 } step_tsample;
typedef enum { STEP_W_NONE = 0, STEP_W_SIGMA_SQRT = 1, STEP_W_COSMAP = 2 } step_weighting;

typedef struct step_opts {
    double ip_scale;            // scale of the IP branch in every block (1.0 in training)
    double guidance;            // FLUX guidance value (1.0 in training, as the peers)
    step_tsample tsample;
    double ln_mean, ln_std;     // logit-normal parameters
    double shift_base, shift_max;  // flux_shift: mu from shift_base (256 tokens) to shift_max (4096 tokens)
    step_weighting weighting;
    int recompute;              // FLUX blocks under recompute scopes, from the first: 0 none,
                                // FLUX_RECOMPUTE_ALL every one (flux_forward)
    uint64_t seed;              // run seed: noise and σ are a pure function of (seed, step, sample id)
    bool vae_sample;            // the target latent: a draw from the VAE posterior (keyed as the noise), else its mean
} step_opts;

typedef struct step_times {  // seconds, accumulated
    double encoders, forward;
    double vision, vae, text;  // parts of encoders: SigLIP + DINOv2 on 5 views, the VAE encoder, T5 + CLIP
} step_times;

// One micro-batch on the model's device: what the step reads of a loader batch, in memory of its
// own (the loader recycles its buffers at the next loader_next), so the trainer can take and
// upload batch j+1 while the device still runs step j's backward.
typedef struct step_batch {
    int B, H, W, R;
    cm_tensor *target;                     // [B, 3, H, W] model device and dtype; NULL with a latent cache
    cm_tensor *moments;                    // with a latent cache (model.latent_cache): [B, 2 Cl, H/f, W/f] the VAE's mean and
                                           // logvar, read with the batch; else NULL
    cm_tensor *views_siglip, *views_dino;  // [5B, 3, R, R]: the B full views, then sample b's crops at B + 4b + i;
                                           // NULL with a reference cache
    vision_features feat;                  // with a reference cache (model.ref_cache): read with the batch; else NULL
    char **captions;                       // [B] own copies
    int64_t *sample_ids;                   // [B]
    cm_tensor *txt, *pooled;               // with a text cache (model.text_cache): [B, Lt, D], [B, P] read with the batch; else NULL
} step_batch;
// copies b's images to the model's device (asynchronously where the device allows) and the rest to
// the host; with a text cache, the captions' rows too, with a reference cache the references'
// features instead of their views, and with a latent cache the targets' VAE moments instead of pixels (read here, when the feed takes the batch ahead during the step
// before, not on the step's own critical path)
void step_batch_upload(ic_models *m, const loader_batch *b, step_batch *out);
void step_batch_release(step_batch *sb);  // zeroes it; safe on a zeroed one

// forward of one micro-batch; returns the scalar loss on the tape (call autograd_backward on it).
// σ [B] and ε [B, N, 4 Cl] (packed-latent shape) may be given instead of sampled (either may be
// NULL: sampled from (seed, step, sample id)) — the deterministic core, for parity tests
cm_tensor *step_forward_batch(ic_models *m, const step_batch *b, const step_opts *o, const float *sigma,
                              const float *eps, uint64_t step, step_times *t);
// the two halves of step_forward_batch: the frozen encoders' outputs for a micro-batch (no tape),
// then the loss at σ / ε from them — the validation encodes once and takes the loss at every σ
typedef struct step_encoded {
    vision_features f;        // the projector's three feature sets
    cm_tensor *x0;            // [B, N, 4 Cl] packed, scaled target latents
    cm_tensor *txt, *pooled;  // T5 states [B, Lt, 4096-ish], CLIP pooled [B, 768-ish]
    int gh, gw;               // the latent grid in 2x2 patches
} step_encoded;
void step_encode(ic_models *m, const step_batch *b, step_encoded *e, step_times *t);  // t may be NULL; the latent's mean
// the same with o->vae_sample: the target latent a posterior draw keyed by (o->seed, step, sample id)
void step_encode_at(ic_models *m, const step_batch *b, const step_opts *o, uint64_t step, step_encoded *e, step_times *t);
void step_encoded_release(step_encoded *e);
cm_tensor *step_loss(ic_models *m, const step_batch *b, const step_encoded *e, const step_opts *o, const float *sigma,
                     const float *eps, uint64_t step, step_times *t);
// the same from a loader batch (uploaded, then released; the upload counts as encoder time)
cm_tensor *step_forward(ic_models *m, const loader_batch *b, const step_opts *o, uint64_t step, step_times *t);
cm_tensor *step_forward_with(ic_models *m, const loader_batch *b, const step_opts *o, const float *sigma,
                             const float *eps, uint64_t step, step_times *t);
// the InstantCharacter features of B references given as the loader's per-tower views
// ([B, 5, 3, R, R] host f32 each: full, TL, TR, BL, BR), on the model's device and dtype
void step_reference_features(ic_models *m, const float *ref_siglip, const float *ref_dino, int B, int R, vision_features *f);
// the noise and σ key of micro-batch a of optimizer step `step`: the step in the low 40 bits, a above
// (the step itself at grad_accum 1). step·grad_accum + a repeated keys across stages whose grad_accum
// falls (4 then 1: step 150 drew step 37's 3rd micro-batch's noise and σ for the same samples)
static inline uint64_t step_micro_key(uint64_t step, int a) { return step ^ ((uint64_t)a << 40); }
// σ for sample `id` at `step` (exposed for tests): in (0, 1)
double step_sigma(const step_opts *o, uint64_t step, int64_t id, int64_t seq_len);
