// text_cache_build.c — `cameo cache-text`: every caption a config's run can draw through its
// text encoders into a text cache (train/text_cache.h).
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "data/dataset.h"
#include "eval/pairs.h"
#include "train/cache_cli.h"
#include "train/cli.h"
#include "train/demo_data.h"
#include "train/models.h"
#include "train/progress.h"
#include "train/text_cache.h"

// the captions waiting to go through the encoders together
typedef struct {
    text_cache *tc;
    ic_text *t;
    cm_device dev;
    cm_dtype dt;             // the encoders' own: what the training would cast from
    int batch, n;
    bool repair;             // an entry present must also be sound, else it is written anew
    char **caps;             // [batch] owned copies
    fstore_report *r;
} pending;

static int flush(pending *p, char *err, size_t errlen) {
    if (!p->n) return 0;
    cm_tensor *h, *q;  // [n, t5_len, joint_dim], [n, pooled_dim] in the encoders' dtype
    ic_text_encode(p->t, (const char *const *)p->caps, p->n, p->dev, p->dt, &h, &q);
    int rc = text_cache_put(p->tc, (const char *const *)p->caps, p->n, h, q, err, errlen);
    tensor_release(h), tensor_release(q);
    if (!rc) p->r->added += (uint64_t)p->n;
    // a test's fault: the process killed once this many batches are committed (an interrupted build)
    static int puts_done;
    const char *kill_at = getenv("CAMEO_FAULT_CACHE_TEXT_KILL");
    if (!rc && kill_at && ++puts_done == atoi(kill_at)) raise(SIGKILL);
    for (int i = 0; i < p->n; i++) free(p->caps[i]);
    p->n = 0;
    return rc;
}

static int add(pending *p, const char *cap, char *err, size_t errlen) {
    p->r->captions++;
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->caps[i], cap)) return 0;
    if (p->repair ? text_cache_sound(p->tc, cap) : text_cache_has(p->tc, cap)) return 0;
    p->caps[p->n] = strdup(cap);
    CM_CHECK(p->caps[p->n], "cache-text", "out of host memory");
    return ++p->n == p->batch ? flush(p, err, errlen) : 0;
}

static int text_take(void *ctx, uint64_t id, const record_view *rec, const record_meta *meta, char *err, size_t errlen) {
    (void)id, (void)rec;
    int rc = 0;
    for (int k = 0; k < meta->n_captions && !rc; k++) rc = add(ctx, meta->captions[k], err, errlen);
    return rc;
}

// every record's captions of the dataset d; corrupt or missing records skipped and counted
static int add_dataset(pending *p, dataset *d, uint64_t total, double t0, bool quiet, char *err, size_t errlen) {
    cache_walk w = {.cmd = "cache-text", .added_what = "captions", .r = p->r, .quiet = quiet, .tty = isatty(2), .meta = true,
                    .total = total, .t0 = t0, .ctx = p, .take = text_take};
    int rc = cache_walk_dataset(&w, d, err, errlen);
    return rc ? rc : flush(p, err, errlen);
}

