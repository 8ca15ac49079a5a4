// bench_encoders.c — the frozen encoders of one training step timed at their sizes with random
// weights: the calls step_encode makes (vision_features_from_views, vae_encode + scale + pack,
// then T5 and CLIP on token ids, which the tokenizers would have made), each part between two
// device syncs so that the split is exact on a GPU too. Until session 26 `bench blocks` only
// estimated these at the blocks' forward rate: 18.2 of the 512² step's 82.7 model TFLOP a sample.
#include "train/bench_encoders.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "models/flux.h"
#include "train/bench.h"
#include "train/bench_blocks.h"
#include "train/progress.h"

static const double GiB = 1024.0 * 1024.0 * 1024.0;

// the published towers, or small ones of the same kinds (patch 14 and a DINOv2 position table
// resized from its trained grid, as the real one's 37 x 37 -> 27 x 27; three shallow layers each)
enc_set enc_configs(enc_size size) {
    enc_set s;
    if (size == ENC_FULL) {
        s.sc = SIGLIP_SO400M_P14_384, s.dc = DINOV2_GIANT, s.vfc = VISION_FEAT_IC, s.vc = VAE_FLUX;
        s.tc = T5_V11_XXL, s.cc = CLIP_VIT_L14_TEXT;
        return s;
    }
    s.sc = (siglip_config){.hidden = 32, .layers = 3, .heads = 2, .mlp = 64, .patch = 14, .image_size = 56, .channels = 3, .eps = 1e-6};
    s.dc = (dino_config){.hidden = 32, .layers = 3, .heads = 2, .mlp_hidden = dino_swiglu_hidden(32, 4.0), .patch = 14,
                         .image_size = 70, .channels = 3, .swiglu = true, .eps = 1e-6};
    s.vfc = (vision_feat_config){.n_shallow = 3, .siglip_layers = {1, 2, 3}, .dino_layers = {1, 2, 3}};
    s.vc = (vae_config){.in_channels = 3, .out_channels = 3, .latent = 16, .nlevels = 2, .ch = {16, 32}, .layers_per_block = 1,
                        .groups = 4, .mid_attn = true, .scaling = 0.3611, .shift = 0.1159};
    s.tc = (t5_config){.vocab = 128, .d_model = 32, .d_kv = 8, .heads = 4, .d_ff = 64, .layers = 2, .buckets = 32,
                       .max_distance = 128, .eps = 1e-6};
    s.cc = (clip_text_config){.vocab = 128, .hidden = 32, .layers = 2, .heads = 2, .mlp = 64, .max_pos = 77, .eps = 1e-5,
                              .eos_token_id = 2};
    return s;
}

typedef struct enc_models {
    cm_params ps;  // all five, frozen
    siglip_model sig;
    dino_model dino;
    vae_encoder vae;
    t5_model t5;
    clip_text_model clip;
} enc_models;

static void enc_models_init(enc_models *e, const enc_set *s, cm_params *ps) {
    siglip_init(&e->sig, &s->sc, ps);
    dino_init(&e->dino, &s->dc, ps);
    vae_encoder_init(&e->vae, &s->vc, ps);
    t5_init(&e->t5, &s->tc, ps);
    clip_text_init(&e->clip, &s->cc, ps);
}
static void enc_models_free(enc_models *e) {
    siglip_free(&e->sig);
    dino_free(&e->dino);
    vae_encoder_free(&e->vae);
    t5_free(&e->t5);
    clip_text_free(&e->clip);
}

// i32 [B, L] token ids in [3, vocab): random text of full length (FLUX pads T5 to its 512)
static cm_tensor *rand_ids(int64_t B, int64_t L, int64_t vocab, uint64_t seed, cm_device dev) {
    int32_t *h = malloc(sizeof *h * (size_t)(B * L));
    CM_CHECK(h, "bench_encoders", "out of host memory for %lld ids", (long long)(B * L));
    uint64_t x = seed | 1;
    for (int64_t i = 0; i < B * L; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        h[i] = (int32_t)(3 + x % (uint64_t)(vocab - 3));
    }
    cm_tensor *t = tensor_from_host(CM_I32, 2, (int64_t[]){B, L}, h, dev);
    free(h);
    return t;
}

