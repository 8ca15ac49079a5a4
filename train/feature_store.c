// feature_store.c — see feature_store.h. The environment, its "meta", entries in and out.
#include "train/feature_store.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include "autograd/ops.h"
#include "data/checksum.h"
#include "data/le.h"
#include "data/manifest.h"

#define FS_VERSION 1
#define FS_HEADER 32
#define FS_META "meta"
#define FS_SAMPLE (64 << 10)  // bytes a file contributes to the fingerprint at its start, middle and end


// ---- the encoders' fingerprint ----

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int fstore_hash_file(const char *path, const char *name, uint64_t *h, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(FS_SAMPLE);
    uint64_t size = (uint64_t)st.st_size;
    *h = hash64_update(*h, name, strlen(name) + 1);
    *h = hash64_update(*h, &size, sizeof size);
    const uint64_t at[3] = {0, size / 2, size > FS_SAMPLE ? size - FS_SAMPLE : 0};
    for (int k = 0; k < 3 && buf && !fseeko(f, (off_t)at[k], SEEK_SET); k++) *h = hash64_update(*h, buf, fread(buf, 1, FS_SAMPLE, f));
    free(buf);
    fclose(f);
    return 0;
}

int fstore_hash_folder(const char *dir, uint64_t *h, char *err, size_t errlen) {
    struct stat st;
    if (!stat(dir, &st) && S_ISREG(st.st_mode)) return fstore_hash_file(dir, "", h, err, errlen);
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
        CM_CHECK(names, "feature_store", "out of host memory");
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        rc = fstore_hash_file(p, names[i], h, err, errlen);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

// ---- the environment ----

// a writer's map: 4 TiB of address space, or half the process's address-space limit (ulimit -v)
static size_t writer_map(void) {
    struct rlimit rl;
    size_t map = (size_t)1 << 42;
    if (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur != RLIM_INFINITY && (size_t)rl.rlim_cur / 2 < map) map = (size_t)rl.rlim_cur / 2;
    return map;
}

static int lmdb_err(const fstore *s, const char *what, int rc, char *err, size_t errlen) {
    snprintf(err, errlen, "%s %s: %s: %s%s", s->kind->what, s->path, what, mdb_strerror(rc),
             rc == EIO || rc == ENOSPC ? " (is the disk full?)"
             : rc == MDB_MAP_FULL ? " (the map is half the address-space limit, `ulimit -v`: raise it to write more)" : "");
    return -1;
}

static cJSON *meta_json(const fstore *s) {
    cJSON *o = cJSON_CreateObject();
    char b[32];
    cJSON_AddStringToObject(o, "format", s->kind->format);
    cJSON_AddNumberToObject(o, "version", FS_VERSION);
    snprintf(b, sizeof b, "%016llx", (unsigned long long)s->id.fingerprint);
    cJSON_AddStringToObject(o, "fingerprint", b);
    cJSON_AddStringToObject(o, "encoders", s->id.encoders);
    for (int i = 0; i < 3; i++) cJSON_AddNumberToObject(o, s->kind->dims[i], (double)s->id.dim[i]);
    cJSON *sets = cJSON_AddArrayToObject(o, "datasets");
    for (int i = 0; i < s->n_sets; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "path", s->sets[i].path);
        snprintf(b, sizeof b, "%016llx", (unsigned long long)s->sets[i].manifest_hash);
        cJSON_AddStringToObject(d, "manifest_hash", b);
        cJSON_AddNumberToObject(d, "samples", (double)s->sets[i].samples);
        cJSON_AddItemToArray(sets, d);
    }
    return o;
}

