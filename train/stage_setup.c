// stage_setup.c — see stage_setup.h
#include "train/stage_setup.h"
#include <stdio.h>
#include <string.h>
#include "data/buckets.h"
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
    lc.random_crop = c->data.random_crop;
    lc.random_flip = c->data.random_flip;
    return lc;
}

step_opts stage_step_opts(const train_config *c, int s) {
    int rc = s >= 0 && s < c->n_stages && c->stages[s].recompute != CFG_RECOMPUTE_INHERIT ? c->stages[s].recompute
                                                                                         : c->train.recompute;
    step_opts o = {.ip_scale = c->adapter.ip_scale, .guidance = c->train.guidance, .ln_mean = c->train.logit_mean,
                   .ln_std = c->train.logit_std, .shift_base = c->train.shift_base, .shift_max = c->train.shift_max,
                   .recompute = rc, .seed = c->run.seed, .vae_sample = c->train.vae_sample};
    o.tsample = c->train.timestep == CFG_T_FLUX_SHIFT ? STEP_T_FLUX_SHIFT
              : c->train.timestep == CFG_T_UNIFORM  ? STEP_T_UNIFORM
                                                    : STEP_T_LOGIT_NORMAL;
    o.weighting = c->train.weighting == CFG_W_SIGMA_SQRT ? STEP_W_SIGMA_SQRT
                  : c->train.weighting == CFG_W_COSMAP   ? STEP_W_COSMAP
                                                         : STEP_W_NONE;
    return o;
}

int stage_buckets(const train_config *c, int s, int (*bk)[2]) {
    const train_stage *sg = &c->stages[s];
    if (!sg->n_buckets)
        return buckets_make(sg->resolution, c->data.bucket_step > 0 ? c->data.bucket_step : 64,
                            c->data.max_aspect >= 1 ? c->data.max_aspect : 2.0, bk, BUCKETS_MAX);
    for (int b = 0; b < sg->n_buckets; b++) bk[b][0] = sg->buckets[b][0], bk[b][1] = sg->buckets[b][1];
    return sg->n_buckets;
}

// the most samples stage s can take from one bucket of ds (the sampler's batches never mix buckets,
// so a global batch needs batch_size of them in one); t: per bucket of the stage's table, and the
// images enlarged to cover their bucket (preprocess_target's scale > 1)
static int64_t stage_bucket_max(const train_config *c, int s, const dataset *ds, int (*bk)[2], int *nb, buckets_tally *t) {
    const train_stage *sg = &c->stages[s];
    buckets_tally_init(t);
    if ((*nb = stage_buckets(c, s, bk)) < 1) return -1;  // the loader names it
    for (uint32_t ch = 0; ch < ds->n_chars; ch++) {
        if (sg->mode == CFG_MODE_PAIRED && ds->char_count[ch] < 2) continue;  // left out of a paired order
        buckets_tally_add(t, (const int(*)[2])bk, *nb, ds->sizes, ds->char_first[ch], ds->char_count[ch]);
    }
    int64_t mx = 0;
    for (int b = 0; b < *nb; b++) mx = (int64_t)t->count[b] > mx ? (int64_t)t->count[b] : mx;
    return mx;
}

