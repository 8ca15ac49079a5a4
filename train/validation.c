// validation.c — see validation.h
#include "train/validation.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "eval/results.h"
#include "train/stage_setup.h"
#include "train/step.h"

#define VAL_SEED_SALT 0x76616c6964ull  // "valid": the noise and order of validation, apart from training's

// the held-out set, else the stage's own dataset (stages[s].data, else data.path)
static const char *val_path(const train_config *c, int s) { return c->validation.path[0] ? c->validation.path : cfg_stage_data(c, s); }

typedef struct { int64_t step; bool seen; } upto_ctx;
static bool up_to(const cJSON *j, void *ctx) {
    upto_ctx *u = ctx;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
    if (cJSON_IsNumber(st) && st->valuedouble == (double)u->step) u->seen = true;
    return cJSON_IsNumber(st) && st->valuedouble <= (double)u->step;
}

int train_val_open(train_val *v, const train_config *c, const char *run_dir, int64_t resume_step, int rank, char *err,
                   size_t errlen) {
    memset(v, 0, sizeof *v);
    snprintf(v->jsonl, sizeof v->jsonl, "%s/validation.jsonl", run_dir);
    if (stage_check_pairs(c, val_path, "validation.path", NULL, 0, err, errlen)) return -1;  // a paired stage validates on pairs
    int dropped;
    upto_ctx u = {resume_step, false};
    if (rank == 0 && resume_step >= 0 && eval_jsonl_filter(v->jsonl, up_to, &u, &dropped, err, errlen)) return -1;
    v->resume_unvalidated = rank == 0 && resume_step >= 0 && !u.seen;
    return 0;
}

bool train_val_due(const train_config *c, int64_t step, bool last) {
    return c->validation.every > 0 && (step % c->validation.every == 0 || last);
}

// this rank's sums over its samples: sum[k] += loss at σ_k × B
static int val_local(train_val *v, ic_models *m, const train_config *c, int s, const dist *d, bool log_skips, double *sum,
                     int64_t *n_local, int *n_global, char *err, size_t errlen) {
    loader_config lc = stage_loader_config(c, s, m->ref_size, d->rank, d->world);
    const int vb = stage_val_batch(c, s);  // validation.batch_size, else the stage's
    lc.global_batch = vb;
    lc.path = val_path(c, s);
    lc.seed = c->run.seed ^ VAL_SEED_SALT;  // the same samples at every validation of a stage
    lc.caption_drop = 0;
    lc.ref_drop = 0;
    lc.random_flip = 0;  // the held-out targets as they are (the crop follows data.random_crop, as it always has)
    lc.no_ref_views = m->refs != NULL;  // their features come from the reference cache
    lc.no_target = m->latents != NULL;  // its VAE moments come from the latent cache
    lc.quiet = 1;  // opened at every validation (its set once a stage): its notes would repeat (the training's loader says them)
    // and the same damaged records are met at every validation: logged once per stage, then
    // counted ("samples_damaged") only
    lc.no_skip_log = !log_skips;
    int nb = (c->validation.samples + vb - 1) / vb, rc = 0;
    lc.max_batches = (uint64_t)nb;  // the batches read, no more: its prefetch decoded batches never read at each validation
    if (v->ix_stage != s + 1) {  // the stage's first validation: its set opened, its nb batches chosen, kept for the stage
        loader_index_close(v->ix);
        v->ix = NULL, v->ix_stage = 0;
        if (!(v->ix = loader_index_open(&lc))) {
            snprintf(err, errlen, "validation: the loader could not open %s (see the message above)", lc.path);
            return -1;
        }
        v->ix_stage = s + 1;
    }
    // its threads and batch buffers only for this validation
    loader *L = loader_open_index(&lc, v->ix, NULL);
    if (!L) {
        snprintf(err, errlen, "validation: the loader could not open %s (see the message above)", lc.path);
        return -1;
    }
    step_opts o = stage_step_opts(c, s);
    o.seed = c->run.seed ^ VAL_SEED_SALT;
    *n_global = nb * vb;
    autograd_no_grad_push();  // forward only: nothing recorded, activations freed as they go
    for (int j = 0; j < nb && !rc; j++) {
        loader_batch b;
        if (loader_next(L, &b)) {
            snprintf(err, errlen, "validation: the loader failed on %s (see the message above)", lc.path);
            rc = -1;
            break;
        }
        if (b.B == 0) continue;  // every record of this rank's slice damaged (the loader counted them)
        step_batch sb;
        step_batch_upload(m, &b, &sb);
        float *sig = malloc((size_t)sb.B * sizeof *sig);  // [B]: this σ for every sample
        CM_CHECK(sig, "validation", "out of host memory for %d samples", sb.B);
        step_encoded enc;
        step_encode(m, &sb, &enc, NULL);  // the frozen encoders once, the adapter and FLUX at each σ
        for (int k = 0; k < c->validation.n_sigmas; k++) {
            for (int i = 0; i < sb.B; i++) sig[i] = (float)c->validation.sigmas[k];
            // noise keyed by (validation seed, σ index, sample id): the same at every validation
            cm_tensor *loss = step_loss(m, &sb, &enc, &o, sig, NULL, (uint64_t)k, NULL);
            sum[k] += tensor_get(loss, 0) * sb.B;
            tensor_release(loss);
        }
        step_encoded_release(&enc);
        free(sig);
        *n_local += sb.B;
        step_batch_release(&sb);
    }
    autograd_no_grad_pop();
    loader_close(L);
    return rc;
}