static int meta_write(fstore *s, MDB_txn *txn, char *err, size_t errlen) {
    cJSON *o = meta_json(s);
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    CM_CHECK(j, "feature_store", "out of host memory");
    MDB_val k = {strlen(FS_META), FS_META}, v = {strlen(j), j};
    int rc = mdb_put(txn, s->dbi, &k, &v, 0);
    free(j);
    return rc ? lmdb_err(s, "writing meta", rc, err, errlen) : 0;
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

static int meta_read(fstore *s, const MDB_val *v, char *err, size_t errlen) {
    cJSON *o = cJSON_ParseWithLength(v->mv_data, v->mv_size);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "format"), *e = cJSON_GetObjectItemCaseSensitive(o, "encoders"),
                *sets = cJSON_GetObjectItemCaseSensitive(o, "datasets");
    bool ok = o && cJSON_IsString(f) && !strcmp(f->valuestring, s->kind->format) && cJSON_IsString(e) && cJSON_IsArray(sets);
    if (ok && num(o, "version", &ok) != FS_VERSION && ok) {
        snprintf(err, errlen, "%s %s: format version %g; this cameo reads version %d", s->kind->what, s->path, num(o, "version", &ok),
                 FS_VERSION);
        cJSON_Delete(o);
        return -1;
    }
    if (ok) {
        s->id.fingerprint = hex64(o, "fingerprint", &ok);
        snprintf(s->id.encoders, sizeof s->id.encoders, "%s", e->valuestring);
        for (int i = 0; i < 3; i++) s->id.dim[i] = (int64_t)num(o, s->kind->dims[i], &ok);
        s->n_sets = cJSON_GetArraySize(sets);
        s->sets = calloc((size_t)s->n_sets + 1, sizeof *s->sets);
        for (int i = 0; ok && i < s->n_sets; i++) {
            const cJSON *d = cJSON_GetArrayItem(sets, i), *p = cJSON_GetObjectItemCaseSensitive(d, "path");
            ok = cJSON_IsString(p);
            if (ok) snprintf(s->sets[i].path, sizeof s->sets[i].path, "%s", p->valuestring);
            s->sets[i].manifest_hash = hex64(d, "manifest_hash", &ok);
            s->sets[i].samples = (uint64_t)num(d, "samples", &ok);
        }
    }
    cJSON_Delete(o);
    if (!ok) snprintf(err, errlen, "%s %s: its \"meta\" entry is not a %s description (damaged, or not a %s)", s->kind->what,
                      s->path, s->kind->format, s->kind->what);
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
    char data[PATH_MAX];
    struct stat st;
    snprintf(data, sizeof data, "%s/data.mdb", path);
    if (!stat(data, &st) && !mdb_env_set_mapsize(env, (size_t)st.st_size) && !mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0444) &&
        !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) && !mdb_dbi_open(txn, NULL, 0, &dbi) && !mdb_stat(txn, dbi, &ms)) {
        MDB_val k = {strlen(FS_META), FS_META}, v;
        *has_meta = !mdb_get(txn, dbi, &k, &v);
        n = (int64_t)ms.ms_entries;
    }
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

static bool same_id(const fstore_id *a, const fstore_id *b) {
    return a->fingerprint == b->fingerprint && a->dim[0] == b->dim[0] && a->dim[1] == b->dim[1] && a->dim[2] == b->dim[2];
}

static const char *sizes(const fstore_kind *k, const fstore_id *id, char *buf, size_t n) {
    snprintf(buf, n, "%s %lld, %s %lld, %s %lld", k->dims[0], (long long)id->dim[0], k->dims[1], (long long)id->dim[1], k->dims[2],
             (long long)id->dim[2]);
    return buf;
}

