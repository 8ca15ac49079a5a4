// text_cache.c — see text_cache.h. The store: opening, the encoders' identity, entries in and out.
#include "train/text_cache.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "autograd/ops.h"
#include "data/checksum.h"
#include "train/models.h"
#include "train/paths.h"
#include "train/text.h"

#define TC_MAGIC 0x31585443u  // "CTX1"
#define TC_VERSION 1
#define TC_HEADER 32
#define TC_FORMAT "cameo-text-cache"
#define TC_META "meta"
#define TC_SAMPLE (64 << 10)  // bytes a file contributes to the fingerprint at its start, middle and end

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static uint32_t get32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

// the 16-byte key of a caption: two FNV-1a 64 hashes from different offsets (the caption is
// stored too and compared on read, so a collision is an error, never a wrong row)
static void caption_key(const char *cap, uint8_t key[16]) {
    size_t n = strlen(cap);
    uint64_t a = hash64_update(HASH64_INIT, cap, n), b = hash64_update(HASH64_INIT ^ 0x9e3779b97f4a7c15ull, cap, n);
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(a >> (8 * i)), key[8 + i] = (uint8_t)(b >> (8 * i));
}

// a caption in a message: its first 60 bytes, quoted
static const char *shown(const char *cap, char *buf, size_t n) {
    size_t l = strlen(cap);
    snprintf(buf, n, "'%.60s%s'", cap, l > 60 ? "..." : "");
    return buf;
}

// ---- the encoders' identity ----

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// name, size and TC_SAMPLE bytes at the start, the middle and the end of the file path into *h
static int hash_file(const char *path, const char *name, uint64_t *h, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(TC_SAMPLE);
    uint64_t size = (uint64_t)st.st_size;
    *h = hash64_update(*h, name, strlen(name) + 1);
    *h = hash64_update(*h, &size, sizeof size);
    const uint64_t at[3] = {0, size / 2, size > TC_SAMPLE ? size - TC_SAMPLE : 0};
    for (int k = 0; k < 3 && buf && !fseeko(f, (off_t)at[k], SEEK_SET); k++) *h = hash64_update(*h, buf, fread(buf, 1, TC_SAMPLE, f));
    free(buf);
    fclose(f);
    return 0;
}

