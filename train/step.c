// step.c — see step.h
#include "train/step.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "train/latent_cache.h"
#include "train/progress.h"
#include "train/ref_cache.h"

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
// a key per (seed, step, sample, purpose): the randomness of a step never depends on history
static uint64_t rng_key(uint64_t seed, uint64_t step, int64_t id, uint64_t purpose) {
    return mix(mix(mix(seed ^ 0x5eed) ^ step) ^ (uint64_t)id) ^ mix(purpose);
}
static double unit(uint64_t k) { return ((double)(mix(k) >> 11) + 0.5) / 9007199254740992.0; }

double step_sigma(const step_opts *o, uint64_t step, int64_t id, int64_t seq_len) {
    uint64_t k = rng_key(o->seed, step, id, 1);
    double u1 = unit(k), u2 = unit(k + 1);
    switch (o->tsample) {
    case STEP_T_LOGIT_NORMAL: {
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        return 1.0 / (1.0 + exp(-(o->ln_mean + o->ln_std * z)));
    }
    case STEP_T_FLUX_SHIFT: {  // BFL's shifted schedule at the training sequence length
        double mu = o->shift_base + (o->shift_max - o->shift_base) * ((double)seq_len - 256.0) / (4096.0 - 256.0);
        return exp(mu) / (exp(mu) + (1.0 / u1 - 1.0));
    }
    case STEP_T_UNIFORM:  // diffusers' default (weighting_scheme none): sigmas[int(u * 1000)] of the unshifted
                          // training schedule, linspace(1, 1/1000, 1000): one of 1.000, 0.999, ..., 0.001
        return (1000.0 - floor(u1 * 1000.0)) / 1000.0;
    }
    return u1;
}

// a host f32 buffer on the model's device and dtype, in memory of its own (never an alias of h)
static cm_tensor *to_model(const float *h, int ndim, const int64_t *shape, const ic_models *m) {
    cm_tensor *d = tensor_from_host(CM_F32, ndim, shape, h, m->dev), *c = op_cast(d, m->dtype);
    tensor_release(d);
    return c;
}

// loader views [B, 5, 3, R, R] -> [5B, 3, R, R]: the B full views, then sample b's crops at B + 4b + i
static cm_tensor *views_batch(const float *v, int B, int R, const ic_models *m) {
    cm_tensor *h = tensor_wrap_host(CM_F32, SHAPE(B, 5, 3, R, R), (void *)v);
    cm_tensor *full = op_slice(h, 1, 0, 1), *crops = op_slice(h, 1, 1, 5);
    cm_tensor *f = op_reshape(full, SHAPE(B, 3, R, R)), *c = op_reshape(crops, SHAPE(4 * B, 3, R, R));
    cm_tensor *all = op_concat(2, (cm_tensor *[]){f, c}, 0);  // host memory of its own: no second copy
    cm_tensor *d = op_to_device(all, m->dev), *out = op_cast(d, m->dtype);
    cm_tensor *tmp[] = {h, full, crops, f, c, all, d};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return out;
}

void step_reference_features(ic_models *m, const float *ref_siglip, const float *ref_dino, int B, int R, vision_features *f) {
    CM_CHECK(ic_models_towers(m), "step", "the vision towers are not loaded (model.ref_cache, no evaluation)");
    cm_tensor *vs = views_batch(ref_siglip, B, R, m), *vd = views_batch(ref_dino, B, R, m);
    vision_features_from_views(&m->sig, &m->dino, &m->vfc, B, vs, vd, f);
    tensor_release(vs);
    tensor_release(vd);
}

