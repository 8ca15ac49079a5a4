// build.c — the builder core: group by character, train the metadata dictionary, encode in
// parallel, append to shards, write the manifest.
#include "data/build.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>
#include "data/buckets.h"
#include "data/checksum.h"
#include "data/cpus.h"
#include "data/fsutil.h"
#include "data/manifest.h"
#include "data/record.h"
#include "data/shard.h"

const char *const build_skip_names[BUILD_SKIP_REASONS] = {"bad JSON line", "missing or invalid field", "unreadable image",
                                                           "unreadable or mismatched mask", "bbox outside the image", "WebP encode failed",
                                                           "aspect ratio above --max-aspect"};

build_options build_options_default(void) {
    build_options o = {.quality = 90, .lossless = 0, .max_side = 1024, .max_aspect = 8.0, .shard_samples = 10000, .shard_bytes = 2ull << 30, .threads = 0,
                       .bucket_resolution = 512, .bucket_step = 64};
    return o;
}

void build_item_free(build_item *it) {
    free(it->image_path); free(it->mask_path); free(it->source); free(it->character);
    for (int i = 0; i < it->n_captions; i++) free(it->captions[i]);
    free(it->captions);
    memset(it, 0, sizeof *it);
}

typedef struct {
    int ok, reason;
    char msg[512];
    uint8_t *webp; size_t webp_len;
    uint8_t *meta; size_t meta_len, meta_raw_len;
    int w, h;
    uint16_t flags;
} encoded;

static int meta_raw(const build_item *it, uint32_t ow, uint32_t oh, const uint32_t *bbox, uint8_t **out, size_t *len) {
    record_meta_in in = {.n_captions = it->n_captions, .captions = (const char *const *)it->captions, .character = it->character,
                         .source = it->source, .orig_w = ow, .orig_h = oh, .has_bbox = bbox != NULL};
    if (bbox) memcpy(in.bbox, bbox, sizeof in.bbox);
    return record_meta_encode(&in, out, len);
}


