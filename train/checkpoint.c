// checkpoint.c — atomic checkpoint folders with checksummed manifests, keep-last pruning, and
// loading with fallback to the previous complete checkpoint.
#define _GNU_SOURCE 1
#include "autograd/tensor.h"
#include "train/checkpoint.h"
#include "models/crc32.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include "kernels/backend.h"
#include "train/config.h"
#include "models/safetensors.h"

#define CKPT_FORMAT "cameo-checkpoint-1"
#define CKPT_PATH 4096


int ckpt_crc32_file(const char *path, uint32_t *crc, uint64_t *size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t cap = (size_t)128 << 20;  // large reads: each one's crc32 runs on the OpenMP threads (models/crc32.h)
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    uint32_t c = 0;
    uint64_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        c = cm_crc32(c, buf, (size_t)r);
        n += (uint64_t)r;
    }
    free(buf);
    close(fd);
    *crc = c;
    if (size) *size = n;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// file helpers
// out = a "/" b; an empty string when it does not fit (then every use fails with ENOENT)
static void pjoin(char *out, size_t n, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 2 > n) {
        out[0] = 0;
        return;
    }
    memmove(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb + 1);
}

static double now_unix(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

// writes text to path atomically (models/atomic_file.h); *sum (may be NULL) gets its size and crc32
static int write_file_sync(const char *path, const char *text, af_sum *sum, char *err, size_t errlen) {
    af_file f;
    if (af_open(&f, path, sum != NULL, err, errlen)) return -1;
    af_write(&f, text, strlen(text));
    return af_commit(&f, sum, err, errlen);
}

static char *read_text(const char *path, size_t max) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = malloc(max + 1);
    size_t n = fread(b, 1, max, f);
    fclose(f);
    b[n] = 0;
    return b;
}

static int mkdir_p(const char *path) {
    char tmp[CKPT_PATH];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
    return 0;
}

static bool fault_prune_kill;  // tests (CAMEO_FAULT_PRUNE_KILL=1): killed in a pruning, its manifest.json just removed
static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag;
    int rc = remove(p);
    if (fault_prune_kill && !strcmp(p + ftw->base, "manifest.json")) raise(SIGKILL);
    return rc;
}
static int rm_rf(const char *path) { return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// "step-N" → N (>= 0), else -1
static int64_t parse_step_name(const char *name) {
    if (strncmp(name, "step-", 5) || !name[5]) return -1;
    char *end;
    long long v = strtoll(name + 5, &end, 10);
    if (*end || v < 0) return -1;
    return v;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int ckpt_list(const char *dir, int64_t *steps, int max) {
    int64_t *all;
    int n = ckpt_list_all(dir, &all);
    for (int i = 0; i < n && i < max; i++) steps[i] = all[i];
    free(all);
    return n;
}

int ckpt_list_all(const char *dir, int64_t **steps) {
    *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 64;
    int64_t *all = malloc((size_t)cap * sizeof *all);
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s = parse_step_name(e->d_name);
        if (s < 0) continue;
        char man[CKPT_PATH];
        char sub[CKPT_PATH];
        pjoin(sub, sizeof sub, dir, e->d_name);
        pjoin(man, sizeof man, sub, "manifest.json");
        if (!is_file(man)) continue;
        if (n == cap) all = realloc(all, (size_t)(cap *= 2) * sizeof *all);
        all[n++] = s;
    }
    closedir(d);
    qsort(all, (size_t)n, sizeof *all, cmp_i64);
    *steps = all;
    return n;
}

// ---------------------------------------------------------------------------------------------
// state
void ckpt_state_add_data(ckpt_state *st, const char *name, uint64_t value) {
    for (int i = 0; i < st->n_data; i++)
        if (!strcmp(st->data_names[i], name)) {
            st->data_pos[i] = value;
            return;
        }
    CM_CHECK(st->n_data < CKPT_MAX_DATA, "ckpt_state_add_data", "more than %d data-position values", CKPT_MAX_DATA);
    snprintf(st->data_names[st->n_data], sizeof st->data_names[0], "%s", name);
    st->data_pos[st->n_data++] = value;
}

bool ckpt_state_get_data(const ckpt_state *st, const char *name, uint64_t *value) {
    for (int i = 0; i < st->n_data; i++)
        if (!strcmp(st->data_names[i], name)) {
            if (value) *value = st->data_pos[i];
            return true;
        }
    return false;
}

static void add_u64(cJSON *o, const char *k, uint64_t v) {  // exact: as a decimal string
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    cJSON_AddStringToObject(o, k, b);
}

static char *state_json(const ckpt_state *st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", CKPT_FORMAT);
    cJSON_AddNumberToObject(o, "step", (double)st->step);
    cJSON_AddNumberToObject(o, "stage", st->stage);
    cJSON_AddStringToObject(o, "stage_name", st->stage_name);
    cJSON_AddNumberToObject(o, "step_in_stage", (double)st->step_in_stage);
    cJSON *dp = cJSON_AddObjectToObject(o, "data_position");
    for (int i = 0; i < st->n_data; i++) add_u64(dp, st->data_names[i], st->data_pos[i]);
    add_u64(o, "seed", st->seed);
    cJSON *r = cJSON_AddArrayToObject(o, "rng");
    for (int i = 0; i < st->n_rng; i++) {
        char b[32];
        snprintf(b, sizeof b, "%llu", (unsigned long long)st->rng[i]);
        cJSON_AddItemToArray(r, cJSON_CreateString(b));
    }
    cJSON_AddNumberToObject(o, "skipped_steps", (double)st->skipped_steps);
    cJSON_AddNumberToObject(o, "skipped_in_row", (double)st->skipped_in_row);
    // JSON has no NaN (cJSON would write null): a smoothed loss before any finite one is left out
    if (isfinite(st->loss_smoothed)) cJSON_AddNumberToObject(o, "loss_smoothed", st->loss_smoothed);
    if (isfinite(st->loss_ema_acc) && st->loss_ema_n >= 0) {
        cJSON_AddNumberToObject(o, "loss_ema_acc", st->loss_ema_acc);
        cJSON_AddNumberToObject(o, "loss_ema_n", (double)st->loss_ema_n);
    }
    cJSON_AddNumberToObject(o, "elapsed_s", st->elapsed_s);
    cJSON_AddNumberToObject(o, "started_unix", st->started_unix);
    cJSON_AddNumberToObject(o, "saved_unix", st->saved_unix);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    size_t n = strlen(s);
    s = realloc(s, n + 2);
    s[n] = '\n', s[n + 1] = 0;
    return s;
}

static bool get_u64s(const cJSON *v, uint64_t *out) {
    if (cJSON_IsString(v)) {
        char *end;
        errno = 0;
        // digits only: strtoull would take " 5", "+5" and wrap "-5" to 2^64 - 5
        if (v->valuestring[0] < '0' || v->valuestring[0] > '9') return false;
        unsigned long long x = strtoull(v->valuestring, &end, 10);
        if (errno || *end) return false;
        *out = x;
        return true;
    }
    // a hand-edited number: whole and exact in a double (2^53); casting 1e30 to uint64_t is undefined
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0 &&
        v->valuedouble == floor(v->valuedouble)) {
        *out = (uint64_t)v->valuedouble;
        return true;
    }
    return false;
}

