// loader.c — decode threads filling a ring of batch slots; the consumer takes them in order.
// Task t = (batch sequence s, sample j) is dispatched in order under one mutex; the first task
// of a batch copies this rank's ids from the epoch order (or the index's kept batches) into the
// slot, so workers never touch the order. A slot is reused only after the consumer has moved past it.
#include "data/loader.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/buckets.h"
#include "data/checksum.h"
#include "data/cpus.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "data/rng.h"
#include "data/sampler.h"

#define LOG_FIRST 20

static atomic_int thread_note_said[2];  // [quiet]: the note on decode threads a thread limit refused, said

typedef struct {
    uint64_t seq;              // batch sequence number held (UINT64_MAX = none)
    uint64_t epoch, index;     // (epoch, global batch index) of it
    int H, W;
    int done;                  // samples finished
    uint32_t *ids;             // [Bl]
    uint8_t *ok;               // [Bl]
    float *target;             // [Bl, 3, maxHW]
    float *sig, *dino;         // [Bl, 5, 3, R, R]
    char **cap; size_t *cap_len;// [Bl] caption buffers
    uint8_t *cdrop, *rdrop, *paired, *flipped;
    int64_t *sid, *rid;
    int32_t *chr, *orig, *crop;
    loader_counts pend;        // this batch's skipped / replaced records: into the loader's counts when handed out
} slot;

// what a loader reads from: the dataset, every sample's bucket, the sampler. Opening it reads every
// sample's size (at 10M samples seconds and ~50 MB): a reader that opens loaders again and again
// over the same samples (the validation, at each pass) opens it once and lends it to each.
struct loader_index {
    loader_config cfg;         // what it was opened with (path: path[]; buckets: NULL, the table is buckets[])
    char path[4096];
    dataset ds;
    int buckets[BUCKETS_MAX][2], nb;
    uint8_t *bucket;           // [n] bucket or SAMPLER_EXCLUDED (NULL once batches are kept)
    uint64_t *shard_counts;    // [n_shards] (the sampler points at it)
    sampler smp;
    uint64_t bucket_hash;
    double pair_p;             // mixed: the chance a sample WITH a pair is paired, so that paired_share of all are
    uint64_t single_image;     // paired: samples left out (the only image of their character)
    uint64_t kept;             // 0: the order is computed per epoch; else the first `kept` batches, held below
    uint32_t *kept_ids;        // [kept, G] global sample ids of the batches from (epoch 0, batch 0)
    uint8_t *kept_bucket;      // [kept]
};

struct loader {
    loader_config cfg;
    char path[4096];
    loader_index *ix;          // its own (loader_open) or lent (loader_open_index)
    int own_ix;
    sampler_order order;       // of epoch order.epoch (valid when have_order)
    int have_order;
    int Bl, G;
    size_t maxHW;
    uint64_t start_epoch, start_batch;
    int depth;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t cv_task, cv_ready;
    uint64_t next_task, consumed;
    int holding;               // the consumer holds batch `consumed`
    int stop, failed;
    int busy, idle_waiting;    // tasks being decoded now; loader_wait_idle waiting for none
    char fail_msg[512];
    int nthreads;
    pthread_t *threads;
    void *workers;             // [nthreads] worker
    loader_counts counts;
    uint64_t logged;
    uint64_t epoch_out;        // epoch of the last batch handed out (UINT64_MAX: none yet)
};

loader_config loader_config_default(void) {
    loader_config c;
    memset(&c, 0, sizeof c);
    c.mode = LOADER_UNPAIRED;
    c.paired_share = 0.5f;
    c.world = 1;
    c.global_batch = 1;
    c.resolution = 512;
    c.bucket_step = 64;
    c.max_aspect = 2.0f;
    c.ref_size = 384;
    c.random_crop = 1;
    c.random_flip = 0;
    c.prefetch = 2;
    return c;
}

static void seq_to_batch(const loader *L, uint64_t seq, uint64_t *epoch, uint64_t *index) {
    uint64_t nb = L->ix->smp.batches_per_epoch, k = L->start_batch + seq;
    *epoch = L->start_epoch + k / nb;
    *index = k % nb;
}

static void count_skip(loader *L, uint64_t *counter, const char *msg) {
    pthread_mutex_lock(&L->mu);
    (*counter)++;
    int log = !L->cfg.no_skip_log && (L->cfg.verbose || L->logged < LOG_FIRST);
    L->logged++;
    pthread_mutex_unlock(&L->mu);
    if (log) fprintf(stderr, "loader: skipped: %s\n", msg);
}

typedef struct { loader *L; dataset_reader rd; preprocess_scratch ps; } worker;