// One axis of a box (bb[a], bb[a + 2]: start, length) from n to m pixels. Both edges are scaled
// and clamped, the length is their difference: rounding start and length apart could end past
// the image (x=5 w=995 of 1000 px at 0.3: 2 + 299 > 300). The box keeps at least one pixel.
static void bbox_scale(uint32_t *bb, uint32_t n, int m, int a) {
    double f = (double)m / n;
    uint32_t lo = (uint32_t)(bb[a] * f + 0.5), hi = (uint32_t)((bb[a] + (double)bb[a + 2]) * f + 0.5);
    if (hi > (uint32_t)m) hi = (uint32_t)m;
    if (lo >= hi) {
        lo = hi > 0 ? hi - 1 : 0;
        hi = lo + 1;
    }
    bb[a] = lo;
    bb[a + 2] = hi - lo;
}
static void encode_one(const build_item *it, build_image_fn load, void *ctx, const build_options *o, ZSTD_CCtx *cctx, const ZSTD_CDict *cdict,
                       encoded *e) {
    image im = {0};
    char why[400];
    e->ok = 0;
    if (load(ctx, it, &im, why, sizeof why)) {
        e->reason = BUILD_SKIP_IMAGE;
        snprintf(e->msg, sizeof e->msg, "%s: %s", it->source, why);
        return;
    }
    uint32_t ow = (uint32_t)im.w, oh = (uint32_t)im.h;
    uint32_t lng = ow > oh ? ow : oh, sht = ow > oh ? oh : ow;
    if (o->max_aspect > 0 && lng > o->max_aspect * sht) {  // the loader would scale it to cover a bucket: GBs for 16383x1
        e->reason = BUILD_SKIP_ASPECT;
        snprintf(e->msg, sizeof e->msg, "%s: %ux%u has an aspect ratio of %.1f:1, above --max-aspect %g", it->source, ow, oh, (double)lng / sht, o->max_aspect);
        image_free(&im);
        return;
    }
    if (it->mask_path) {
        image m = {0};
        if (image_load(it->mask_path, &m, why, sizeof why)) {
            e->reason = BUILD_SKIP_MASK;
            snprintf(e->msg, sizeof e->msg, "mask %s: %s", it->mask_path, why);
            image_free(&im);
            return;
        }
        if (m.w != im.w || m.h != im.h) {
            e->reason = BUILD_SKIP_MASK;
            snprintf(e->msg, sizeof e->msg, "mask %s is %dx%d, the image is %dx%d (expected equal sizes)", it->mask_path, m.w, m.h, im.w, im.h);
            image_free(&im); image_free(&m);
            return;
        }
        image rgba = {im.w, im.h, 4, malloc((size_t)im.w * im.h * 4)};
        for (size_t i = 0; i < (size_t)im.w * im.h; i++) {
            memcpy(rgba.px + 4 * i, im.px + im.c * i, 3);
            const uint8_t *mp = m.px + m.c * i;
            rgba.px[4 * i + 3] = m.c == 4 ? mp[3] : (uint8_t)((mp[0] * 77 + mp[1] * 150 + mp[2] * 29) >> 8);
        }
        image_free(&im); image_free(&m);
        im = rgba;
    }
    if (it->has_bbox && ((uint64_t)it->bbox[0] + it->bbox[2] > ow || (uint64_t)it->bbox[1] + it->bbox[3] > oh || !it->bbox[2] || !it->bbox[3])) {
        e->reason = BUILD_SKIP_BBOX;
        snprintf(e->msg, sizeof e->msg, "bbox [%u,%u,%u,%u] is not inside the %ux%u image", it->bbox[0], it->bbox[1], it->bbox[2], it->bbox[3], ow, oh);
        image_free(&im);
        return;
    }
    if (im.c == 4 && !image_has_alpha(&im)) {  // opaque alpha carries nothing
        for (size_t i = 0; i < (size_t)im.w * im.h; i++) memmove(im.px + 3 * i, im.px + 4 * i, 3);
        im.c = 3;
    }
    int longest = im.w > im.h ? im.w : im.h;
    uint32_t bb[4];
    memcpy(bb, it->bbox, sizeof bb);
    if (o->max_side > 0 && longest > o->max_side) {
        double s = (double)o->max_side / longest;
        int nw = (int)(im.w * s + 0.5), nh = (int)(im.h * s + 0.5);
        if (nw < 1) nw = 1;
        if (nh < 1) nh = 1;
        image r = {0};
        if (image_resize(&im, nw, nh, &r)) { e->reason = BUILD_SKIP_ENCODE; snprintf(e->msg, sizeof e->msg, "%s: resize failed", it->source); image_free(&im); return; }
        bbox_scale(bb, ow, nw, 0), bbox_scale(bb, oh, nh, 1);
        image_free(&im);
        im = r;
    }
    if (im.w > 16383 || im.h > 16383) { e->reason = BUILD_SKIP_ENCODE; snprintf(e->msg, sizeof e->msg, "%s: %dx%d exceeds WebP's 16383 per side (use --max-side)", it->source, im.w, im.h); image_free(&im); return; }
    e->webp = image_webp_encode(&im, o->quality, o->lossless, &e->webp_len);
    e->w = im.w; e->h = im.h;
    e->flags = (uint16_t)((im.c == 4 ? RECORD_FLAG_ALPHA : 0) | (o->lossless ? RECORD_FLAG_LOSSLESS : 0) | (cdict ? RECORD_FLAG_META_DICT : 0));
    image_free(&im);
    if (!e->webp) { e->reason = BUILD_SKIP_ENCODE; snprintf(e->msg, sizeof e->msg, "%s: WebP encode failed", it->source); return; }
    uint8_t *raw;
    if (meta_raw(it, ow, oh, it->has_bbox ? bb : NULL, &raw, &e->meta_raw_len) ||
        record_meta_compress(cctx, cdict, raw, e->meta_raw_len, &e->meta, &e->meta_len)) {
        e->reason = BUILD_SKIP_FIELD;
        snprintf(e->msg, sizeof e->msg, "%s: metadata too long (strings up to 65535 bytes, 1..255 captions, 16 MiB in all)", it->source);
        free(e->webp); e->webp = NULL;
        return;
    }
    free(raw);
    e->ok = 1;
}