int fstore_open(fstore *s, const fstore_kind *k, const char *path, const fstore_id *want, bool write, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    static const char *meta_keys[] = {"format", "version", "fingerprint", "encoders", "datasets"};
    for (int i = 0; i < 3; i++)  // a kind's size named as one of meta's own keys would be written over it
        for (size_t j = 0; j < sizeof meta_keys / sizeof *meta_keys; j++)
            CM_CHECK(strcmp(k->dims[i], meta_keys[j]), "fstore_open", "%s: size %d is named '%s', a key of meta's own", k->format, i,
                     meta_keys[j]);
    s->kind = k;
    snprintf(s->path, sizeof s->path, "%s", path);
    s->writable = write;
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    struct stat st;
    if (!write && stat(data, &st)) {
        snprintf(err, errlen, "%s: no %s at %s (%s/data.mdb: %s); build it with `%s CONFIG`", k->setting, k->what, path, path,
                 strerror(errno), k->build);
        return -1;
    }
    bool has_meta = false;
    int64_t n;
    if (write && !stat(data, &st) && (n = probe_env(path, &has_meta)) > 0 && !has_meta) {  // never write into another store
        snprintf(err, errlen, "%s %s: the folder holds an LMDB environment that is not a %s (%lld entries, no \"meta\"): "
                 "give %s a new folder", k->what, path, k->what, (long long)n, k->build);
        return -1;
    }
    if (write && mkdir(path, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "%s %s: cannot create the folder (%s)", k->what, path, strerror(errno));
        return -1;
    }
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc) return lmdb_err(s, "creating the environment", rc, err, errlen);
    s->env = env;
    unsigned flags = write ? MDB_NOSYNC : MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS;  // a writer syncs once per commit itself
    // a writer's map is address space only (the file grows with what is written: 4 TiB, a reference
    // cache of 130,000 entries); a reader's is the file's size (LMDB would take the writer's 4 TiB
    // recorded in it), so a job under an address-space limit (ulimit -v) maps no more than the cache
    size_t map = write ? writer_map() : !stat(data, &st) ? (size_t)st.st_size : 0;
    if ((rc = mdb_env_set_mapsize(env, map)) || (rc = mdb_env_open(env, path, flags, 0644))) {
        lmdb_err(s, "opening the environment", rc, err, errlen);
        fstore_close(s);
        return -1;
    }
    MDB_txn *txn = NULL;
    if ((rc = mdb_txn_begin(env, NULL, write ? 0 : MDB_RDONLY, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi))) {
        if (txn) mdb_txn_abort(txn);
        lmdb_err(s, "opening the database", rc, err, errlen);
        fstore_close(s);
        return -1;
    }
    MDB_val key = {strlen(FS_META), FS_META}, v;
    rc = mdb_get(txn, s->dbi, &key, &v);
    if (rc == MDB_NOTFOUND && write && want) {  // a new store: it takes the builder's encoders
        s->id = *want;
        rc = meta_write(s, txn, err, errlen);
        if (!rc && (rc = mdb_txn_commit(txn))) lmdb_err(s, "commit", rc, err, errlen);
        txn = NULL;
    } else if (rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "%s %s: no \"meta\" entry (not a %s, or its build never committed)", k->what, path, k->what);
        rc = -1;
    } else if (rc) {
        lmdb_err(s, "reading meta", rc, err, errlen);
    } else rc = meta_read(s, &v, err, errlen);
    if (txn) mdb_txn_abort(txn);
    if (!rc && want && !same_id(want, &s->id)) {
        char a[160], b[160];
        snprintf(err, errlen, "%s %s holds the outputs of %s (%s; fingerprint %016llx), but this config's encoders are %s (%s; "
                 "%016llx): build a %s for them (%s CONFIG --out NEW_FOLDER) and set %s to it", k->what, path, s->id.encoders,
                 sizes(k, &s->id, a, sizeof a), (unsigned long long)s->id.fingerprint, want->encoders, sizes(k, want, b, sizeof b),
                 (unsigned long long)want->fingerprint, k->what, k->build, k->setting);
        rc = -1;
    }
    if (rc) fstore_close(s);
    return rc ? -1 : 0;
}

void fstore_close(fstore *s) {
    if (s->env) mdb_env_close(s->env);
    free(s->sets);
    s->env = NULL, s->sets = NULL, s->n_sets = 0;
}

bool fstore_covers(const fstore *s, uint64_t manifest_hash) {
    for (int i = 0; i < s->n_sets; i++)
        if (s->sets[i].manifest_hash == manifest_hash) return true;
    return false;
}

uint64_t fstore_count(fstore *s) {
    MDB_stat st;
    MDB_txn *txn = NULL;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) return 0;
    int rc = mdb_stat(txn, s->dbi, &st);
    mdb_txn_abort(txn);
    return rc || !st.ms_entries ? 0 : (uint64_t)st.ms_entries - 1;
}