// decodes record into w->ps.src; returns 0 or a counter to bump (err filled)
static uint64_t *load_image(worker *w, loader_counts *cnt, uint64_t id, record_view *rec, int need_meta, char *err, size_t el) {
    loader *L = w->L;
    int rc = dataset_get(&w->rd, id, rec, err, el);
    if (rc == DS_MISSING) return &cnt->missing_record;
    if (rc) return &cnt->corrupt_record;
    if (need_meta && dataset_get_meta(&w->rd, rec, err, el)) return &cnt->bad_metadata;
    if (image_webp_decode_into(rec->image, rec->image_len, (rec->flags & RECORD_FLAG_ALPHA) != 0, &w->ps.dec, &w->ps.dec_cap) ||
        w->ps.dec.w != rec->width || w->ps.dec.h != rec->height) {
        snprintf(err, el, "%.400s: sample %llu: WebP image does not decode to %ux%u", L->path, (unsigned long long)id, rec->width, rec->height);
        return &cnt->bad_image;
    }
    if (preprocess_load(&w->ps.dec, &w->ps)) { snprintf(err, el, "out of memory"); return &cnt->bad_image; }
    return NULL;
}

static void process(worker *w, slot *s, int j) {
    loader *L = w->L;
    const loader_config *c = &L->cfg;
    uint64_t id = s->ids[j], e = s->epoch, seed = c->seed;
    int R = c->ref_size;
    size_t view = (size_t)5 * 3 * R * R;
    char err[600];
    record_view rec;
    s->ok[j] = 0;
    uint64_t *bad = load_image(w, &s->pend, id, &rec, 1, err, sizeof err);
    if (bad) { count_skip(L, bad, err); return; }
    const record_meta *m = &w->rd.meta;
    // caption
    uint64_t st = rng_key(seed, e, id, RNG_CAPTION);
    const char *cap = m->captions[rng_below(&st, (uint64_t)m->n_captions)];
    s->cdrop[j] = rng_unit_key(seed, e, id, RNG_CAPTION_DROP) < c->caption_drop;
    if (s->cdrop[j]) cap = "";
    size_t cl = strlen(cap);
    if (s->cap_len[j] < cl + 1) { s->cap[j] = realloc(s->cap[j], cl + 1); s->cap_len[j] = cl + 1; }
    memcpy(s->cap[j], cap, cl + 1);
    s->orig[2 * j] = (int32_t)m->orig_w;
    s->orig[2 * j + 1] = (int32_t)m->orig_h;
    s->chr[j] = (int32_t)rec.character;
    // target
    double ux = 0.5, uy = 0.5;
    if (c->random_crop) { st = rng_key(seed, e, id, RNG_CROP); ux = rng_unit(&st); uy = rng_unit(&st); }
    s->flipped[j] = c->random_flip && rng_unit_key(seed, e, id, RNG_FLIP) < 0.5;
    int w0 = rec.width, h0 = rec.height;
    if (c->no_target) memset(s->crop + 4 * j, 0, 4 * sizeof(int32_t));  // its latent comes from a latent cache
    else if (preprocess_target(&w->ps, w0, h0, s->W, s->H, ux, uy, s->flipped[j], s->target + (size_t)j * 3 * s->H * s->W, s->crop + 4 * j)) {
        count_skip(L, &s->pend.bad_image, "out of memory in preprocess");
        return;
    }
    // reference
    int paired = c->mode == LOADER_PAIRED || (c->mode == LOADER_MIXED && rng_unit_key(seed, e, id, RNG_PAIR_MODE) < L->ix->pair_p);
    uint64_t ref = id;
    if (paired && rec.character < L->ix->ds.n_chars && L->ix->ds.char_count[rec.character] >= 2) {
        uint64_t n = L->ix->ds.char_count[rec.character], first = L->ix->ds.char_first[rec.character];
        st = rng_key(seed, e, id, RNG_PAIR_PICK);
        ref = first + rng_below(&st, n - 1);
        if (ref >= id) ref++;
    } else paired = 0;
    s->paired[j] = (uint8_t)paired;
    s->rdrop[j] = rng_unit_key(seed, e, id, RNG_REF_DROP) < c->ref_drop;
    float *sig = c->no_ref_views ? NULL : s->sig + (size_t)j * view, *dino = c->no_ref_views ? NULL : s->dino + (size_t)j * view;
    if (c->no_ref_views) {  // the features come from a reference cache, keyed by (dataset, ref id)
    } else if (s->rdrop[j]) {
        memset(sig, 0, view * sizeof(float));
        memset(dino, 0, view * sizeof(float));
    } else {
        int rw = w0, rh = h0;
        if (paired) {
            record_view rr;
            uint64_t *rbad = load_image(w, &s->pend, ref, &rr, 0, err, sizeof err);
            if (rbad) {  // fall back to the target itself as reference
                count_skip(L, &s->pend.ref_fallback, err);
                paired = 0;
                s->paired[j] = 0;
                ref = id;
                if (load_image(w, &s->pend, id, &rec, 0, err, sizeof err)) { count_skip(L, &s->pend.corrupt_record, err); return; }
            } else { rw = rr.width; rh = rr.height; }
        }
        if (preprocess_reference(&w->ps, rw, rh, R, sig, dino)) { count_skip(L, &s->pend.bad_image, "out of memory in preprocess"); return; }
    }
    s->sid[j] = (int64_t)id;
    s->rid[j] = (int64_t)ref;
    s->ok[j] = 1;
}

