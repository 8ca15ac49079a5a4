// latent_cache_build.c — `cameo cache-latents`: every target a config's run can draw (each record in
// each bucket a stage puts it in, cut from the centre) through its VAE into a latent cache
// (train/latent_cache.h).
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "data/dataset.h"
#include "data/preprocess.h"
#include "train/cache_cli.h"
#include "train/cli.h"
#include "train/latent_cache.h"
#include "train/models.h"
#include "train/progress.h"

typedef struct {             // the records of one bucket (flipped or not) waiting to go through the VAE together
    int W, H, flip, n;
    cache_slot *slots;       // [batch] the records read
    bool *bad;               // [batch] those that do not decode
} lat_queue;

typedef struct {
    latent_cache *lc;
    ic_models *m;            // the VAE alone (ic_models_vae)
    int batch;
    uint64_t mh;             // the dataset's manifest hash
    const char *dir;         // the dataset's, for messages
    const latent_tables *tables;  // the bucket tables its records go in
    const uint16_t *sizes;   // [samples][2] its stored sizes
    int want[4 * CFG_MAX_STAGES][3], nw;  // the record's (W, H, flipped) still to cache
    bool quiet, tty, repair;
    lat_queue *q;            // [nq] one per bucket met so far
    int nq, capq;
    float *pix;              // [batch, 3, H, W] the targets, as the loader makes them (the largest bucket's room)
    size_t pix_cap;
    uint64_t *ids;           // [batch]
    fstore_report *r;
} pending;

// the targets [0, n) of ids[0, n) in the W x H bucket (flipped or not) through the VAE, into the
// cache in one commit
static int put_targets(pending *p, int n, int W, int H, int flip, char *err, size_t errlen) {
    if (!n) return 0;
    autograd_no_grad_push();
    cm_tensor *hx = tensor_from_host(CM_F32, 4, (int64_t[]){n, 3, H, W}, p->pix, p->m->dev);  // as step_batch_upload sends it
    cm_tensor *x = op_cast(hx, p->m->dtype), *lv = NULL;
    cm_tensor *mean = vae_encode(&p->m->vae, x, &lv);  // [n, Cl, H/f, W/f] each, logvar clamped
    cm_tensor *mom = op_concat(2, (cm_tensor *[]){mean, lv}, 1);  // [n, 2 Cl, H/f, W/f]
    autograd_no_grad_pop();
    int rc = latent_cache_put(p->lc, p->mh, p->ids, n, W, H, flip, mom, err, errlen);
    cm_tensor *tmp[] = {hx, x, lv, mean, mom};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
    if (!rc) p->r->added += (uint64_t)n;
    // a test's fault: the process killed once this many batches are committed (an interrupted build)
    static int puts_done;
    const char *kill_at = getenv("CAMEO_FAULT_CACHE_LATENTS_KILL");
    if (!rc && kill_at && ++puts_done == atoi(kill_at)) raise(SIGKILL);
    return rc;
}

// a bucket's records: decoded and cut in parallel (WebP decoding is most of the host's work), those
// that fail skipped and counted, the rest through the VAE in their order
static int flush(pending *p, lat_queue *q, char *err, size_t errlen) {
    if (!q->n) return 0;
    size_t t = (size_t)3 * q->W * q->H;
    if (p->pix_cap < (size_t)q->n * t) {
        free(p->pix);
        p->pix = malloc((p->pix_cap = (size_t)p->batch * t) * sizeof(float));
        CM_CHECK(p->pix, "cache-latents", "out of host memory for %d targets of %dx%d", p->batch, q->W, q->H);
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < q->n; i++) {
        cache_slot *s = &q->slots[i];
        int32_t crop[4];
        q->bad[i] = !cache_slot_decode(s, "cache-latents");
        if (!q->bad[i])  // the loader's target with data.random_crop false: the centre
            CM_CHECK(!preprocess_target(&s->ps, (int)s->w, (int)s->h, q->W, q->H, 0.5, 0.5, q->flip, p->pix + (size_t)i * t, crop),
                     "cache-latents", "out of host memory in preprocess");
    }
    int k = 0;
    for (int i = 0; i < q->n; i++) {
        const cache_slot *s = &q->slots[i];
        if (q->bad[i]) {  // a record in two buckets is counted in each
            char what[600];
            snprintf(what, sizeof what, "%.400s: sample %llu: WebP image does not decode to %ux%u", p->dir, (unsigned long long)s->id,
                     s->w, s->h);
            cache_note_skip("cache-latents", p->r, p->quiet, p->tty, what);
            continue;
        }
        if (k != i) memmove(p->pix + (size_t)k * t, p->pix + (size_t)i * t, t * sizeof(float));
        p->ids[k++] = s->id;
    }
    // the decoded images given back: a queue per bucket met (tens), each slot's full-size pixels kept
    // until its next batch would hold a GiB for nothing
    for (int i = 0; i < q->n; i++) preprocess_scratch_free(&q->slots[i].ps);
    q->n = 0;
    return put_targets(p, k, q->W, q->H, q->flip, err, errlen);
}

