// ref_cache_build.c — `cameo cache-refs`: every reference a config's run can draw through its
// vision towers into a reference cache (train/ref_cache.h).
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "data/dataset.h"
#include "data/preprocess.h"
#include "train/cache_cli.h"
#include "train/cli.h"
#include "train/demo_data.h"
#include "train/models.h"
#include "train/progress.h"
#include "train/ref_cache.h"
#include "train/step.h"

// the references waiting to go through the towers together
typedef struct {
    ref_cache *rc;
    ic_models *m;            // the towers alone (ic_models_vision)
    int batch, n, R;
    uint64_t mh;             // the dataset's manifest hash
    const char *dir;         // the dataset's, for messages
    bool quiet, tty, repair;
    cache_slot *slots;       // [batch] the records read
    uint64_t *ids;           // [batch] of the views below
    float *sig, *dino;       // [batch, 5, 3, R, R] the views, as the loader makes them
    fstore_report *r;
    bool *bad;               // [batch] the records that do not decode
} pending;

static size_t view_floats(int R) { return (size_t)5 * 3 * R * R; }

// the views [0, n) of ids[0, n) through the towers, into the cache in one commit
static int put_views(pending *p, int n, char *err, size_t errlen) {
    if (!n) return 0;
    vision_features f;  // [n, N, W], [n, S N, W], [n, 4N, W] in the towers' dtype
    autograd_no_grad_push();
    step_reference_features(p->m, p->sig, p->dino, n, p->R, &f);
    autograd_no_grad_pop();
    int rc = ref_cache_put(p->rc, p->mh, p->ids, n, &f, err, errlen);
    vision_features_release(&f);
    if (!rc) p->r->added += (uint64_t)n;
    // a test's fault: the process killed once this many batches are committed (an interrupted build)
    static int puts_done;
    const char *kill_at = getenv("CAMEO_FAULT_CACHE_REFS_KILL");
    if (!rc && kill_at && ++puts_done == atoi(kill_at)) raise(SIGKILL);
    return rc;
}

// the records read: decoded and cut into views in parallel (WebP decoding is most of the host's
// work), those that fail skipped and counted, the rest through the towers in their order
static int flush(pending *p, char *err, size_t errlen) {
    if (!p->n) return 0;
    size_t v = view_floats(p->R);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < p->n; i++) {
        cache_slot *s = &p->slots[i];
        p->bad[i] = !cache_slot_decode(s, "cache-refs");
        if (!p->bad[i])
            CM_CHECK(!preprocess_reference(&s->ps, (int)s->w, (int)s->h, p->R, p->sig + (size_t)i * v, p->dino + (size_t)i * v),
                     "cache-refs", "out of host memory in preprocess");
    }
    int k = 0;
    for (int i = 0; i < p->n; i++) {
        const cache_slot *s = &p->slots[i];
        if (p->bad[i]) {
            char what[600];
            snprintf(what, sizeof what, "%.400s: sample %llu: WebP image does not decode to %ux%u", p->dir, (unsigned long long)s->id,
                     s->w, s->h);
            cache_note_skip("cache-refs", p->r, p->quiet, p->tty, what);
            continue;
        }
        if (k != i) {
            memmove(p->sig + (size_t)k * v, p->sig + (size_t)i * v, v * sizeof(float));
            memmove(p->dino + (size_t)k * v, p->dino + (size_t)i * v, v * sizeof(float));
        }
        p->ids[k++] = s->id;
    }
    p->n = 0;
    return put_views(p, k, err, errlen);
}

static bool ref_needed(void *ctx, uint64_t id) {
    pending *p = ctx;
    return !ref_cache_has(p->rc, p->mh, id, p->repair);
}
static int ref_take(void *ctx, uint64_t id, const record_view *rec, const record_meta *meta, char *err, size_t errlen) {
    (void)meta;
    pending *p = ctx;
    cache_slot_take(&p->slots[p->n], id, rec, "cache-refs");
    return ++p->n == p->batch ? flush(p, err, errlen) : 0;
}

// every record of the dataset d as a reference; damaged or missing records skipped and counted
static int add_dataset(pending *p, dataset *d, uint64_t total, double t0, char *err, size_t errlen) {
    p->mh = d->m.hash, p->dir = d->dir;
    cache_walk w = {.cmd = "cache-refs", .added_what = "references", .r = p->r, .quiet = p->quiet, .tty = p->tty, .total = total,
                    .t0 = t0, .ctx = p, .need = ref_needed, .take = ref_take};
    int rc = cache_walk_dataset(&w, d, err, errlen);
    return rc ? rc : flush(p, err, errlen);
}