int fstore_begin(fstore *s, bool write, void **txn, char *err, size_t errlen) {
    *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, (MDB_txn **)txn);
    return rc ? lmdb_err(s, write ? "write transaction" : "read transaction", rc, err, errlen) : 0;
}

void fstore_abort(void *txn) {
    if (txn) mdb_txn_abort(txn);
}

int fstore_commit(fstore *s, void *txn, char *err, size_t errlen) {
    int rc;
    if ((rc = mdb_txn_commit(txn)) || (rc = mdb_env_sync(s->env, 1))) return lmdb_err(s, "commit", rc, err, errlen);
    return 0;
}

int fstore_add_set(fstore *s, const char *path, uint64_t manifest_hash, uint64_t samples, char *err, size_t errlen) {
    if (fstore_covers(s, manifest_hash)) return 0;
    s->sets = realloc(s->sets, (size_t)(s->n_sets + 1) * sizeof *s->sets);
    CM_CHECK(s->sets, "feature_store", "out of host memory");
    fstore_set *d = &s->sets[s->n_sets++];
    snprintf(d->path, sizeof d->path, "%s", path);
    d->manifest_hash = manifest_hash, d->samples = samples;
    void *txn;
    if (fstore_begin(s, true, &txn, err, errlen)) return -1;
    if (meta_write(s, txn, err, errlen)) {
        mdb_txn_abort(txn);
        return -1;
    }
    return fstore_commit(s, txn, err, errlen);
}

int fstore_covers_run(const fstore *s, const train_config *c, const char *what, fstore_cover_fn cover, char *err, size_t errlen) {
    const char *paths[CFG_MAX_STAGES + 1];
    for (int i = 0, n = cfg_run_datasets(c, paths); i < n; i++) {
        manifest m;
        if (manifest_load(paths[i], &m, err, errlen)) return -1;
        char also[160] = "";
        uint64_t key = cover ? cover(c, paths[i], m.hash, also, sizeof also) : m.hash;
        manifest_free(&m);
        if (!fstore_covers(s, key)) {
            snprintf(err, errlen, "%s: %s does not hold the %s of %s%s, which this run reads (the cache covers %d other dataset(s)%s): "
                     "run `%s CONFIG` with this config to add them", s->kind->setting, s->path, what, paths[i], also, s->n_sets,
                     cover ? " or sets of them" : "", s->kind->build);
            return -1;
        }
    }
    return 0;
}

// ---- entries ----

// the sizes of the entry of name: the store's, or the kind's for that name
static void entry_dims(const fstore *s, const uint8_t *name, size_t nl, int64_t d[3]) {
    if (s->kind->entry_dims) s->kind->entry_dims(s->id.dim, name, nl, d);
    else memcpy(d, s->id.dim, 3 * sizeof *d);
}

// one entry's checks (sizes, checksum, name); its dtype (CM_F32 / CM_BF16) and *values (may be
// NULL) its value count, or -1 with err
static int entry_check(const fstore *s, const uint8_t *name, size_t nl, const MDB_val *v, size_t *values, char *err, size_t errlen) {
    const fstore_kind *k = s->kind;
    const uint8_t *p = v->mv_data;
    char sn[120];
    int64_t d[3];
    entry_dims(s, name, nl, d);
    size_t vals = k->values(d);
    uint16_t dt = v->mv_size >= FS_HEADER ? le_get16(p + 6) : 0xffff;
    size_t es = dt == 0 ? 4 : 2;
    if (v->mv_size < FS_HEADER || le_get32(p) != k->magic || le_get16(p + 4) != FS_VERSION || dt > 1 || le_get32(p + 8) != d[0] ||
        le_get32(p + 12) != d[1] || le_get32(p + 16) != d[2] || le_get32(p + 20) != nl || v->mv_size != FS_HEADER + nl + es * vals) {
        snprintf(err, errlen, "%s %s: the entry of %s is not an entry of %zu values (%.4s; damaged)", k->what, s->path,
                 k->shown(name, nl, sn, sizeof sn), vals, (const char *)&k->magic);
        return -1;
    }
    uint32_t want = le_get32(p + 24), got = crc32c(p + FS_HEADER, v->mv_size - FS_HEADER);
    if (want != got) {
        snprintf(err, errlen, "%s %s: the entry of %s fails its checksum (stored 0x%08x, computed 0x%08x): rebuild it (%s --repair)",
                 k->what, s->path, k->shown(name, nl, sn, sizeof sn), want, got, k->build);
        return -1;
    }
    if (memcmp(p + FS_HEADER, name, nl)) {
        snprintf(err, errlen, "%s %s: %s shares its key with another entry (a hash collision) and cannot be cached", k->what, s->path,
                 k->shown(name, nl, sn, sizeof sn));
        return -1;
    }
    if (values) *values = vals;
    return dt == 0 ? CM_F32 : CM_BF16;
}

