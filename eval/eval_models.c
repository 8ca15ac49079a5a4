// eval_models.c — see eval_models.h
#include "eval/eval_models.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train/checkpoint.h"
#include "train/dist.h"

#ifdef CAMEO_HAVE_CUDA
int cuda_device_count(void);  // kernels/cuda/cuda_backend.cu
static int eval_cuda_count(void) { return cuda_device_count(); }
#else
static int eval_cuda_count(void) { return 0; }
#endif

static int load_config(train_config *cfg, const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    return train_config_load(cfg, path, NULL, 0, err, errlen);
}

// em->cfg read: the models on the device, the decoder; adapter: a file whose sizes the adapter takes
// (published models; NULL = the config's). 0; 1 with err; 2 for a bad --device.
static int build(eval_models *em, const char *device, int local_rank, const char *adapter, char *err, size_t errlen) {
    train_config *cfg = em->cfg;
    cm_device dev = cfg->run.dev;
    if (device && cfg_parse_device(device, &dev)) {
        snprintf(err, errlen, "--device '%s' (allowed: cpu, cuda, cuda:N)", device);
        return 2;
    }
    // the rank's GPU as training picks it (dist_bind_device): cuda:0 where srun --gpus-per-task=1
    // left each rank one GPU, which local rank r's cuda:r (no such device) made fail on every rank but 0
    if (dev.type == CM_CUDA) dev.index = dist_cuda_index(dev.index, local_rank, eval_cuda_count());
    if (ic_device_check(dev, device ? "--device" : "run.device", err, errlen)) return 1;
    cm_dtype dt = dev.type == CM_CPU ? CM_F32 : cfg_model_dtype(cfg, dev);  // a CPU computes in f32 whatever the run used
    int rc;
    if (cfg->model.tiny) rc = ic_models_init_tiny(&em->m, &cfg->model.tiny_dims, dev, dt, cfg->model.text_cpu, cfg->run.seed, "default", err, errlen);
    else {
        ic_model_paths p = {cfg->model.flux, cfg->model.siglip, cfg->model.dinov2, cfg->model.vae, cfg->model.t5, cfg->model.clip,
                            adapter ? adapter : cfg->model.adapter_init, 0, cfg->data.ref_size, false};
        rc = ic_models_load(&em->m, &p, dev, dt, cfg->model.text_cpu, "default", cfg->run.seed, err, errlen);
    }
    if (rc) return 1;
    em->open = true;
    return eval_decoder_open(&em->m, cfg, &em->dec, &em->pd, err, errlen) ? 1 : 0;
}

// the VAE's pixels per latent: the tiny preset's, or as many levels as the published weights show
// (read from the header alone). -1 with err.
static int vae_factor(const train_config *cfg, char *err, size_t errlen) {
    if (cfg->model.tiny) return 1 << (IC_TINY_VAE_LEVELS - 1);
    vae_config vc;
    if (vae_detect(cfg->model.vae, &vc, err, errlen)) return -1;
    return 1 << (vc.nlevels - 1);
}

// the image size (0: the first stage's resolution) checked against the sampler's need (multiples of
// twice the VAE factor: latents packed in 2x2 patches) before any model is built, so that a bad
// --size costs no loading and leaves nothing behind. 0; 1 with err (the VAE's weights); 2 for a bad size.
static int check_size(const train_config *cfg, int *w, int *h, char *err, size_t errlen) {
    bool given = *w > 0;
    if (!given) *w = *h = cfg->stages[0].resolution;
    int f = vae_factor(cfg, err, errlen);
    if (f < 0) return 1;
    if (*w > 0 && *h > 0 && *w % (2 * f) == 0 && *h % (2 * f) == 0) return 0;
    if (given) snprintf(err, errlen, "--size %dx%d: these models need multiples of %d (the VAE's %d pixels per latent, 2x2 latent patches)", *w, *h, 2 * f, f);
    else snprintf(err, errlen, "stages.0.resolution %d: these models need a multiple of %d: give --size WxH", *w, 2 * f);
    return 2;
}

