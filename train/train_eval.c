// train_eval.c — see train_eval.h
#include "train/train_eval.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/fsutil.h"
#include "eval/eval_models.h"
#include "eval/results.h"
#include "train/progress.h"

// results.jsonl keeps the lines of steps up to the resume step (a resumed run makes the later
// ones again), noting whether that step itself has its evaluation
typedef struct {
    int64_t step;
    bool seen;
} upto_ctx;
static bool up_to(const cJSON *j, void *ctx) {
    upto_ctx *u = ctx;
    if (cJSON_GetObjectItemCaseSensitive(j, "key")) return true;  // a `cameo eval` sweep's line: not the training's to drop
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
    if (cJSON_IsNumber(st) && st->valuedouble == (double)u->step) u->seen = true;
    return cJSON_IsNumber(st) && st->valuedouble <= (double)u->step;
}

int train_eval_open(train_eval *te, ic_models *m, const train_config *c, const char *run_dir, int64_t resume_step,
                    char *err, size_t errlen) {
    memset(te, 0, sizeof *te);
    snprintf(te->dir, sizeof te->dir, "%s/eval", run_dir);
    char e[2048], results[4300];
    if (fs_mkdirs(te->dir)) {
        snprintf(err, errlen, "eval: cannot create %s (%s)", te->dir, strerror(errno));
        return -1;
    }
    snprintf(results, sizeof results, "%s/results.jsonl", te->dir);
    int dropped;
    upto_ctx u = {resume_step, false};
    if (resume_step >= 0 && eval_jsonl_filter(results, up_to, &u, &dropped, err, errlen)) return -1;
    te->resume_unevaluated = resume_step >= 0 && !u.seen;
    if (eval_pairs_read(c->eval.pairs, &te->pairs, &te->np, e, sizeof e)) {
        snprintf(err, errlen, "eval.pairs: %s", e);
        return -1;
    }
    te->open = true;
    if (eval_decoder_open(m, c, &te->dec, &te->pd, e, sizeof e)) {
        snprintf(err, errlen, "eval: the VAE decoder: %s", e);
        return -1;
    }
    if (c->eval.clip[0]) {
        if (eval_clip_open(&te->clip, c->eval.clip, m->dev, m->dtype, e, sizeof e)) {
            snprintf(err, errlen, "eval.clip: %s: %s", c->eval.clip, e);
            return -1;
        }
        te->has_clip = true;
    }
    if (eval_pairs_prepare(m, te->has_clip ? &te->clip : NULL, c->eval.pairs, te->pairs, te->np, e, sizeof e)) {
        snprintf(err, errlen, "eval.pairs: %s", e);
        return -1;
    }
    return 0;
}

bool train_eval_due(const train_config *c, int64_t step, bool last) { return c->eval.every > 0 && (step % c->eval.every == 0 || last); }