void step_batch_upload(ic_models *m, const loader_batch *b, step_batch *out) {
    *out = (step_batch){.B = b->B, .H = b->H, .W = b->W, .R = b->R};
    autograd_no_grad_push();
    char err[1024];
    if (m->latents) {  // the VAE's moments of (dataset, target id, bucket), the loader having cut no pixels
        cm_tensor *h;
        CM_CHECK(!latent_cache_lookup(m->latents, b->manifest_hash, b->sample_ids, b->flipped, b->B, b->W, b->H, &h, err, sizeof err),
                 "step", "%s", err);
        cm_tensor *d = op_to_device(h, m->dev);
        out->moments = op_cast(d, m->dtype);
        tensor_release(d);
        tensor_release(h);
    } else out->target = to_model(b->target, 4, (int64_t[]){b->B, 3, b->H, b->W}, m);
    if (m->refs) {  // the features of (dataset, reference id), the loader having made no views
        vision_features h;
        CM_CHECK(!ref_cache_lookup(m->refs, b->manifest_hash, b->ref_ids, b->sample_ids, b->ref_dropped, b->B, &h, err, sizeof err),
                 "step", "%s", err);
        cm_tensor **src[3] = {&h.low_res_deep, &h.low_res_shallow, &h.high_res_deep};
        cm_tensor **dst[3] = {&out->feat.low_res_deep, &out->feat.low_res_shallow, &out->feat.high_res_deep};
        for (int k = 0; k < 3; k++) {
            cm_tensor *d = op_to_device(*src[k], m->dev);
            *dst[k] = op_cast(d, m->dtype);
            tensor_release(d);
        }
        vision_features_release(&h);
    } else {
        out->views_siglip = views_batch(b->ref_siglip, b->B, b->R, m);
        out->views_dino = views_batch(b->ref_dino, b->B, b->R, m);
    }
    autograd_no_grad_pop();
    out->captions = calloc((size_t)b->B, sizeof *out->captions);
    out->sample_ids = malloc((size_t)b->B * sizeof *out->sample_ids);
    CM_CHECK(out->captions && out->sample_ids, "step", "out of host memory for a batch of %d", b->B);
    for (int i = 0; i < b->B; i++) {
        out->captions[i] = strdup(b->captions[i]);
        CM_CHECK(out->captions[i], "step", "out of host memory for a caption");
        out->sample_ids[i] = b->sample_ids[i];
    }
    if (!m->text.t5 && m->text.cache)
        ic_text_encode(&m->text, (const char *const *)out->captions, out->B, m->dev, m->dtype, &out->txt, &out->pooled);
}

void step_batch_release(step_batch *sb) {
    tensor_release(sb->target);
    tensor_release(sb->moments);
    tensor_release(sb->views_siglip);
    tensor_release(sb->views_dino);
    vision_features_release(&sb->feat);
    tensor_release(sb->txt);
    tensor_release(sb->pooled);
    for (int i = 0; sb->captions && i < sb->B; i++) free(sb->captions[i]);
    free(sb->captions);
    free(sb->sample_ids);
    *sb = (step_batch){0};
}

cm_tensor *step_forward(ic_models *m, const loader_batch *b, const step_opts *o, uint64_t step, step_times *t) {
    return step_forward_with(m, b, o, NULL, NULL, step, t);
}

cm_tensor *step_forward_with(ic_models *m, const loader_batch *b, const step_opts *o, const float *sigma_in,
                             const float *eps_in, uint64_t step, step_times *t) {
    double t0 = progress_now();
    step_batch sb;
    step_batch_upload(m, b, &sb);
    if (t) t->encoders += progress_now() - t0;
    cm_tensor *loss = step_forward_batch(m, &sb, o, sigma_in, eps_in, step, t);
    step_batch_release(&sb);
    return loss;
}

void step_encode(ic_models *m, const step_batch *b, step_encoded *e, step_times *t) { step_encode_at(m, b, NULL, 0, e, t); }

// the posterior draw's noise n [B, Cl, H/f, W/f] in the model's dtype, one key per sample as ε's
static cm_tensor *vae_noise(const ic_models *m, const step_batch *b, const step_opts *o, uint64_t step) {
    int64_t f = m->vae_factor;
    cm_tensor *n = tensor_empty(m->dtype, 4, (int64_t[]){b->B, m->vae.cfg.latent, b->H / f, b->W / f}, m->dev);
    for (int i = 0; i < b->B; i++) {
        cm_tensor *ni = op_slice(n, 0, i, i + 1);
        tensor_fill_randn(ni, rng_key(o->seed, step, b->sample_ids[i], 3), 1.0);
        tensor_release(ni);
    }
    return n;
}