int ckpt_read_state(const char *ckpt_dir, ckpt_state *st, char *err, size_t errlen) {
    char path[CKPT_PATH];
    pjoin(path, sizeof path, ckpt_dir, "trainer_state.json");
    char *text = read_text(path, 1 << 20);
    if (!text) {
        cm_seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    memset(st, 0, sizeof *st);
    const char *bad = NULL;
    cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "format");
    if (!o) bad = "not valid JSON";
    else if (!cJSON_IsString(f) || strcmp(f->valuestring, CKPT_FORMAT)) bad = "format is not " CKPT_FORMAT;
    if (!bad) {
#define NUM(key, dst)                                                        \
    do {                                                                     \
        cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);                 \
        if (!cJSON_IsNumber(x)) bad = bad ? bad : "'" key "' missing or not a number"; \
        else dst = x->valuedouble;                                           \
    } while (0)
// a count: a whole number in [0, hi] (a hand-edited stage of -1 or 1e30 indexed stages[] out of bounds)
#define COUNT(key, dst, hi)                                                                      \
    do {                                                                                         \
        double v_ = -1;                                                                          \
        NUM(key, v_);                                                                            \
        if (!bad && !(v_ >= 0 && v_ <= (double)(hi) && v_ == floor(v_)))                         \
            bad = "'" key "' is not a whole number in range";                                   \
        else if (!bad) dst = (__typeof__(dst))v_;                                                \
    } while (0)
        COUNT("step", st->step, 9.0e15);
        COUNT("stage", st->stage, CFG_MAX_STAGES - 1);
        COUNT("step_in_stage", st->step_in_stage, 9.0e15);
        COUNT("skipped_steps", st->skipped_steps, 9.0e15);
        COUNT("skipped_in_row", st->skipped_in_row, 9.0e15);
#undef COUNT
        // optional: absent (or null, as an older version wrote a NaN) before any finite loss
        cJSON *ls = cJSON_GetObjectItemCaseSensitive(o, "loss_smoothed");
        st->loss_smoothed = cJSON_IsNumber(ls) ? ls->valuedouble : NAN;
        cJSON *la = cJSON_GetObjectItemCaseSensitive(o, "loss_ema_acc"), *ln = cJSON_GetObjectItemCaseSensitive(o, "loss_ema_n");
        st->loss_ema_n = -1;
        if (cJSON_IsNumber(la) && cJSON_IsNumber(ln) && ln->valuedouble >= 0 && ln->valuedouble <= 9.0e15)
            st->loss_ema_acc = la->valuedouble, st->loss_ema_n = (int64_t)ln->valuedouble;
        NUM("elapsed_s", st->elapsed_s);
        NUM("started_unix", st->started_unix);
        NUM("saved_unix", st->saved_unix);
#undef NUM
        cJSON *sn = cJSON_GetObjectItemCaseSensitive(o, "stage_name");
        if (cJSON_IsString(sn)) snprintf(st->stage_name, sizeof st->stage_name, "%s", sn->valuestring);
        if (!get_u64s(cJSON_GetObjectItemCaseSensitive(o, "seed"), &st->seed)) bad = bad ? bad : "'seed' missing or not an integer";
        cJSON *dp = cJSON_GetObjectItemCaseSensitive(o, "data_position"), *it;
        if (!cJSON_IsObject(dp)) bad = bad ? bad : "'data_position' missing";
        else
            cJSON_ArrayForEach(it, dp) {
                uint64_t x;
                if (st->n_data >= CKPT_MAX_DATA || !get_u64s(it, &x)) {
                    bad = bad ? bad : "'data_position' holds a bad value or too many values";
                    break;
                }
                ckpt_state_add_data(st, it->string, x);
            }
        cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rng");
        if (!cJSON_IsArray(r)) bad = bad ? bad : "'rng' missing";
        else
            cJSON_ArrayForEach(it, r) {
                if (st->n_rng >= CKPT_MAX_RNG || !get_u64s(it, &st->rng[st->n_rng])) {
                    bad = bad ? bad : "'rng' holds a bad value or too many values";
                    break;
                }
                st->n_rng++;
            }
    }
    cJSON_Delete(o);
    if (bad) {
        cm_seterr(err, errlen, "%s: %s", path, bad);
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// save
static int write_adapter(const char *path, cm_params **regs, int n_regs, int64_t step, af_sum *sum, char *err, size_t errlen) {
    st_writer *w = st_writer_new();
    int cap = 0, n = 0;
    for (int r = 0; r < n_regs; r++) cap += regs[r]->n;
    void **bufs = calloc((size_t)cap + 1, sizeof *bufs);
    for (int r = 0; r < n_regs; r++)
        for (int i = 0; i < regs[r]->n; i++) {
            const cm_param *p = &regs[r]->items[i];
            if (!p->trainable) continue;
            bufs[n] = malloc((size_t)tensor_numel(p->t) * 2 + 2);
            tensor_copy_to_host(p->t, CM_BF16, bufs[n]);
            st_writer_add(w, p->name, CM_BF16, p->t->ndim, p->t->shape, bufs[n]);
            n++;
        }
    st_writer_meta(w, "format", "pt");
    for (int r = 0; r < n_regs; r++)  // the registries' own facts (head splits of the adapter)
        for (int i = 0; i < regs[r]->n_info; i++) st_writer_meta(w, regs[r]->info[i].key, regs[r]->info[i].value);
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)step);
    st_writer_meta(w, "cameo.step", b);
    int rc = st_writer_save_sum(w, path, sum, err, errlen);
    st_writer_free(w);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    return rc;
}