int ref_cache_build(const train_config *c, const char *out, int batch, bool repair, bool quiet, fstore_report *r, char *err,
                    size_t errlen) {
    memset(r, 0, sizeof *r);
    double t0 = progress_now();
    const char *paths[CFG_MAX_STAGES + 1];
    dataset ds[CFG_MAX_STAGES + 1];
    int nd = cache_open_datasets(c, "cache-refs", quiet, DATASET_NO_SIZES, paths, ds, err, errlen), rc = nd < 0 ? -1 : 0;
    if (nd < 0) nd = 0;
    fstore_id id;
    ref_cache cache = {0};
    ic_models m = {0};
    cm_dtype dt = cfg_model_dtype(c, c->run.dev);
    if (!rc) rc = ref_cache_identity(c, &id, err, errlen) || ref_cache_open(&cache, out, &id, true, err, errlen) ? -1 : 0;
    if (!rc && !quiet) {
        fprintf(stderr, "cache-refs: %s into %s (%s on %s)\n", id.encoders, out, dt == CM_F32 ? "f32" : "bf16",
                c->run.dev.type == CM_CPU ? "the CPU" : "cuda");
        cache_say_room("cache-refs", out, (double)dtype_size(dt) * (double)REF_CACHE_KIND.values(id.dim) + 48.0, "reference",
                       "references");
    }
    if (!rc) rc = ic_models_vision(&m, c->model.tiny ? &c->model.tiny_dims : NULL, c->run.seed, c->model.siglip, c->model.dinov2,
                                   c->data.ref_size, c->run.dev, dt, err, errlen);
    int R = m.ref_size > 0 ? m.ref_size : 1;  // (0 when the set-up failed above: nothing is read then)
    pending p = {.rc = &cache, .m = &m, .batch = batch, .R = R, .ids = calloc((size_t)batch, sizeof(uint64_t)), .r = r,
                 .slots = calloc((size_t)batch, sizeof(cache_slot)), .bad = calloc((size_t)batch, sizeof(bool)), .quiet = quiet,
                 .tty = isatty(2), .repair = repair,
                 .sig = calloc((size_t)batch * view_floats(R), sizeof(float)), .dino = calloc((size_t)batch * view_floats(R), sizeof(float))};
    CM_CHECK(p.ids && p.slots && p.bad && p.sig && p.dino, "cache-refs", "out of host memory for a batch of %d references", batch);
    uint64_t total = 0;
    r->sets = nd;
    for (int i = 0; i < nd; i++)
        if (repair || !fstore_covers(&cache.s, ds[i].m.hash)) total += ds[i].m.samples;
    if (!rc && !ref_cache_has(&cache, 0, REF_CACHE_DROPPED, repair)) {  // reference dropout's: the features of zero views
        p.mh = 0, p.ids[0] = REF_CACHE_DROPPED;
        memset(p.sig, 0, view_floats(R) * sizeof(float)), memset(p.dino, 0, view_floats(R) * sizeof(float));
        rc = put_views(&p, 1, err, errlen);
    }
    for (int i = 0; i < nd && !rc; i++) {
        if (fstore_covers(&cache.s, ds[i].m.hash)) {
            r->sets_done++;
            if (!repair) continue;
        }
        rc = add_dataset(&p, &ds[i], total, t0, err, errlen);
        if (!rc) rc = fstore_add_set(&cache.s, paths[i], ds[i].m.hash, ds[i].m.samples, err, errlen);
    }
    if (!rc && !quiet && total) cache_show_progress("cache-refs", r->records, total, r->added, "references", t0, isatty(2), true);
    for (int i = 0; i < batch; i++) cache_slot_free(&p.slots[i]);
    free(p.slots), free(p.bad), free(p.ids), free(p.sig), free(p.dino);
    ic_models_free(&m);
    if (cache.s.env) ref_cache_close(&cache);
    for (int i = 0; i < nd; i++) dataset_close(&ds[i]);
    r->seconds = progress_now() - t0;
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: cameo cache-refs [CONFIG.yaml] [--out DIR] [--set key=value]... [--batch N] [--repair] [--quiet]\n"
               "  Runs the config's SigLIP and DINOv2 once over every record its stages and validation can draw as a\n"
               "  reference (its 5 views, as the loader makes them) and over the dropped reference's zero views, and\n"
               "  stores the projector's features in DIR (default: model.ref_cache). Train with --set model.ref_cache=DIR:\n"
               "  the steps read them, and neither the towers nor the loader touch a reference's pixels. A build that\n"
               "  stops goes on from its last batch when run again. An entry is 31 MB at full size in bf16: for\n"
               "  fine-tuning sets, not for millions of images.\n"
               "  --batch  references through the towers at a time (default 4)\n"
               "  --repair read every record again and check its entry (sizes, checksum, name): a damaged one is\n"
               "           computed and written anew (`cameo inspect DIR` verifies a cache without changing it)\n");
}

int cache_refs_cli(int argc, char **argv) {
    cache_cli a = {.cmd = "cache-refs", .unit = "references", .batch = 4, .max_batch = 1024};
    int rc = cache_cli_setup(&a, argc, argv, usage, offsetof(train_config, model.ref_cache), "model.ref_cache");
    return rc >= 0 ? rc : cache_cli_build(&a, ref_cache_build, "reference cache", "model.ref_cache", "");
}