void step_encode_at(ic_models *m, const step_batch *b, const step_opts *o, uint64_t step, step_encoded *e, step_times *t) {
    autograd_no_grad_push();
    memset(e, 0, sizeof *e);
    double t0 = progress_now();  // host time: the parts' split is exact on the CPU only (GPU kernels run behind)
    if (b->feat.low_res_deep)  // read with the batch (reference cache)
        e->f = (vision_features){tensor_retain(b->feat.low_res_deep), tensor_retain(b->feat.low_res_shallow),
                                 tensor_retain(b->feat.high_res_deep)};
    else {
        CM_CHECK(ic_models_towers(m), "step", "the vision towers are not loaded (model.ref_cache, no evaluation) and this batch "
                 "has no cached features");
        vision_features_from_views(&m->sig, &m->dino, &m->vfc, b->B, b->views_siglip, b->views_dino, &e->f);
    }
    double t1 = progress_now();
    cm_tensor *z;                                                // [B, Cl, H/f, W/f]
    if (b->moments) {  // read with the batch (latent cache): the same draw from the stored mean and logvar
        cm_tensor *mean = op_chunk(b->moments, 2, 1, 0);
        if (o && o->vae_sample) {
            cm_tensor *lv = op_chunk(b->moments, 2, 1, 1), *n = vae_noise(m, b, o, step);
            z = vae_posterior_sample(mean, lv, n);
            tensor_release(lv);
            tensor_release(n);
            tensor_release(mean);
        } else z = mean;
    } else if (o && o->vae_sample) {  // diffusers' latent_dist.sample(): mean + exp(logvar / 2) · n
        cm_tensor *n = vae_noise(m, b, o, step);
        z = vae_encode_sample(&m->vae, b->target, n);
        tensor_release(n);
    } else z = vae_encode(&m->vae, b->target, NULL);
    cm_tensor *zs = vae_scale_latent(&m->vae.cfg, z);
    e->x0 = flux_pack_latents(zs);                              // [B, N, 4 Cl]
    double t2 = progress_now();
    if (b->txt) e->txt = tensor_retain(b->txt), e->pooled = tensor_retain(b->pooled);  // read with the batch (text cache)
    else ic_text_encode(&m->text, (const char *const *)b->captions, b->B, m->dev, m->dtype, &e->txt, &e->pooled);
    if (t) t->vision += t1 - t0, t->vae += t2 - t1, t->text += progress_now() - t2;
    e->gh = (int)zs->shape[2] / 2, e->gw = (int)zs->shape[3] / 2;
    tensor_release(z);
    tensor_release(zs);
    autograd_no_grad_pop();
}

void step_encoded_release(step_encoded *e) {
    vision_features_release(&e->f);
    tensor_release(e->x0);
    tensor_release(e->txt);
    tensor_release(e->pooled);
    memset(e, 0, sizeof *e);
}

cm_tensor *step_forward_batch(ic_models *m, const step_batch *b, const step_opts *o, const float *sigma_in,
                              const float *eps_in, uint64_t step, step_times *t) {
    double t0 = progress_now();
    step_encoded e;
    step_encode_at(m, b, o, step, &e, t);  // frozen, no tape: reference features, target latents, text
    if (t) t->encoders += progress_now() - t0;
    cm_tensor *loss = step_loss(m, b, &e, o, sigma_in, eps_in, step, t);
    step_encoded_release(&e);
    return loss;
}