// stable grouping by character (first appearance order)
typedef struct { size_t first, idx; } order_key;
static int by_group(const void *a, const void *b) {
    const order_key *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first ? 1 : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

static void group_by_character(build_item *items, size_t n) {
    // first appearance of each character via a sorted copy of (name, idx)
    size_t *first = malloc(sizeof(size_t) * (n + 1));
    char **names = malloc(sizeof(char *) * (n + 1));
    size_t *idx = malloc(sizeof(size_t) * (n + 1));
    for (size_t i = 0; i < n; i++) idx[i] = i;
    // simple hash table from name → first index
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    size_t *tab = malloc(sizeof(size_t) * cap);
    for (size_t i = 0; i < cap; i++) tab[i] = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hash64_update(HASH64_INIT, items[i].character, strlen(items[i].character)) & (cap - 1);
        while (tab[h] != (size_t)-1 && strcmp(items[tab[h]].character, items[i].character)) h = (h + 1) & (cap - 1);
        if (tab[h] == (size_t)-1) tab[h] = i;
        first[i] = tab[h];
    }
    order_key *k = malloc(sizeof(order_key) * (n + 1));
    for (size_t i = 0; i < n; i++) { k[i].first = first[i]; k[i].idx = i; }
    qsort(k, n, sizeof *k, by_group);
    build_item *copy = malloc(sizeof(build_item) * (n + 1));
    for (size_t i = 0; i < n; i++) copy[i] = items[k[i].idx];
    memcpy(items, copy, sizeof(build_item) * n);
    free(copy); free(k); free(tab); free(first); free(names); free(idx);
}

static int train_dict(const char *out, build_item *items, size_t n, manifest *m, uint8_t **dict, size_t *dict_len) {
    *dict = NULL;
    size_t take = n < 20000 ? n : 20000, total = 0;
    if (take < 64) return 0;
    size_t *sizes = malloc(sizeof(size_t) * take);
    uint8_t *buf = NULL;
    for (size_t i = 0; i < take; i++) {
        uint8_t *raw; size_t len;
        const build_item *it = &items[i * n / take];
        uint32_t zero[4] = {0};
        if (meta_raw(it, 0, 0, it->has_bbox ? zero : NULL, &raw, &len)) { sizes[i] = 0; continue; }
        buf = realloc(buf, total + len);
        memcpy(buf + total, raw, len);
        total += len;
        sizes[i] = len;
        free(raw);
    }
    size_t cap = total / 10;
    if (cap > 110 * 1024) cap = 110 * 1024;
    int rc = 0;
    if (total >= 8192 && cap >= 1024) {
        uint8_t *d = malloc(cap);
        size_t r = ZDICT_trainFromBuffer(d, cap, buf, sizes, (unsigned)take);
        if (!ZDICT_isError(r)) {
            char path[4200], err[512];
            snprintf(path, sizeof path, "%s/meta.zdict", out);
            if (fs_write_atomic(path, d, r, err, sizeof err)) { fprintf(stderr, "%s\n", err); rc = -1; free(d); }
            else {
                m->has_dict = 1;
                strcpy(m->dict_file, "meta.zdict");
                m->dict_id = ZDICT_getDictID(d, r);
                m->dict_bytes = r;
                m->dict_crc32c = crc32c(d, r);
                *dict = d;
                *dict_len = r;
            }
        } else free(d);
    }
    free(buf);
    free(sizes);
    return rc;
}

// the build's progress on stderr: a line redrawn at most 5 times a second on a terminal, else a
// line every 30 s (a log file of a long build), with the rate and the time left
typedef struct {
    double t0, last;
    bool tty, on_screen;
    int len;  // columns of the line on screen (cut to the terminal's width - 1)
} build_progress;

