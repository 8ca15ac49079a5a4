// ref_cache_build.c — `cameo cache-refs`: every reference a config's run can draw through its
// vision towers into a reference cache (train/ref_cache.h).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "data/dataset.h"
#include "data/preprocess.h"
#include "train/cli.h"
#include "train/demo_data.h"
#include "train/dist.h"
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
    uint64_t *ids;           // [batch]
    float *sig, *dino;       // [batch, 5, 3, R, R] the views, as the loader makes them
    ref_cache_report *r;
} pending;

static size_t view_floats(int R) { return (size_t)5 * 3 * R * R; }

static int flush(pending *p, char *err, size_t errlen) {
    if (!p->n) return 0;
    vision_features f;  // [n, N, W], [n, S N, W], [n, 4N, W] in the towers' dtype
    autograd_no_grad_push();
    step_reference_features(p->m, p->sig, p->dino, p->n, p->R, &f);
    autograd_no_grad_pop();
    int rc = ref_cache_put(p->rc, p->mh, p->ids, p->n, &f, err, errlen);
    vision_features_release(&f);
    if (!rc) p->r->added += (uint64_t)p->n;
    // a test's fault: the process killed once this many batches are committed (an interrupted build)
    static int puts_done;
    const char *kill_at = getenv("CAMEO_FAULT_CACHE_REFS_KILL");
    if (!rc && kill_at && ++puts_done == atoi(kill_at)) raise(SIGKILL);
    p->n = 0;
    return rc;
}

static void show(const ref_cache_report *r, uint64_t total, double t0, bool tty, bool last) {
    double el = progress_now() - t0, rate = (double)r->records / (el > 1e-9 ? el : 1e-9);
    char when[32];
    progress_fmt_duration(last ? el : rate > 0 ? (double)(total - r->records) / rate : 0, when, sizeof when);
    fprintf(stderr, "%scache-refs: %llu of %llu records (%.1f%%), %llu references added, %.1f records/s, %s %s%s", tty ? "\r" : "",
            (unsigned long long)r->records, (unsigned long long)total, total ? 100.0 * (double)r->records / (double)total : 100.0,
            (unsigned long long)r->added, rate, last ? "in" : "ETA", when, !tty ? "\n" : last ? "\033[K\n" : "\033[K");
    fflush(stderr);
}

// every record of the dataset d as a reference; damaged or missing records skipped and counted
static int add_dataset(pending *p, dataset *d, bool repair, uint64_t total, double t0, bool quiet, char *err, size_t errlen) {
    dataset_reader rd;
    if (dataset_reader_init(&rd, d)) {
        snprintf(err, errlen, "%s: cannot make a reader", d->dir);
        return -1;
    }
    preprocess_scratch ps = {0};
    bool tty = isatty(2);
    double last = progress_now();
    int rc = 0;
    p->mh = d->m.hash;
    for (int s = 0; s < d->m.n_shards && !rc; s++)
        for (uint64_t id = d->m.shards[s].first_id; id < d->m.shards[s].first_id + d->m.shards[s].samples && !rc; id++) {
            p->r->records++;
            double now = progress_now();
            if (!quiet && now - last > (tty ? 0.25 : 30.0)) show(p->r, total, t0, tty, false), last = now;
            if (ref_cache_has(p->rc, p->mh, id, repair)) continue;
            record_view rec;
            char e[600];
            int got = dataset_get(&rd, id, &rec, e, sizeof e);  // decoded as the loader decodes a reference
            if (got == DS_ERROR) {
                snprintf(err, errlen, "%s", e);
                rc = -1;
                break;
            }
            if (got == DS_OK && (image_webp_decode_into(rec.image, rec.image_len, (rec.flags & RECORD_FLAG_ALPHA) != 0, &ps.dec,
                                                        &ps.dec_cap) || ps.dec.w != rec.width || ps.dec.h != rec.height)) {
                snprintf(e, sizeof e, "%.400s: sample %llu: WebP image does not decode to %ux%u", d->dir, (unsigned long long)id,
                         rec.width, rec.height);
                got = DS_CORRUPT;
            }
            if (got != DS_OK) {
                if (!p->r->skipped++ && !quiet) fprintf(stderr, "%scache-refs: skipped: %s\n", tty ? "\n" : "", e);
                continue;
            }
            size_t v = view_floats(p->R);
            CM_CHECK(!preprocess_load(&ps.dec, &ps) &&
                     !preprocess_reference(&ps, rec.width, rec.height, p->R, p->sig + (size_t)p->n * v, p->dino + (size_t)p->n * v),
                     "cache-refs", "out of host memory in preprocess");
            p->ids[p->n] = id;
            if (++p->n == p->batch) rc = flush(p, err, errlen);
        }
    preprocess_scratch_free(&ps);
    dataset_reader_free(&rd);
    return rc ? rc : flush(p, err, errlen);
}