// the manifest from each file's size and crc32 as its writer kept them (nothing read back: the
// optimizer state of a full-size run is tens of GB, other ranks' shards included)
static int write_manifest(const char *dir, int64_t step, const char *const *files, const af_sum *sums, int n, char *err,
                          size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", CKPT_FORMAT);
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON *arr = cJSON_AddArrayToObject(o, "files");
    for (int i = 0; i < n; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", files[i]);
        cJSON_AddNumberToObject(f, "bytes", (double)sums[i].bytes);
        char c[16];
        snprintf(c, sizeof c, "%08x", sums[i].crc);
        cJSON_AddStringToObject(f, "crc32", c);
        cJSON_AddItemToArray(arr, f);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    char path[CKPT_PATH];
    pjoin(path, sizeof path, dir, "manifest.json");
    int rc = write_file_sync(path, text, NULL, err, errlen);
    free(text);
    return rc;
}

// removes leftovers of interrupted saves (.tmp-step-*, .old-step-*) and prunings (.del-step-*) except `keep`
static void clean_leftovers(const char *dir, const char *keep) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[CKPT_PATH];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, ".tmp-step-", 10) && strncmp(e->d_name, ".old-step-", 10) && strncmp(e->d_name, ".del-step-", 10))
            continue;
        if (keep && !strcmp(e->d_name, keep)) continue;
        pjoin(path, sizeof path, dir, e->d_name);
        if (!strncmp(e->d_name, ".old-step-", 10)) {
            // a re-save of step-N cut between moving step-N aside and renaming the new one in:
            // this is the only copy (and `latest` may name it), so it goes back, not away
            char back[CKPT_PATH];
            pjoin(back, sizeof back, dir, e->d_name + 5);  // "step-N"
            if (!is_dir(back) && !rename(path, back)) {
                fsync_path(dir);
                continue;
            }
        }
        rm_rf(path);
    }
    closedir(d);
}

void ckpt_tmp_path(const char *dir, int64_t step, char *out, size_t outlen) {
    char tmpname[64];
    snprintf(tmpname, sizeof tmpname, ".tmp-step-%lld", (long long)step);
    pjoin(out, outlen, dir, tmpname);
}