// the terminal's columns, read at each redraw (a window may be resized); COLUMNS when the TTY does
// not say; 0 when neither knows (no cut)
static int term_columns(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    return n > 0 ? n : 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// blanks the line on screen: as wide as it is (110 blanks wrapped on a narrower terminal)
static void progress_clear(build_progress *p) {
    if (!p->on_screen) return;
    int w = term_columns(), len = p->len;
    if (w > 0 && len > w - 1) len = w - 1;  // the terminal narrowed since the draw: do not wrap now
    fprintf(stderr, "\r%*s\r", len, "");
    p->on_screen = false, p->len = 0;
}

static void fmt_duration(double s, char *out, size_t n) {
    if (s >= 3600) snprintf(out, n, "%dh %02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(out, n, "%dm %02ds", (int)(s / 60), (int)s % 60);
}

static void progress_show(build_progress *p, const build_report *r, size_t n, int shards, bool last) {
    double t = now_s(), el = t - p->t0;
    if (!last && t - p->last < (p->tty ? 0.2 : 30.0)) return;
    if (last && !p->tty && el < 30.0) return;  // a short build in a log: the report says it all
    p->last = t;
    double rate = (double)r->lines / (el > 1e-9 ? el : 1e-9);
    char when[32];
    fmt_duration(last ? el : rate > 0 ? (double)(n - r->lines) / rate : 0, when, sizeof when);
    char line[256];
    int k = snprintf(line, sizeof line, "build: %llu of %zu images (%.1f%%), %.0f images/s, %d shard(s) done, %llu skipped, %s %s",
                     (unsigned long long)r->lines, n, n ? 100.0 * (double)r->lines / (double)n : 100.0, rate, shards,
                     (unsigned long long)(r->lines - r->kept), last ? "in" : "ETA", when);
    if (k < 0) return;
    if (k >= (int)sizeof line) k = (int)sizeof line - 1;
    if (!p->tty || last) {  // a line of its own (the last one may wrap: nothing redraws it)
        progress_clear(p);
        fprintf(stderr, "%s\n", line);
    } else {  // redrawn in place: cut to the terminal's width - 1, or each redraw that wraps leaves a line behind
        int w = term_columns();
        if (w > 0 && k > w - 1) k = w - 1, line[k] = 0;  // ASCII only: a byte is a column
        int pad = p->len - k;  // blank what a longer line left
        fprintf(stderr, "\r%s%*s", line, pad > 0 ? pad : 0, "");
        p->len = k;
        p->on_screen = true;
    }
    fflush(stderr);
}

// What a build killed before its first shard was published leaves in `out` (no shard-00000, no
// manifest.json): its shard's temporary folder `shard-NNNNN.tmp-PID@HOST` (up to a shard of data),
// its meta.zdict and manifest.json.tmp. Left there, a rebuild published them inside the new
// dataset: the old shard's bytes for good, and a meta.zdict the manifest does not name. A
// temporary folder of a process still alive is another build writing here: refused. A pid is
// judged only on its own host: on a shared filesystem (NFS, Lustre) another node's pid says
// nothing here (alive: refused forever; gone: a live build deleted), so another host's folder is
// refused, naming it, for the user to remove. A name without @HOST (older builds) is judged here.
static int build_clear_leftovers(const char *out, int quiet, char *err, size_t errlen) {
    DIR *dp = opendir(out);
    if (!dp) return 0;  // fs_mkdirs reports it
    int rc = 0;
    char p[4400], here[64];
    fs_host_name(here, sizeof here);
    for (struct dirent *e; (e = readdir(dp)) && !rc;) {
        const char *t = strstr(e->d_name, ".tmp-");
        char *end;
        if (strncmp(e->d_name, "shard-", 6) || !t || !t[5]) continue;
        long pid = strtol(t + 5, &end, 10);
        if ((*end && (*end != '@' || !end[1])) || pid <= 0) continue;
        const char *host = *end ? end + 1 : NULL;
        snprintf(p, sizeof p, "%s/%s", out, e->d_name);
        if (host && strcmp(host, here)) {
            snprintf(err, errlen, "%s: the temporary shard of a build by process %ld on host %s (this is %s), which cannot be "
                     "judged from here: if that build is no longer running, remove it (rm -r %s); else wait for it, or choose a "
                     "new --out", p, pid, host, here, p);
            rc = -1;
            break;
        }
        if ((pid_t)pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
            snprintf(err, errlen, "%s: the temporary shard of a build still running (process %ld) into %s: wait for it or stop it, "
                     "or choose a new --out", p, pid, out);
            rc = -1;
            break;
        }
        // not removed, it would stay inside the new dataset (what this clean-up is for): refused, named
        if (fs_remove_tree(p)) {
            snprintf(err, errlen, "%s: the partial shard of a build that was stopped (process %ld) cannot be removed (%s): remove "
                     "it, or choose a new --out", p, pid, strerror(errno));
            rc = -1;
            break;
        }
        if (!quiet) fprintf(stderr, "%s: removed: the partial shard of a build that was stopped (process %ld)\n", p, pid);
    }
    closedir(dp);
    if (rc) return rc;
    const char *left[2] = {"manifest.json.tmp", "meta.zdict"};  // meta.zdict: this build writes its own, or none (the manifest then says null)
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", out, left[i]);
        if (unlink(p) && errno != ENOENT) {
            snprintf(err, errlen, "%s: left by a build that was stopped, cannot be removed (%s): remove it, or choose a new --out", p,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

int build_dataset(const char *out, build_item *items, size_t n, build_image_fn load, void *ctx, const build_options *o, build_report *r,
                  char *err, size_t errlen) {
    build_progress prog = {.t0 = now_s(), .last = now_s(), .tty = isatty(STDERR_FILENO) != 0};
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    struct stat st;
    if (!stat(path, &st)) { snprintf(err, errlen, "%s: a published dataset is already there (datasets are immutable; choose a new --out)", path); return -1; }
    // shards without a manifest: a build that stopped (a full disk) or is still running. Named as
    // such: "shard-00000 already exists, build into a new folder" left its shards taking the space
    snprintf(path, sizeof path, "%s/shard-00000", out);
    if (!stat(path, &st)) {
        snprintf(err, errlen, "%s holds the shards of an unfinished build (shard-00000, no manifest.json: a build stopped by an error, "
                 "or one still running): remove the folder (rm -r %s) to build into it again, or choose a new --out", out, out);
        return -1;
    }
    if (fs_mkdirs(out)) { snprintf(err, errlen, "%s: cannot create (%s)", out, strerror(errno)); return -1; }
    if (build_clear_leftovers(out, o->quiet, err, errlen)) return -1;
    group_by_character(items, n);
    manifest m;
    memset(&m, 0, sizeof m);
    m.version = MANIFEST_VERSION;
    m.quality = o->quality; m.lossless = o->lossless; m.max_side = o->max_side;
    uint8_t *dict = NULL;
    size_t dict_len = 0;
    if (train_dict(out, items, n, &m, &dict, &dict_len)) { snprintf(err, errlen, "%s/meta.zdict: cannot write the dictionary", out); return -1; }
    r->has_dict = m.has_dict;
    ZSTD_CDict *cdict = dict ? ZSTD_createCDict(dict, dict_len, 19) : NULL;
    int threads = o->threads > 0 ? o->threads : cpus_usable();
    ZSTD_CCtx **cctx = malloc(sizeof(ZSTD_CCtx *) * threads);
    for (int t = 0; t < threads; t++) cctx[t] = ZSTD_createCCtx();
    const size_t chunk = 64;
    encoded *enc = calloc(chunk, sizeof *enc);
    char **names = malloc(sizeof(char *) * (n + 1));  // character index → name
    uint16_t *sizes = malloc(sizeof(uint16_t) * 2 * (n + 1));
    uint64_t next_id = 0, shard_first = 0, shard_bytes = 0;
    int64_t cur_char = -1;
    const char *cur_name = NULL;
    shard_writer *w = NULL;
    int rc = -1;
    for (size_t base = 0; base < n; base += chunk) {
        if (!o->quiet) progress_show(&prog, r, n, m.n_shards, false);
        size_t cn = n - base < chunk ? n - base : chunk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (size_t i = 0; i < cn; i++) encode_one(&items[base + i], load, ctx, o, cctx[omp_get_thread_num()], cdict, &enc[i]);
        for (size_t i = 0; i < cn; i++) {
            encoded *e = &enc[i];
            const build_item *it = &items[base + i];
            r->lines++;
            if (!e->ok) {
                r->skipped[e->reason]++;
                if (!o->quiet) {
                    progress_clear(&prog);
                    if (it->line > 0) fprintf(stderr, "%s:%ld: skipped: %s\n", o->input_name ? o->input_name : "item", it->line, e->msg);
                    else fprintf(stderr, "%s: skipped: %s\n", o->input_name ? o->input_name : "item", e->msg);  // a folder's file
                }
                continue;
            }
            if (!w) {
                char name[32];
                snprintf(name, sizeof name, "shard-%05d", m.n_shards);
                shard_first = next_id;
                shard_bytes = 0;
                if (!(w = shard_writer_open(out, name, shard_first, err, errlen))) goto fail;
            }
            if (!cur_name || strcmp(cur_name, it->character)) { cur_char++; cur_name = it->character; names[cur_char] = it->character; }
            size_t len;
            uint8_t *rec = record_assemble(next_id, (uint32_t)cur_char, e->flags, e->w, e->h, e->webp, e->webp_len, e->meta, e->meta_len, e->meta_raw_len, &len);
            free(e->webp); free(e->meta); e->webp = e->meta = NULL;
            int prc = shard_writer_put(w, next_id, rec, len, e->w, e->h, (uint32_t)cur_char, err, errlen);
            free(rec);
            if (prc) goto fail;
            sizes[2 * next_id] = (uint16_t)e->w;
            sizes[2 * next_id + 1] = (uint16_t)e->h;
            next_id++;
            r->kept++;
            shard_bytes += len;
            if (next_id - shard_first >= o->shard_samples || shard_bytes >= o->shard_bytes) {
                m.shards = realloc(m.shards, sizeof(manifest_shard) * (m.n_shards + 1));
                manifest_shard *ms = &m.shards[m.n_shards];
                memset(ms, 0, sizeof *ms);
                snprintf(ms->name, sizeof ms->name, "shard-%05d", m.n_shards);
                ms->first_id = shard_first;
                shard_writer *fw = w;
                w = NULL;
                if (shard_writer_finish(fw, (const char *const *)names, &ms->samples, &ms->characters, &ms->bytes, &ms->crc32c, err, errlen)) goto fail;
                m.n_shards++;
            }
        }
    }
    if (w) {
        m.shards = realloc(m.shards, sizeof(manifest_shard) * (m.n_shards + 1));
        manifest_shard *ms = &m.shards[m.n_shards];
        memset(ms, 0, sizeof *ms);
        snprintf(ms->name, sizeof ms->name, "shard-%05d", m.n_shards);
        ms->first_id = shard_first;
        shard_writer *fw = w;
        w = NULL;
        if (shard_writer_finish(fw, (const char *const *)names, &ms->samples, &ms->characters, &ms->bytes, &ms->crc32c, err, errlen)) goto fail;
        m.n_shards++;
    }
    if (!o->quiet) progress_show(&prog, r, n, m.n_shards, true);
    if (next_id == 0) { snprintf(err, errlen, "%s: no usable samples (all %llu lines skipped)", out, (unsigned long long)r->lines); goto fail; }
    m.samples = next_id;
    m.characters = (uint64_t)(cur_char + 1);
    // bucket table of the default resolution with its sample counts
    int bt[BUCKETS_MAX][2];
    int nb = buckets_make(o->bucket_resolution, o->bucket_step, 2.0, bt, BUCKETS_MAX);
    if (nb > 0) {
        m.bucket_resolution = o->bucket_resolution; m.bucket_step = o->bucket_step; m.bucket_max_aspect = 2.0;
        m.n_buckets = nb;
        m.buckets = calloc((size_t)nb, sizeof *m.buckets);
        for (int b = 0; b < nb; b++) { m.buckets[b][0] = bt[b][0]; m.buckets[b][1] = bt[b][1]; }
        for (uint64_t i = 0; i < next_id; i++) m.buckets[buckets_nearest((const int(*)[2])bt, nb, sizes[2 * i], sizes[2 * i + 1])][2]++;
    }
    if (manifest_write(out, &m, err, errlen)) goto fail;
    r->shards = (uint64_t)m.n_shards;
    r->characters = m.characters;
    for (int i = 0; i < m.n_shards; i++) r->bytes += m.shards[i].bytes;
    rc = 0;
fail:
    if (w) shard_writer_abort(w);
    if (rc && !o->quiet) progress_clear(&prog);
    if (rc && m.n_shards)
        fprintf(stderr, "build of %s stopped: the partial shard was removed; %d finished shard(s) stay, no manifest.json was written "
                "(not a dataset: remove the folder before building into it again)\n", out, m.n_shards);
    for (size_t i = 0; i < chunk; i++) { free(enc[i].webp); free(enc[i].meta); }
    free(enc);
    for (int t = 0; t < threads; t++) ZSTD_freeCCtx(cctx[t]);
    free(cctx);
    if (cdict) ZSTD_freeCDict(cdict);
    free(dict);
    free(names);
    free(sizes);
    manifest_free(&m);
    return rc;
}

void build_report_print(const build_report *r, const char *out) {
    uint64_t skipped = r->lines - r->kept;
    printf("%s: %llu samples kept, %llu skipped, %llu character(s), %llu shard(s), %.1f MiB%s\n", out, (unsigned long long)r->kept,
           (unsigned long long)skipped, (unsigned long long)r->characters, (unsigned long long)r->shards, r->bytes / 1048576.0,
           r->has_dict ? ", metadata dictionary" : "");
    for (int k = 0; k < BUILD_SKIP_REASONS; k++)
        if (r->skipped[k]) printf("  skipped %llu: %s\n", (unsigned long long)r->skipped[k], build_skip_names[k]);
}

size_t build_utf8_check(const char *s, size_t n) {
    const uint8_t *b = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint8_t c = b[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        if (!k || i + k > n) return i;
        for (size_t j = 1; j < k; j++)
            if ((b[i + j] & 0xC0) != 0x80) return i;
        // the second byte's range where the first allows more than 80..BF: no overlongs, surrogates, > U+10FFFF
        if ((c == 0xE0 && b[i + 1] < 0xA0) || (c == 0xED && b[i + 1] >= 0xA0) || (c == 0xF0 && b[i + 1] < 0x90) || (c == 0xF4 && b[i + 1] >= 0x90))
            return i;
        i += k;
    }
    return n;
}