// every regular file in dir (not below it), in name order, through hash_file; dir itself when it is a file
static int hash_folder(const char *dir, uint64_t *h, char *err, size_t errlen) {
    struct stat st;
    if (!stat(dir, &st) && S_ISREG(st.st_mode)) return hash_file(dir, "", h, err, errlen);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot read the folder (%s)", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *names);
        CM_CHECK(names, "text_cache", "out of host memory");
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        rc = hash_file(p, names[i], h, err, errlen);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int text_cache_identity(const train_config *c, text_cache_id *id, char *err, size_t errlen) {
    memset(id, 0, sizeof *id);
    ic_text t;
    uint64_t h = HASH64_INIT;
    if (c->model.tiny) {
        const train_tiny_dims *d = &c->model.tiny_dims;
        uint64_t seed = c->run.seed ^ 0x7e;  // the tiny preset's text seed (train/models.c, ic_models_text)
        const int64_t v[4] = {d->text_dim, d->text_len, d->pooled_dim, (int64_t)seed};
        h = hash64_update(h, "tiny", 4);
        h = hash64_update(h, v, sizeof v);
        const char *tok[2] = {"configs/tiny/t5-tokenizer.json", "configs/tiny/clip-tokenizer.json"};  // ic_text_init_tiny's
        for (int i = 0; i < 2; i++) {
            char tk[PATH_MAX];
            if (cameo_asset(tk, sizeof tk, tok[i], err, errlen) || hash_file(tk, tok[i], &h, err, errlen)) return -1;
        }
        snprintf(id->encoders, sizeof id->encoders, "the tiny preset's T5 and CLIP (%d and %d wide, %d T5 tokens) of run.seed %llu",
                 d->text_dim, d->pooled_dim, d->text_len, (unsigned long long)c->run.seed);
    } else {
        char tk5[PATH_MAX], tkc[PATH_MAX];
        const char *dirs[4] = {c->model.t5, ic_text_tokenizer_dir(c->model.t5, "tokenizer_2", tk5, sizeof tk5), c->model.clip,
                               ic_text_tokenizer_dir(c->model.clip, "tokenizer", tkc, sizeof tkc)};
        for (int i = 0; i < 4; i++)
            if ((i % 2 == 0 || dirs[i] != dirs[i - 1]) && hash_folder(dirs[i], &h, err, errlen)) return -1;
        snprintf(id->encoders, sizeof id->encoders, "T5 %.560s and CLIP %.560s", c->model.t5, c->model.clip);
    }
    if (ic_models_text(&t, c->model.tiny ? &c->model.tiny_dims : NULL, c->run.seed, c->model.t5, c->model.clip, 0, IC_TEXT_NONE,
                       CM_DEV_CPU, CM_F32, err, errlen))
        return -1;
    id->t5_len = t.t5_len;
    id->joint_dim = t.joint_dim;
    id->pooled_dim = t.pooled_dim;
    const int64_t v[3] = {id->t5_len, id->joint_dim, id->pooled_dim};
    id->fingerprint = hash64_update(h, v, sizeof v);
    return 0;
}

// ---- the environment ----

static int lmdb_err(const text_cache *tc, const char *what, int rc, char *err, size_t errlen) {
    snprintf(err, errlen, "text cache %s: %s: %s%s", tc->path, what, mdb_strerror(rc),
             rc == EIO || rc == ENOSPC ? " (is the disk full?)" : "");
    return -1;
}

static cJSON *meta_json(const text_cache *tc) {
    cJSON *o = cJSON_CreateObject();
    char b[32];
    cJSON_AddStringToObject(o, "format", TC_FORMAT);
    cJSON_AddNumberToObject(o, "version", TC_VERSION);
    snprintf(b, sizeof b, "%016llx", (unsigned long long)tc->id.fingerprint);
    cJSON_AddStringToObject(o, "fingerprint", b);
    cJSON_AddStringToObject(o, "encoders", tc->id.encoders);
    cJSON_AddNumberToObject(o, "t5_len", tc->id.t5_len);
    cJSON_AddNumberToObject(o, "joint_dim", (double)tc->id.joint_dim);
    cJSON_AddNumberToObject(o, "pooled_dim", (double)tc->id.pooled_dim);
    cJSON *sets = cJSON_AddArrayToObject(o, "datasets");
    for (int i = 0; i < tc->n_sets; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "path", tc->sets[i].path);
        snprintf(b, sizeof b, "%016llx", (unsigned long long)tc->sets[i].manifest_hash);
        cJSON_AddStringToObject(s, "manifest_hash", b);
        cJSON_AddNumberToObject(s, "samples", (double)tc->sets[i].samples);
        cJSON_AddItemToArray(sets, s);
    }
    return o;
}

static int meta_write(text_cache *tc, MDB_txn *txn, char *err, size_t errlen) {
    cJSON *o = meta_json(tc);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    CM_CHECK(s, "text_cache", "out of host memory");
    MDB_val k = {strlen(TC_META), TC_META}, v = {strlen(s), s};
    int rc = mdb_put(txn, tc->dbi, &k, &v, 0);
    free(s);
    return rc ? lmdb_err(tc, "writing meta", rc, err, errlen) : 0;
}

static uint64_t hex64(const cJSON *o, const char *k, bool *ok) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    char *end = NULL;
    uint64_t v = cJSON_IsString(j) ? strtoull(j->valuestring, &end, 16) : 0;
    if (!end || *end) *ok = false;
    return v;
}

static double num(const cJSON *o, const char *k, bool *ok) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(j)) *ok = false;
    return cJSON_IsNumber(j) ? j->valuedouble : 0;
}

