// stage_setup.c — see stage_setup.h
#include "train/stage_setup.h"
#include <stdio.h>
#include <string.h>
#include "data/dataset.h"

loader_config stage_loader_config(const train_config *c, int s, int ref_size, int rank, int world) {
    const train_stage *sg = &c->stages[s];
    loader_config lc = loader_config_default();
    lc.path = cfg_stage_data(c, s);
    lc.mode = sg->mode == CFG_MODE_UNPAIRED ? LOADER_UNPAIRED : sg->mode == CFG_MODE_PAIRED ? LOADER_PAIRED : LOADER_MIXED;
    lc.paired_share = (float)sg->paired_share;
    lc.seed = c->run.seed * 1000003ull + (uint64_t)s;  // each stage its own order
    lc.global_batch = sg->batch_size;                  // each rank takes its slice of every global batch
    lc.rank = rank;
    lc.world = world;
    lc.resolution = sg->resolution;
    lc.bucket_step = c->data.bucket_step;
    lc.max_aspect = (float)c->data.max_aspect;
    if (sg->n_buckets) {
        lc.buckets = &sg->buckets[0][0];
        lc.n_buckets = sg->n_buckets;
    }
    lc.ref_size = ref_size;
    lc.caption_drop = (float)c->train.caption_drop;
    lc.ref_drop = (float)c->train.ref_drop;
    lc.threads = c->data.threads;
    lc.prefetch = c->data.prefetch;
    return lc;
}

step_opts stage_step_opts(const train_config *c, int s) {
    int rc = s >= 0 && s < c->n_stages && c->stages[s].recompute != CFG_RECOMPUTE_INHERIT ? c->stages[s].recompute
                                                                                         : c->train.recompute;
    step_opts o = {.ip_scale = c->adapter.ip_scale, .guidance = c->train.guidance, .ln_mean = c->train.logit_mean,
                   .ln_std = c->train.logit_std, .shift_base = c->train.shift_base, .shift_max = c->train.shift_max,
                   .recompute = rc, .seed = c->run.seed, .vae_sample = c->train.vae_sample};
    o.tsample = c->train.timestep == CFG_T_FLUX_SHIFT ? STEP_T_FLUX_SHIFT : STEP_T_LOGIT_NORMAL;
    o.weighting = c->train.weighting == CFG_W_SIGMA_SQRT ? STEP_W_SIGMA_SQRT
                  : c->train.weighting == CFG_W_COSMAP   ? STEP_W_COSMAP
                                                         : STEP_W_NONE;
    return o;
}

int stage_check_pairs(const train_config *c, const char *(*path_of)(const train_config *c, int s), const char *key,
                      char *err, size_t errlen) {
    const char *prev = NULL;  // the stages usually share one dataset: open it once
    bool pairs = false;
    for (int s = 0; s < c->n_stages; s++) {
        if (c->stages[s].steps == 0) continue;  // skipped: its mode asks nothing of the data
        const char *path = path_of(c, s);
        if (!prev || strcmp(prev, path)) {
            dataset ds;
            if (dataset_open(&ds, path, DATASET_NO_SIZES, err, errlen)) return -1;
            pairs = false;
            for (uint32_t i = 0; i < ds.n_chars && !pairs; i++) pairs = ds.char_count[i] >= 2;
            dataset_close(&ds);
            prev = path;
        }
        if (c->stages[s].mode == CFG_MODE_UNPAIRED || pairs) continue;
        char k[48];
        snprintf(k, sizeof k, "stages[%d].mode", s);
        snprintf(err, errlen, "%s: %s has no character with two images, and stage %d ('%s', mode %s) needs pairs (use mode: "
                 "unpaired there, or a dataset with pairs)", key ? key : k, path, s, c->stages[s].name, cfg_mode_name(c->stages[s].mode));
        return -1;
    }
    return 0;
}

int stage_freeze_adapter(const train_config *c, cm_params *ps, int *nf, int *nt, int64_t *held, int64_t *all, char *err,
                         size_t errlen) {
    for (int i = 0; i < c->adapter.n_freeze; i++)
        if (params_freeze_prefix(ps, c->adapter.freeze[i]) == 0) {
            snprintf(err, errlen, "adapter.freeze[%d]: '%s' names no adapter weight (a prefix of whole name parts: image_proj, "
                     "ip_adapter, image_proj.cross_layer_blocks.0, ip_adapter.56, ...; `cameo inspect --arch instantcharacter` "
                     "lists them)", i, c->adapter.freeze[i]);
            return -1;
        }
    *held = *all = 0;
    *nt = *nf = 0;
    for (int i = 0; i < ps->n; i++) {
        if (!ps->items[i].trainable) continue;
        int64_t k = tensor_numel(ps->items[i].t);
        *all += k, (*nt)++;
        if (ps->items[i].frozen) *held += k, (*nf)++;
    }
    if (*held == *all) {
        snprintf(err, errlen, "adapter.freeze: every adapter weight is held fixed, so there is nothing to train");
        return -1;
    }
    return 0;
}
