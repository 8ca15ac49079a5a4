// shard_write.c — build one shard under a temporary name, publish it by rename.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "data/checksum.h"
#include "data/fsutil.h"
#include "data/shard.h"

#define SHARD_FORMAT_VERSION 1
#define SHARD_COMMIT_EVERY 512

struct shard_writer {
    char tmp[4096], final[4096];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi samples, pairs, characters, info;
    uint64_t first_id, next_id;
    uint64_t pending;               // puts since the last commit
    uint16_t *sizes;                // [n][2]
    uint32_t *chars;                // [n] character of each sample
    size_t cap;
};

static int lmdb_fail(shard_writer *w, const char *what, int rc, char *err, size_t errlen) {
    char why[256] = "";
    if (rc == EIO) {  // LMDB's error for a short write too: the usual way a full disk ends a build
        struct statvfs sv;
        struct rlimit rl;
        double mib = statvfs(w->tmp, &sv) ? -1 : (double)sv.f_bavail * (double)sv.f_frsize / 1048576.0;
        char lim[64] = "";
        if (!getrlimit(RLIMIT_FSIZE, &rl) && rl.rlim_cur != RLIM_INFINITY)
            snprintf(lim, sizeof lim, "; the file-size limit (ulimit -f) is %llu bytes", (unsigned long long)rl.rlim_cur);
        if (mib >= 0) snprintf(why, sizeof why, " (or a short write: a full disk? %.1f MiB free there%s)", mib, lim);
        else if (lim[0]) snprintf(why, sizeof why, " (or a short write%s)", lim);
    }
    snprintf(err, errlen, "%s: %s failed: %s%s", w->tmp, what, mdb_strerror(rc), why);
    return -1;
}

shard_writer *shard_writer_open(const char *dataset, const char *name, uint64_t first_id, char *err, size_t errlen) {
    shard_writer *w = calloc(1, sizeof *w);
    char host[64];
    fs_host_name(host, sizeof host);  // with the pid: on a shared filesystem a pid alone names no process
    snprintf(w->tmp, sizeof w->tmp, "%s/%s.tmp-%d@%s", dataset, name, (int)getpid(), host);
    snprintf(w->final, sizeof w->final, "%s/%s", dataset, name);
    w->first_id = w->next_id = first_id;
    struct stat st;
    if (!stat(w->final, &st)) { snprintf(err, errlen, "%s: already exists (shards are immutable; build into a new folder)", w->final); free(w); return NULL; }
    fs_remove_tree(w->tmp);
    if (mkdir(w->tmp, 0755)) { snprintf(err, errlen, "%s: cannot create (%s)", w->tmp, strerror(errno)); free(w); return NULL; }
    int rc;
    if ((rc = mdb_env_create(&w->env)) || (rc = mdb_env_set_maxdbs(w->env, 4)) ||
        (rc = mdb_env_set_mapsize(w->env, (size_t)1 << 40)) ||
        (rc = mdb_env_open(w->env, w->tmp, MDB_NOSYNC | MDB_NOMETASYNC, 0644))) {
        lmdb_fail(w, "opening the environment", rc, err, errlen);
        shard_writer_abort(w);
        return NULL;
    }
    if ((rc = mdb_txn_begin(w->env, NULL, 0, &w->txn)) || (rc = mdb_dbi_open(w->txn, SHARD_DB_SAMPLES, MDB_CREATE, &w->samples)) ||
        (rc = mdb_dbi_open(w->txn, SHARD_DB_PAIRS, MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &w->pairs)) ||
        (rc = mdb_dbi_open(w->txn, SHARD_DB_CHARACTERS, MDB_CREATE, &w->characters)) ||
        (rc = mdb_dbi_open(w->txn, SHARD_DB_INFO, MDB_CREATE, &w->info))) {
        lmdb_fail(w, "creating the databases", rc, err, errlen);
        shard_writer_abort(w);
        return NULL;
    }
    return w;
}

static int commit_and_renew(shard_writer *w, char *err, size_t errlen) {
    int rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (rc) return lmdb_fail(w, "commit", rc, err, errlen);
    if ((rc = mdb_txn_begin(w->env, NULL, 0, &w->txn))) return lmdb_fail(w, "begin", rc, err, errlen);
    w->pending = 0;
    return 0;
}

int shard_writer_put(shard_writer *w, uint64_t id, const void *value, size_t len, int width, int height, uint32_t character, char *err,
                     size_t errlen) {
    if (id != w->next_id) { snprintf(err, errlen, "%s: sample id %llu out of order (expected %llu)", w->tmp, (unsigned long long)id, (unsigned long long)w->next_id); return -1; }
    uint8_t k[8];
    shard_key64(k, id);
    MDB_val key = {8, k}, val = {len, (void *)value};
    int rc = mdb_put(w->txn, w->samples, &key, &val, MDB_APPEND);
    if (rc) return lmdb_fail(w, "put", rc, err, errlen);
    size_t i = (size_t)(id - w->first_id);
    if (i >= w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1024;
        w->sizes = realloc(w->sizes, w->cap * 2 * sizeof *w->sizes);
        w->chars = realloc(w->chars, w->cap * sizeof *w->chars);
    }
    w->sizes[2 * i] = (uint16_t)width;
    w->sizes[2 * i + 1] = (uint16_t)height;
    w->chars[i] = character;
    w->next_id++;
    if (++w->pending >= SHARD_COMMIT_EVERY) return commit_and_renew(w, err, errlen);
    return 0;
}