static int meta_read(text_cache *tc, const MDB_val *v, char *err, size_t errlen) {
    cJSON *o = cJSON_ParseWithLength(v->mv_data, v->mv_size);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "format"), *e = cJSON_GetObjectItemCaseSensitive(o, "encoders"),
                *sets = cJSON_GetObjectItemCaseSensitive(o, "datasets");
    bool ok = o && cJSON_IsString(f) && !strcmp(f->valuestring, TC_FORMAT) && cJSON_IsString(e) && cJSON_IsArray(sets);
    if (ok && num(o, "version", &ok) != TC_VERSION && ok) {
        snprintf(err, errlen, "text cache %s: format version %g; this cameo reads version %d", tc->path, num(o, "version", &ok),
                 TC_VERSION);
        cJSON_Delete(o);
        return -1;
    }
    if (ok) {
        tc->id.fingerprint = hex64(o, "fingerprint", &ok);
        snprintf(tc->id.encoders, sizeof tc->id.encoders, "%s", e->valuestring);
        tc->id.t5_len = (int)num(o, "t5_len", &ok);
        tc->id.joint_dim = (int64_t)num(o, "joint_dim", &ok);
        tc->id.pooled_dim = (int64_t)num(o, "pooled_dim", &ok);
        tc->n_sets = cJSON_GetArraySize(sets);
        tc->sets = calloc((size_t)tc->n_sets + 1, sizeof *tc->sets);
        for (int i = 0; ok && i < tc->n_sets; i++) {
            const cJSON *s = cJSON_GetArrayItem(sets, i), *p = cJSON_GetObjectItemCaseSensitive(s, "path");
            ok = cJSON_IsString(p);
            if (ok) snprintf(tc->sets[i].path, sizeof tc->sets[i].path, "%s", p->valuestring);
            tc->sets[i].manifest_hash = hex64(s, "manifest_hash", &ok);
            tc->sets[i].samples = (uint64_t)num(s, "samples", &ok);
        }
    }
    cJSON_Delete(o);
    if (!ok) snprintf(err, errlen, "text cache %s: its \"meta\" entry is not a %s description (damaged, or not a text cache)",
                      tc->path, TC_FORMAT);
    return ok ? 0 : -1;
}

// entries in the main database of the LMDB environment at path, and whether one is "meta" (read-only,
// no lock file made); -1 when it cannot be opened
static int64_t probe_env(const char *path, bool *has_meta) {
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_stat ms;
    int64_t n = -1;
    if (mdb_env_create(&env)) return -1;
    if (!mdb_env_set_mapsize(env, (size_t)1 << 40) && !mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0444) &&
        !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) && !mdb_dbi_open(txn, NULL, 0, &dbi) && !mdb_stat(txn, dbi, &ms)) {
        MDB_val k = {strlen(TC_META), TC_META}, v;
        *has_meta = !mdb_get(txn, dbi, &k, &v);
        n = (int64_t)ms.ms_entries;
    }
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