int text_cache_build(const train_config *c, const char *out, int batch, bool repair, bool quiet, fstore_report *r, char *err,
                     size_t errlen) {
    memset(r, 0, sizeof *r);
    double t0 = progress_now();
    const char *paths[CFG_MAX_STAGES + 1];
    dataset ds[CFG_MAX_STAGES + 1];
    int nd = cache_open_datasets(c, "cache-text", quiet, DATASET_NO_SIZES, paths, ds, err, errlen), rc = nd < 0 ? -1 : 0;
    if (nd < 0) nd = 0;
    text_cache_id id;
    text_cache tc = {0};
    ic_text t = {0};
    eval_pair *pairs = NULL;
    int npairs = 0;
    if (!rc && c->eval.every > 0 && c->eval.pairs[0] && eval_pairs_read(c->eval.pairs, &pairs, &npairs, err, errlen)) rc = -1;
    if (!rc) rc = text_cache_identity(c, &id, err, errlen) || text_cache_open(&tc, out, &id, true, err, errlen) ? -1 : 0;
    int where = c->model.text_cpu ? IC_TEXT_CPU : IC_TEXT_MODEL;
    cm_dtype dt = c->model.text_cpu ? CM_F32 : cfg_model_dtype(c, c->run.dev);
    cm_device dev = c->model.text_cpu ? CM_DEV_CPU : c->run.dev;
    if (!rc && !quiet) {
        fprintf(stderr, "cache-text: %s into %s (%s on %s)\n", id.encoders, out, dt == CM_F32 ? "f32" : "bf16",
                dev.type == CM_CPU ? "the CPU" : "cuda");
        cache_say_room("cache-text", out, (double)dtype_size(dt) * (double)(id.dim[0] * id.dim[1] + id.dim[2]) + 64.0, "caption",
                       "captions");
    }
    if (!rc) rc = ic_models_text(&t, c->model.tiny ? &c->model.tiny_dims : NULL, c->run.seed, c->model.t5, c->model.clip, 0, where,
                                 c->run.dev, cfg_model_dtype(c, c->run.dev), err, errlen);
    pending p = {.tc = &tc, .t = &t, .dev = dev, .dt = dt, .batch = batch, .repair = repair, .caps = calloc((size_t)batch, sizeof(char *)), .r = r};
    uint64_t total = 0;
    r->sets = nd;
    for (int i = 0; i < nd; i++)
        if (repair || !text_cache_covers(&tc, ds[i].m.hash)) total += ds[i].m.samples;
    if (!rc) rc = add(&p, "", err, errlen);  // caption dropout's
    for (int i = 0; i < npairs && !rc; i++) rc = add(&p, pairs[i].prompt, err, errlen);
    if (!rc) rc = flush(&p, err, errlen);
    for (int i = 0; i < nd && !rc; i++) {
        if (text_cache_covers(&tc, ds[i].m.hash)) {
            r->sets_done++;
            if (!repair) continue;
        }
        rc = add_dataset(&p, &ds[i], total, t0, quiet, err, errlen);
        if (!rc) rc = text_cache_add_set(&tc, paths[i], ds[i].m.hash, ds[i].m.samples, err, errlen);
    }
    if (!rc && !quiet && total) cache_show_progress("cache-text", r->records, total, r->added, "captions", t0, isatty(2), true);
    for (int i = 0; i < p.n; i++) free(p.caps[i]);
    free(p.caps);
    if (pairs) eval_pairs_free(pairs, npairs);
    ic_text_free(&t);
    if (tc.env) text_cache_close(&tc);
    for (int i = 0; i < nd; i++) dataset_close(&ds[i]);
    r->seconds = progress_now() - t0;
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: cameo cache-text [CONFIG.yaml] [--out DIR] [--set key=value]... [--batch N] [--repair] [--quiet]\n"
               "  Runs the config's T5 and CLIP once over every caption its stages and validation can draw (every\n"
               "  caption of every record, caption dropout's \"\" and eval.pairs' prompts) and stores their outputs in\n"
               "  DIR (default: model.text_cache). Train with --set model.text_cache=DIR: the steps read them and the\n"
               "  text encoders are never loaded. A build that stops goes on from its last batch when run again.\n"
               "  --batch  captions through the encoders at a time (default 8)\n"
               "  --repair read every caption again and check its entry (sizes, checksum, caption): a damaged one\n"
               "           is encoded and written anew (`cameo inspect DIR` verifies a cache without changing it)\n");
}

int cache_text_cli(int argc, char **argv) {
    cache_cli a = {.cmd = "cache-text", .unit = "captions", .batch = 8, .max_batch = 4096};
    int rc = cache_cli_setup(&a, argc, argv, usage, offsetof(train_config, model.text_cache), "model.text_cache");
    return rc >= 0 ? rc : cache_cli_build(&a, text_cache_build, "text cache", "model.text_cache", "");
}

static void text_rows(const fstore *s, const fstore_check *r) {
    printf("  rows:     T5 %lld x %lld + CLIP %lld a caption; %llu in bf16, %llu in f32\n", (long long)s->id.dim[0],
           (long long)s->id.dim[1], (long long)s->id.dim[2], (unsigned long long)r->bf16, (unsigned long long)(r->entries - r->bf16));
}

int text_cache_inspect_cli(const char *path) { return fstore_inspect_cli(&TEXT_CACHE_KIND, path, "captions", text_rows); }