int ref_cache_build(const train_config *c, const char *out, int batch, bool repair, bool quiet, ref_cache_report *r, char *err,
                    size_t errlen) {
    memset(r, 0, sizeof *r);
    double t0 = progress_now();
    char man[CFG_PATH + 32];
    snprintf(man, sizeof man, "%s/manifest.json", c->data.path);
    if (cfg_data_path_used(c) && access(man, R_OK) && c->data.generate_demo_if_missing) {  // as the trainer would
        if (!quiet) fprintf(stderr, "cache-refs: generating the demo dataset at %s\n", c->data.path);
        if (train_demo_data(c, err, errlen)) return -1;
    }
    const char *paths[CFG_MAX_STAGES + 1];
    int np = cfg_run_datasets(c, paths);
    dataset ds[CFG_MAX_STAGES + 1];
    int nd = 0, rc = 0;
    for (; nd < np; nd++)
        if (dataset_open(&ds[nd], paths[nd], DATASET_NO_SIZES, err, errlen)) { rc = -1; break; }
    fstore_id id;
    ref_cache cache = {0};
    ic_models m = {0};
    cm_dtype dt = cfg_model_dtype(c, c->run.dev);
    if (!rc) rc = ref_cache_identity(c, &id, err, errlen) || ref_cache_open(&cache, out, &id, true, err, errlen) ? -1 : 0;
    if (!rc && !quiet) {
        fprintf(stderr, "cache-refs: %s into %s (%s on %s)\n", id.encoders, out, dt == CM_F32 ? "f32" : "bf16",
                c->run.dev.type == CM_CPU ? "the CPU" : "cuda");
        // what a reference takes against the room on the cache's disk (a full disk fails the batch's commit: nothing lost)
        double entry = (double)dtype_size(dt) * (double)REF_CACHE_KIND.values(id.dim) + 48.0;
        struct statvfs sv;
        if (!statvfs(out, &sv))
            fprintf(stderr, "cache-refs: %.2f MiB a reference; %.1f GiB free there: room for about %.0f references\n",
                    entry / 1048576.0, (double)sv.f_bavail * (double)sv.f_frsize / 1073741824.0,
                    (double)sv.f_bavail * (double)sv.f_frsize / entry);
    }
    if (!rc) rc = ic_models_vision(&m, c->model.tiny ? &c->model.tiny_dims : NULL, c->run.seed, c->model.siglip, c->model.dinov2,
                                   c->data.ref_size, c->run.dev, dt, err, errlen);
    int R = m.ref_size;
    pending p = {.rc = &cache, .m = &m, .batch = batch, .R = R, .ids = calloc((size_t)batch, sizeof(uint64_t)), .r = r,
                 .sig = calloc((size_t)batch * view_floats(R), sizeof(float)), .dino = calloc((size_t)batch * view_floats(R), sizeof(float))};
    CM_CHECK(p.ids && p.sig && p.dino, "cache-refs", "out of host memory for a batch of %d references", batch);
    uint64_t total = 0;
    r->sets = nd;
    for (int i = 0; i < nd; i++)
        if (repair || !fstore_covers(&cache.s, ds[i].m.hash)) total += ds[i].m.samples;
    if (!rc && !ref_cache_has(&cache, 0, REF_CACHE_DROPPED, repair)) {  // reference dropout's: the features of zero views
        p.mh = 0, p.ids[0] = REF_CACHE_DROPPED, p.n = 1;
        rc = flush(&p, err, errlen);
    }
    for (int i = 0; i < nd && !rc; i++) {
        if (fstore_covers(&cache.s, ds[i].m.hash)) {
            r->sets_done++;
            if (!repair) continue;
        }
        rc = add_dataset(&p, &ds[i], repair, total, t0, quiet, err, errlen);
        if (!rc) rc = fstore_add_set(&cache.s, paths[i], ds[i].m.hash, ds[i].m.samples, err, errlen);
    }
    if (!rc && !quiet && total) show(r, total, t0, isatty(2), true);
    free(p.ids), free(p.sig), free(p.dino);
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
    const char *config = NULL, *out = NULL, *sets[64];
    int n_sets = 0, batch = 4;
    bool quiet = false, repair = false;
    for (int i = 0; i < argc; i++) {
        bool val = i + 1 < argc;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--set") && val && n_sets < 64) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--out") && val) out = argv[++i];
        else if (!strcmp(argv[i], "--batch") && val) {
            char *end;
            long b = strtol(argv[++i], &end, 10);
            if (*end || b < 1 || b > 1024) {
                fprintf(stderr, "cameo cache-refs: --batch '%s': a whole number of references from 1 to 1024\n", argv[i]);
                return 2;
            }
            batch = (int)b;
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) quiet = true;
        else if (!strcmp(argv[i], "--repair")) repair = true;
        else if (argv[i][0] != '-' && !config) config = argv[i];
        else {
            fprintf(stderr, "cameo cache-refs: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int world = 1;
    if (dist_process_rank(&world) || world > 1) {  // each rank would compute every reference into the one store
        fprintf(stderr, "cameo cache-refs: started as one of %d ranks (mpirun / srun); run it as one process: its one GPU computes "
                        "every reference once, and the ranks of the training read the cache\n", world);
        return 2;
    }
    static train_config c;
    char err[2048];
    if (train_config_load(&c, config, sets, n_sets, err, sizeof err) || train_config_check_paths(&c, err, sizeof err) ||
        ic_device_check(c.run.dev, "run.device", err, sizeof err)) {
        fprintf(stderr, "cameo cache-refs: %s\n", err);
        return 1;
    }
    if (!out) out = c.model.ref_cache;
    if (!*out) {
        fprintf(stderr, "cameo cache-refs: name the cache's folder: --out DIR, or model.ref_cache in the config\n");
        return 2;
    }
    train_threads_apply(&c);
    ref_cache_report r;
    if (ref_cache_build(&c, out, batch, repair, quiet, &r, err, sizeof err)) {
        fprintf(stderr, "cameo cache-refs: %s\n", err);
        return 1;
    }
    printf("reference cache %s: %llu references added (%llu records read; %llu skipped as damaged) over %d dataset(s), %d already "
           "covered, in %.1f s\n", out, (unsigned long long)r.added, (unsigned long long)r.records, (unsigned long long)r.skipped,
           r.sets, r.sets_done, r.seconds);
    printf("train with it: cameo train %s%s--set model.ref_cache=%s\n", config ? config : "", config ? " " : "", out);
    return 0;
}