int text_cache_open(text_cache *tc, const char *path, const text_cache_id *want, bool write, char *err, size_t errlen) {
    memset(tc, 0, sizeof *tc);
    snprintf(tc->path, sizeof tc->path, "%s", path);
    tc->writable = write;
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    struct stat st;
    if (!write && stat(data, &st)) {
        snprintf(err, errlen, "model.text_cache: no text cache at %s (%s/data.mdb: %s); build it with `cameo cache-text CONFIG`",
                 path, path, strerror(errno));
        return -1;
    }
    bool has_meta = false;
    int64_t n;
    if (write && !stat(data, &st) && (n = probe_env(path, &has_meta)) > 0 && !has_meta) {  // never write into another store
        snprintf(err, errlen, "text cache %s: the folder holds an LMDB environment that is not a text cache (%lld entries, no \"meta\"): "
                 "give cache-text a new folder", path, (long long)n);
        return -1;
    }
    if (write && mkdir(path, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "text cache %s: cannot create the folder (%s)", path, strerror(errno));
        return -1;
    }
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc) return lmdb_err(tc, "creating the environment", rc, err, errlen);
    tc->env = env;
    tc->map_size = (size_t)1 << 40;  // address space only: the file grows with what is written
    unsigned flags = write ? MDB_NOSYNC : MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS;  // a build syncs once per batch itself
    if ((rc = mdb_env_set_mapsize(env, tc->map_size)) || (rc = mdb_env_open(env, path, flags, 0644))) {
        lmdb_err(tc, "opening the environment", rc, err, errlen);
        text_cache_close(tc);
        return -1;
    }
    MDB_txn *txn = NULL;
    if ((rc = mdb_txn_begin(env, NULL, write ? 0 : MDB_RDONLY, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &tc->dbi))) {
        if (txn) mdb_txn_abort(txn);
        lmdb_err(tc, "opening the database", rc, err, errlen);
        text_cache_close(tc);
        return -1;
    }
    MDB_val k = {strlen(TC_META), TC_META}, v;
    rc = mdb_get(txn, tc->dbi, &k, &v);
    if (rc == MDB_NOTFOUND && write && want) {  // a new cache: it takes the builder's encoders
        tc->id = *want;
        rc = meta_write(tc, txn, err, errlen);
        if (!rc && (rc = mdb_txn_commit(txn))) lmdb_err(tc, "commit", rc, err, errlen);
        txn = NULL;
    } else if (rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "text cache %s: no \"meta\" entry (not a text cache, or its build never committed)", path);
        rc = -1;
    } else if (rc) {
        lmdb_err(tc, "reading meta", rc, err, errlen);
    } else rc = meta_read(tc, &v, err, errlen);
    if (txn) mdb_txn_abort(txn);
    if (!rc && want && (want->fingerprint != tc->id.fingerprint || want->t5_len != tc->id.t5_len)) {
        snprintf(err, errlen, "text cache %s holds the outputs of %s (%d T5 tokens, fingerprint %016llx), but this config's text "
                 "encoders are %s (%d tokens, %016llx): build a cache for them (cameo cache-text CONFIG --out NEW_FOLDER) and set "
                 "model.text_cache to it", path, tc->id.encoders, tc->id.t5_len, (unsigned long long)tc->id.fingerprint,
                 want->encoders, want->t5_len, (unsigned long long)want->fingerprint);
        rc = -1;
    }
    if (rc) text_cache_close(tc);
    return rc ? -1 : 0;
}

void text_cache_close(text_cache *tc) {
    if (tc->env) mdb_env_close(tc->env);
    free(tc->sets);
    tc->env = NULL, tc->sets = NULL, tc->n_sets = 0;
}

bool text_cache_covers(const text_cache *tc, uint64_t manifest_hash) {
    for (int i = 0; i < tc->n_sets; i++)
        if (tc->sets[i].manifest_hash == manifest_hash) return true;
    return false;
}

uint64_t text_cache_count(text_cache *tc) {
    MDB_stat s;
    MDB_txn *txn = NULL;
    if (mdb_txn_begin(tc->env, NULL, MDB_RDONLY, &txn)) return 0;
    int rc = mdb_stat(txn, tc->dbi, &s);
    mdb_txn_abort(txn);
    return rc || !s.ms_entries ? 0 : (uint64_t)s.ms_entries - 1;
}

// ---- entries ----