void ckpt_optim_name(int shard, int n_shards, char *out, size_t outlen) {
    if (n_shards <= 1) snprintf(out, outlen, "optimizer.safetensors");
    else snprintf(out, outlen, "optimizer-%05d-of-%05d.safetensors", shard, n_shards);
}

int ckpt_save_begin(const char *dir, int64_t step, char *err, size_t errlen) {
    if (mkdir_p(dir)) {
        cm_seterr(err, errlen, "%s: cannot create the checkpoint folder: %s", dir, strerror(errno));
        return -1;
    }
    char tmp[CKPT_PATH];
    ckpt_tmp_path(dir, step, tmp, sizeof tmp);
    clean_leftovers(dir, NULL);
    if (mkdir(tmp, 0755)) {
        cm_seterr(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

void ckpt_save_abort(const char *dir, int64_t step) {
    char tmp[CKPT_PATH];
    ckpt_tmp_path(dir, step, tmp, sizeof tmp);
    rm_rf(tmp);
}

int ckpt_save_finish(const char *dir, cm_params **regs, int n_regs, const ckpt_state *st_in, const char *config_yaml,
                     const char *const *more, const af_sum *more_sums, int n_more, int keep_last, char *out, size_t outlen,
                     char *err, size_t errlen) {
    ckpt_state st = *st_in;
    st.saved_unix = now_unix();
    char tmp[CKPT_PATH], final[CKPT_PATH], path[CKPT_PATH];
    ckpt_tmp_path(dir, st.step, tmp, sizeof tmp);
    char fname[64];
    snprintf(fname, sizeof fname, "step-%lld", (long long)st.step);
    pjoin(final, sizeof final, dir, fname);
    const char **files = calloc((size_t)n_more + 4, sizeof *files);
    af_sum *sums = calloc((size_t)n_more + 4, sizeof *sums);
    CM_CHECK(files && sums, "checkpoint", "out of host memory for %d file names", n_more + 4);
    int nf = 0;
    pjoin(path, sizeof path, tmp, "adapter.safetensors");
    if (write_adapter(path, regs, n_regs, st.step, &sums[nf], err, errlen)) goto fail;
    files[nf++] = "adapter.safetensors";
    for (int i = 0; i < n_more; i++) sums[nf] = more_sums[i], files[nf++] = more[i];
    char *js = state_json(&st);
    pjoin(path, sizeof path, tmp, "trainer_state.json");
    int rc = write_file_sync(path, js, &sums[nf], err, errlen);
    free(js);
    if (rc) goto fail;
    files[nf++] = "trainer_state.json";
    if (config_yaml) {
        pjoin(path, sizeof path, tmp, "config.yaml");
        if (write_file_sync(path, config_yaml, &sums[nf], err, errlen)) goto fail;
        files[nf++] = "config.yaml";
    }
    if (write_manifest(tmp, st.step, files, sums, nf, err, errlen)) goto fail;
    free(files);
    free(sums);
    files = NULL, sums = NULL;
    if (fsync_path(tmp)) {
        cm_seterr(err, errlen, "%s: cannot sync the folder: %s", tmp, strerror(errno));
        goto fail;
    }
    // an existing step-N (re-saved after a fallback) is moved aside, then removed
    if (is_dir(final)) {
        char old[CKPT_PATH];
        char oname[64];
        snprintf(oname, sizeof oname, ".old-step-%lld", (long long)st.step);
        pjoin(old, sizeof old, dir, oname);
        rm_rf(old);
        if (rename(final, old)) {
            cm_seterr(err, errlen, "%s: cannot move the older copy aside: %s", final, strerror(errno));
            goto fail;
        }
    }
    if (rename(tmp, final)) {
        cm_seterr(err, errlen, "%s: cannot rename to %s: %s", tmp, final, strerror(errno));
        goto fail;
    }
    if (fsync_path(dir)) {
        cm_seterr(err, errlen, "%s: cannot sync the folder: %s", dir, strerror(errno));
        return -1;
    }
    // latest
    char latest[CKPT_PATH], text[64];  // replaced whole (latest.tmp, fsync, rename, folder fsync)
    pjoin(latest, sizeof latest, dir, "latest");
    snprintf(text, sizeof text, "step-%lld\n", (long long)st.step);
    if (write_file_sync(latest, text, NULL, err, errlen)) return -1;
    clean_leftovers(dir, NULL);
    if (keep_last > 0) {
        int64_t *steps;
        int n = ckpt_list_all(dir, &steps);
        const char *fault = getenv("CAMEO_FAULT_PRUNE_KILL");
        fault_prune_kill = fault && !strcmp(fault, "1");
        for (int i = 0; i < n - keep_last; i++) {
            if (steps[i] == st.step) continue;
            // renamed out of the checkpoints' names first, in one step, then removed: removed in
            // place, a kill part-way (Slurm's SIGKILL when the final save outlasts its grace time)
            // left a step-N without its manifest (on tmpfs the first file removed): never listed as
            // a checkpoint again, so never pruned — a checkpoint's size of disk lost for good
            char sname[64], dname[80], del[CKPT_PATH];
            snprintf(sname, sizeof sname, "step-%lld", (long long)steps[i]);
            snprintf(dname, sizeof dname, ".del-%s", sname);
            pjoin(path, sizeof path, dir, sname);
            pjoin(del, sizeof del, dir, dname);
            rm_rf(del);
            rm_rf(rename(path, del) ? path : del);
        }
        fault_prune_kill = false;
        free(steps);
    }
    if (out) snprintf(out, outlen, "%s", final);
    return 0;
fail:
    free(files);
    free(sums);
    rm_rf(tmp);
    return -1;
}

int ckpt_save(const char *dir, cm_params **regs, int n_regs, const optim *opt, const ckpt_state *st,
              const char *config_yaml, int keep_last, char *out, size_t outlen, char *err, size_t errlen) {
    if (ckpt_save_begin(dir, st->step, err, errlen)) return -1;
    const char *more[1] = {"optimizer.safetensors"};
    af_sum sum[1];
    if (opt) {
        char tmp[CKPT_PATH], path[CKPT_PATH];
        ckpt_tmp_path(dir, st->step, tmp, sizeof tmp);
        pjoin(path, sizeof path, tmp, more[0]);
        if (optim_save_sum(opt, path, &sum[0], err, errlen)) {
            ckpt_save_abort(dir, st->step);
            return -1;
        }
    }
    return ckpt_save_finish(dir, regs, n_regs, st, config_yaml, more, sum, opt ? 1 : 0, keep_last, out, outlen, err, errlen);
}

// ---------------------------------------------------------------------------------------------
// verify and resolve
// one file against its manifest entry (size, crc32 as 8 hex digits); 0, or -1 with the problem
static int verify_listed(const char *fp, double bytes, const char *crc, char *err, size_t errlen) {
    uint32_t c;
    uint64_t size;
    if (ckpt_crc32_file(fp, &c, &size)) {
        cm_seterr(err, errlen, "%s: cannot read: %s", fp, strerror(errno));
        return -1;
    }
    if ((double)size != bytes) {
        cm_seterr(err, errlen, "%s: %llu bytes, the manifest says %.0f (truncated or rewritten)", fp, (unsigned long long)size, bytes);
        return -1;
    }
    char cs[16];
    snprintf(cs, sizeof cs, "%08x", c);
    if (strcmp(cs, crc)) {
        cm_seterr(err, errlen, "%s: crc32 %s, the manifest says %s (damaged)", fp, cs, crc);
        return -1;
    }
    return 0;
}

int ckpt_verify(const char *ckpt_dir, char *err, size_t errlen) {
    char path[CKPT_PATH];
    pjoin(path, sizeof path, ckpt_dir, "manifest.json");
    char *text = read_text(path, 1 << 20);
    if (!text) {
        cm_seterr(err, errlen, "%s: missing (an incomplete checkpoint)", path);
        return -1;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    cJSON *files = cJSON_GetObjectItemCaseSensitive(o, "files");
    if (!o || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, CKPT_FORMAT) || !cJSON_IsArray(files)) {
        cm_seterr(err, errlen, "%s: not a %s manifest", path, CKPT_FORMAT);
        cJSON_Delete(o);
        return -1;
    }
    bool have_adapter = false, have_state = false;
    cJSON *f;
    int rc = 0;
    cJSON_ArrayForEach(f, files) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        cJSON *bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
        cJSON *crc = cJSON_GetObjectItemCaseSensitive(f, "crc32");
        if (!cJSON_IsString(name) || !cJSON_IsNumber(bytes) || !cJSON_IsString(crc) || strchr(name->valuestring, '/')) {
            cm_seterr(err, errlen, "%s: a file entry lacks name, bytes or crc32", path);
            rc = -1;
            break;
        }
        have_adapter |= !strcmp(name->valuestring, "adapter.safetensors");
        have_state |= !strcmp(name->valuestring, "trainer_state.json");
        char fp[CKPT_PATH];
        pjoin(fp, sizeof fp, ckpt_dir, name->valuestring);
        if ((rc = verify_listed(fp, bytes->valuedouble, crc->valuestring, err, errlen))) break;
    }
    cJSON_Delete(o);
    if (!rc && (!have_adapter || !have_state)) {
        cm_seterr(err, errlen, "%s: lists no %s", path, have_adapter ? "trainer_state.json" : "adapter.safetensors");
        rc = -1;
    }
    return rc;
}

int ckpt_verify_member(const char *path, char *err, size_t errlen) {
    char dir[CKPT_PATH], p[CKPT_PATH];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    pjoin(p, sizeof p, dir, "trainer_state.json");
    if (!is_file(p)) return 0;  // not in a checkpoint folder
    pjoin(p, sizeof p, dir, "manifest.json");
    char *text = read_text(p, 1 << 20);
    cJSON *o = text ? cJSON_Parse(text) : NULL, *f;
    free(text);
    if (!o) {  // a checkpoint folder whose manifest is gone or unreadable: its files cannot be verified (ckpt_resolve refuses it too)
        cm_seterr(err, errlen, "%s: %s (a checkpoint's manifest is written last: the save was cut short, or the folder was "
                  "copied incompletely; %s cannot be verified)", p, is_file(p) ? "unreadable" : "missing", base);
        return -1;
    }
    int rc = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(o, "files")) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name"), *bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes"),
              *crc = cJSON_GetObjectItemCaseSensitive(f, "crc32");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, base)) continue;
        if (!cJSON_IsNumber(bytes) || !cJSON_IsString(crc)) {
            cm_seterr(err, errlen, "%s: its entry for %s lacks bytes or crc32", p, base);
            rc = -1;
        } else rc = verify_listed(path, bytes->valuedouble, crc->valuestring, err, errlen);
        break;
    }
    cJSON_Delete(o);
    return rc;
}