static int ensure_order(loader *L, uint64_t epoch) {
    if (L->have_order && L->order.epoch == epoch) return 0;
    if (sampler_order_epoch(&L->ix->smp, epoch, &L->order)) return -1;
    L->have_order = 1;
    return 0;
}

// whether task t may be dispatched now: its batch has a free slot, is one to be read (max_epochs,
// max_batches: a batch never read is not decoded), and nothing failed. Under L->mu.
static int task_ready(const loader *L, uint64_t t) {
    uint64_t seq = t / (uint64_t)L->Bl, ep, ix;
    seq_to_batch(L, seq, &ep, &ix);
    int beyond = (L->cfg.max_epochs > 0 && ep >= (uint64_t)L->cfg.max_epochs) || (L->cfg.max_batches > 0 && seq >= L->cfg.max_batches);
    return seq < L->consumed + (uint64_t)L->depth && !beyond && !L->failed;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    loader *L = w->L;
    uint32_t pf[4096];
    for (;;) {
        pthread_mutex_lock(&L->mu);
        uint64_t t, seq;
        for (;;) {
            if (L->stop) { pthread_mutex_unlock(&L->mu); return NULL; }
            t = L->next_task;
            seq = t / (uint64_t)L->Bl;
            if (task_ready(L, t)) break;
            pthread_cond_wait(&L->cv_task, &L->mu);
        }
        int j = (int)(t % (uint64_t)L->Bl);
        slot *s = &L->slots[seq % (uint64_t)L->depth];
        int npf = 0;
        if (j == 0) {
            uint64_t ep, ix;
            seq_to_batch(L, seq, &ep, &ix);
            const loader_index *X = L->ix;
            const uint32_t *g, *next = NULL;  // this batch's global ids; the next one's (its records prefetched)
            int b;
            if (X->kept) {  // the index's batches, from (epoch 0, batch 0): seq is the batch's place among them
                g = X->kept_ids + seq * (uint64_t)L->G;
                b = X->kept_bucket[seq];
                if (seq + 1 < X->kept) next = g + L->G;
            } else {
                if (ensure_order(L, ep)) {
                    L->failed = 1;
                    snprintf(L->fail_msg, sizeof L->fail_msg, "%.300s: out of memory computing the order of epoch %llu", L->path, (unsigned long long)ep);
                    pthread_cond_broadcast(&L->cv_ready);
                    pthread_mutex_unlock(&L->mu);
                    return NULL;
                }
                g = L->order.ids + ix * (uint64_t)L->G;
                b = L->order.bucket[ix];
                if (ix + 1 < L->order.n_batches) next = g + L->G;  // same epoch only
            }
            memcpy(s->ids, g + (uint64_t)L->cfg.rank * L->Bl, sizeof(uint32_t) * L->Bl);
            s->W = X->buckets[b][0];
            s->H = X->buckets[b][1];
            s->epoch = ep;
            s->index = ix;
            s->done = 0;
            s->seq = seq;
            memset(&s->pend, 0, sizeof s->pend);
            // prefetch the next batch's records of this rank (a batch to be read only)
            if (next && (!L->cfg.max_batches || seq + 1 < L->cfg.max_batches)) {
                npf = L->Bl < 4096 ? L->Bl : 4096;
                memcpy(pf, next + (uint64_t)L->cfg.rank * L->Bl, sizeof(uint32_t) * npf);
            }
        }
        L->next_task++;
        L->busy++;
        pthread_mutex_unlock(&L->mu);
        for (int k = 0; k < npf; k++) dataset_prefetch(&w->rd, pf[k]);
        process(w, s, j);
        pthread_mutex_lock(&L->mu);
        int batch_ready = ++s->done == L->Bl, none_busy = --L->busy == 0;
        if (batch_ready || (none_busy && L->idle_waiting)) pthread_cond_broadcast(&L->cv_ready);  // loader_next; loader_wait_idle
        pthread_mutex_unlock(&L->mu);
    }
}

static void slot_free(slot *s, int Bl) {
    if (s->cap) for (int j = 0; j < Bl; j++) free(s->cap[j]);
    free(s->cap); free(s->cap_len); free(s->ids); free(s->ok); free(s->target); free(s->sig); free(s->dino);
    free(s->cdrop); free(s->rdrop); free(s->paired); free(s->flipped); free(s->sid); free(s->rid); free(s->chr); free(s->orig); free(s->crop);
}