int fstore_get(fstore *s, void *txn, const uint8_t *name, size_t n, fstore_entry *e, char *err, size_t errlen) {
    uint8_t key[16];
    s->kind->key_of(name, n, key);
    MDB_val k = {16, key}, v;
    int rc = mdb_get(txn, s->dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return FSTORE_MISSING;
    if (rc) return lmdb_err(s, "read", rc, err, errlen);
    size_t vals;
    int dt = entry_check(s, name, n, &v, &vals, err, errlen);
    if (dt < 0) return -1;
    *e = (fstore_entry){.data = (const uint8_t *)v.mv_data + FS_HEADER + n, .values = vals, .dt = (cm_dtype)dt};
    return 0;
}

void fstore_entry_copy(const fstore_entry *e, size_t from, size_t n, cm_dtype dt, void *dst) {
    if (e->dt == CM_F32) memcpy(dst, e->data + 4 * from, 4 * n);  // f32 (dt is f32 too)
    else if (dt == CM_BF16) memcpy(dst, e->data + 2 * from, 2 * n);
    else
        for (size_t i = 0; i < n; i++) ((float *)dst)[i] = bf16_to_f32(le_get16(e->data + 2 * (from + i)));
}

int fstore_put(fstore *s, void *txn, const uint8_t *name, size_t nl, cm_dtype dt, const void *const *parts, const size_t *bytes,
               int np, char *err, size_t errlen) {
    size_t es = dtype_size(dt), total = 0;
    for (int i = 0; i < np; i++) total += bytes[i];
    int64_t ed[3];
    entry_dims(s, name, nl, ed);
    CM_CHECK(s->writable && (dt == CM_F32 || dt == CM_BF16) && total == es * s->kind->values(ed), "fstore_put",
             "%zu bytes of %s for a %s entry of %zu values", total, dt == CM_F32 ? "f32" : "bf16", s->kind->what, s->kind->values(ed));
    uint8_t key[16];
    s->kind->key_of(name, nl, key);
    size_t n = FS_HEADER + nl + total;
    MDB_val k = {16, key}, v = {n, NULL};
    int rc = mdb_put(txn, s->dbi, &k, &v, MDB_RESERVE);
    if (rc) return lmdb_err(s, "write", rc, err, errlen);
    uint8_t *e = v.mv_data, *d = e + FS_HEADER + nl;
    memcpy(e + FS_HEADER, name, nl);
    for (int i = 0; i < np; d += bytes[i], i++) memcpy(d, parts[i], bytes[i]);
    le_put32(e, s->kind->magic);
    le_put16(e + 4, FS_VERSION);
    le_put16(e + 6, dt == CM_F32 ? 0 : 1);
    for (int i = 0; i < 3; i++) le_put32(e + 8 + 4 * i, (uint32_t)ed[i]);
    le_put32(e + 20, (uint32_t)nl);
    le_put32(e + 24, crc32c(e + FS_HEADER, n - FS_HEADER));
    le_put32(e + 28, 0);
    return 0;
}

bool fstore_has(fstore *s, const uint8_t *name, size_t n, bool check) {
    uint8_t key[16];
    s->kind->key_of(name, n, key);
    MDB_txn *txn = NULL;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) return false;
    MDB_val k = {16, key}, v;
    char e[1024];
    bool ok = !mdb_get(txn, s->dbi, &k, &v) && (!check || entry_check(s, name, n, &v, NULL, e, sizeof e) >= 0);
    mdb_txn_abort(txn);
    return ok;
}

