// results.c — see results.h
#include "eval/results.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "autograd/tensor.h"
#include "data/fsutil.h"

static uint64_t fnv_more(uint64_t h, const char *s) {  // FNV-1a, continued over s and its terminating 0
    do h = (h ^ (uint8_t)*s) * 1099511628211ull;
    while (*s++);
    return h;
}

static uint64_t key_hash(const char *s) { return fnv_more(1469598103934665603ull, s); }

uint64_t eval_src_hash(const char *src) { return key_hash(src); }

// by content, not line number: a pairs file edited between runs gives its changed lines new keys
void eval_pair_id(const char *ref, const char *prompt, char out[EVAL_PAIR_ID_LEN]) {
    char abs[PATH_MAX];
    const char *r = realpath(ref, abs) ? abs : ref;  // the same image through another relative path: the same pair
    snprintf(out, EVAL_PAIR_ID_LEN, "%016llx", (unsigned long long)fnv_more(key_hash(r), prompt));
}

char *eval_setup(const char *device_type, const char *dtype, const char *config, const char *const *sets, int n_sets) {
    size_t len = strlen(device_type) + strlen(dtype) + 2 + (config ? strlen(config) + 8 : 0);
    for (int i = 0; i < n_sets; i++) len += strlen(sets[i]) + 7;
    char *s = malloc(len + 1);
    CM_CHECK(s, "eval", "out of host memory");
    size_t at = (size_t)sprintf(s, "%s %s", device_type, dtype);
    if (config) at += (size_t)sprintf(s + at, " config %s", config);
    for (int i = 0; i < n_sets; i++) at += (size_t)sprintf(s + at, " --set %s", sets[i]);
    return s;
}

// the setup after the rest: a line made on other devices, dtypes or overrides is another image (a
// CPU f32 sweep rerun on CUDA bf16 skipped every image as made, and the summary showed the CPU's scores)
char *eval_key(const char *src, const char *pair_id, double scale, double guid, double seed, int steps, int w, int h, const char *setup) {
    char k[PATH_MAX + 160];
    int n = snprintf(k, sizeof k, "%.4000s|%s|%.9g|%.9g|%.0f|%d|%dx%d", src, pair_id, scale, guid, seed, steps, w, h);
    if (!setup || !*setup) return strdup(k);
    char *out = malloc((size_t)n + strlen(setup) + 2);
    CM_CHECK(out, "eval", "out of host memory");
    sprintf(out, "%s|%s", k, setup);
    return out;
}

// every part of the key in the name, as the key writes it (%.9g: %g's 6 digits would give scales
// 0.1234567 and 0.1234568 one file): images of different keys never share a file (a new --steps or
// --size, an edited pair, would overwrite an image that earlier lines point at); the setup, too long
// for a name, by its hash
void eval_image_name(char *out, size_t len, const char *tag, int pair, const char *pair_id, double scale, double guid, double seed,
                     int steps, int w, int h, const char *setup) {
    char o[16] = "";
    if (setup && *setup) snprintf(o, sizeof o, "_o%08llx", (unsigned long long)(eval_src_hash(setup) & 0xffffffffull));
    snprintf(out, len, "images/%s/p%d-%.8s_s%.9g_g%.9g_seed%.0f_%dsteps_%dx%d%s.png", tag, pair, pair_id, scale, guid, seed, steps, w, h, o);
}

int eval_results_find(const eval_results *d, const char *key) {
    if (!d->nslot) return -1;
    for (uint64_t i = key_hash(key) & (uint64_t)(d->nslot - 1);; i = (i + 1) & (uint64_t)(d->nslot - 1)) {
        int at = d->slot[i];
        if (at < 0) return -1;
        if (!strcmp(d->keys[at], key)) return at;
    }
}

static void index_put(eval_results *d, int at) {
    uint64_t i = key_hash(d->keys[at]) & (uint64_t)(d->nslot - 1);
    while (d->slot[i] >= 0) i = (i + 1) & (uint64_t)(d->nslot - 1);
    d->slot[i] = at;
}

void eval_results_free(eval_results *d) {
    for (int i = 0; i < d->n; i++) free(d->keys[i]);
    free(d->keys), free(d->v), free(d->slot);
    memset(d, 0, sizeof *d);
}