// the settings any loader checks (rank, batch, sizes, mode, shares); 0, or -1 with a message
static int config_check(const loader_config *c) {
    if (!c->path) { fprintf(stderr, "loader: config path is NULL (expected a dataset folder)\n"); return -1; }
    if (c->world < 1 || c->rank < 0 || c->rank >= c->world) { fprintf(stderr, "loader: rank %d of world %d (expected 0 <= rank < world)\n", c->rank, c->world); return -1; }
    if (c->global_batch < 1 || c->global_batch % c->world) { fprintf(stderr, "loader: global_batch %d must be a positive multiple of world %d\n", c->global_batch, c->world); return -1; }
    if (c->ref_size < 1 || c->ref_size > 4096) { fprintf(stderr, "loader: ref_size %d (expected 1..4096; 384 for SigLIP/DINOv2)\n", c->ref_size); return -1; }
    if (c->mode < LOADER_UNPAIRED || c->mode > LOADER_MIXED) { fprintf(stderr, "loader: mode %d (expected 0 unpaired, 1 paired, 2 mixed)\n", (int)c->mode); return -1; }
    if (c->paired_share < 0 || c->paired_share > 1 || c->caption_drop < 0 || c->caption_drop > 1 || c->ref_drop < 0 || c->ref_drop > 1) {
        fprintf(stderr, "loader: paired_share, caption_drop and ref_drop must lie in [0, 1]\n");
        return -1;
    }
    return 0;
}

// c's bucket table into bk: the explicit list, else derived from resolution, step and aspect.
// The bucket count, or -1 with a message.
static int bucket_table(const loader_config *c, int (*bk)[2]) {
    if (c->buckets && c->n_buckets > 0) {
        if (c->n_buckets > BUCKETS_MAX) { fprintf(stderr, "loader: %d buckets (at most %d)\n", c->n_buckets, BUCKETS_MAX); return -1; }
        for (int b = 0; b < c->n_buckets; b++) {
            bk[b][0] = c->buckets[2 * b];
            bk[b][1] = c->buckets[2 * b + 1];
            if (bk[b][0] < 1 || bk[b][1] < 1) { fprintf(stderr, "loader: bucket %d is %dx%d (expected positive sides)\n", b, bk[b][0], bk[b][1]); return -1; }
        }
        return c->n_buckets;
    }
    int nb = buckets_make(c->resolution, c->bucket_step > 0 ? c->bucket_step : 64, c->max_aspect >= 1 ? c->max_aspect : 2.0, bk, BUCKETS_MAX);
    if (nb < 1) { fprintf(stderr, "loader: no bucket for resolution %d step %d\n", c->resolution, c->bucket_step); return -1; }
    return nb;
}