int ckpt_resolve(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
    char p[CKPT_PATH];
    pjoin(p, sizeof p, path, "manifest.json");
    if (is_file(p)) {  // a checkpoint folder named explicitly
        if (ckpt_verify(path, err, errlen)) return -1;
        snprintf(out, outlen, "%s", path);
        return 0;
    }
    // a checkpoint folder whose manifest (written last) is gone: taken for a checkpoints folder,
    // it read "no usable checkpoint (PATH/latest: missing)", which names the wrong file
    // so is a folder named step-N with no `latest` in it: one copied in part (its adapter alone, say)
    // read "PATH/latest: missing" as well
    pjoin(p, sizeof p, path, "trainer_state.json");
    char base[256], lp0[CKPT_PATH];
    size_t bl = strlen(path);
    while (bl > 1 && path[bl - 1] == '/') bl--;  // "step-7/" is step-7
    size_t b0 = bl;
    while (b0 > 0 && path[b0 - 1] != '/') b0--;
    snprintf(base, sizeof base, "%.*s", (int)(bl - b0), path + b0);
    bool step_named = parse_step_name(base) >= 0 || (!strncmp(base, ".old-", 5) && parse_step_name(base + 5) >= 0);
    pjoin(lp0, sizeof lp0, path, "latest");
    step_named = step_named && is_dir(path) && !is_file(lp0);
    pjoin(lp0, sizeof lp0, path, "checkpoints");  // a run named step-N (run.name) is a run folder
    step_named = step_named && !is_dir(lp0);
    if (is_file(p) || step_named) {
        cm_seterr(err, errlen, "%.*s/manifest.json: missing (a checkpoint's manifest is written last: the save was cut short, "
                  "or the folder was copied incompletely; its files cannot be verified)", (int)bl, path);
        return -1;
    }
    // a run folder holding checkpoints/, a checkpoints folder, or its `latest` file itself
    char dir[CKPT_PATH];
    snprintf(dir, sizeof dir, "%s", path);
    size_t pl = strlen(dir);
    if (is_file(dir) && pl >= 6 && !strcmp(dir + pl - 6, "latest") && (pl == 6 || dir[pl - 7] == '/'))
        snprintf(dir, sizeof dir, "%.*s", pl > 7 ? (int)(pl - 7) : 1, pl > 7 ? path : ".");
    pjoin(p, sizeof p, dir, "checkpoints");
    char lp[CKPT_PATH];
    pjoin(lp, sizeof lp, dir, "latest");
    if (!is_file(lp) && is_dir(p)) snprintf(dir, sizeof dir, "%s", p);
    if (!is_dir(dir)) {
        if (is_file(path))  // an adapter file, say: "no such folder" would read as a wrong path
            cm_seterr(err, errlen, "%s is a file, not a checkpoint (give a checkpoint folder step-N, a run's checkpoints/ "
                      "folder or its latest file)", path);
        else cm_seterr(err, errlen, "%s: no such checkpoint folder", path);
        return -1;
    }
    // candidates: latest, then every complete step-N, newest first
    int64_t *steps;
    int n = ckpt_list_all(dir, &steps);
    char cand[CKPT_PATH], why[CKPT_PATH + 1024] = "", first_bad[2 * CKPT_PATH + 2048] = "";
    pjoin(lp, sizeof lp, dir, "latest");
    char *lt = read_text(lp, 256);
    int64_t latest_step = -1;
    if (lt) {
        char *nl = strchr(lt, '\n');
        if (nl) *nl = 0;
        latest_step = parse_step_name(lt);
        if (latest_step < 0) snprintf(first_bad, sizeof first_bad, "%s: holds '%.64s', not step-N", lp, lt);
        free(lt);
    } else {
        snprintf(first_bad, sizeof first_bad, "%s: missing", lp);
    }
    for (int i = -1; i < n; i++) {
        int64_t s = i < 0 ? latest_step : steps[n - 1 - i];
        if (s < 0 || (i >= 0 && s == latest_step)) continue;
        char sname[64];
        snprintf(sname, sizeof sname, "step-%lld", (long long)s);
        pjoin(cand, sizeof cand, dir, sname);
        if (i < 0 && !is_dir(cand)) {  // latest's folder mid-replacement (see clean_leftovers): its old copy
            char oname[80], old[CKPT_PATH];
            snprintf(oname, sizeof oname, ".old-%s", sname);
            pjoin(old, sizeof old, dir, oname);
            if (is_dir(old)) snprintf(cand, sizeof cand, "%s", old);
        }
        if (ckpt_verify(cand, why, sizeof why) == 0) {
            if (first_bad[0]) cm_warn("warning: %s; falling back to %s", first_bad, cand);
            snprintf(out, outlen, "%s", cand);
            free(steps);
            return 0;
        }
        if (!first_bad[0]) snprintf(first_bad, sizeof first_bad, "checkpoint %s is unusable (%s)", cand, why);
        else cm_warn("warning: checkpoint %s is unusable (%s)", cand, why);
    }
    free(steps);
    cm_seterr(err, errlen, "%s: no usable checkpoint (%s)", dir, first_bad[0] ? first_bad : "none written yet");
    return -1;
}

