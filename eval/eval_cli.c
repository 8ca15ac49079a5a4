// eval_cli.c — `cameo eval`: an evaluation sweep. Checkpoints × subject scales × guidances × seeds ×
// (reference, prompt) pairs: each image sampled, saved, and scored against its reference (DINO-I,
// SigLIP-I: eval/metrics.h); one JSON line per image appended as it finishes, so an interrupted
// sweep resumes where it stopped; a summary table per checkpoint × scale × guidance.
#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "data/fsutil.h"
#include "data/image.h"
#include "data/resize.h"
#include "eval/eval_models.h"
#include "eval/pairs.h"
#include <dirent.h>
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/cli.h"
#include "train/progress.h"

#define EV_MAX_LIST 32
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#define EV_MAX_CKPT 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: cameo eval CHECKPOINT [CHECKPOINT ...] --pairs PAIRS.jsonl --out DIR\n"
            "       cameo eval --config CONFIG.yaml ADAPTER [ADAPTER ...] --pairs PAIRS.jsonl --out DIR\n"
            "                  [--scales 0.9] [--guidance 3.5] [--seeds 0] [--steps 28] [--size WxH] [--clip DIR]\n"
            "                  [--device D] [--quiet]\n"
            "  CHECKPOINT  checkpoint folders (or a run's checkpoints/ folder: its latest), from runs with the same models\n"
            "  --config    the models from a config (as cameo train reads it); then the sources are adapter files:\n"
            "              the released .bin, or safetensors (cameo export's, a checkpoint's adapter.safetensors)\n"
            "  --pairs     one JSON line per reference and prompt: {\"ref\": \"me.png\", \"prompt\": \"the character waving\"}\n"
            "              (ref relative to the file's folder; PNG, JPEG or WebP)\n"
            "  --pairs-from DATASET [--pairs-n 16]   instead: pairs drawn from a cameo dataset (a held-out one, for\n"
            "              generalisation): N characters, each one's first image as the reference, the caption of\n"
            "              its next as the prompt; written to DIR/pairs.jsonl and DIR/refs/ (a rerun keeps them)\n"
            "  --scales, --guidance, --seeds   comma-separated lists; the sweep is their product x checkpoints x pairs\n"
            "              (scale 0 is plain FLUX: the baseline without the adapter)\n"
            "  --out       DIR/results.jsonl   one line per image, appended as each finishes (a rerun skips those done)\n"
            "              DIR/summary.md      per checkpoint x scale x guidance: images, DINO-I and SigLIP-I mean +- sd\n"
            "              DIR/images/TAG/     the images (TAG: the checkpoint folder's name)\n"
            "              DIR/sheets/pP.png   per pair: the reference, then a row per checkpoint x scale x guidance\n"
            "  --clip      a full CLIP model (weights, config.json, tokenizer; e.g. openai/clip-vit-large-patch14):\n"
            "              adds CLIP-I and CLIP-T\n"
            "  Scores: cosine of the reference's and the image's DINOv2 CLS (DINO-I) and mean-pooled SigLIP\n"
            "  (SigLIP-I) embeddings, through the adapter's own towers and reference view; with --clip, of their\n"
            "  CLIP image embeddings (CLIP-I) and of the image's and the prompt's (CLIP-T).\n");
}

// a finished image (clip_i, clip_t NaN when the sweep had no --clip)
typedef struct { char tag[96]; double scale, guidance, dino, siglip, clip_i, clip_t, seconds; int steps, w, h; } ev_rec;
// the finished images: records, their keys, and a hash index of the keys (open addressing,
// slot -1 empty) so that a sweep of many thousands of images looks each one up at once
typedef struct { ev_rec *v; int n, cap; char **keys; int *slot; int nslot; } ev_done;

static int parse_list(const char *opt, const char *s, double *out, int *n) {
    *n = 0;
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || *n == EV_MAX_LIST || (*end && *end != ',')) {
            fprintf(stderr, "cameo eval: %s '%s': want a comma-separated list of at most %d numbers\n", opt, s, EV_MAX_LIST);
            return -1;
        }
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (!*n) { fprintf(stderr, "cameo eval: %s is empty\n", opt); return -1; }
    return 0;
}