// keep: 0, or keep only the first `keep` global batches from (epoch 0, batch 0) and free the
// per-sample tables (the bucket of each, the sizes)
static loader_index *index_open(const loader_config *c, uint64_t keep) {
    char err[1024];
    loader_index *X = calloc(1, sizeof *X);
    if (!X) { fprintf(stderr, "loader: out of host memory\n"); return NULL; }
    X->cfg = *c;
    snprintf(X->path, sizeof X->path, "%s", c->path);
    X->cfg.path = X->path;
    X->cfg.buckets = NULL;
    if (dataset_open(&X->ds, c->path, 0, err, sizeof err)) { fprintf(stderr, "loader: %s\n", err); free(X); return NULL; }
    if ((X->nb = bucket_table(c, X->buckets)) < 0) goto fail;
    uint64_t n = X->ds.m.samples;
    X->bucket = malloc(n + 1);
    if (!X->bucket) { fprintf(stderr, "loader: %s: out of host memory for the buckets of %llu samples\n", c->path, (unsigned long long)n); goto fail; }
    for (uint64_t i = 0; i < n; i++) X->bucket[i] = (uint8_t)buckets_nearest((const int(*)[2])X->buckets, X->nb, X->ds.sizes[2 * i], X->ds.sizes[2 * i + 1]);
    if (c->mode == LOADER_PAIRED)
        for (uint32_t ch = 0; ch < X->ds.n_chars; ch++)
            if (X->ds.char_count[ch] < 2)
                for (uint64_t k = 0; k < X->ds.char_count[ch]; k++) { X->bucket[X->ds.char_first[ch] + k] = SAMPLER_EXCLUDED; X->single_image++; }
    int G = c->global_batch;
    uint64_t *counts = X->shard_counts = malloc(sizeof(uint64_t) * X->ds.m.n_shards);
    for (int i = 0; i < X->ds.m.n_shards; i++) counts[i] = X->ds.m.shards[i].samples;
    sampler_config sc = {.n_samples = n, .n_shards = X->ds.m.n_shards, .shard_count = counts, .bucket = X->bucket, .n_buckets = X->nb, .global_batch = G, .seed = c->seed};
    int src = sampler_init(&X->smp, &sc);
    if (src) { fprintf(stderr, "loader: %s: cannot set up the sampler (%llu samples, %d buckets)\n", c->path, (unsigned long long)n, X->nb); goto fail; }
    if (X->smp.batches_per_epoch == 0) {
        fprintf(stderr, "loader: %s: no bucket holds a full global batch of %d samples (%llu usable samples in %d buckets); lower global_batch\n", c->path, G,
                (unsigned long long)(n - X->smp.excluded), X->nb);
        goto fail;
    }
    // a paired stage trains on the characters with two images only: said, as the mixed stage says
    // the share it can give, so a dataset of mostly single images is not trained on a sliver unawares
    if (c->mode == LOADER_PAIRED && X->single_image && c->rank == 0 && !c->quiet)
        fprintf(stderr, "loader: %s: paired: %llu of %llu samples are the only image of their character, left out (no other "
                "image to be their reference)\n", c->path, (unsigned long long)X->single_image,
                (unsigned long long)n);
    if (c->mode == LOADER_MIXED) {  // only samples of characters with two images can be paired: their
        uint64_t n2 = 0;            // chance is raised so paired_share of all samples are (when they can be)
        for (uint32_t ch = 0; ch < X->ds.n_chars; ch++)
            if (X->ds.char_count[ch] >= 2) n2 += X->ds.char_count[ch];
        double f2 = n ? (double)n2 / (double)n : 0;
        X->pair_p = f2 > 0 ? (c->paired_share >= f2 ? 1.0 : c->paired_share / f2) : 0;
        if (c->paired_share > f2 + 1e-9 && c->rank == 0 && !c->quiet)
            fprintf(stderr, "loader: %s: mixed: %.1f%% of the samples have another image of their character, so %.1f%% are "
                    "paired, not the %.1f%% asked (paired_share)\n", c->path, 100 * f2, 100 * f2, 100.0 * c->paired_share);
    }
    uint64_t h = buckets_hash((const int(*)[2])X->buckets, X->nb);
    int32_t extra[3] = {(int32_t)c->mode, G, (int32_t)(c->paired_share * 1e6f)};
    X->bucket_hash = hash64_update(h, extra, sizeof extra);
    if (keep) {  // the epochs' orders as far as the batches kept reach (an epoch may hold fewer)
        if (keep > SIZE_MAX / sizeof(uint32_t) / (uint64_t)G) { fprintf(stderr, "loader: %s: %llu batches to keep of %d samples: too many\n", c->path, (unsigned long long)keep, G); goto fail; }
        X->kept_ids = malloc(sizeof(uint32_t) * keep * (uint64_t)G);
        X->kept_bucket = malloc(keep);
        sampler_order o = {0};
        uint64_t k = 0;
        for (uint64_t e = 0; X->kept_ids && X->kept_bucket && k < keep && !sampler_order_epoch(&X->smp, e, &o); e++) {
            uint64_t take = o.n_batches < keep - k ? o.n_batches : keep - k;
            memcpy(X->kept_ids + k * (uint64_t)G, o.ids, sizeof(uint32_t) * take * (uint64_t)G);
            memcpy(X->kept_bucket + k, o.bucket, take);
            k += take;
        }
        sampler_order_free(&o);
        if (k < keep) { fprintf(stderr, "loader: %s: out of host memory for the order of %llu batches\n", c->path, (unsigned long long)keep); goto fail; }
        X->kept = keep;
        // not read again: the order of these batches is all a loader on this index reads
        free(X->bucket), X->bucket = NULL, X->smp.c.bucket = NULL;
        free(X->ds.sizes), X->ds.sizes = NULL;
    }
    return X;
fail:
    loader_index_close(X);
    return NULL;
}

loader_index *loader_index_open(const loader_config *cfg) {
    if (config_check(cfg)) return NULL;
    return index_open(cfg, cfg->max_batches);
}

void loader_index_close(loader_index *X) {
    if (!X) return;
    free(X->kept_ids);
    free(X->kept_bucket);
    free(X->bucket);
    free(X->shard_counts);
    sampler_free(&X->smp);
    dataset_close(&X->ds);
    free(X);
}

uint64_t loader_index_batches(const loader_index *X) { return X->kept; }

