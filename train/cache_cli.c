// cache_cli.c — see cache_cli.h.
#include "train/cache_cli.h"
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "train/cli.h"
#include "train/demo_data.h"
#include "train/dist.h"
#include "train/models.h"
#include "train/progress.h"

int cache_cli_setup(cache_cli *a, int argc, char **argv, void (*usage)(FILE *), size_t out_field, const char *setting) {
    const char *sets[64];
    int n_sets = 0;
    for (int i = 0; i < argc; i++) {
        bool val = i + 1 < argc;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--set") && val && n_sets < 64) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--out") && val) a->out = argv[++i];
        else if (!strcmp(argv[i], "--batch") && val) {
            char *end;
            long b = strtol(argv[++i], &end, 10);
            if (*end || b < 1 || b > a->max_batch) {
                fprintf(stderr, "cameo %s: --batch '%s': a whole number of %s from 1 to %d\n", a->cmd, argv[i], a->unit, a->max_batch);
                return 2;
            }
            a->batch = (int)b;
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) a->quiet = true;
        else if (!strcmp(argv[i], "--repair")) a->repair = true;
        else if (argv[i][0] != '-' && !a->config) a->config = argv[i];
        else {
            fprintf(stderr, "cameo %s: unexpected argument '%s'\n", a->cmd, argv[i]);
            usage(stderr);
            return 2;
        }
    }
    int world = 1;
    if (dist_process_rank(&world) || world > 1) {  // each rank would run the encoders over everything into the one store
        fprintf(stderr, "cameo %s: started as one of %d ranks (mpirun / srun); run it as one process: its one GPU runs the encoders "
                        "over every one of the %s once, and the ranks of the training read the cache\n", a->cmd, world, a->unit);
        return 2;
    }
    static train_config c;
    char err[2048];
    if (train_config_load(&c, a->config, sets, n_sets, err, sizeof err) || train_config_check_paths(&c, err, sizeof err) ||
        ic_device_check(c.run.dev, "run.device", err, sizeof err)) {
        fprintf(stderr, "cameo %s: %s\n", a->cmd, err);
        return 1;
    }
    a->c = &c;
    if (!a->out) a->out = (const char *)&c + out_field;
    if (!*a->out) {
        fprintf(stderr, "cameo %s: name the cache's folder: --out DIR, or %s in the config\n", a->cmd, setting);
        return 2;
    }
    train_threads_apply(&c);
    return -1;
}

int cache_open_datasets(const train_config *c, const char *cmd, bool quiet, int flags, const char **paths, dataset *ds, char *err,
                        size_t errlen) {
    char man[CFG_PATH + 32];
    snprintf(man, sizeof man, "%s/manifest.json", c->data.path);
    if (cfg_data_path_used(c) && access(man, R_OK) && c->data.generate_demo_if_missing) {  // as the trainer would
        if (!quiet) fprintf(stderr, "%s: generating the demo dataset at %s\n", cmd, c->data.path);
        if (train_demo_data(c, err, errlen)) return -1;
    }
    int np = cfg_run_datasets(c, paths);
    for (int i = 0; i < np; i++)
        if (dataset_open(&ds[i], paths[i], flags, err, errlen)) {
            while (i--) dataset_close(&ds[i]);
            return -1;
        }
    return np;
}

void cache_say_room(const char *cmd, const char *out, double entry_bytes, const char *unit, const char *units) {
    struct statvfs sv;
    if (statvfs(out, &sv)) return;
    double room = (double)sv.f_bavail * (double)sv.f_frsize;
    fprintf(stderr, "%s: %.2f MiB a %s; %.1f GiB free there: room for about %.0f %s\n", cmd, entry_bytes / 1048576.0, unit,
            room / 1073741824.0, room / entry_bytes, units);
}

void cache_show_progress(const char *cmd, uint64_t records, uint64_t total, uint64_t added, const char *added_what, double t0, bool tty,
                         bool last) {
    double el = progress_now() - t0, rate = (double)records / (el > 1e-9 ? el : 1e-9);
    char when[32];
    progress_fmt_duration(last ? el : rate > 0 ? (double)(total - records) / rate : 0, when, sizeof when);
    fprintf(stderr, "%s%s: %llu of %llu records (%.1f%%), %llu %s added, %.1f records/s, %s %s%s", tty ? "\r" : "", cmd,
            (unsigned long long)records, (unsigned long long)total, total ? 100.0 * (double)records / (double)total : 100.0,
            (unsigned long long)added, added_what, rate, last ? "in" : "ETA", when, !tty ? "\n" : last ? "\033[K\n" : "\033[K");
    fflush(stderr);  // a TTY's line redrawn in place
}