// ---------------------------------------------------------------------------------------------
// load
// every trainable parameter of the regs from the entry "<name><suffix>" in whichever of the files
// holds it (cast to the parameter's dtype; rounded through `via` first unless it is CM_NDTYPES);
// one missing is an error, or left as it is when optional
static int load_entries(st_file *const *f, int nf, const char *what, const char *suffix, bool optional, cm_dtype via,
                        cm_params **regs, int n_regs, char *err, size_t errlen) {
    for (int r = 0; r < n_regs; r++)
        for (int i = 0; i < regs[r]->n; i++) {
            cm_param *p = &regs[r]->items[i];
            if (!p->trainable) continue;
            char name[300];
            snprintf(name, sizeof name, "%s%s", p->name, suffix);
            const st_entry *e = NULL;
            for (int k = 0; k < nf && !e; k++) e = st_find(f[k], name);
            if (!e && optional) continue;
            bool ok = e && e->ndim == p->t->ndim;
            for (int d = 0; ok && d < e->ndim; d++) ok = e->shape[d] == p->t->shape[d];
            if (!ok) {
                char want[96];
                cm_seterr(err, errlen, "%s: %s: %s (expected %s)", what, name, e ? "wrong shape" : "missing",
                       tensor_shape_str(p->t, want, sizeof want));
                return -1;
            }
            cm_device dev = p->t->storage->dev;
            cm_tensor *src = st_to_tensor(e, dev, err, errlen);
            if (!src) return -1;
            int64_t st_src[CM_MAX_DIMS], s = 1, one = 1, zero = 0;
            for (int d = src->ndim - 1; d >= 0; d--) st_src[d] = s, s *= src->shape[d];
            const cm_backend *be = backend_get(dev.type);
            if (via != CM_NDTYPES && via != src->dtype) {  // both contiguous: one flat copy
                cm_tensor *r = tensor_empty(via, src->ndim, src->shape, dev);
                be->copy_strided(backend_ctx(dev), 1, &s, via, tensor_data(r), &one, src->dtype, tensor_data(src), &one);
                tensor_release(src);
                src = r;
            }
            if (p->t->ndim == 0)
                be->copy_strided(backend_ctx(dev), 1, &one, p->t->dtype, tensor_data(p->t), &zero, src->dtype,
                                 tensor_data(src), &zero);
            else
                be->copy_strided(backend_ctx(dev), p->t->ndim, p->t->shape, p->t->dtype, tensor_data(p->t), p->t->stride,
                                 src->dtype, tensor_data(src), st_src);
            tensor_release(src);
        }
    return 0;
}