// whether c reads the order X was opened for (dataset, seed, batch, mode, buckets); else a message
static int index_fits(const loader_index *X, const loader_config *c) {
    const loader_config *o = &X->cfg;
    int bk[BUCKETS_MAX][2], nb = bucket_table(c, bk);
    if (nb < 0) return 0;
    if (strcmp(c->path, X->path) || c->seed != o->seed || c->global_batch != o->global_batch || c->mode != o->mode ||
        c->paired_share != o->paired_share || nb != X->nb || memcmp(bk, X->buckets, sizeof(int) * 2 * (size_t)nb)) {
        fprintf(stderr, "loader: %s: the index lent was opened for another order (%s: path, seed, global_batch, mode, paired_share or buckets differ)\n",
                c->path, X->path);
        return 0;
    }
    if (X->kept && (c->max_batches < 1 || c->max_batches > X->kept)) {
        fprintf(stderr, "loader: %s: max_batches %llu over an index of %llu batches kept (expected 1..%llu)\n", c->path,
                (unsigned long long)c->max_batches, (unsigned long long)X->kept, (unsigned long long)X->kept);
        return 0;
    }
    return 1;
}

static loader *open_on(const loader_config *c, loader_index *X, int own, const loader_resume *resume) {
    loader *L = calloc(1, sizeof *L);
    if (!L) { fprintf(stderr, "loader: out of host memory\n"); if (own) loader_index_close(X); return NULL; }
    L->cfg = *c;
    snprintf(L->path, sizeof L->path, "%s", c->path);
    L->cfg.path = L->path;
    L->cfg.buckets = NULL;
    L->ix = X;
    L->own_ix = own;
    L->counts.single_image_characters = X->single_image;
    L->G = c->global_batch;
    L->Bl = c->global_batch / c->world;
    if (resume) {
        if (resume->seed != c->seed || resume->manifest_hash != X->ds.m.hash || resume->bucket_hash != X->bucket_hash) {
            fprintf(stderr, "loader: %s: the checkpoint's data position belongs to another order:%s%s%s (seed %llu vs %llu, manifest hash "
                    "%016llx vs %016llx, bucket/mode/batch hash %016llx vs %016llx)\n", c->path,
                    resume->seed != c->seed ? " the seed differs." : "",
                    resume->manifest_hash != X->ds.m.hash ? " the dataset differs (its manifest.json is not the checkpoint's)." : "",
                    resume->bucket_hash != X->bucket_hash ? " the stage's batch size, mode, paired share or bucket table differs." : "",
                    (unsigned long long)resume->seed, (unsigned long long)c->seed, (unsigned long long)resume->manifest_hash,
                    (unsigned long long)X->ds.m.hash, (unsigned long long)resume->bucket_hash, (unsigned long long)X->bucket_hash);
            goto fail;
        }
        if (X->kept) { fprintf(stderr, "loader: %s: an index of kept batches reads them from the start (no resume)\n", c->path); goto fail; }
        L->start_epoch = resume->epoch + resume->batches_done / X->smp.batches_per_epoch;
        L->start_batch = resume->batches_done % X->smp.batches_per_epoch;
    }
    L->epoch_out = UINT64_MAX;
    L->maxHW = 0;
    for (int b = 0; b < X->nb; b++) if ((size_t)X->buckets[b][0] * X->buckets[b][1] > L->maxHW) L->maxHW = (size_t)X->buckets[b][0] * X->buckets[b][1];
    L->depth = (c->prefetch > 0 ? c->prefetch : 2) + 1;  // +1: the slot the consumer holds
    if (c->max_batches > 0 && (uint64_t)L->depth > c->max_batches) L->depth = (int)c->max_batches;  // no slot for batches never read
    L->slots = calloc((size_t)L->depth, sizeof *L->slots);
    // views [Bl, 5, 3, R, R] per tower; none with a reference cache (a float, so the pointers are set)
    size_t view = c->no_ref_views ? 1 : (size_t)5 * 3 * c->ref_size * c->ref_size, Bl = (size_t)L->Bl;
    for (int i = 0; i < L->depth; i++) {
        slot *s = &L->slots[i];
        s->seq = UINT64_MAX;
        s->ids = malloc(sizeof(uint32_t) * Bl); s->ok = calloc(Bl, 1);
        s->target = malloc(sizeof(float) * Bl * (c->no_target ? 1 : 3 * L->maxHW));  // a float with a latent cache
        s->sig = malloc(sizeof(float) * Bl * view); s->dino = malloc(sizeof(float) * Bl * view);
        s->cap = calloc(Bl, sizeof(char *)); s->cap_len = calloc(Bl, sizeof(size_t));
        s->cdrop = calloc(Bl, 1); s->rdrop = calloc(Bl, 1); s->paired = calloc(Bl, 1); s->flipped = calloc(Bl, 1);
        s->sid = calloc(Bl, sizeof(int64_t)); s->rid = calloc(Bl, sizeof(int64_t));
        s->chr = calloc(Bl, sizeof(int32_t)); s->orig = calloc(2 * Bl, sizeof(int32_t)); s->crop = calloc(4 * Bl, sizeof(int32_t));
        if (!s->target || !s->sig || !s->dino) { fprintf(stderr, "loader: out of memory for %d prefetch slots of %zu samples\n", L->depth, Bl); goto fail; }
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv_task, NULL);
    pthread_cond_init(&L->cv_ready, NULL);
    L->nthreads = c->threads > 0 ? c->threads : cpus_usable();  // the affinity mask's (a Slurm step, a cpuset)
    if (L->nthreads < 1) L->nthreads = 1;
    L->threads = calloc((size_t)L->nthreads, sizeof(pthread_t));
    worker *ws = calloc((size_t)L->nthreads, sizeof(worker));
    for (int i = 0; i < L->nthreads; i++) {
        ws[i].L = L;
        dataset_reader_init(&ws[i].rd, &L->ix->ds);
    }
    L->workers = ws;
    // a thread limit (a container's pids.max, ulimit -u) refuses threads: unchecked, no worker ran
    // and loader_next waited forever, or loader_close joined threads that never existed
    int started = 0, terr = 0;
    while (started < L->nthreads && !(terr = pthread_create(&L->threads[started], NULL, worker_main, &ws[started]))) started++;
    if (started < L->nthreads) {
        for (int i = started; i < L->nthreads; i++) dataset_reader_free(&ws[i].rd);
        if (!started) {
            fprintf(stderr, "loader: %s: cannot start a decode thread (%s; %d asked: data.threads, or the usable CPUs when 0): "
                    "a process or container thread limit (ulimit -u, pids.max)?\n", c->path, strerror(terr), L->nthreads);
            free(ws);
            free(L->threads);
            L->workers = NULL, L->threads = NULL;
            pthread_mutex_destroy(&L->mu);
            pthread_cond_destroy(&L->cv_task);
            pthread_cond_destroy(&L->cv_ready);
            goto fail;
        }
        // once per process for each kind: the validation's loader (quiet), opened at every
        // validation, said it at each one; the training's says it at its first stage
        if (!atomic_exchange(&thread_note_said[c->quiet != 0], 1))
            fprintf(stderr, "loader: %s: started %d of %d decode threads (%s: a process or container thread limit?); going on with %d\n",
                    c->path, started, L->nthreads, strerror(terr), started);
        L->nthreads = started;
    }
    return L;
fail:
    if (L->slots) for (int i = 0; i < L->depth; i++) slot_free(&L->slots[i], L->Bl);
    free(L->slots);
    if (own) loader_index_close(X);
    free(L);
    return NULL;
}