int stage_check_pairs(const train_config *c, const char *(*path_of)(const train_config *c, int s), const char *key,
                      char *warn, size_t warnlen, char *err, size_t errlen) {
    if (warn && warnlen) warn[0] = 0;
    const char *prev = NULL;  // the stages usually share one dataset: open it once
    bool pairs = false, open = false;
    dataset ds;
    int rc = 0;
    for (int s = 0; s < c->n_stages && !rc; s++) {
        const train_stage *sg = &c->stages[s];
        if (sg->steps == 0) continue;  // skipped: its mode asks nothing of the data
        const char *path = path_of(c, s);
        if (!prev || strcmp(prev, path)) {
            if (open) dataset_close(&ds);
            open = false;
            if (dataset_open(&ds, path, 0, err, errlen)) return -1;
            open = true;
            pairs = false;
            for (uint32_t i = 0; i < ds.n_chars && !pairs; i++) pairs = ds.char_count[i] >= 2;
            prev = path;
        }
        char k[48];
        if (sg->mode != CFG_MODE_UNPAIRED && !pairs) {
            snprintf(k, sizeof k, "stages[%d].mode", s);
            snprintf(err, errlen, "%s: %s has no character with two images, and stage %d/%d ('%s', mode %s) needs pairs (use mode: "
                     "unpaired there, or a dataset with pairs)", key ? key : k, path, s + 1, c->n_stages, sg->name, cfg_mode_name(sg->mode));
            rc = -1;
            break;
        }
        // found here, before the models load (minutes at full size) and before the earlier
        // stages train, rather than by the loader when the stage begins
        int bk[BUCKETS_MAX][2], nb = 0;
        buckets_tally tally;
        int64_t mx = stage_bucket_max(c, s, &ds, bk, &nb, &tally);
        if (warn && tally.upscaled * 10 >= tally.all && tally.upscaled) {  // a tenth or more: the stage learns blur from them
            size_t wl = strlen(warn);
            snprintf(warn + wl, warnlen - wl, "%sstage %d/%d ('%s', resolution %d): %lld of %lld images of %s (%.0f%%) are smaller "
                     "than their bucket and are enlarged to it (up to %.1fx), so the stage learns from blurred targets; a "
                     "high-resolution stage wants images at least its resolution (`cameo data stats %s --resolution %d`)",
                     wl ? "\n" : "", s + 1, c->n_stages, sg->name, sg->resolution, (long long)tally.upscaled, (long long)tally.all, path,
                     100.0 * (double)tally.upscaled / (double)tally.all, tally.most, path, sg->resolution);
        }
        const bool val = key != NULL;  // the validation's check: its batch (stage_val_batch), not the stage's
        const int batch = val ? stage_val_batch(c, s) : sg->batch_size;
        if (mx < 0 || mx >= batch) continue;
        char list[512] = "", fix[160];
        size_t at = 0;
        int64_t usable = 0;
        for (int b = 0; b < nb; b++) {
            usable += (int64_t)tally.count[b];
            if (tally.count[b] && at < sizeof list - 32)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%dx%d: %lld", at ? ", " : "", bk[b][0], bk[b][1], (long long)tally.count[b]);
        }
        if (val)  // a few held-out images over several buckets: validation takes them in smaller batches
            snprintf(fix, sizeof fix, " (validation.batch_size: 1 takes any held-out set)");
        else if (usable >= sg->batch_size)  // enough images, spread over buckets: one bucket takes them all (each cropped to it)
            snprintf(fix, sizeof fix, ", add images, or give the stage one bucket (--set 'stages.%d.buckets=[[%d, %d]]')", s,
                     sg->resolution, sg->resolution);
        else
            snprintf(fix, sizeof fix, " or add images");
        char bkey[48] = "validation.batch_size";
        if (!val) snprintf(bkey, sizeof bkey, "stages[%d].batch_size", s);
        snprintf(k, sizeof k, "stages[%d].batch_size", s);
        snprintf(err, errlen, "%s: %sstage %d/%d ('%s') takes global batches of %d images of one aspect bucket, and %s has at most %lld "
                 "in any bucket at resolution %d (%s%s); lower %s%s", key ? key : k, val ? "validation in " : "", s + 1, c->n_stages, sg->name, batch,
                 path, (long long)mx, sg->resolution, sg->mode == CFG_MODE_PAIRED ? "single-image characters left out; " : "",
                 list[0] ? list : "no samples", bkey, fix);
        rc = -1;
    }
    if (open) dataset_close(&ds);
    return rc;
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

int stage_val_batch(const train_config *c, int s) {
    return c->validation.batch_size > 0 ? c->validation.batch_size : c->stages[s].batch_size;
}
