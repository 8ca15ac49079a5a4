// test_latent_cache_device.c — the latent cache on the training device: the tiny VAE on cuda:0 in
// bf16 writes a batch of targets' moments into a cache (as `cameo cache-latents` on a GPU does), and
// the step's read of it (model.latent_cache) hands it the same moments, bit for bit, on cuda:0 in
// bf16 — through the bf16 host entries, their copy to the device and the cast (step_batch_upload's
// path); the posterior draw from them (train.vae_sample) is the VAE's own draw with the same noise,
// bit for bit; read by a run in f32 on the CPU, each bf16 value widened exactly. Runs where the CUDA
// backend is up (a GPU, or the CUDA emulator's build: label cuda); skips otherwise.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "e2e_helpers.h"
#include "kernels/backend.h"
#include "testutil.h"
#include "train/config.h"
#include "train/latent_cache.h"
#include "train/models.h"

int main(void) {
    if (!cm_cuda_backend) test_skip("no CUDA backend (a GPU, or the CUDA emulator's build)");
    train_config cfg;
    char err[2048], dir[64];
    TEST_CHECK(train_config_load(&cfg, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    snprintf(dir, sizeof dir, "/tmp/cameo-lcd-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    cm_device cuda0 = {CM_CUDA, 0};
    ic_models m;
    TEST_CHECK(ic_models_vae(&m, &cfg.model.tiny_dims, cfg.run.seed, NULL, cuda0, CM_BF16, err, sizeof err) == 0, "%s", err);
    const int B = 3, W = 48, H = 32, f = m.vae_factor;
    size_t n = (size_t)B * 3 * H * W;
    float *px = malloc(n * sizeof(float));  // targets [B, 3, H, W] in [-1, 1]
    for (size_t i = 0; i < n; i++) px[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    autograd_no_grad_push();
    cm_tensor *hx = tensor_from_host(CM_F32, 4, (int64_t[]){B, 3, H, W}, px, cuda0), *x = op_cast(hx, CM_BF16), *lv = NULL;
    cm_tensor *mean = vae_encode(&m.vae, x, &lv), *mom = op_concat(2, (cm_tensor *[]){mean, lv}, 1);
    TEST_CHECK(mom->dtype == CM_BF16 && mom->storage->dev.type == CM_CUDA && mom->shape[1] == 2 * m.vae.cfg.latent &&
               mom->shape[2] == H / f && mom->shape[3] == W / f, "the VAE's moments: bf16 on cuda:0, [B, 2C, H/f, W/f]");
    fstore_id id;
    latent_cache lc;
    const uint64_t ids[3] = {4, 7, 9};
    const int64_t rid[3] = {4, 7, 9};
    TEST_CHECK(latent_cache_identity(&cfg, &id, err, sizeof err) == 0 && latent_cache_open(&lc, dir, &id, true, err, sizeof err) == 0 &&
               latent_cache_put(&lc, 0x1234, ids, B, W, H, 0, mom, err, sizeof err) == 0, "%s", err);
    latent_cache_close(&lc);
    cm_tensor *got = NULL;
    TEST_CHECK(latent_cache_open(&lc, dir, &id, false, err, sizeof err) == 0 &&
               latent_cache_lookup(&lc, 0x1234, rid, NULL, B, W, H, &got, err, sizeof err) == 0 && got, "%s", err);
    TEST_CHECK(got && got->dtype == CM_BF16, "bf16 entries read as bf16");
    cm_tensor *d = op_to_device(got, cuda0), *c = op_cast(d, CM_BF16);  // step_batch_upload's path on a GPU run
    TEST_CHECK(c->storage->dev.type == CM_CUDA && same_bits(mom, c), "the moments on cuda:0: the VAE's own, bit for bit");
    // train.vae_sample: the draw from the read moments against the VAE's draw, one noise
    cm_tensor *noise = tensor_empty(CM_BF16, 4, (int64_t[]){B, m.vae.cfg.latent, H / f, W / f}, cuda0);
    tensor_fill_randn(noise, 77, 1.0);
    cm_tensor *cm = op_chunk(c, 2, 1, 0), *cl = op_chunk(c, 2, 1, 1);
    cm_tensor *z_cache = vae_posterior_sample(cm, cl, noise), *z_vae = vae_encode_sample(&m.vae, x, noise);
    TEST_CHECK(same_bits(z_vae, z_cache), "the posterior draw from the cache: the VAE's own draw with the same noise, bit for bit");
    cm_tensor *w = op_cast(got, CM_F32), *mw = op_cast(mom, CM_F32), *mh = op_to_device(mw, CM_DEV_CPU);
    TEST_CHECK(same_bits(w, mh), "the moments on the CPU in f32: widened exactly");
    autograd_no_grad_pop();
    cm_tensor *tmp[] = {hx, x, lv, mean, mom, got, d, c, noise, cm, cl, z_cache, z_vae, w, mw, mh};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    latent_cache_close(&lc);
    ic_models_free(&m);
    free(px);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_latent_cache_device");
}