static char *key_of(const char *dir, int item, double scale, double guid, double seed, int steps, int w, int h) {
    char k[PATH_MAX + 160];
    snprintf(k, sizeof k, "%.4000s|%d|%.9g|%.9g|%.0f|%d|%dx%d", dir, item, scale, guid, seed, steps, w, h);
    return strdup(k);
}

static uint64_t key_hash(const char *s) {  // FNV-1a
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int done_find(const ev_done *d, const char *key) {
    if (!d->nslot) return -1;
    for (uint64_t i = key_hash(key) & (uint64_t)(d->nslot - 1);; i = (i + 1) & (uint64_t)(d->nslot - 1)) {
        int at = d->slot[i];
        if (at < 0) return -1;
        if (!strcmp(d->keys[at], key)) return at;
    }
}

static void index_put(ev_done *d, int at) {
    uint64_t i = key_hash(d->keys[at]) & (uint64_t)(d->nslot - 1);
    while (d->slot[i] >= 0) i = (i + 1) & (uint64_t)(d->nslot - 1);
    d->slot[i] = at;
}

static void done_free(ev_done *d) {
    for (int i = 0; i < d->n; i++) free(d->keys[i]);
    free(d->keys), free(d->v), free(d->slot);
    memset(d, 0, sizeof *d);
}

// a line made again (with the CLIP scores) replaces the earlier one: the last line of a key counts
static void done_add(ev_done *d, char *key, const ev_rec *r) {
    int at = done_find(d, key);
    if (at >= 0) {
        d->v[at] = *r;
        free(key);
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->v = realloc(d->v, sizeof *d->v * (size_t)d->cap);
        d->keys = realloc(d->keys, sizeof *d->keys * (size_t)d->cap);
        CM_CHECK(d->v && d->keys, "eval", "out of host memory");
    }
    d->v[d->n] = *r;
    d->keys[d->n++] = key;
    if (2 * d->n > d->nslot) {  // at most half full: rebuilt at twice the size
        free(d->slot);
        d->nslot = d->nslot ? 2 * d->nslot : 256;
        while (2 * d->n > d->nslot) d->nslot *= 2;
        d->slot = malloc(sizeof *d->slot * (size_t)d->nslot);
        CM_CHECK(d->slot, "eval", "out of host memory");
        for (int i = 0; i < d->nslot; i++) d->slot[i] = -1;
        for (int i = 0; i < d->n; i++) index_put(d, i);
    } else index_put(d, d->n - 1);
}

// made already, with the CLIP scores when the sweep asks for them
static bool done_has(const ev_done *d, const char *key, bool need_clip) {
    int at = done_find(d, key);
    return at >= 0 && (!need_clip || !isnan(d->v[at].clip_i));
}

// results.jsonl as left by an earlier run: complete lines kept; a damaged one (a write cut off)
// dropped, the file rewritten without it. -1 with err when it cannot be read or rewritten.
static int read_results(const char *path, ev_done *d, int *damaged, char *err, size_t errlen) {
    size_t len;
    *damaged = 0;
    char *text = fs_read_file(path, &len, (size_t)1 << 30);
    if (!text) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    char *keep = malloc(len + 1);
    size_t kn = 0;
    for (char *s = text, *e; s && *s; s = e ? e + 1 : NULL) {
        e = strchr(s, '\n');
        if (e) *e = 0;
        if (!*s) continue;
        cJSON *j = cJSON_Parse(s);
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key"), *t = cJSON_GetObjectItemCaseSensitive(j, "checkpoint_tag");
        const char *num[8] = {"scale", "guidance", "dino_i", "siglip_i", "seconds", "steps", "width", "height"};
        double v[8];
        bool ok = e && cJSON_IsString(k) && cJSON_IsString(t);  // no newline: the write was cut off
        for (int i = 0; i < 8 && ok; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, num[i]);
            ok = cJSON_IsNumber(x);
            if (ok) v[i] = x->valuedouble;
        }
        const cJSON *ci = cJSON_GetObjectItemCaseSensitive(j, "clip_i"), *ct = cJSON_GetObjectItemCaseSensitive(j, "clip_t");
        bool has_clip = cJSON_IsNumber(ci) && cJSON_IsNumber(ct);
        if (!ok) (*damaged)++;
        if (ok) {
            ev_rec r = {.scale = v[0], .guidance = v[1], .dino = v[2], .siglip = v[3], .seconds = v[4], .steps = (int)v[5],
                        .w = (int)v[6], .h = (int)v[7], .clip_i = has_clip ? ci->valuedouble : NAN,
                        .clip_t = has_clip ? ct->valuedouble : NAN};
            snprintf(r.tag, sizeof r.tag, "%s", t->valuestring);
            done_add(d, strdup(k->valuestring), &r);
            size_t l = strlen(s);
            memcpy(keep + kn, s, l);
            keep[kn + l] = '\n';
            kn += l + 1;
        }
        cJSON_Delete(j);
    }
    int rc = *damaged ? fs_write_atomic(path, keep, kn, err, errlen) : 0;
    free(keep);
    free(text);
    return rc;
}