int fstore_verify(fstore *s, fstore_check *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc || (rc = mdb_cursor_open(txn, s->dbi, &cur))) {
        if (txn) mdb_txn_abort(txn);
        return lmdb_err(s, "reading the entries", rc, err, errlen);
    }
    MDB_val k, v;
    char e[1024];
    while (!(rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
        if (k.mv_size != 16) continue;  // "meta"
        r->entries++;
        // the name the entry says it holds, then every check a read of it makes, and its key
        const uint8_t *p = v.mv_data, *name = p + FS_HEADER;
        size_t nl = v.mv_size >= FS_HEADER ? le_get32(p + 20) : 0;
        if (nl > v.mv_size - (v.mv_size >= FS_HEADER ? FS_HEADER : v.mv_size)) nl = 0, name = (const uint8_t *)"";
        uint8_t key[16];
        s->kind->key_of(name, nl, key);
        int dt = entry_check(s, name, nl, &v, NULL, e, sizeof e);
        if (dt >= 0 && memcmp(key, k.mv_data, 16)) {
            char sn[120];
            snprintf(e, sizeof e, "%s %.800s: the entry of %s is stored under another entry's key (damaged)", s->kind->what, s->path,
                     s->kind->shown(name, nl, sn, sizeof sn));
            dt = -1;
        }
        if (dt < 0 && !r->damaged++) snprintf(r->first, sizeof r->first, "%s", e);
        if (dt == CM_BF16) r->bf16++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : lmdb_err(s, "reading the entries", rc, err, errlen);
}

bool fstore_applies(const fstore_kind *k, const char *path) {
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    struct stat st;
    if (stat(data, &st) || !S_ISREG(st.st_mode)) return false;
    fstore s;
    char err[256];
    if (fstore_open(&s, k, path, NULL, false, err, sizeof err)) return false;
    fstore_close(&s);
    return true;
}

int fstore_inspect_cli(const fstore_kind *k, const char *path, const char *unit, void (*rows)(const fstore *s, const fstore_check *r)) {
    fstore s;
    char err[2048];
    if (fstore_open(&s, k, path, NULL, false, err, sizeof err)) {
        fprintf(stderr, "cameo inspect: %s\n", err);
        return 1;
    }
    fstore_check r;
    int rc = fstore_verify(&s, &r, err, sizeof err);
    char data[CFG_PATH + 16];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    struct stat st;
    double mib = stat(data, &st) ? 0 : (double)st.st_size / 1048576.0;
    printf("%s %s: %llu %s, %.1f MiB\n", k->what, path, (unsigned long long)r.entries, unit, mib);
    printf("  encoders: %s (fingerprint %016llx)\n", s.id.encoders, (unsigned long long)s.id.fingerprint);
    rows(&s, &r);
    printf("  datasets: %d covered\n", s.n_sets);
    for (int i = 0; i < s.n_sets; i++)
        printf("    %s (%llu samples, %s %016llx)\n", s.sets[i].path, (unsigned long long)s.sets[i].samples,
               k->set_key ? k->set_key : "manifest",
               (unsigned long long)s.sets[i].manifest_hash);
    if (rc) fprintf(stderr, "cameo inspect: %s\n", err);
    else if (r.damaged)
        printf("  verified: %llu of %llu entries DAMAGED; the first: %s\n  (`%s CONFIG --out %s --repair` encodes them anew)\n",
               (unsigned long long)r.damaged, (unsigned long long)r.entries, r.first, k->build, path);
    else printf("  verified: every entry's key, sizes, name and CRC-32C\n");
    fstore_close(&s);
    return rc || r.damaged ? 1 : 0;
}