static int put_info(shard_writer *w, const char *name, const void *data, size_t len, char *err, size_t errlen) {
    MDB_val key = {strlen(name), (void *)name}, val = {len, (void *)data};
    int rc = mdb_put(w->txn, w->info, &key, &val, 0);
    return rc ? lmdb_fail(w, "info put", rc, err, errlen) : 0;
}

int shard_writer_finish(shard_writer *w, const char *const *names, uint64_t *samples, uint64_t *characters, uint64_t *bytes, uint32_t *crc,
                        char *err, size_t errlen) {
    uint64_t n = w->next_id - w->first_id, nchar = 0;
    int rc;
    // pairs: character (u32 BE) → sample ids (u64 BE), and characters: character → record
    for (uint64_t i = 0; i < n;) {
        uint32_t c = w->chars[i];
        uint64_t j = i;
        while (j < n && w->chars[j] == c) j++;
        for (uint64_t t = i; t < j; t++) {
            uint8_t kc[4], vid[8];
            shard_key32(kc, c);
            shard_key64(vid, w->first_id + t);
            MDB_val key = {4, kc}, val = {8, vid};
            if ((rc = mdb_put(w->txn, w->pairs, &key, &val, MDB_APPENDDUP))) { lmdb_fail(w, "pairs put", rc, err, errlen); goto fail; }
        }
        // value: u64 LE first id in shard, u32 LE count in shard, then the name (UTF-8, no NUL)
        const char *nm = names ? names[c] : "";
        size_t nl = strlen(nm);
        uint8_t *v = malloc(12 + nl), kc[4];
        for (int b = 0; b < 8; b++) v[b] = (uint8_t)((w->first_id + i) >> (8 * b));
        for (int b = 0; b < 4; b++) v[8 + b] = (uint8_t)((j - i) >> (8 * b));
        memcpy(v + 12, nm, nl);
        shard_key32(kc, c);
        MDB_val key = {4, kc}, val = {12 + nl, v};
        rc = mdb_put(w->txn, w->characters, &key, &val, MDB_NOOVERWRITE);
        free(v);
        if (rc == MDB_KEYEXIST) { snprintf(err, errlen, "%s: character %u is not contiguous", w->tmp, c); goto fail; }
        if (rc) { lmdb_fail(w, "characters put", rc, err, errlen); goto fail; }
        nchar++;
        i = j;
    }
    uint8_t u[8];
    for (int b = 0; b < 8; b++) u[b] = (uint8_t)((uint64_t)SHARD_FORMAT_VERSION >> (8 * b));
    if (put_info(w, "format_version", u, 8, err, errlen)) goto fail;
    for (int b = 0; b < 8; b++) u[b] = (uint8_t)(w->first_id >> (8 * b));
    if (put_info(w, "first_id", u, 8, err, errlen)) goto fail;
    for (int b = 0; b < 8; b++) u[b] = (uint8_t)(n >> (8 * b));
    if (put_info(w, "count", u, 8, err, errlen)) goto fail;
    // sizes as u16 LE pairs (portable regardless of host order)
    uint8_t *sz = malloc(n * 4 + 1);
    for (uint64_t i = 0; i < n; i++) {
        sz[4 * i] = (uint8_t)w->sizes[2 * i]; sz[4 * i + 1] = (uint8_t)(w->sizes[2 * i] >> 8);
        sz[4 * i + 2] = (uint8_t)w->sizes[2 * i + 1]; sz[4 * i + 3] = (uint8_t)(w->sizes[2 * i + 1] >> 8);
    }
    rc = put_info(w, "sizes", sz, n * 4, err, errlen);
    free(sz);
    if (rc) goto fail;
    rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (rc) { lmdb_fail(w, "final commit", rc, err, errlen); goto fail; }
    if ((rc = mdb_env_sync(w->env, 1))) { lmdb_fail(w, "sync", rc, err, errlen); goto fail; }
    mdb_env_close(w->env);
    w->env = NULL;
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", w->tmp);
    if (fs_fsync_path(p)) { snprintf(err, errlen, "%s: fsync failed (%s)", p, strerror(errno)); goto fail; }
    if (crc32c_file(p, crc, bytes)) { snprintf(err, errlen, "%s: cannot read back (%s)", p, strerror(errno)); goto fail; }
    snprintf(p, sizeof p, "%s/lock.mdb", w->tmp);
    unlink(p);  // readers use MDB_NOLOCK: a published shard has no lock file
    fs_fsync_path(w->tmp);
    if (rename(w->tmp, w->final)) { snprintf(err, errlen, "%s: rename to %s failed (%s)", w->tmp, w->final, strerror(errno)); goto fail; }
    fs_fsync_parent(w->final);
    *samples = n;
    *characters = nchar;
    free(w->sizes); free(w->chars); free(w);
    return 0;
fail:
    shard_writer_abort(w);
    return -1;
}

void shard_writer_abort(shard_writer *w) {
    if (!w) return;
    if (w->txn) mdb_txn_abort(w->txn);
    if (w->env) mdb_env_close(w->env);
    fs_remove_tree(w->tmp);
    free(w->sizes);
    free(w->chars);
    free(w);
}