static int load_adapter(const char *path, cm_params **regs, int n_regs, char *err, size_t errlen) {
    st_file *f = st_open(path, err, errlen);
    if (!f) return -1;
    int rc = load_entries(&f, 1, path, "", false, CM_NDTYPES, regs, n_regs, err, errlen);
    st_close(f);
    return rc;
}

// the optimizer files the manifest lists: optimizer.safetensors, or optimizer-K-of-N.safetensors
// for K = 0..N-1 (all of them, or it is an error)
static int optim_files(const char *ckpt_dir, char ***names_out, int *n_out, char *err, size_t errlen) {
    char path[CKPT_PATH];
    pjoin(path, sizeof path, ckpt_dir, "manifest.json");
    char *text = read_text(path, 1 << 20);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *files = cJSON_GetObjectItemCaseSensitive(o, "files"), *f;
    char **names = NULL;
    int n = 0, shards = -1, rc = -1;
    bool whole = false;
    cJSON_ArrayForEach(f, files) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (!cJSON_IsString(name) || strncmp(name->valuestring, "optimizer", 9)) continue;
        int k, of, used = 0;
        if (!strcmp(name->valuestring, "optimizer.safetensors")) whole = true;
        else if (sscanf(name->valuestring, "optimizer-%d-of-%d.safetensors%n", &k, &of, &used) == 2 &&
                 !name->valuestring[used] && k >= 0 && k < of && (shards < 0 || shards == of)) shards = of;
        else {
            cm_seterr(err, errlen, "%s: lists '%s', not an optimizer file cameo writes", path, name->valuestring);
            goto done;
        }
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        CM_CHECK(names, "checkpoint", "out of host memory");
        names[n++] = strdup(name->valuestring);
    }
    if (n == 0) {
        cm_seterr(err, errlen, "%s/optimizer.safetensors: missing (this checkpoint holds no optimizer state; it cannot be resumed)", ckpt_dir);
        goto done;
    }
    if ((whole && n != 1) || (!whole && n != shards)) {
        cm_seterr(err, errlen, "%s: lists %d optimizer file(s), expected optimizer.safetensors alone or all %d shards "
                  "optimizer-K-of-%d.safetensors", path, n, shards < 0 ? 1 : shards, shards < 0 ? 1 : shards);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    if (rc) {
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        names = NULL, n = 0;
    }
    *names_out = names, *n_out = n;
    return rc;
}