int cache_cli_build(const cache_cli *a, cache_build_fn build, const char *what, const char *setting, const char *also) {
    fstore_report r;
    char err[2048];
    if (build(a->c, a->out, a->batch, a->repair, a->quiet, &r, err, sizeof err)) {
        fprintf(stderr, "cameo %s: %s\n", a->cmd, err);
        return 1;
    }
    printf("%s %s: %llu %s added (%llu records read", what, a->out, (unsigned long long)r.added, a->unit, (unsigned long long)r.records);
    if (r.captions) printf(", %llu distinct captions", (unsigned long long)r.captions);
    printf("; %llu skipped as damaged) over %d dataset(s), %d already covered, in %.1f s\n", (unsigned long long)r.skipped, r.sets,
           r.sets_done, r.seconds);
    printf("train with it: cameo train %s%s--set %s=%s%s%s\n", a->config ? a->config : "", a->config ? " " : "", setting, a->out,
           *also ? " " : "", also);
    return 0;
}

void cache_slot_take(cache_slot *s, uint64_t id, const record_view *rec, const char *cmd) {
    if (s->cap < rec->image_len) {
        free(s->img);
        s->img = malloc(s->cap = rec->image_len);
        CM_CHECK(s->img, cmd, "out of host memory for an image of %zu bytes", (size_t)rec->image_len);
    }
    memcpy(s->img, rec->image, rec->image_len);
    s->len = rec->image_len, s->w = rec->width, s->h = rec->height, s->alpha = (rec->flags & RECORD_FLAG_ALPHA) != 0;
    s->id = id;
}

bool cache_slot_decode(cache_slot *s, const char *cmd) {
    if (image_webp_decode_into(s->img, s->len, s->alpha, &s->ps.dec, &s->ps.dec_cap) || (uint32_t)s->ps.dec.w != s->w ||
        (uint32_t)s->ps.dec.h != s->h)
        return false;
    CM_CHECK(!preprocess_load(&s->ps.dec, &s->ps), cmd, "out of host memory in preprocess");
    return true;
}

void cache_slot_free(cache_slot *s) {
    free(s->img);
    preprocess_scratch_free(&s->ps);
    memset(s, 0, sizeof *s);
}

void cache_note_skip(const char *cmd, fstore_report *r, bool quiet, bool tty, const char *what) {
    if (!r->skipped++ && !quiet) fprintf(stderr, "%s%s: skipped: %s\n", tty ? "\n" : "", cmd, what);
}

int cache_walk_dataset(const cache_walk *w, dataset *d, char *err, size_t errlen) {
    dataset_reader rd;
    if (dataset_reader_init(&rd, d)) {
        snprintf(err, errlen, "%s: cannot make a reader", d->dir);
        return -1;
    }
    double last = progress_now();
    int rc = 0;
    for (int s = 0; s < d->m.n_shards && !rc; s++)
        for (uint64_t id = d->m.shards[s].first_id; id < d->m.shards[s].first_id + d->m.shards[s].samples && !rc; id++) {
            w->r->records++;
            double now = progress_now();
            if (!w->quiet && now - last > (w->tty ? 0.25 : 30.0))
                cache_show_progress(w->cmd, w->r->records, w->total, w->r->added, w->added_what, w->t0, w->tty, false), last = now;
            if (w->need && !w->need(w->ctx, id)) continue;
            record_view rec;
            char e[600];
            int got = dataset_get(&rd, id, &rec, e, sizeof e);
            if (got == DS_OK && w->meta) got = dataset_get_meta(&rd, &rec, e, sizeof e);
            if (got == DS_ERROR) {
                snprintf(err, errlen, "%s", e);
                rc = -1;
            } else if (got != DS_OK) cache_note_skip(w->cmd, w->r, w->quiet, w->tty, e);
            else rc = w->take(w->ctx, id, &rec, &rd.meta, err, errlen);
        }
    dataset_reader_free(&rd);
    return rc;
}
