// step.h — one InstantCharacter training micro-step (spec §4.2): frozen encoders without a tape,
// σ and noise from a counter-based RNG, projector + FLUX with the IP branch, rectified-flow loss.
// defines: step_opts, step_times, step_forward
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
    bool recompute;             // per-block recompute scopes in FLUX
    uint64_t seed;              // run seed: noise and σ are a pure function of (seed, step, sample id)
} step_opts;

typedef struct step_times { double encoders, forward; } step_times;  // seconds, accumulated

// forward of one micro-batch; returns the scalar loss on the tape (call autograd_backward on it)
cm_tensor *step_forward(ic_models *m, const loader_batch *b, const step_opts *o, uint64_t step, step_times *t);
// the same with σ [B] and ε [B, N, 4 Cl] (packed-latent shape) given instead of sampled (either
// may be NULL: sampled as above) — the deterministic core, for parity tests against PyTorch
cm_tensor *step_forward_with(ic_models *m, const loader_batch *b, const step_opts *o, const float *sigma,
                             const float *eps, uint64_t step, step_times *t);
// the InstantCharacter features of B references given as the loader's per-tower views
// ([B, 5, 3, R, R] host f32 each: full, TL, TR, BL, BR), on the model's device and dtype
void step_reference_features(ic_models *m, const float *ref_siglip, const float *ref_dino, int B, int R, vision_features *f);
// σ for sample `id` at `step` (exposed for tests): in (0, 1)
double step_sigma(const step_opts *o, uint64_t step, int64_t id, int64_t seq_len);