// one entry's checks (sizes, checksum, caption); its dtype (CM_F32 / CM_BF16) or -1 with err
static int entry_check(const text_cache *tc, const char *cap, const MDB_val *v, char *err, size_t errlen) {
    const uint8_t *p = v->mv_data;
    char sc[80];
    size_t L = (size_t)tc->id.t5_len, D = (size_t)tc->id.joint_dim, P = (size_t)tc->id.pooled_dim, cl = strlen(cap);
    uint16_t dt = v->mv_size >= TC_HEADER ? get16(p + 6) : 0xffff;
    size_t es = dt == 0 ? 4 : 2;
    if (v->mv_size < TC_HEADER || get32(p) != TC_MAGIC || get16(p + 4) != TC_VERSION || dt > 1 || get32(p + 8) != L ||
        get32(p + 12) != D || get32(p + 16) != P || get32(p + 20) != cl || v->mv_size != TC_HEADER + cl + es * (L * D + P)) {
        snprintf(err, errlen, "text cache %s: the entry of the caption %s is not a CTX1 entry of %zu x %zu + %zu values (damaged)",
                 tc->path, shown(cap, sc, sizeof sc), L, D, P);
        return -1;
    }
    uint32_t want = get32(p + 24), got = crc32c(p + TC_HEADER, v->mv_size - TC_HEADER);
    if (want != got) {
        snprintf(err, errlen, "text cache %s: the entry of the caption %s fails its checksum (stored 0x%08x, computed 0x%08x): "
                 "rebuild it (cameo cache-text)", tc->path, shown(cap, sc, sizeof sc), want, got);
        return -1;
    }
    if (memcmp(p + TC_HEADER, cap, cl)) {
        snprintf(err, errlen, "text cache %s: the caption %s shares its key with another caption (a hash collision); this "
                 "caption cannot be cached", tc->path, shown(cap, sc, sizeof sc));
        return -1;
    }
    return dt == 0 ? CM_F32 : CM_BF16;
}

// a checked entry's n values from element `from` of its rows (T5's, then CLIP's) into dst as dt
static void entry_copy(const MDB_val *v, size_t cl, size_t from, size_t n, cm_dtype dt, void *dst) {
    const uint8_t *d = (const uint8_t *)v->mv_data + TC_HEADER + cl;
    if (get16((const uint8_t *)v->mv_data + 6) == 0) memcpy(dst, d + 4 * from, 4 * n);  // f32 (dt is f32 too)
    else if (dt == CM_BF16) memcpy(dst, d + 2 * from, 2 * n);
    else
        for (size_t i = 0; i < n; i++) ((float *)dst)[i] = bf16_to_f32(get16(d + 2 * (from + i)));
}

// caption's key present, and (check) its entry passing a lookup's checks
static bool probe(text_cache *tc, const char *caption, bool check) {
    uint8_t key[16];
    caption_key(caption, key);
    MDB_txn *txn = NULL;
    if (mdb_txn_begin(tc->env, NULL, MDB_RDONLY, &txn)) return false;
    MDB_val k = {16, key}, v;
    char e[1024];
    bool ok = !mdb_get(txn, tc->dbi, &k, &v) && (!check || entry_check(tc, caption, &v, e, sizeof e) >= 0);
    mdb_txn_abort(txn);
    return ok;
}
bool text_cache_has(text_cache *tc, const char *caption) { return probe(tc, caption, false); }
bool text_cache_sound(text_cache *tc, const char *caption) { return probe(tc, caption, true); }