// a line made again (with the CLIP scores) replaces the earlier one: the last line of a key counts
void eval_results_add(eval_results *d, char *key, const eval_rec *r) {
    int at = eval_results_find(d, key);
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

// made already, with the CLIP scores when the sweep asks for them — of its CLIP model: a rerun with
// another --clip would keep the first model's scores and the summary would mix the two
bool eval_results_has(const eval_results *d, const char *key, uint64_t clip) {
    int at = eval_results_find(d, key);
    if (at < 0 || !clip) return at >= 0;
    const eval_rec *r = &d->v[at];
    return !isnan(r->clip_i) && (!r->clip || r->clip == clip);
}

// keep(line) for each complete line of path (a missing file has none); *dropped: the lines not kept
// (cut off, not JSON, refused); rewrite: the file written again without them, when there are some
static int jsonl_pass(const char *path, bool (*keep)(const cJSON *line, void *ctx), void *ctx, int *dropped, bool rewrite,
                      char *err, size_t errlen) {
    size_t len;
    *dropped = 0;
    // a device or FIFO in its place (a symlink to /dev/null): no lines, and nothing to rewrite, as
    // metrics.jsonl's trim leaves such a file alone
    struct stat sb;
    if (!stat(path, &sb) && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) return 0;
    char *text = fs_read_file(path, &len, (size_t)1 << 30);
    if (!text) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    char *kept = malloc(len + 1);
    size_t kn = 0;
    if (!kept) {
        free(text);
        snprintf(err, errlen, "out of host memory for %s", path);
        return -1;
    }
    for (char *s = text, *e; s && *s; s = e ? e + 1 : NULL) {
        e = strchr(s, '\n');
        if (e) *e = 0;
        if (!*s) continue;
        cJSON *j = e ? cJSON_Parse(s) : NULL;  // no newline: the write was cut off
        if (j && keep(j, ctx)) {
            size_t l = strlen(s);
            memcpy(kept + kn, s, l);
            kept[kn + l] = '\n';
            kn += l + 1;
        } else (*dropped)++;
        cJSON_Delete(j);
    }
    int rc = rewrite && *dropped ? fs_write_atomic(path, kept, kn, err, errlen) : 0;
    free(kept);
    free(text);
    return rc;
}

// results.jsonl as left by an earlier run: complete lines kept; a damaged one (a write cut off)
// dropped, the file rewritten without it. -1 with err when it cannot be read or rewritten.
int eval_jsonl_filter(const char *path, bool (*keep)(const cJSON *line, void *ctx), void *ctx, int *dropped, char *err,
                      size_t errlen) {
    return jsonl_pass(path, keep, ctx, dropped, true, err, errlen);
}

// a complete result line: its record into the results (ctx)
static bool keep_result(const cJSON *j, void *ctx) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key"), *t = cJSON_GetObjectItemCaseSensitive(j, "checkpoint_tag");
    const char *num[8] = {"scale", "guidance", "dino_i", "siglip_i", "seconds", "steps", "width", "height"};
    double v[8];
    bool ok = cJSON_IsString(k) && cJSON_IsString(t);
    for (int i = 0; i < 8 && ok; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, num[i]);
        ok = cJSON_IsNumber(x);
        if (ok) v[i] = x->valuedouble;
    }
    if (!ok) return false;
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(j, "clip_i"), *ct = cJSON_GetObjectItemCaseSensitive(j, "clip_t");
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(j, "checkpoint"), *wt = cJSON_GetObjectItemCaseSensitive(j, "weights");
    char src[PATH_MAX + 16];  // what the summary groups by: the source as eval_cli names it (folder, "#ema" with --ema)
    snprintf(src, sizeof src, "%.4000s%s", cJSON_IsString(ck) ? ck->valuestring : t->valuestring,
             cJSON_IsString(wt) && !strcmp(wt->valuestring, "ema") ? "#ema" : "");
    bool has_clip = cJSON_IsNumber(ci) && cJSON_IsNumber(ct);
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "pair"), *cm = cJSON_GetObjectItemCaseSensitive(j, "clip");
    eval_rec r = {.pair = cJSON_IsNumber(pr) ? pr->valueint : -1, .scale = v[0], .guidance = v[1], .dino = v[2], .siglip = v[3], .seconds = v[4], .steps = (int)v[5],
                  .w = (int)v[6], .h = (int)v[7], .clip_i = has_clip ? ci->valuedouble : NAN,
                  .clip_t = has_clip ? ct->valuedouble : NAN, .src = eval_src_hash(src),
                  .clip = has_clip && cJSON_IsString(cm) ? eval_src_hash(cm->valuestring) : 0};
    snprintf(r.tag, sizeof r.tag, "%s", t->valuestring);
    const cJSON *su = cJSON_GetObjectItemCaseSensitive(j, "setup");  // none in lines from before: 0
    if (cJSON_IsString(su) && su->valuestring[0]) {
        r.setup = eval_src_hash(su->valuestring);
        snprintf(r.setup_label, sizeof r.setup_label, "%s", su->valuestring);
    }
    eval_results_add((eval_results *)ctx, strdup(k->valuestring), &r);
    return true;
}