int eval_models_open(eval_models *em, const char *ckpt, const char *device, int local_rank, int *w, int *h, char *dir, size_t dirlen,
                     char *err, size_t errlen) {
    memset(em, 0, sizeof *em);  // closable whatever fails
    if (ckpt_resolve(ckpt, dir, dirlen, err, errlen)) return 1;
    return eval_models_open_dir(em, dir, device, local_rank, w, h, err, errlen);
}

int eval_models_open_dir(eval_models *em, const char *dir, const char *device, int local_rank, int *w, int *h, char *err,
                         size_t errlen) {
    memset(em, 0, sizeof *em);
    em->cfg = calloc(1, sizeof *em->cfg);
    if (!em->cfg) { snprintf(err, errlen, "out of host memory"); return 1; }
    if (load_config(em->cfg, dir, err, errlen)) return 1;
    int rc = check_size(em->cfg, w, h, err, errlen);
    return rc ? rc : build(em, device, local_rank, NULL, err, errlen);
}

int eval_models_open_config(eval_models *em, const char *config, const char *const *sets, int n_sets, const char *device, int local_rank,
                            const char *adapter, int *w, int *h, char *err, size_t errlen) {
    memset(em, 0, sizeof *em);
    em->cfg = calloc(1, sizeof *em->cfg);
    if (!em->cfg) { snprintf(err, errlen, "out of host memory"); return 1; }
    if (train_config_load(em->cfg, config, sets, n_sets, err, errlen) || train_config_check_paths(em->cfg, err, errlen)) return 1;
    int rc = check_size(em->cfg, w, h, err, errlen);
    return rc ? rc : build(em, device, local_rank, adapter, err, errlen);
}

int eval_decoder_open(const ic_models *m, const train_config *cfg, vae_decoder *dec, cm_params *pd, char *err, size_t errlen) {
    params_init_registry(pd, m->dev, m->dtype, false);  // the published weights beside the encoder's, or the tiny preset's
    vae_decoder_init(dec, &m->vae.cfg, pd);
    if (cfg->model.tiny) params_randomize(pd, cfg->run.seed ^ 0xdec);
    int n_extra;
    return !cfg->model.tiny && params_load(pd, cfg->model.vae, NULL, false, &n_extra, err, errlen) ? -1 : 0;
}

int eval_models_load_adapter(eval_models *em, const char *dir, bool ema, char *err, size_t errlen) {
    cm_params *regs[1] = {&em->m.ps_adapter};
    return ema ? ckpt_load_ema(dir, regs, 1, err, errlen) : ckpt_load_verified(dir, regs, 1, NULL, NULL, err, errlen);
}

bool eval_models_same(const eval_models *em, const char *dir, char *err, size_t errlen) {
    train_config *c = calloc(1, sizeof *c);
    if (!c || load_config(c, dir, err, errlen)) {
        free(c);
        return false;
    }
    const train_config *a = em->cfg;
    const char *what = NULL;
    if (a->model.tiny != c->model.tiny) what = "model.tiny";
    else if (a->model.tiny && (memcmp(&a->model.tiny_dims, &c->model.tiny_dims, sizeof a->model.tiny_dims) || a->run.seed != c->run.seed))
        what = "the tiny models' dims or run.seed (the tiny frozen weights come from it)";
    else if (!a->model.tiny) {
        const char *pa[] = {a->model.flux, a->model.siglip, a->model.dinov2, a->model.vae, a->model.t5, a->model.clip};
        const char *pc[] = {c->model.flux, c->model.siglip, c->model.dinov2, c->model.vae, c->model.t5, c->model.clip};
        const char *names[] = {"model.flux", "model.siglip", "model.dinov2", "model.vae", "model.t5", "model.clip"};
        for (int i = 0; i < 6 && !what; i++)
            if (strcmp(pa[i], pc[i])) what = names[i];
    }
    if (what) snprintf(err, errlen, "%s: its config differs in %s from the first checkpoint's: evaluate it in a sweep of its own", dir, what);
    free(c);
    return what == NULL;
}

void eval_models_close(eval_models *em) {
    if (em->open) {
        vae_decoder_free(&em->dec);
        params_free(&em->pd);
        ic_models_free(&em->m);
    }
    free(em->cfg);
    memset(em, 0, sizeof *em);
}