// the loss at each σ (mean[K]), their mean (*all) and the samples read (*n) over every rank's
// slice; 0, or -1 with err on every rank alike
static int val_measure(train_val *v, ic_models *m, const train_config *c, int s, const dist *d, bool log_skips, double *mean,
                       double *all, double *n, int *n_global, char *err, size_t errlen) {
    double sum[CFG_MAX_SIGMAS] = {0};
    int64_t n_local = 0;
    int K = c->validation.n_sigmas;
    char e[1024] = "";
    int rc = val_local(v, m, c, s, d, log_skips, sum, &n_local, n_global, e, sizeof e);
    if (dist_max_int(d, rc ? 1 : 0)) {  // every rank gives up alike
        snprintf(err, errlen, "%s", e[0] ? e : "validation failed on another rank (see its message)");
        return -1;
    }
    // the mean over the samples all ranks read (a damaged record leaves a slice short)
    double tot[CFG_MAX_SIGMAS + 1];
    for (int k = 0; k < K; k++) tot[k] = sum[k];
    tot[K] = (double)n_local;
    dist_sum_doubles(d, tot, K + 1);
    if (tot[K] == 0) {
        snprintf(err, errlen, "validation: every sample read was damaged (see the loader's messages)");
        return -1;
    }
    *all = 0;
    for (int k = 0; k < K; k++) {
        mean[k] = tot[k] / tot[K];
        *all += mean[k] / K;
    }
    *n = tot[K];
    return 0;
}

int train_val_run(train_val *v, ic_models *m, const train_config *c, int s, int64_t step, const dist *d, metrics *met,
                  progress *prog, void (*swap)(void *ctx, bool in), void *swap_ctx, double *loss, char *err, size_t errlen) {
    double t0 = progress_now();
    int K = c->validation.n_sigmas, n_global = 0;
    // [0]: the weights; [1]: the weight average
    double mean[2][CFG_MAX_SIGMAS], all[2] = {0}, n = 0;  // n: the samples (the same ones both times)
    bool log_skips = v->skips_told != s + 1;  // the stage's first validation; the average's pass reads the same records
    v->skips_told = s + 1;
    if (val_measure(v, m, c, s, d, log_skips, mean[0], &all[0], &n, &n_global, err, errlen)) return -1;
    if (swap) {
        swap(swap_ctx, true);
        int rc = val_measure(v, m, c, s, d, false, mean[1], &all[1], &n, &n_global, err, errlen);
        swap(swap_ctx, false);
        if (rc) return -1;
    }
    *loss = all[0];
    if (d->rank) return 0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)step);
    cJSON_AddNumberToObject(j, "stage", s);
    cJSON_AddStringToObject(j, "stage_name", c->stages[s].name);
    for (int w = 0; w < (swap ? 2 : 1); w++) {
        cJSON *per = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, w ? "loss_ema" : "loss", all[w]);
        for (int k = 0; k < K; k++) {
            char key[32];
            snprintf(key, sizeof key, "%g", c->validation.sigmas[k]);
            cJSON_AddNumberToObject(per, key, mean[w][k]);
        }
        cJSON_AddItemToObject(j, w ? "loss_ema_by_sigma" : "loss_by_sigma", per);
    }
    cJSON_AddNumberToObject(j, "samples", n);
    if (n < n_global) cJSON_AddNumberToObject(j, "samples_damaged", n_global - n);
    cJSON_AddNumberToObject(j, "seconds", progress_now() - t0);
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = eval_append_line(v->jsonl, line, err, errlen);
    free(line);
    if (rc) return -1;
    if (met) {
        int trc = metrics_scalar(met, "val/loss", step, all[0]);
        if (swap) trc |= metrics_scalar(met, "val/loss_ema", step, all[1]);
        for (int k = 0; k < K; k++) {
            char tag[48];
            snprintf(tag, sizeof tag, "val/loss_sigma_%g", c->validation.sigmas[k]);
            trc |= metrics_scalar(met, tag, step, mean[0][k]);
        }
        if (trc && !v->tb_warned) {  // a full disk: the run goes on, as for the training's metrics
            v->tb_warned = true;
            progress_message(prog, "validation: %s; the training goes on, the values TensorBoard misses are in %s",
                             met->last_err[0] ? met->last_err : "TensorBoard: out of host memory", v->jsonl);
        }
    }
    char by[256] = "", avg[64] = "";
    for (int k = 0; k < K; k++) {
        size_t l = strlen(by);
        snprintf(by + l, sizeof by - l, "%sσ %g: %.4g", k ? ", " : "", c->validation.sigmas[k], mean[0][k]);
    }
    if (swap) snprintf(avg, sizeof avg, "; the weight average %.4g", all[1]);
    progress_message(prog, "validation at step %lld: loss %.4g (%s)%s on %.0f samples, %.1fs", (long long)step, all[0], by, avg, n,
                     progress_now() - t0);
    return 0;
}

void train_val_close(train_val *v) {
    loader_index_close(v->ix);
    v->ix = NULL, v->ix_stage = 0;
}