// cameo train's evaluation (RUN/eval/results.jsonl) writes lines with a "step" and no "key": a
// sweep reading that file would drop every one of them as damaged and rewrite it without them
static bool count_train_line(const cJSON *j, void *ctx) {
    *(int *)ctx += cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "step") && !cJSON_GetObjectItemCaseSensitive(j, "key");
    return true;
}

int eval_results_check_ours(const char *path, char *err, size_t errlen) {
    int train = 0, cut;  // a cut-off tail is the filter's business, later
    if (jsonl_pass(path, count_train_line, &train, &cut, false, err, errlen)) return -1;
    if (!train) return 0;
    snprintf(err, errlen, "%s: %d lines of cameo train's evaluation (the config's eval:, RUN/eval/) are in it, which a sweep "
                          "would drop: give another --out", path, train);
    return -1;
}

int eval_results_read(const char *path, eval_results *d, int *damaged, char *err, size_t errlen) {
    return eval_jsonl_filter(path, keep_result, d, damaged, err, errlen);
}

// a line per image, fsynced: it survives a kill right after. Whole or not at all: a line cut off by a
// full disk would be glued onto the next one appended (validation.jsonl goes on after a failure)
int eval_append_line(const char *path, const char *line, char *err, size_t errlen) {
    size_t n = strlen(line);
    char *l = malloc(n + 1);
    if (!l) { snprintf(err, errlen, "%s: out of host memory for a line", path); return -1; }
    memcpy(l, line, n);
    l[n] = '\n';
    int rc = fs_append_whole(path, l, n + 1, err, errlen);
    free(l);
    return rc;
}

// the lines other ranks wrote (DIR/results.rank-R.jsonl), complete ones only, appended to
// results.jsonl, then the rank files removed (rank 0, after a sweep; and at the start, for the
// files an interrupted distributed sweep left). The number of lines moved, or -1 with err.
static bool is_rank_file(const char *name) {
    int r;
    char tail[8];
    return sscanf(name, "results.rank-%d.jsonl%7s", &r, tail) == 1 && r >= 1;
}

static bool keep_json(const cJSON *j, void *ctx) { (void)j, (void)ctx; return true; }

// results.jsonl's lines, whole, into a set (eval_results keyed by the line): a merge cut short after
// appending a rank file's lines and before removing the file appends them again at the next start
static int lines_seen(const char *path, eval_results *seen, char *err, size_t errlen) {
    size_t len;
    char *text = fs_read_file(path, &len, (size_t)1 << 30);
    if (!text) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    eval_rec none = {0};
    for (char *l = text, *e; l && *l; l = e ? e + 1 : NULL) {
        e = strchr(l, '\n');
        if (e) *e = 0;
        if (*l) eval_results_add(seen, strdup(l), &none);
    }
    free(text);
    return 0;
}

int eval_results_merge_ranks(const char *outdir, const char *results, int *dropped, char *err, size_t errlen) {
    *dropped = 0;
    DIR *dp = opendir(outdir);
    if (!dp) { snprintf(err, errlen, "%s: cannot list (%s)", outdir, strerror(errno)); return -1; }
    int moved = 0, rc = 0;
    bool repaired = false;
    eval_results seen = {0};  // the lines results.jsonl has: not appended twice
    struct dirent *de;
    while (!rc && (de = readdir(dp))) {
        if (!is_rank_file(de->d_name)) continue;
        // results.jsonl's unfinished last line (a cut-off write) goes first: a line appended after it
        // would be glued onto it, and both dropped when read
        if (!repaired && (eval_jsonl_filter(results, keep_json, NULL, dropped, err, errlen) || lines_seen(results, &seen, err, errlen))) {
            rc = -1;
            break;
        }
        repaired = true;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", outdir, de->d_name);
        size_t len;
        char *text = fs_read_file(path, &len, (size_t)1 << 30);
        if (!text) { snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno)); rc = -1; break; }
        for (char *l = text, *e; !rc && l && *l; l = e ? e + 1 : NULL) {
            e = strchr(l, '\n');
            if (!e) break;  // a line cut off mid-write: its image is made again
            *e = 0;
            if (!*l || eval_results_find(&seen, l) >= 0) continue;  // merged before the file could be removed
            if (!(rc = eval_append_line(results, l, err, errlen))) moved++;
        }
        free(text);
        if (!rc && unlink(path)) { snprintf(err, errlen, "%s: cannot remove (%s)", path, strerror(errno)); rc = -1; }
    }
    closedir(dp);
    eval_results_free(&seen);
    return rc ? -1 : moved;
}