// a line per image, fsynced: it survives a kill right after
static int append_line(const char *path, const char *line, char *err, size_t errlen) {
    FILE *f = fopen(path, "ab");
    bool ok = f && fputs(line, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f)) ok = false;
    if (!ok) snprintf(err, errlen, "%s: cannot append (%s)", path, strerror(errno));
    return ok ? 0 : -1;
}

// "mean ± sd" of the values that are not NaN (n/a when none; no ± for one)
static void mean_sd(const double *x, int n, char *out, size_t len) {
    double s = 0, q = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) s += x[i], k++;
    if (!k) { snprintf(out, len, "n/a"); return; }
    double m = s / k;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) q += (x[i] - m) * (x[i] - m);
    if (k > 1) snprintf(out, len, "%.4f ± %.4f", m, sqrt(q / (k - 1)));
    else snprintf(out, len, "%.4f", m);
}

// summary.md: a row per (checkpoint tag, scale, guidance), in the order the records first show them
static char *summary_text(const ev_done *d, const char *title) {
    size_t cap = 4096 + (size_t)d->n * 256, at = 0;
    char *b = malloc(cap);
    double *x[4];
    for (int k = 0; k < 4; k++) x[k] = malloc(sizeof(double) * (size_t)(d->n + 1));
    bool *seen = calloc((size_t)d->n + 1, 1);
    CM_CHECK(b && x[0] && x[1] && x[2] && x[3] && seen, "eval", "out of host memory");
    at += (size_t)snprintf(b + at, cap - at,
                           "# %s\n\n| checkpoint | size | steps | scale | guidance | images | DINO-I | SigLIP-I | CLIP-I | CLIP-T | s / image |\n"
                           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", title);
    for (int i = 0; i < d->n; i++) {
        if (seen[i]) continue;
        int n = 0;
        double secs = 0;
        for (int j = i; j < d->n; j++) {
            const ev_rec *a = &d->v[i], *c = &d->v[j];
            if (seen[j] || strcmp(a->tag, c->tag) || a->scale != c->scale || a->guidance != c->guidance || a->steps != c->steps ||
                a->w != c->w || a->h != c->h)
                continue;
            seen[j] = true;
            x[0][n] = c->dino, x[1][n] = c->siglip, x[2][n] = c->clip_i, x[3][n] = c->clip_t, secs += c->seconds, n++;
        }
        char m[4][48];
        for (int k = 0; k < 4; k++) mean_sd(x[k], n, m[k], sizeof m[k]);
        const ev_rec *r = &d->v[i];
        at += (size_t)snprintf(b + at, cap - at, "| %s | %dx%d | %d | %g | %g | %d | %s | %s | %s | %s | %.2f |\n", r->tag, r->w,
                               r->h, r->steps, r->scale, r->guidance, n, m[0], m[1], m[2], m[3], secs / n);
    }
    snprintf(b + at, cap - at,
             "\nDINO-I: cosine of the DINOv2 CLS embeddings of reference and image; SigLIP-I: cosine of SigLIP's "
             "mean-pooled last hidden states; both through the adapter's towers and reference view. CLIP-I: cosine of "
             "reference's and image's CLIP image embeddings; CLIP-T: of the image's and the prompt's (n/a: no --clip). "
             "± is the sample standard deviation over the row's images.\n");
    for (int k = 0; k < 4; k++) free(x[k]);
    free(seen);
    return b;
}

// the lines other ranks wrote (DIR/results.rank-R.jsonl), complete ones only, appended to
// results.jsonl, then the rank files removed (rank 0, after a sweep; and at the start, for the
// files an interrupted distributed sweep left). The number of lines moved, or -1 with err.
static int merge_rank_files(const char *outdir, const char *results, char *err, size_t errlen) {
    DIR *dp = opendir(outdir);
    if (!dp) { snprintf(err, errlen, "%s: cannot list (%s)", outdir, strerror(errno)); return -1; }
    int moved = 0, rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(dp))) {
        int r;
        char tail[8];
        if (sscanf(de->d_name, "results.rank-%d.jsonl%7s", &r, tail) != 1 || r < 1) continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", outdir, de->d_name);
        size_t len;
        char *text = fs_read_file(path, &len, (size_t)1 << 30);
        if (!text) { snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno)); rc = -1; break; }
        for (char *l = text, *e; !rc && l && *l; l = e ? e + 1 : NULL) {
            e = strchr(l, '\n');
            if (!e) break;  // a line cut off mid-write: its image is made again
            *e = 0;
            if (*l && !(rc = append_line(results, l, err, errlen))) moved++;
        }
        free(text);
        if (!rc && unlink(path)) { snprintf(err, errlen, "%s: cannot remove (%s)", path, strerror(errno)); rc = -1; }
    }
    closedir(dp);
    return rc ? -1 : moved;
}