// the queue of the W x H bucket, flipped or not (made when new; valid until the next call)
static lat_queue *queue_of(pending *p, int W, int H, int flip) {
    for (int i = 0; i < p->nq; i++)
        if (p->q[i].W == W && p->q[i].H == H && p->q[i].flip == flip) return &p->q[i];
    if (p->nq == p->capq) {
        p->q = realloc(p->q, (size_t)(p->capq = p->capq ? 2 * p->capq : 16) * sizeof *p->q);
        CM_CHECK(p->q, "cache-latents", "out of host memory for %d buckets", p->nq + 1);
    }
    lat_queue *q = &p->q[p->nq++];
    *q = (lat_queue){.W = W, .H = H, .flip = flip, .slots = calloc((size_t)p->batch, sizeof(cache_slot)), .bad = calloc((size_t)p->batch, sizeof(bool))};
    CM_CHECK(q->slots && q->bad, "cache-latents", "out of host memory for a batch of %d", p->batch);
    return q;
}

// the buckets of record id the tables put it in (as the loader picks them: from the stored sizes),
// flipped too with data.random_flip, that the cache lacks: into p->want; whether any
static bool latent_needed(void *ctx, uint64_t id) {
    pending *p = ctx;
    const latent_tables *t = p->tables;
    p->nw = 0;
    for (int i = 0; i < t->n; i++) {
        const int *b = t->bk[i][buckets_nearest((const int(*)[2])t->bk[i], t->nb[i], p->sizes[2 * id], p->sizes[2 * id + 1])];
        for (int f = 0; f < t->flips; f++) {
            bool seen = false;
            for (int j = 0; j < p->nw && !seen; j++) seen = p->want[j][0] == b[0] && p->want[j][1] == b[1] && p->want[j][2] == f;
            if (!seen && !latent_cache_has(p->lc, p->mh, id, b[0], b[1], f, p->repair))
                p->want[p->nw][0] = b[0], p->want[p->nw][1] = b[1], p->want[p->nw++][2] = f;
        }
    }
    return p->nw > 0;
}
// the record into the queue of each of those buckets
static int latent_take(void *ctx, uint64_t id, const record_view *rec, const record_meta *meta, char *err, size_t errlen) {
    (void)meta;
    pending *p = ctx;
    int rc = 0;
    for (int j = 0; j < p->nw && !rc; j++) {
        lat_queue *q = queue_of(p, p->want[j][0], p->want[j][1], p->want[j][2]);
        cache_slot_take(&q->slots[q->n], id, rec, "cache-latents");
        if (++q->n == p->batch) rc = flush(p, q, err, errlen);
    }
    return rc;
}

// every record of the dataset d in each bucket of the tables t it falls in; damaged or missing
// records skipped and counted
static int add_dataset(pending *p, dataset *d, const latent_tables *t, uint64_t total, double t0, char *err, size_t errlen) {
    p->mh = d->m.hash, p->dir = d->dir, p->tables = t, p->sizes = d->sizes;
    cache_walk w = {.cmd = "cache-latents", .added_what = "targets", .r = p->r, .quiet = p->quiet, .tty = p->tty, .total = total,
                    .t0 = t0, .ctx = p, .need = latent_needed, .take = latent_take};
    int rc = cache_walk_dataset(&w, d, err, errlen);
    for (int i = 0; i < p->nq && !rc; i++) rc = flush(p, &p->q[i], err, errlen);
    return rc;
}

