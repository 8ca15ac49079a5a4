// eval_models.h — what sampling from a checkpoint needs: its run's config, the models that config
// names (tiny preset or published weights) on a device, the VAE decoder, and the adapter weights.
// Shared by `cameo sample` and `cameo eval`.
// defines: eval_models, eval_models_open, eval_models_open_dir, eval_models_load_adapter, eval_models_same, eval_models_close
#pragma once
#include "models/vae.h"
#include "train/config.h"
#include "train/models.h"

typedef struct eval_models {
    train_config *cfg;  // the checkpoint's run config (config.yaml beside its weights)
    ic_models m;
    vae_decoder dec;
    cm_params pd;       // the decoder's weights
    bool open;
} eval_models;

// resolves ckpt (a checkpoint folder, a run's checkpoints/ folder or its latest), reads its
// config and builds the models on `device` (NULL: the run's run.device; a CPU computes in f32),
// a CUDA device's index raised by local_rank (one GPU per rank of a node, as training does).
// dir receives the resolved folder. The image size *w x *h (0: the first stage's resolution, set)
// is checked against what the sampler needs (multiples of twice the VAE factor) before anything is
// built. 0; 1 with err (a file, a weight); 2 for a bad --device or size.
int eval_models_open(eval_models *em, const char *ckpt, const char *device, int local_rank, int *w, int *h, char *dir, size_t dirlen,
                     char *err, size_t errlen);
// the same for a folder ckpt_resolve has already chosen and verified (not read again)
int eval_models_open_dir(eval_models *em, const char *dir, const char *device, int local_rank, int *w, int *h, char *err,
                         size_t errlen);
// the same from a config file (YAML, as `cameo train` reads it) instead of a checkpoint: for adapter
// files outside a run (the released .bin, `cameo export`'s safetensors); adapter: the first of
// them, whose sizes the adapter takes when the config names published models; sets: n_sets
// "a.b=value" overrides, as `cameo train --set`; the size as above
int eval_models_open_config(eval_models *em, const char *config, const char *const *sets, int n_sets, const char *device, int local_rank,
                            const char *adapter, int *w, int *h, char *err, size_t errlen);
// the adapter weights of checkpoint folder dir (as ckpt_resolve gave it: verified, not read again)
// into em's adapter. 0, or -1 with err.
int eval_models_load_adapter(eval_models *em, const char *dir, bool ema, char *err, size_t errlen);
// true when checkpoint folder dir's config names the same models as em's (its adapter can be
// loaded into them); else false with err saying what differs
bool eval_models_same(const eval_models *em, const char *dir, char *err, size_t errlen);
void eval_models_close(eval_models *em);
// the VAE decoder for m's models as cfg names them (the published weights from model.vae, or the
// tiny preset's random ones, seeded from run.seed); the caller frees dec and pd. 0, or -1 with err.
int eval_decoder_open(const ic_models *m, const train_config *cfg, vae_decoder *dec, cm_params *pd, char *err, size_t errlen);