void bench_encoders(cm_device dev, cm_dtype dt, enc_size size, int64_t B, int64_t ref_side, int64_t img_side,
                    int64_t t5_len, int warm, int iters, uint64_t seed, enc_meas *m) {
    memset(m, 0, sizeof *m);
    m->size = size;
    if (size == ENC_OFF) return;
    const enc_set s = enc_configs(size);
    if (size == ENC_TINY) ref_side = s.sc.image_size, img_side = 32, t5_len = t5_len < 16 ? t5_len : 16;
    m->ref_side = ref_side, m->img_side = img_side, m->t5_len = t5_len;
    if (iters < 1) iters = 1;
    if (iters > 16) iters = 16;

    // the weights by a meta registry first: no device memory for a step that cannot fit
    enc_models e;
    cm_params meta;
    params_init_meta(&meta, dt);
    enc_models_init(&e, &s, &meta);
    m->weights = (double)params_count(&meta, false) * (double)dtype_size(dt);
    enc_models_free(&e);
    params_free(&meta);
    // activations: the VAE's full-resolution convolutions dominate (~0.5 GiB a 512² sample in bf16)
    const double need = m->weights * 1.05 + (double)B * 1.5 * GiB + 1.0 * GiB;
    size_t fr = backend_get(dev.type)->mem_free(backend_ctx(dev));
    if (fr && (double)fr < need) {
        snprintf(m->note, sizeof m->note, "not measured: needs ~%.1f GiB, %.1f GiB free", need / GiB, fr / GiB);
        return;
    }

    cm_params ps;
    params_init_registry(&ps, dev, dt, false);
    enc_models_init(&e, &s, &ps);
    blocks_fill_params(&ps, seed ^ 0xe4c);
    // inputs as the loader gives them: per-tower views [5B, 3, R, R] (already normalised), the
    // target [B, 3, S, S] in [-1, 1], and token ids
    cm_tensor *vs = tensor_empty(dt, 4, (int64_t[]){5 * B, 3, ref_side, ref_side}, dev);
    cm_tensor *vd = tensor_empty(dt, 4, (int64_t[]){5 * B, 3, ref_side, ref_side}, dev);
    cm_tensor *img = tensor_empty(dt, 4, (int64_t[]){B, 3, img_side, img_side}, dev);
    tensor_fill_uniform(vs, seed ^ 0x51, -1.0, 1.0);
    tensor_fill_uniform(vd, seed ^ 0xd1, -2.0, 2.0);
    tensor_fill_uniform(img, seed ^ 0xa3, -1.0, 1.0);
    cm_tensor *ids_t5 = rand_ids(B, t5_len, s.tc.vocab, seed ^ 0x75, dev);
    cm_tensor *ids_clip = rand_ids(B, CLIP_MAX_LEN, s.cc.vocab, seed ^ 0xc1, dev);
    const cm_backend *be = backend_get(dev.type);
    const cm_kctx *ctx = backend_ctx(dev);

    double tv[16], ta[16], tt[16], peak = 0;
    autograd_no_grad_push();
    for (int i = 0; i < warm + iters; i++) {
        be->sync(ctx);
        alloc_reset_peak(dev);
        const double base = (double)alloc_stats(dev).current, t0 = progress_now();
        vision_features f;
        vision_features_from_views(&e.sig, &e.dino, &s.vfc, B, vs, vd, &f);
        be->sync(ctx);
        const double t1 = progress_now();
        cm_tensor *z = vae_encode(&e.vae, img, NULL), *zs = vae_scale_latent(&s.vc, z), *x0 = flux_pack_latents(zs);
        be->sync(ctx);
        const double t2 = progress_now();
        cm_tensor *pooled = NULL, *txt = t5_forward(&e.t5, ids_t5), *ct = clip_text_forward(&e.clip, ids_clip, &pooled);
        be->sync(ctx);
        const double t3 = progress_now(), pk = (double)alloc_stats(dev).peak - base;
        cm_tensor *all[] = {z, zs, x0, txt, ct, pooled};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++) tensor_release(all[k]);
        vision_features_release(&f);
        if (i >= warm) {
            tv[i - warm] = t1 - t0, ta[i - warm] = t2 - t1, tt[i - warm] = t3 - t2;
            if (pk > peak) peak = pk;
        }
    }
    autograd_no_grad_pop();
    m->vision = bench_median(tv, iters), m->vae = bench_median(ta, iters), m->text = bench_median(tt, iters);
    m->peak = peak;
    m->measured = true;

    cm_tensor *in[] = {vs, vd, img, ids_t5, ids_clip};
    for (size_t k = 0; k < sizeof in / sizeof *in; k++) tensor_release(in[k]);
    enc_models_free(&e);
    params_free(&ps);
    alloc_empty_cache(dev);
}
