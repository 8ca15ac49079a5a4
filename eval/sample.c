// sample.c — see sample.h
#include "eval/sample.h"
#include <math.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "train/step.h"

void eval_sigmas(int steps, int64_t seq_len, double *sigmas) {
    double mu = 0.5 + (1.15 - 0.5) * ((double)seq_len - 256.0) / (4096.0 - 256.0), e = exp(mu);
    for (int i = 0; i < steps; i++) {
        double s = steps > 1 ? 1.0 + (1.0 / steps - 1.0) * i / (steps - 1) : 1.0;
        sigmas[i] = e / (e + (1.0 / s - 1.0));
    }
    sigmas[steps] = 0.0;
}

// x as a tensor of dtype dt holds it (bf16: round to nearest even through f32)
static float eval_round(float x, cm_dtype dt) { return dt == CM_BF16 ? bf16_to_f32(f32_to_bf16(x)) : x; }

void eval_step_times(double sigma, cm_dtype dt, double *t1000, double *sigma_model) {
    // the scheduler's timesteps are f32 sigmas * 1000; the pipeline casts them to the latents'
    // dtype, hands that to the projector and divides it by 1000 (in that dtype) for the transformer
    float t = eval_round((float)sigma * 1000.0f, dt);
    *t1000 = t;
    *sigma_model = eval_round(t / 1000.0f, dt);
}

cm_tensor *eval_euler_step(cm_tensor *x, cm_tensor *v, double sigma, double sigma_next) {
    cm_tensor *dv = op_scale(v, sigma_next - sigma), *nx = op_add(x, dv);  // Euler: x += (σ' - σ) v
    tensor_release(dv);
    return nx;
}

cm_tensor *eval_sample(ic_models *m, const vae_decoder *dec, int B, const char *const *prompts, const float *ref_siglip,
                       const float *ref_dino, const eval_sample_opts *o) {
    int f = m->vae_factor;
    CM_CHECK(o->steps >= 1 && o->width > 0 && o->height > 0 && o->width % (2 * f) == 0 && o->height % (2 * f) == 0,
             "eval_sample", "%d steps at %dx%d (sizes must be multiples of %d)", o->steps, o->width, o->height, 2 * f);
    autograd_no_grad_push();
    cm_tensor *txt, *pooled;
    ic_text_encode(&m->text, prompts, B, m->dev, m->dtype, &txt, &pooled);
    vision_features feats = {0};
    step_reference_features(m, ref_siglip, ref_dino, B, m->ref_size, &feats);

    int64_t Cl = m->vae.cfg.latent, lh = o->height / f, lw = o->width / f;
    cm_tensor *z = tensor_empty(m->dtype, SHAPE(B, Cl, lh, lw), m->dev);  // the initial noise
    tensor_fill_randn(z, o->seed, 1.0);
    cm_tensor *x = flux_pack_latents(z);                                   // [B, N, 4 Cl]
    tensor_release(z);
    int gh = (int)lh / 2, gw = (int)lw / 2;
    double sig[1025];
    CM_CHECK(o->steps <= 1024, "eval_sample", "%d steps (at most 1024)", o->steps);
    eval_sigmas(o->steps, x->shape[1], sig);
    cm_tensor *guid = m->flux_cfg.guidance_embeds ? tensor_full(m->dtype, SHAPE(B), o->guidance, m->dev) : NULL;
    for (int i = 0; i < o->steps; i++) {
        double tv, sv;
        eval_step_times(sig[i], m->dtype, &tv, &sv);
        cm_tensor *sigma = tensor_full(m->dtype, SHAPE(B), sv, m->dev), *t1000 = tensor_full(m->dtype, SHAPE(B), tv, m->dev);
        cm_tensor *tokens = NULL, *temb = NULL;
        if (o->ip_scale != 0.0)
            ic_projector_fwd(&m->adapter.proj, feats.low_res_shallow, feats.low_res_deep, feats.high_res_deep, t1000, &tokens, &temb);
        cm_tensor *v = flux_forward(&m->flux, x, txt, pooled, sigma, guid, gh, gw, o->ip_scale != 0.0 ? m->adapter.ip : NULL,
                                    tokens, o->ip_scale, 0);
        cm_tensor *nx = eval_euler_step(x, v, sig[i], sig[i + 1]);
        cm_tensor *tmp[] = {sigma, t1000, tokens, temb, v, x};
        for (size_t k = 0; k < sizeof tmp / sizeof *tmp; k++) tensor_release(tmp[k]);
        x = nx;
    }
    cm_tensor *zs = flux_unpack_latents(x, (int)lh, (int)lw), *zu = vae_unscale_latent(&m->vae.cfg, zs);
    cm_tensor *img = vae_decode(dec, zu);
    cm_tensor *img32 = op_cast(img, CM_F32), *out = op_to_device(img32, CM_DEV_CPU);
    cm_tensor *tmp[] = {txt, pooled, guid, x, zs, zu, img, img32};
    for (size_t k = 0; k < sizeof tmp / sizeof *tmp; k++) tensor_release(tmp[k]);
    vision_features_release(&feats);
    autograd_no_grad_pop();
    return out;
}