int text_cache_lookup(text_cache *tc, const char *const *captions, int B, cm_tensor **txt, cm_tensor **pooled, char *err,
                      size_t errlen) {
    size_t L = (size_t)tc->id.t5_len, D = (size_t)tc->id.joint_dim, P = (size_t)tc->id.pooled_dim;
    MDB_val *vals = calloc((size_t)B, sizeof *vals);
    CM_CHECK(vals, "text_cache", "out of host memory");
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(tc->env, NULL, MDB_RDONLY, &txn), all_bf16 = 1;
    if (rc) lmdb_err(tc, "read transaction", rc, err, errlen);
    for (int i = 0; i < B && !rc; i++) {  // every entry found and checked before any is copied
        uint8_t key[16];
        caption_key(captions[i], key);
        MDB_val k = {16, key};
        rc = mdb_get(txn, tc->dbi, &k, &vals[i]);
        if (rc == MDB_NOTFOUND) {
            char sc[80];
            snprintf(err, errlen, "text cache %s holds no entry for the caption %s: the cache was built before this caption "
                     "was in the data; run `cameo cache-text CONFIG` again to add it", tc->path, shown(captions[i], sc, sizeof sc));
        } else if (rc) lmdb_err(tc, "read", rc, err, errlen);
        else {
            int dt = entry_check(tc, captions[i], &vals[i], err, errlen);
            rc = dt < 0 ? -1 : 0;
            all_bf16 &= dt == CM_BF16;
        }
    }
    if (!rc) {  // bf16 as stored (half the bytes to the device), f32 when any entry is f32
        cm_dtype dt = all_bf16 ? CM_BF16 : CM_F32;
        cm_tensor *h = tensor_empty(dt, 3, (int64_t[]){B, (int64_t)L, (int64_t)D}, CM_DEV_CPU);     // [B, t5_len, joint_dim]
        cm_tensor *p = tensor_empty(dt, 2, (int64_t[]){B, (int64_t)P}, CM_DEV_CPU);                 // [B, pooled_dim]
        uint8_t *hd = tensor_data(h), *pd = tensor_data(p);
        size_t es = dtype_size(dt);
        for (int i = 0; i < B; i++) {
            size_t cl = strlen(captions[i]);
            entry_copy(&vals[i], cl, 0, L * D, dt, hd + (size_t)i * L * D * es);
            entry_copy(&vals[i], cl, L * D, P, dt, pd + (size_t)i * P * es);
        }
        *txt = h, *pooled = p;
    }
    if (txn) mdb_txn_abort(txn);  // the values point into the map until here
    free(vals);
    return rc ? -1 : 0;
}

int text_cache_put(text_cache *tc, const char *const *captions, int B, const cm_tensor *txt, const cm_tensor *pooled, char *err,
                   size_t errlen) {
    size_t L = (size_t)tc->id.t5_len, D = (size_t)tc->id.joint_dim, P = (size_t)tc->id.pooled_dim;
    CM_CHECK(tc->writable && txt->ndim == 3 && txt->shape[0] == B && (size_t)txt->shape[1] == L && (size_t)txt->shape[2] == D &&
             pooled->ndim == 2 && pooled->shape[0] == B && (size_t)pooled->shape[1] == P && txt->dtype == pooled->dtype &&
             (txt->dtype == CM_F32 || txt->dtype == CM_BF16), "text_cache_put", "txt / pooled do not match the cache's %zu x %zu + %zu",
             L, D, P);
    cm_dtype dt = txt->dtype;
    size_t es = dtype_size(dt), row = L * D * es;
    uint8_t *ht = malloc((size_t)B * row), *hp = malloc((size_t)B * P * es);
    CM_CHECK(ht && hp, "text_cache_put", "out of host memory");
    tensor_copy_to_host(txt, dt, ht);
    tensor_copy_to_host(pooled, dt, hp);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(tc->env, NULL, 0, &txn);
    if (rc) lmdb_err(tc, "write transaction", rc, err, errlen);
    for (int i = 0; i < B && !rc; i++) {
        size_t cl = strlen(captions[i]), n = TC_HEADER + cl + row + P * es;
        uint8_t key[16];
        caption_key(captions[i], key);
        MDB_val k = {16, key}, v = {n, NULL};
        if ((rc = mdb_put(txn, tc->dbi, &k, &v, MDB_RESERVE))) {
            lmdb_err(tc, "write", rc, err, errlen);
            break;
        }
        uint8_t *e = v.mv_data;
        memcpy(e + TC_HEADER, captions[i], cl);
        memcpy(e + TC_HEADER + cl, ht + (size_t)i * row, row);
        memcpy(e + TC_HEADER + cl + row, hp + (size_t)i * P * es, P * es);
        put32(e, TC_MAGIC);
        put16(e + 4, TC_VERSION);
        put16(e + 6, dt == CM_F32 ? 0 : 1);
        put32(e + 8, (uint32_t)L), put32(e + 12, (uint32_t)D), put32(e + 16, (uint32_t)P), put32(e + 20, (uint32_t)cl);
        put32(e + 24, crc32c(e + TC_HEADER, n - TC_HEADER));
        put32(e + 28, 0);
    }
    free(ht), free(hp);
    if (rc) {
        if (txn) mdb_txn_abort(txn);
        return -1;
    }
    if ((rc = mdb_txn_commit(txn)) || (rc = mdb_env_sync(tc->env, 1))) return lmdb_err(tc, "commit", rc, err, errlen);
    return 0;
}