// DIR/sheets/pP.png per pair: the reference, then a row per checkpoint x scale x guidance with a
// column per seed (this sweep's images; a missing one grey), 4-pixel white gaps — for the eye.
// 0, or -1 with err.
static int contact_sheets(const char *outdir, const eval_pair *pairs, int np, char tags[][96], int nck, const double *scales,
                          int ns, const double *guids, int ng, const double *seeds, int nseed, int W, int H, char *err,
                          size_t errlen) {
    const int gap = 4, cols = 1 + nseed, rows = nck * ns * ng;
    int SW = cols * W + (cols + 1) * gap, SH = rows * H + (rows + 1) * gap;
    if ((int64_t)SW * SH > (int64_t)1 << 28) return 0;  // a sweep too large for one sheet: none
    char dir[PATH_MAX + 16], path[PATH_MAX + 300];
    snprintf(dir, sizeof dir, "%s/sheets", outdir);
    if (fs_mkdirs(dir)) { snprintf(err, errlen, "%s: cannot create (%s)", dir, strerror(errno)); return -1; }
    image sheet = {SW, SH, 3, malloc((size_t)SW * SH * 3)};
    uint8_t *cell = malloc((size_t)W * H * 3);
    if (!sheet.px || !cell) { free(sheet.px), free(cell); snprintf(err, errlen, "out of host memory for a sheet"); return -1; }
    int rc = 0;
    resize_scratch rs = {0};
    for (int p = 0; p < np && !rc; p++) {
        memset(sheet.px, 255, (size_t)SW * SH * 3);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                image im = {0};
                char e[256];
                int ci = r / (ns * ng), si = r / ng % ns, gi = r % ng;
                if (c == 0) snprintf(path, sizeof path, "%s", pairs[p].ref);  // the reference, in every row
                else
                    snprintf(path, sizeof path, "%s/images/%s/p%d_s%g_g%g_seed%.0f.png", outdir, tags[ci], p, scales[si], guids[gi],
                             seeds[c - 1]);
                bool ok = image_load(path, &im, e, sizeof e) == 0;
                if (ok && im.c == 4)
                    for (int i = 0; i < im.w * im.h; i++) memmove(im.px + i * 3, im.px + i * 4, 3);
                if (ok && resize_u8(im.px, im.w, im.h, 3, W, H, 0, 0, W, H, cell, &rs)) ok = false;
                if (!ok) memset(cell, 128, (size_t)W * H * 3);
                free(im.px);
                int x0 = gap + c * (W + gap), y0 = gap + r * (H + gap);
                for (int y = 0; y < H; y++) memcpy(sheet.px + ((size_t)(y0 + y) * SW + x0) * 3, cell + (size_t)y * W * 3, (size_t)W * 3);
            }
        snprintf(path, sizeof path, "%s/p%d.png", dir, p);
        rc = image_write_png(path, &sheet, err, errlen);
    }
    resize_scratch_free(&rs);
    free(sheet.px), free(cell);
    return rc;
}