loader *loader_open(const loader_config *cfg, const loader_resume *resume) {
    if (config_check(cfg)) return NULL;
    loader_index *X = index_open(cfg, 0);
    return X ? open_on(cfg, X, 1, resume) : NULL;
}

loader *loader_open_index(const loader_config *cfg, loader_index *X, const loader_resume *resume) {
    if (config_check(cfg) || !index_fits(X, cfg)) return NULL;
    return open_on(cfg, X, 0, resume);
}

int loader_next(loader *L, loader_batch *out) {
    if (getpid() != L->ix->ds.opened_by) { fprintf(stderr, "loader: used in a forked child; open the loader in each process after fork\n"); return -1; }
    pthread_mutex_lock(&L->mu);
    if (L->holding) { L->consumed++; L->holding = 0; pthread_cond_broadcast(&L->cv_task); }
    uint64_t seq = L->consumed, ep, ix;
    seq_to_batch(L, seq, &ep, &ix);
    if ((L->cfg.max_epochs > 0 && ep >= (uint64_t)L->cfg.max_epochs) || (L->cfg.max_batches > 0 && seq >= L->cfg.max_batches)) {
        pthread_mutex_unlock(&L->mu);
        return 1;
    }
    slot *s = &L->slots[seq % (uint64_t)L->depth];
    while (!(s->seq == seq && s->done == L->Bl) && !L->failed) pthread_cond_wait(&L->cv_ready, &L->mu);
    if (L->failed) { fprintf(stderr, "loader: %s\n", L->fail_msg); pthread_mutex_unlock(&L->mu); return -1; }
    L->holding = 1;
    // a batch's damage counts once it is handed out: batches prefetched but never taken (a run
    // stopped, resumed later from before them) are not counted twice
    const loader_counts *p = &s->pend;
    L->counts.corrupt_record += p->corrupt_record, L->counts.bad_image += p->bad_image;
    L->counts.bad_metadata += p->bad_metadata, L->counts.missing_record += p->missing_record;
    L->counts.ref_fallback += p->ref_fallback;
    // an epoch counts when its first batch is handed out, not when the workers compute its order
    // ahead (the prefetch reaches into the next epoch before the consumer has finished this one)
    if (s->epoch != L->epoch_out) {
        L->epoch_out = s->epoch;
        L->counts.epochs_started++;
        L->counts.dropped_remainder += L->ix->smp.dropped_per_epoch;
    }
    uint64_t skipped = p->corrupt_record + p->bad_image + p->bad_metadata + p->missing_record, replaced = p->ref_fallback;
    pthread_mutex_unlock(&L->mu);
    // compact: drop skipped samples, keep order
    size_t tsz = (size_t)3 * s->H * s->W, view = (size_t)5 * 3 * L->cfg.ref_size * L->cfg.ref_size;
    int B = 0;
    for (int j = 0; j < L->Bl; j++) {
        if (!s->ok[j]) continue;
        if (B != j) {
            if (!L->cfg.no_target) memmove(s->target + B * tsz, s->target + j * tsz, tsz * sizeof(float));
            if (!L->cfg.no_ref_views) {
                memmove(s->sig + B * view, s->sig + j * view, view * sizeof(float));
                memmove(s->dino + B * view, s->dino + j * view, view * sizeof(float));
            }
            char *tc = s->cap[B]; size_t tl = s->cap_len[B];
            s->cap[B] = s->cap[j]; s->cap_len[B] = s->cap_len[j]; s->cap[j] = tc; s->cap_len[j] = tl;
            s->cdrop[B] = s->cdrop[j]; s->rdrop[B] = s->rdrop[j]; s->paired[B] = s->paired[j]; s->flipped[B] = s->flipped[j];
            s->sid[B] = s->sid[j]; s->rid[B] = s->rid[j]; s->chr[B] = s->chr[j];
            memcpy(s->orig + 2 * B, s->orig + 2 * j, 2 * sizeof(int32_t));
            memcpy(s->crop + 4 * B, s->crop + 4 * j, 4 * sizeof(int32_t));
            s->ok[j] = 0; s->ok[B] = 1;
        }
        B++;
    }
    *out = (loader_batch){.B = B, .H = s->H, .W = s->W, .R = L->cfg.ref_size, .target = s->target, .ref_siglip = s->sig, .ref_dino = s->dino,
                          .captions = s->cap, .caption_dropped = s->cdrop, .ref_dropped = s->rdrop, .paired = s->paired, .flipped = s->flipped,
                          .sample_ids = s->sid, .ref_ids = s->rid, .character = s->chr, .orig_size = s->orig, .crop = s->crop, .epoch = s->epoch,
                          .batch_index = s->index, .skipped = skipped, .ref_replaced = replaced,
                          .manifest_hash = L->ix->ds.m.hash};
    pthread_mutex_lock(&L->mu);
    L->counts.batches++;
    L->counts.samples += (uint64_t)B;
    pthread_mutex_unlock(&L->mu);
    return 0;
}