int text_cache_add_set(text_cache *tc, const char *path, uint64_t manifest_hash, uint64_t samples, char *err, size_t errlen) {
    if (text_cache_covers(tc, manifest_hash)) return 0;
    tc->sets = realloc(tc->sets, (size_t)(tc->n_sets + 1) * sizeof *tc->sets);
    CM_CHECK(tc->sets, "text_cache", "out of host memory");
    text_cache_set *s = &tc->sets[tc->n_sets++];
    snprintf(s->path, sizeof s->path, "%s", path);
    s->manifest_hash = manifest_hash, s->samples = samples;
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(tc->env, NULL, 0, &txn);
    if (rc) return lmdb_err(tc, "write transaction", rc, err, errlen);
    if (meta_write(tc, txn, err, errlen)) {
        mdb_txn_abort(txn);
        return -1;
    }
    if ((rc = mdb_txn_commit(txn)) || (rc = mdb_env_sync(tc->env, 1))) return lmdb_err(tc, "commit", rc, err, errlen);
    return 0;
}

int text_cache_verify(text_cache *tc, text_cache_check *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(tc->env, NULL, MDB_RDONLY, &txn);
    if (rc || (rc = mdb_cursor_open(txn, tc->dbi, &cur))) {
        if (txn) mdb_txn_abort(txn);
        return lmdb_err(tc, "reading the entries", rc, err, errlen);
    }
    MDB_val k, v;
    char *cap = NULL, e[1024];
    while (!(rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
        if (k.mv_size != 16) continue;  // "meta"
        r->entries++;
        // the caption the entry says it holds, then every check a lookup of it makes, and its key
        const uint8_t *p = v.mv_data;
        size_t cl = v.mv_size >= TC_HEADER ? get32(p + 20) : 0;
        if (cl > v.mv_size - (v.mv_size >= TC_HEADER ? TC_HEADER : v.mv_size)) cl = 0;
        cap = realloc(cap, cl + 1);
        CM_CHECK(cap, "text_cache", "out of host memory");
        if (cl) memcpy(cap, p + TC_HEADER, cl);
        cap[cl] = 0;
        uint8_t key[16];
        caption_key(cap, key);
        int dt = entry_check(tc, cap, &v, e, sizeof e);
        if (dt >= 0 && memcmp(key, k.mv_data, 16)) {
            char sc[80];
            snprintf(e, sizeof e, "text cache %.800s: the entry of the caption %s is stored under another caption's key (damaged)",
                     tc->path, shown(cap, sc, sizeof sc));
            dt = -1;
        }
        if (dt < 0 && !r->damaged++) snprintf(r->first, sizeof r->first, "%s", e);
        if (dt == CM_BF16) r->bf16++;
    }
    free(cap);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : lmdb_err(tc, "reading the entries", rc, err, errlen);
}

bool text_cache_applies(const char *path) {
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    struct stat st;
    if (stat(data, &st) || !S_ISREG(st.st_mode)) return false;
    text_cache tc;
    char err[256];
    if (text_cache_open(&tc, path, NULL, false, err, sizeof err)) return false;
    text_cache_close(&tc);
    return true;
}