int ckpt_load(const char *ckpt_dir, cm_params **regs, int n_regs, optim *opt, ckpt_state *st, char *err, size_t errlen) {
    if (ckpt_verify(ckpt_dir, err, errlen)) return -1;
    return ckpt_load_verified(ckpt_dir, regs, n_regs, opt, st, err, errlen);
}

int ckpt_load_verified(const char *ckpt_dir, cm_params **regs, int n_regs, optim *opt, ckpt_state *st, char *err,
                       size_t errlen) {
    char path[CKPT_PATH];
    ckpt_state tmp;
    if (ckpt_read_state(ckpt_dir, &tmp, err, errlen)) return -1;
    if (opt) {
        char **names;
        int n;
        if (optim_files(ckpt_dir, &names, &n, err, errlen)) return -1;
        char **paths = calloc((size_t)n, sizeof *paths);
        CM_CHECK(paths, "checkpoint", "out of host memory");
        for (int i = 0; i < n; i++) {
            paths[i] = malloc(CKPT_PATH);
            CM_CHECK(paths[i], "checkpoint", "out of host memory");
            pjoin(paths[i], CKPT_PATH, ckpt_dir, names[i]);
            free(names[i]);
        }
        free(names);
        int rc = optim_load_files(opt, (const char *const *)paths, n, err, errlen);
        for (int i = 0; i < n; i++) free(paths[i]);
        free(paths);
        if (rc) return -1;
    } else {
        pjoin(path, sizeof path, ckpt_dir, "adapter.safetensors");
        if (load_adapter(path, regs, n_regs, err, errlen)) return -1;
    }
    if (st) *st = tmp;
    return 0;
}

void ckpt_close_files(st_file **f, int n) {
    for (int i = 0; i < n; i++) st_close(f[i]);
    free(f);
}

int ckpt_open_ema(const char *ckpt_dir, st_file ***files, int *n_files, char *err, size_t errlen) {
    *files = NULL, *n_files = 0;  // the folder ckpt_resolve verified: its ~45 GB not read a second time
    char **names;
    int n;
    if (optim_files(ckpt_dir, &names, &n, err, errlen)) return -1;
    st_file **f = calloc((size_t)n + 1, sizeof *f);
    CM_CHECK(f, "checkpoint", "out of host memory");
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[CKPT_PATH];
        pjoin(path, sizeof path, ckpt_dir, names[i]);
        if (!rc && !(f[i] = st_open(path, err, errlen))) rc = -1;
        if (!rc && !st_meta(f[i], "optim.ema_updates")) {
            cm_seterr(err, errlen, "%s: no weight average in this checkpoint (its run had optimizer.ema: 0): leave out "
                      "--ema for its weights, or train with an average (--set optimizer.ema=0.999; a resume starts it)", ckpt_dir);
            rc = -1;
        }
        free(names[i]);
    }
    free(names);
    if (rc) {
        ckpt_close_files(f, n);
        return -1;
    }
    *files = f, *n_files = n;
    return 0;
}

const st_entry *ckpt_ema_find(st_file *const *files, int n_files, const char *param) {
    char name[300];
    snprintf(name, sizeof name, "%s.ema", param);
    for (int i = 0; i < n_files; i++) {
        const st_entry *e = st_find(files[i], name);
        if (e) return e;
    }
    return NULL;
}

int ckpt_load_ema(const char *ckpt_dir, cm_params **regs, int n_regs, char *err, size_t errlen) {
    st_file **f;
    int n;
    if (ckpt_open_ema(ckpt_dir, &f, &n, err, errlen)) return -1;
    char path[CKPT_PATH];
    pjoin(path, sizeof path, ckpt_dir, "adapter.safetensors");
    int rc = load_adapter(path, regs, n_regs, err, errlen);
    // the averaged parameters, rounded to bf16 as the checkpoint's adapter and `cameo export --ema`
    // store weights; those held fixed (adapter.freeze) have none and keep the adapter's
    if (!rc) rc = load_entries(f, n, ckpt_dir, ".ema", true, CM_BF16, regs, n_regs, err, errlen);
    ckpt_close_files(f, n);
    return rc;
}
