// sample.h — the FLUX flow-matching sampler with the InstantCharacter adapter (the released
// pipeline's loop): Euler steps on the shifted sigma schedule, the projector re-run at every
// step (its tokens depend on t), then the VAE decoder.
// defines: eval_sample_opts, eval_sigmas, eval_step_times, eval_euler_step, eval_sample
#pragma once
#include "models/vae.h"
#include "train/models.h"

typedef struct eval_sample_opts {
    int steps;          // Euler steps (the pipeline's default is 28)
    double guidance;    // FLUX guidance (3.5 in the pipeline)
    double ip_scale;    // the subject scale (0.9 in the released demo; 0 = plain FLUX)
    int width, height;  // output pixels, multiples of 2 * the VAE factor
    uint64_t seed;      // initial noise
} eval_sample_opts;

// sigmas[0..steps] of diffusers' FlowMatchEulerDiscreteScheduler as the FLUX pipeline sets it:
// linspace(1, 1/steps, steps), shifted by mu = calculate_shift(seq_len) (0.5 at 256 tokens to
// 1.15 at 4096), then a final 0
void eval_sigmas(int steps, int64_t seq_len, double *sigmas);

// the times of the step at sigma as the FLUX / InstantCharacter pipelines make them in dtype dt:
// t1000 = dt(f32(sigma) * 1000) (the projector's), sigma_model = dt(t1000 / 1000) (the
// transformer's, which scales it by 1000 again). bf16: 1 step in 4 at 1024^2 lands a bf16 step
// away from dt(dt(sigma) * 1000).
void eval_step_times(double sigma, cm_dtype dt, double *t1000, double *sigma_model);

// one Euler step of FlowMatchEulerDiscreteScheduler: x + (sigma_next - sigma) v, in x's dtype
cm_tensor *eval_euler_step(cm_tensor *x, cm_tensor *v, double sigma, double sigma_next);

// B images [B, 3, H, W] in [-1, 1] (a host f32 tensor): prompts [B]; references as the loader's
// per-tower views ([B, 5, 3, R, R] host f32 each, R = m->ref_size)
cm_tensor *eval_sample(ic_models *m, const vae_decoder *dec, int B, const char *const *prompts, const float *ref_siglip,
                       const float *ref_dino, const eval_sample_opts *o);