void loader_state(const loader *L, loader_resume *o) {
    uint64_t seq = L->consumed + (L->holding ? 1 : 0), ep, ix;
    seq_to_batch(L, seq, &ep, &ix);
    o->seed = L->cfg.seed;
    o->epoch = ep;
    o->batches_done = ix;
    o->manifest_hash = L->ix->ds.m.hash;
    o->bucket_hash = L->ix->bucket_hash;
}

void loader_stats(const loader *L, loader_counts *o) {
    pthread_mutex_lock((pthread_mutex_t *)&L->mu);
    *o = L->counts;
    o->samples_decoded = L->next_task;
    pthread_mutex_unlock((pthread_mutex_t *)&L->mu);
}

uint64_t loader_batches_per_epoch(const loader *L) { return L->ix->smp.batches_per_epoch; }

void loader_wait_idle(loader *L) {
    pthread_mutex_lock(&L->mu);
    L->idle_waiting++;
    while ((L->busy || task_ready(L, L->next_task)) && !L->failed) pthread_cond_wait(&L->cv_ready, &L->mu);
    L->idle_waiting--;
    pthread_mutex_unlock(&L->mu);
}

void loader_close(loader *L) {
    if (!L) return;
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_broadcast(&L->cv_task);
    pthread_cond_broadcast(&L->cv_ready);
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->nthreads; i++) pthread_join(L->threads[i], NULL);
    worker *ws = L->workers;
    for (int i = 0; i < L->nthreads; i++) { dataset_reader_free(&ws[i].rd); preprocess_scratch_free(&ws[i].ps); }
    free(ws);
    free(L->threads);
    for (int i = 0; i < L->depth; i++) slot_free(&L->slots[i], L->Bl);
    free(L->slots);
    sampler_order_free(&L->order);
    if (L->own_ix) loader_index_close(L->ix);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv_task);
    pthread_cond_destroy(&L->cv_ready);
    free(L);
}