int latent_cache_build(const train_config *c, const char *out, int batch, bool repair, bool quiet, fstore_report *r, char *err,
                       size_t errlen) {
    memset(r, 0, sizeof *r);
    double t0 = progress_now();
    const char *paths[CFG_MAX_STAGES + 1];
    dataset ds[CFG_MAX_STAGES + 1];
    int nd = -1, rc = 0;
    if (c->data.random_crop) {  // the trainer's check, said before anything is read
        snprintf(err, errlen, "data.random_crop is true: a latent cache holds each target cut from the centre of its bucket's resize, "
                 "which a run reads with data.random_crop: false (--set data.random_crop=false)");
        rc = -1;
    } else nd = cache_open_datasets(c, "cache-latents", quiet, 0, paths, ds, err, errlen), rc = nd < 0 ? -1 : 0;
    if (nd < 0) nd = 0;
    fstore_id id;
    latent_cache cache = {0};
    ic_models m = {0};
    cm_dtype dt = cfg_model_dtype(c, c->run.dev);
    latent_tables *tb = calloc((size_t)(nd ? nd : 1), sizeof *tb);
    CM_CHECK(tb, "cache-latents", "out of host memory");
    for (int i = 0; i < nd; i++) latent_tables_of(c, paths[i], &tb[i]);
    if (!rc) rc = latent_cache_identity(c, &id, err, errlen) || latent_cache_open(&cache, out, &id, true, err, errlen) ? -1 : 0;
    if (!rc && !quiet) {
        int side = 0;  // the largest stage's entry, for the room
        for (int s = 0; s < c->n_stages; s++) side = c->stages[s].steps > 0 && c->stages[s].resolution > side ? c->stages[s].resolution : side;
        double f = (double)id.dim[1], e = (double)dtype_size(dt) * (double)id.dim[0] * (side / f) * (side / f) + 52.0;
        fprintf(stderr, "cache-latents: %s into %s (%s on %s), each target cut from the centre\n", id.encoders, out,
                dt == CM_F32 ? "f32" : "bf16", c->run.dev.type == CM_CPU ? "the CPU" : "cuda");
        cache_say_room("cache-latents", out, e, "target at the largest stage's resolution", "targets");
    }
    if (!rc) rc = ic_models_vae(&m, c->model.tiny ? &c->model.tiny_dims : NULL, c->run.seed, c->model.vae, c->run.dev, dt, err, errlen);
    pending *p = calloc(1, sizeof *p);
    CM_CHECK(p, "cache-latents", "out of host memory");
    *p = (pending){.lc = &cache, .m = &m, .batch = batch, .ids = calloc((size_t)batch, sizeof(uint64_t)), .r = r, .quiet = quiet,
                   .tty = isatty(2), .repair = repair};
    CM_CHECK(p->ids, "cache-latents", "out of host memory for a batch of %d targets", batch);
    uint64_t total = 0, key[CFG_MAX_STAGES + 1];  // each dataset's with its buckets
    r->sets = nd;
    for (int i = 0; i < nd; i++) {
        key[i] = latent_cover_key(&tb[i], ds[i].m.hash);
        if (repair || !fstore_covers(&cache.s, key[i])) total += ds[i].m.samples;
    }
    for (int i = 0; i < nd && !rc; i++) {
        if (fstore_covers(&cache.s, key[i])) {
            r->sets_done++;
            if (!repair) continue;
        }
        rc = add_dataset(p, &ds[i], &tb[i], total, t0, err, errlen);
        if (!rc) rc = fstore_add_set(&cache.s, paths[i], key[i], ds[i].m.samples, err, errlen);
    }
    if (!rc && !quiet && total) cache_show_progress("cache-latents", r->records, total, r->added, "targets", t0, isatty(2), true);
    for (int i = 0; i < p->nq; i++) {
        lat_queue *q = &p->q[i];
        for (int j = 0; j < batch; j++) cache_slot_free(&q->slots[j]);
        free(q->slots), free(q->bad);
    }
    free(p->q), free(p->ids), free(p->pix), free(p);
    free(tb);
    ic_models_free(&m);
    if (cache.s.env) latent_cache_close(&cache);
    for (int i = 0; i < nd; i++) dataset_close(&ds[i]);
    r->seconds = progress_now() - t0;
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: cameo cache-latents [CONFIG.yaml] [--out DIR] [--set key=value]... [--batch N] [--repair] [--quiet]\n"
               "  Runs the config's VAE encoder once over every record its stages and validation can draw as a target,\n"
               "  in each aspect bucket a stage puts it in (resized to cover it and cut from the centre, as the loader\n"
               "  does with data.random_crop: false; flipped too with data.random_flip), and stores the latent\n"
               "  distribution's mean and logvar in DIR (default: model.latent_cache). Train with\n"
               "  --set model.latent_cache=DIR --set data.random_crop=false: the steps read them (train.vae_sample\n"
               "  draws from them), and the loader cuts no target. A build that stops goes on from its last batch\n"
               "  when run again; after a stage's resolution or buckets change, it adds the new buckets' latents.\n"
               "  An entry is 256 KiB at 512² and 1 MiB at 1024² in bf16 (two with data.random_flip).\n"
               "  --batch  targets of one bucket through the VAE at a time (default 4)\n"
               "  --repair read every record again and check its entries (sizes, checksum, name): a damaged one is\n"
               "           computed and written anew (`cameo inspect DIR` verifies a cache without changing it)\n");
}

int cache_latents_cli(int argc, char **argv) {
    cache_cli a = {.cmd = "cache-latents", .unit = "targets", .batch = 4, .max_batch = 1024};
    int rc = cache_cli_setup(&a, argc, argv, usage, offsetof(train_config, model.latent_cache), "model.latent_cache");
    return rc >= 0 ? rc : cache_cli_build(&a, latent_cache_build, "latent cache", "model.latent_cache", "--set data.random_crop=false");
}