cm_tensor *step_loss(ic_models *m, const step_batch *b, const step_encoded *e, const step_opts *o, const float *sigma_in,
                     const float *eps_in, uint64_t step, step_times *t) {
    int B = b->B;
    double t0 = progress_now();
    autograd_no_grad_push();
    const vision_features *fp = &e->f;
    cm_tensor *x0 = e->x0, *txt = e->txt, *pooled = e->pooled;
    int gh = e->gh, gw = e->gw;
    int64_t N = x0->shape[1];

    // σ [B], ε ~ N(0, 1) per sample, x_t = (1 - σ) x0 + σ ε, target ε - x0
    float *sig = malloc((size_t)B * sizeof *sig), *w = malloc((size_t)B * sizeof *w);  // [B] each
    CM_CHECK(B >= 1 && sig && w, "step", "micro-batch of %d samples: out of host memory", B);
    cm_tensor *eps;
    if (eps_in) {
        eps = to_model(eps_in, x0->ndim, x0->shape, m);
    } else eps = tensor_empty(m->dtype, x0->ndim, x0->shape, m->dev);
    for (int i = 0; i < B; i++) {
        sig[i] = sigma_in ? sigma_in[i] : (float)step_sigma(o, step, b->sample_ids[i], N);
        if (eps_in) continue;
        cm_tensor *e = op_slice(eps, 0, i, i + 1);
        tensor_fill_randn(e, rng_key(o->seed, step, b->sample_ids[i], 2), 1.0);
        tensor_release(e);
    }
    cm_tensor *sigma = to_model(sig, SHAPE(B), m);
    cm_tensor *sg = op_reshape(sigma, SHAPE(B, 1, 1));
    cm_tensor *one_m = op_scale(sg, -1.0), *keep = op_add_scalar(one_m, 1.0);
    cm_tensor *a = op_mul(x0, keep), *bn = op_mul(eps, sg), *xt = op_add(a, bn), *target = op_sub(eps, x0);
    cm_tensor *t1000 = op_scale(sigma, 1000.0);
    cm_tensor *guid = m->flux_cfg.guidance_embeds ? tensor_full(m->dtype, SHAPE(B), o->guidance, m->dev) : NULL;
    autograd_no_grad_pop();
    if (t) t->encoders += progress_now() - t0;

    // --- on the tape: projector and FLUX with the IP branch ---
    double t1 = progress_now();
    cm_tensor *tokens = NULL, *temb = NULL;
    ic_projector_fwd(&m->adapter.proj, fp->low_res_shallow, fp->low_res_deep, fp->high_res_deep, t1000, &tokens, &temb);
    cm_tensor *pred = flux_forward(&m->flux, xt, txt, pooled, sigma, guid, gh, gw, m->adapter.ip, tokens, o->ip_scale, o->recompute);
    // the loss in f32 whatever the model's dtype: a bf16 scalar would step by 2^-7 near 1 (0.8 %),
    // below which the training and validation curves could not move ([B, N, 64]: the casts cost
    // nothing beside the model)
    cm_tensor *pf = pred->dtype == CM_F32 ? tensor_retain(pred) : op_cast(pred, CM_F32);
    cm_tensor *tf = target->dtype == CM_F32 ? tensor_retain(target) : op_cast(target, CM_F32);
    cm_tensor *loss;
    if (o->weighting == STEP_W_NONE) loss = op_mse(pf, tf);
    else {  // per-sample weights w(σ) on the per-sample MSE
        for (int i = 0; i < B; i++) {
            double s = sig[i];
            w[i] = (float)(o->weighting == STEP_W_SIGMA_SQRT ? 1.0 / (s * s) : 2.0 / (M_PI * (1 - 2 * s + 2 * s * s)));
        }
        cm_tensor *wt = tensor_from_host(CM_F32, SHAPE(B), w, m->dev);
        cm_tensor *d = op_sub(pf, tf), *d2 = op_mul(d, d), *ps = op_mean(d2, 2, (int[]){1, 2}, false), *pw = op_mul(ps, wt);
        loss = op_mean_all(pw);
        cm_tensor *tmp[] = {wt, d, d2, ps, pw};
        for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    }
    tensor_release(pf);
    tensor_release(tf);
    free(sig);
    free(w);
    if (t) t->forward += progress_now() - t1;
    cm_tensor *tmp[] = {eps, sigma, sg, one_m, keep, a, bn, xt, target, t1000, guid, tokens, temb, pred};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    return loss;
}