int train_eval_run(train_eval *te, ic_models *m, const train_config *c, int64_t step, int resolution, metrics *met,
                   progress *prog, watchdog *wd, char *err, size_t errlen) {
    const char *slow = getenv("CAMEO_FAULT_EVAL_SLEEP");
    int f2 = 2 * m->vae_factor, side = c->eval.size ? c->eval.size : resolution;
    side = side / f2 * f2;  // the sampler's sizes are multiples of twice the VAE factor
    if (side < f2) side = f2;
    eval_sample_opts o = {.steps = c->eval.steps, .guidance = c->eval.guidance, .ip_scale = c->eval.scale, .width = side, .height = side};
    char dir[4300], png[4400], results[4300];
    snprintf(dir, sizeof dir, "%s/step-%lld", te->dir, (long long)step);
    snprintf(results, sizeof results, "%s/results.jsonl", te->dir);
    if (fs_mkdirs(dir)) {
        snprintf(err, errlen, "eval: cannot create %s (%s)", dir, strerror(errno));
        return -1;
    }
    double t0 = progress_now(), sum[4] = {0};
    int n = 0, trc = 0;  // trc: a TensorBoard write failed
    // the step's lines are appended together once all its images are made: a run killed during an
    // evaluation leaves none of them (its resume evaluates that step again), never a part
    char *lines = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&lines, &len);
    CM_CHECK(f, "eval", "out of host memory");
    int rc = 0;
    for (int k = 0; k < c->eval.seeds && !rc; k++)
        for (int p = 0; p < te->np && !rc; p++) {
            o.seed = (uint64_t)k;
            snprintf(png, sizeof png, "%s/p%d_seed%d.png", dir, p, k);
            eval_scores sc;
            if (wd) watchdog_arm_for(wd, step - 1, "an image of the evaluation after step");
            if (slow && *slow) usleep((useconds_t)(atof(slow) * 1000));
            int made = eval_make_image(m, &te->dec, te->has_clip ? &te->clip : NULL, &te->pairs[p], &o, png, &sc, err, errlen);
            if (wd) watchdog_disarm(wd);
            if (made) {
                rc = -1;
                break;
            }
            if (k == 0) {  // each pair's first image in TensorBoard (IMAGES: eval/pP, a slider over the steps)
                size_t plen;
                uint8_t *bytes = (uint8_t *)fs_read_file(png, &plen, (size_t)256 << 20);
                char tag[32];
                snprintf(tag, sizeof tag, "eval/p%d", p);
                if (bytes) trc |= metrics_image(met, tag, step, side, side, bytes, plen);
                free(bytes);
            }
            double v[4] = {sc.dino_i, sc.siglip_i, sc.clip_i, sc.clip_t};
            for (int i = 0; i < 4; i++) sum[i] += v[i];
            n++;
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "step", (double)step);
            cJSON_AddNumberToObject(j, "pair", p);
            cJSON_AddNumberToObject(j, "seed", k);
            cJSON_AddStringToObject(j, "ref", te->pairs[p].ref);
            cJSON_AddStringToObject(j, "prompt", te->pairs[p].prompt);
            cJSON_AddNumberToObject(j, "scale", o.ip_scale);
            cJSON_AddNumberToObject(j, "guidance", o.guidance);
            cJSON_AddNumberToObject(j, "steps", o.steps);
            cJSON_AddNumberToObject(j, "size", side);
            cJSON_AddStringToObject(j, "image", png + strlen(te->dir) + 1);
            cJSON_AddNumberToObject(j, "dino_i", sc.dino_i);
            cJSON_AddNumberToObject(j, "siglip_i", sc.siglip_i);
            if (te->has_clip) {
                cJSON_AddNumberToObject(j, "clip_i", sc.clip_i);
                cJSON_AddNumberToObject(j, "clip_t", sc.clip_t);
            }
            char *line = cJSON_PrintUnformatted(j);
            CM_CHECK(line && fputs(line, f) >= 0 && fputc('\n', f) != EOF, "eval", "out of host memory");
            free(line);
            cJSON_Delete(j);
        }
    fclose(f);
    // whole or not at all: the training goes on after a failure, and a step's lines cut off by a full
    // disk would be glued onto the next evaluation's
    char e[1024];
    if (!rc && fs_append_whole(results, lines, len, e, sizeof e)) rc = (snprintf(err, errlen, "eval: %s", e), -1);
    free(lines);
    if (rc) return rc;
    const char *tags[4] = {"eval/dino_i", "eval/siglip_i", "eval/clip_i", "eval/clip_t"};
    for (int i = 0; i < (te->has_clip ? 4 : 2); i++) trc |= metrics_scalar(met, tags[i], step, sum[i] / n);
    if (trc && !te->tb_warned) {  // a full disk: the run goes on, as for the training's metrics
        te->tb_warned = true;
        progress_message(prog, "eval: %s; the training goes on, the images and scores TensorBoard misses are in %s",
                         met->last_err[0] ? met->last_err : "TensorBoard: out of host memory", results);
    }
    if (te->has_clip)
        progress_message(prog, "eval at step %lld: DINO-I %.4f, SigLIP-I %.4f, CLIP-I %.4f, CLIP-T %.4f (%d images, %.1f s)",
                         (long long)step, sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n, n, progress_now() - t0);
    else
        progress_message(prog, "eval at step %lld: DINO-I %.4f, SigLIP-I %.4f (%d images, %.1f s)", (long long)step, sum[0] / n,
                         sum[1] / n, n, progress_now() - t0);
    return 0;
}

void train_eval_close(train_eval *te) {
    if (te->open) {
        vae_decoder_free(&te->dec);
        params_free(&te->pd);
        eval_pairs_free(te->pairs, te->np);
    }
    if (te->has_clip) eval_clip_close(&te->clip);
    memset(te, 0, sizeof *te);
}