int eval_cli(int argc, char **argv) {
    const char *pairs_from = NULL;
    int pairs_n = 16;
    static char drawn[PATH_MAX + 32];  // the pairs file --pairs-from writes
    const char *ckpts[EV_MAX_CKPT], *pairs_path = NULL, *outdir = NULL, *device = NULL, *clip_path = NULL, *config = NULL;
    int nck = 0, ns = 1, ng = 1, nseed = 1;
    double scales[EV_MAX_LIST] = {0.9}, guids[EV_MAX_LIST] = {3.5}, seeds[EV_MAX_LIST] = {0};
    eval_sample_opts o = {.steps = 28};
    bool quiet = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--pairs") && v) pairs_path = argv[++i];
        else if (!strcmp(a, "--pairs-from") && v) pairs_from = argv[++i];
        else if (!strcmp(a, "--pairs-n") && v) pairs_n = atoi(argv[++i]);
        else if (!strcmp(a, "--out") && v) outdir = argv[++i];
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--clip") && v) clip_path = argv[++i];
        else if (!strcmp(a, "--config") && v) config = argv[++i];
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--scales") && v) { if (parse_list(a, argv[++i], scales, &ns)) return 2; }
        else if (!strcmp(a, "--guidance") && v) { if (parse_list(a, argv[++i], guids, &ng)) return 2; }
        else if (!strcmp(a, "--seeds") && v) { if (parse_list(a, argv[++i], seeds, &nseed)) return 2; }
        else if (!strcmp(a, "--steps") && v) o.steps = atoi(argv[++i]);
        else if (!strcmp(a, "--size") && v) {
            if (sscanf(argv[++i], "%dx%d", &o.width, &o.height) != 2 || o.width <= 0 || o.height <= 0) {
                fprintf(stderr, "cameo eval: --size wants WxH, got '%s'\n", v);
                return 2;
            }
        } else if (a[0] != '-') {
            if (nck == EV_MAX_CKPT) { fprintf(stderr, "cameo eval: more than %d checkpoints in one sweep\n", EV_MAX_CKPT); return 2; }
            ckpts[nck++] = a;
        }
        else { fprintf(stderr, "cameo eval: unknown argument '%s'\n", a); usage(stderr); return 2; }
    }
    if (!nck || (!pairs_path == !pairs_from) || !outdir) {
        if (pairs_path && pairs_from) fprintf(stderr, "cameo eval: --pairs or --pairs-from, not both\n");
        usage(stderr);
        return 2;
    }
    if (pairs_n < 1 || pairs_n > 100000) { fprintf(stderr, "cameo eval: --pairs-n %d (allowed 1..100000)\n", pairs_n); return 2; }
    if (o.steps < 1 || o.steps > 1024) { fprintf(stderr, "cameo eval: --steps %d (allowed 1..1024)\n", o.steps); return 2; }
    for (int i = 0; i < nseed; i++)
        if (seeds[i] < 0 || seeds[i] != floor(seeds[i])) { fprintf(stderr, "cameo eval: --seeds: %g is not a whole number >= 0\n", seeds[i]); return 2; }

    static char err[8192];
    int np = 0, rc = 0;
    dist d;  // under mpirun / srun, the images are shared among the ranks (one GPU each)
    dist_init(&d, NULL, NULL);
    eval_pair *pairs = NULL;
    if (pairs_from) {  // rank 0 draws them (once: a rerun finds DIR/pairs.jsonl), then every rank reads them
        int skipped = 0;
        if (d.rank == 0 && (fs_mkdirs(outdir) || eval_pairs_from_dataset(pairs_from, pairs_n, outdir, drawn, sizeof drawn, &skipped, err, sizeof err))) {
            if (!err[0]) snprintf(err, sizeof err, "%s: cannot create (%s)", outdir, strerror(errno));
            rc = 1;
        }
        if (!rc && skipped && d.rank == 0) fprintf(stderr, "cameo eval: %s: %d damaged records skipped while drawing pairs\n", pairs_from, skipped);
        snprintf(drawn, sizeof drawn, "%s/pairs.jsonl", outdir);
        pairs_path = drawn;
        rc = dist_max_int(&d, rc);
    }
    if (!rc) rc = eval_pairs_read(pairs_path, &pairs, &np, err, sizeof err) ? 1 : 0;

    // the sources: checkpoints (resolved; one set of models, the first's config, for all) or, with
    // --config, adapter files
    static char dirs[EV_MAX_CKPT][PATH_MAX], tags[EV_MAX_CKPT][96];
    eval_models em;
    memset(&em, 0, sizeof em);
    if (config) {
        for (int c = 0; c < nck && !rc; c++) {
            if (access(ckpts[c], R_OK)) { snprintf(err, sizeof err, "%s: cannot read the adapter (%s)", ckpts[c], strerror(errno)); rc = 1; }
            snprintf(dirs[c], sizeof dirs[c], "%.4000s", ckpts[c]);
        }
        if (!rc) rc = eval_models_open_config(&em, config, device, d.local_rank, ckpts[0], err, sizeof err);
    } else {
        if (!rc) rc = eval_models_open(&em, ckpts[0], device, d.local_rank, dirs[0], sizeof dirs[0], err, sizeof err);
        for (int c = 1; c < nck && !rc; c++)
            if (ckpt_resolve(ckpts[c], dirs[c], sizeof dirs[c], err, sizeof err) || !eval_models_same(&em, dirs[c], err, sizeof err)) rc = 1;
    }
    for (int c = 0; c < nck && !rc; c++) {  // absolute: a rerun from another folder finds its lines
        char abs[PATH_MAX];
        if (realpath(dirs[c], abs)) snprintf(dirs[c], sizeof dirs[c], "%.4000s", abs);
    }
    for (int c = 0; c < nck && !rc; c++) {  // the folder's (file's) name; a clash gets -2, -3, ...
        char tmp[PATH_MAX], base[80];
        snprintf(tmp, sizeof tmp, "%.4000s", dirs[c]);
        snprintf(base, sizeof base, "%s", basename(tmp));
        char *ext = config ? strrchr(base, '.') : NULL;
        if (ext && (!strcmp(ext, ".safetensors") || !strcmp(ext, ".bin"))) *ext = 0;
        snprintf(tags[c], sizeof tags[c], "%s", base);
        for (int k = 0, dup = 1; k < c; k++)
            if (!strcmp(tags[k], tags[c])) snprintf(tags[c], sizeof tags[c], "%s-%d", base, ++dup), k = -1;
    }
    if (!rc && !o.width) o.width = o.height = em.cfg->stages[0].resolution;

    char path[PATH_MAX + 64], results[PATH_MAX + 32], mine[PATH_MAX + 48];
    ev_done done = {0};
    eval_clip clip = {0};
    int cdim = 0;
    int damaged = 0, stale = 0;  // stale: lines of this sweep without CLIP scores, with --clip
    snprintf(results, sizeof results, "%s/results.jsonl", outdir);
    if (d.rank) snprintf(mine, sizeof mine, "%s/results.rank-%d.jsonl", outdir, d.rank);  // one writer per file
    else snprintf(mine, sizeof mine, "%s", results);
    if (!rc && d.rank == 0 && fs_mkdirs(outdir)) { snprintf(err, sizeof err, "%s: cannot create (%s)", outdir, strerror(errno)); rc = 1; }
    if (!rc && d.rank == 0 && merge_rank_files(outdir, results, err, sizeof err) < 0) rc = 1;
    if (!rc && d.rank == 0 && read_results(results, &done, &damaged, err, sizeof err)) rc = 1;  // damaged lines: rewritten here
    if (dist_max_int(&d, rc)) goto out;  // every rank reads the file rank 0 has made whole
    if (d.rank && read_results(results, &done, &damaged, err, sizeof err)) rc = 1;
    if (!rc && damaged && d.rank == 0) fprintf(stderr, "cameo eval: %s: %d damaged line(s) dropped (an interrupted write); those images run again\n", results, damaged);
    if (!rc && clip_path) {
        char e[1024];
        if (eval_clip_open(&clip, clip_path, em.m.dev, em.m.dtype, e, sizeof e)) {
            snprintf(err, sizeof err, "--clip %s: %s", clip_path, e);
            rc = 1;
        } else cdim = eval_clip_dim(&clip);
    }

    // the references: views and embeddings once
    if (!rc && eval_pairs_prepare(&em.m, cdim ? &clip : NULL, pairs_path, pairs, np, err, sizeof err)) rc = 1;

    if (dist_max_int(&d, rc)) goto out;
    int total = nck * ns * ng * nseed * np, todo = 0, todo_all = 0, made = 0, item = 0;
    for (int c = 0; c < nck && !rc; c++)
        for (int s = 0; s < ns; s++)
            for (int g = 0; g < ng; g++)
                for (int k = 0; k < nseed; k++)
                    for (int p = 0; p < np; p++) {
                        char *key = key_of(dirs[c], p, scales[s], guids[g], seeds[k], o.steps, o.width, o.height);
                        bool need = !done_has(&done, key, clip_path != NULL);
                        todo += need && todo_all % d.world == d.rank;  // this rank's share: every world-th image to make
                        todo_all += need;
                        stale += clip_path && done_find(&done, key) >= 0 && !done_has(&done, key, true);
                        free(key);
                    }
    if (!rc && !quiet && d.rank == 0)
        fprintf(stderr, "cameo eval: %d images (%d checkpoints x %d scales x %d guidances x %d seeds x %d pairs), %d done before, %d to make, %dx%d, %d steps%s\n",
                total, nck, ns, ng, nseed, np, total - todo_all, todo_all, o.width, o.height, o.steps,
                d.world > 1 ? " (shared among the ranks)" : "");
    if (!rc && stale && d.rank == 0)  // the file keeps the old lines; the new one of a key replaces it in the summary
        fprintf(stderr, "cameo eval: %d of them made before without CLIP scores: made again with --clip\n", stale);
    double t_start = now_s();
    for (int c = 0; c < nck && !rc && todo; c++) {
        bool loaded = false;
        for (int s = 0; s < ns && !rc; s++)
            for (int g = 0; g < ng && !rc; g++)
                for (int k = 0; k < nseed && !rc; k++)
                    for (int p = 0; p < np && !rc; p++) {
                        char *key = key_of(dirs[c], p, scales[s], guids[g], seeds[k], o.steps, o.width, o.height);
                        if (done_has(&done, key, clip_path != NULL) || item++ % d.world != d.rank) { free(key); continue; }
                        if (!loaded && (config ? ic_models_load_adapter_file(&em.m, dirs[c], err, sizeof err)
                                               : eval_models_load_adapter(&em, dirs[c], err, sizeof err))) {
                            rc = 1;
                            free(key);
                            break;
                        }
                        loaded = true;
                        double t0 = now_s();
                        eval_sample_opts oo = o;
                        oo.ip_scale = scales[s], oo.guidance = guids[g], oo.seed = (uint64_t)seeds[k];
                        char rel[256];
                        snprintf(rel, sizeof rel, "images/%s/p%d_s%g_g%g_seed%.0f.png", tags[c], p, scales[s], guids[g], seeds[k]);
                        snprintf(path, sizeof path, "%s/images/%s", outdir, tags[c]);
                        if (fs_mkdirs(path)) { snprintf(err, sizeof err, "%s: cannot create (%s)", path, strerror(errno)); rc = 1; }
                        snprintf(path, sizeof path, "%s/%s", outdir, rel);
                        eval_scores sc = {0};
                        if (!rc && eval_make_image(&em.m, &em.dec, cdim ? &clip : NULL, &pairs[p], &oo, path, &sc, err, sizeof err)) rc = 1;
                        ev_rec r = {.scale = scales[s], .guidance = guids[g], .steps = o.steps, .w = o.width, .h = o.height,
                                    .dino = sc.dino_i, .siglip = sc.siglip_i, .clip_i = sc.clip_i, .clip_t = sc.clip_t,
                                    .seconds = now_s() - t0};
                        snprintf(r.tag, sizeof r.tag, "%s", tags[c]);
                        if (!rc) {
                            cJSON *j = cJSON_CreateObject();
                            cJSON_AddStringToObject(j, "key", key);
                            cJSON_AddStringToObject(j, "checkpoint", dirs[c]);
                            cJSON_AddStringToObject(j, "checkpoint_tag", tags[c]);
                            cJSON_AddNumberToObject(j, "pair", p);
                            cJSON_AddStringToObject(j, "ref", pairs[p].ref);
                            cJSON_AddStringToObject(j, "prompt", pairs[p].prompt);
                            cJSON_AddNumberToObject(j, "scale", r.scale);
                            cJSON_AddNumberToObject(j, "guidance", r.guidance);
                            cJSON_AddNumberToObject(j, "seed", seeds[k]);
                            cJSON_AddNumberToObject(j, "steps", o.steps);
                            cJSON_AddNumberToObject(j, "width", o.width);
                            cJSON_AddNumberToObject(j, "height", o.height);
                            cJSON_AddStringToObject(j, "image", rel);
                            cJSON_AddNumberToObject(j, "dino_i", r.dino);
                            cJSON_AddNumberToObject(j, "siglip_i", r.siglip);
                            if (cdim) {
                                cJSON_AddNumberToObject(j, "clip_i", r.clip_i);
                                cJSON_AddNumberToObject(j, "clip_t", r.clip_t);
                            }
                            cJSON_AddNumberToObject(j, "seconds", r.seconds);
                            char *line = cJSON_PrintUnformatted(j);
                            rc = append_line(mine, line, err, sizeof err) ? 1 : 0;
                            free(line);
                            cJSON_Delete(j);
                            if (!rc) {
                                done_add(&done, key, &r);
                                key = NULL;
                            }
                        }
                        free(key);
                        made++;
                        if (!rc && !quiet && d.rank == 0) {
                            double el = now_s() - t_start, rate = made / (el > 0 ? el : 1e-9);
                            char eta[32];
                            progress_fmt_duration((todo - made) / rate, eta, sizeof eta);
                            fprintf(stderr, "%seval %d/%d  %.2f img/s  ETA %s  (%s, scale %g, guidance %g, seed %.0f, pair %d)%s",
                                    isatty(2) ? "\r\033[K" : "", made, todo, rate, eta, tags[c], scales[s], guids[g], seeds[k], p,
                                    isatty(2) && made < todo ? "" : "\n");
                        }
                    }
    }
    if (dist_max_int(&d, rc)) goto out;  // every rank done: rank 0 takes their lines and writes the summary
    if (d.rank == 0 && d.world > 1) {
        ev_done all = {0};
        int dmg;
        if (merge_rank_files(outdir, results, err, sizeof err) < 0 || read_results(results, &all, &dmg, err, sizeof err)) rc = 1;
        done_free(&done);
        done = all;
    }
    if (!rc && d.rank == 0) {  // the summary of everything in results.jsonl (earlier runs' lines included)
        char title[PATH_MAX + 64];
        snprintf(title, sizeof title, "cameo eval — %d images", done.n);
        char *md = summary_text(&done, title);
        snprintf(path, sizeof path, "%s/summary.md", outdir);
        rc = fs_write_atomic(path, md, strlen(md), err, sizeof err) ? 1 : 0;
        if (!rc && contact_sheets(outdir, pairs, np, tags, nck, scales, ns, guids, ng, seeds, nseed, o.width, o.height, err, sizeof err))
            rc = 1;
        if (!rc && !quiet) printf("%s\n%s, %s and %s/sheets/\n", md, results, path, outdir);
        free(md);
    }
out:
    if (rc) fprintf(stderr, "cameo eval%s: %s\n", d.world > 1 ? " (a rank)" : "", err);
    done_free(&done);
    eval_pairs_free(pairs, np);
    eval_clip_close(&clip);
    eval_models_close(&em);
    if (d.world > 1) rc = dist_max_int(&d, rc);  // the ranks end together
    dist_finalize(&d);
    return rc;
}
