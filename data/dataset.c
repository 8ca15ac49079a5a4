// dataset.c — open a dataset (manifest, dictionary, shards, sizes, characters) and read records.
#include "data/dataset.h"
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zstd.h>
#include "data/checksum.h"
#include "data/fsutil.h"

static int load_characters(dataset *d, char *err, size_t errlen) {
    uint64_t total = d->m.characters;
    if (total > 0xffffffffu) { snprintf(err, errlen, "%s/manifest.json: %llu characters (at most 2^32-1)", d->dir, (unsigned long long)total); return -1; }
    // every character has an image: a damaged count above the samples would size the tables below
    if (total > d->m.samples) {
        snprintf(err, errlen, "%s/manifest.json: %llu characters but %llu samples (each character has at least one)", d->dir,
                 (unsigned long long)total, (unsigned long long)d->m.samples);
        return -1;
    }
    d->n_chars = (uint32_t)total;
    d->char_first = malloc(sizeof(uint64_t) * (total + 1));
    d->char_count = calloc(total + 1, sizeof(uint32_t));
    if (!d->char_first || !d->char_count) {
        snprintf(err, errlen, "%s: out of memory for the tables of %llu characters", d->dir, (unsigned long long)total);
        return -1;
    }
    for (int i = 0; i < d->m.n_shards; i++) {
        shard *s = &d->shards[i];
        MDB_txn *t = shard_begin(s, err, errlen);
        if (!t) return -1;
        MDB_cursor *c;
        mdb_cursor_open(t, s->characters, &c);
        MDB_val k, v;
        int rc;
        volatile uint64_t in_shard = 0;  // (volatile: set between sigsetjmp and a possible jump back)
        sigjmp_buf jb, *prev = shard_guard_prev();
        if (sigsetjmp(jb, 1)) {  // a damaged page sent the cursor outside the map
            shard_guard_arm(prev);
            snprintf(err, errlen, "%s: reading its characters faulted: a damaged LMDB page (run `cameo data verify`)", s->path);
            mdb_cursor_close(c);
            mdb_txn_abort(t);
            return -1;
        }
        shard_guard_arm(&jb);
        while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
            if (k.mv_size != 4 || v.mv_size < 12) { snprintf(err, errlen, "%s: characters entry of key %zu / value %zu bytes (expected 4 / >= 12)", s->path, k.mv_size, v.mv_size); rc = -2; break; }
            uint32_t ch = shard_unkey32(k.mv_data);
            const uint8_t *p = v.mv_data;
            uint64_t first = 0;
            uint32_t cnt = 0;
            for (int b = 0; b < 8; b++) first |= (uint64_t)p[b] << (8 * b);
            for (int b = 0; b < 4; b++) cnt |= (uint32_t)p[8 + b] << (8 * b);
            if (ch >= total || first < s->first_id || first + cnt > s->first_id + s->count || cnt == 0) {
                snprintf(err, errlen, "%s: character %u claims ids %llu..+%u outside the shard or beyond %llu characters", s->path, ch, (unsigned long long)first, cnt, (unsigned long long)total);
                rc = -2; break;
            }
            if (d->char_count[ch] == 0) d->char_first[ch] = first;
            else if (d->char_first[ch] + d->char_count[ch] != first) {
                snprintf(err, errlen, "%s: character %u is not contiguous across shards", s->path, ch);
                rc = -2; break;
            }
            d->char_count[ch] += cnt;
            in_shard += cnt;
        }
        shard_guard_arm(prev);
        if (rc && rc != MDB_NOTFOUND && rc != -2) { snprintf(err, errlen, "%s: reading its characters: %s", s->path, mdb_strerror(rc)); rc = -2; }
        mdb_cursor_close(c);
        mdb_txn_abort(t);
        if (rc == -2) return -1;
        if (in_shard != s->count) { snprintf(err, errlen, "%s: characters cover %llu samples, the shard has %llu", s->path, (unsigned long long)in_shard, (unsigned long long)s->count); return -1; }
    }
    for (uint64_t c = 0; c < total; c++)
        if (!d->char_count[c]) { snprintf(err, errlen, "%s: character %llu has no samples in any shard", d->dir, (unsigned long long)c); return -1; }
    return 0;
}

#define DATASET_FD_SPARE 64  // descriptors left for what the process opens later (logs, checkpoints, sockets)

// descriptors this process has open now (Linux /proc/self/fd), or a guess where unavailable
static int open_fd_count(void) {
    DIR *dp = opendir("/proc/self/fd");
    if (!dp) return 16;
    int n = 0;
    for (struct dirent *e; (e = readdir(dp));) n += e->d_name[0] != '.';
    closedir(dp);
    return n - 1;  // the directory's own descriptor
}

// Each shard keeps its data.mdb open for the dataset's lifetime: 1000 shards (10M samples at
// 10k per shard) pass the usual soft limit of 1024 files. Raise the soft limit towards the hard
// one; fail, naming the shard count, only when even the hard limit is too low.
static int reserve_fds(const char *dir, int n_shards, char *err, size_t errlen) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return 0;  // unknown: let the opens report it
    int used = open_fd_count();
    rlim_t need = (rlim_t)used + (rlim_t)n_shards, want = need + DATASET_FD_SPARE;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) return 0;
    rlim_t cur = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    if (rl.rlim_cur > cur && setrlimit(RLIMIT_NOFILE, &rl) == 0) cur = rl.rlim_cur;
    if (cur >= need) return 0;
    snprintf(err, errlen,
             "%s: %d shards need %d open files (one each, plus %d open already), but the open-file limit is %llu (hard limit %llu); "
             "raise it with `ulimit -n %llu` (or higher) before the run, or build with more samples per shard",
             dir, n_shards, n_shards, used, (unsigned long long)cur, (unsigned long long)rl.rlim_max, (unsigned long long)want);
    return -1;
}

// whether dir's network-filesystem warning is due: once per folder and process. The validation
// opens its dataset at every validation: a run of days printed the same warning thousands of times
static bool net_warn_first(const char *dir) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t warned[64];  // FNV-1a of the folders warned about (past 64 folders, each new one every time)
    static int n;
    uint64_t h = 1469598103934665603ull;
    for (const char *c = dir; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    pthread_mutex_lock(&mu);
    bool first = true;
    for (int i = 0; i < n && first; i++) first = warned[i] != h;
    if (first && n < 64) warned[n++] = h;
    pthread_mutex_unlock(&mu);
    return first;
}

int dataset_open(dataset *d, const char *dir, int flags, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    d->opened_by = getpid();
    if (manifest_load(dir, &d->m, err, errlen)) return -1;
    const char *net = fs_network_type(dir);
    if (net && net_warn_first(dir))
        fprintf(stderr, "warning: dataset %s is on a network filesystem (%s); LMDB needs node-local disk (copy it to local SSD)\n", dir, net);
    if (d->m.has_dict) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, d->m.dict_file);
        size_t len;
        char *buf = fs_read_file(p, &len, 16u << 20);
        if (!buf) { snprintf(err, errlen, "%s: cannot read the zstd dictionary (%s)", p, strerror(errno)); goto fail; }
        uint32_t crc = crc32c(buf, len);
        if (len != d->m.dict_bytes || crc != d->m.dict_crc32c) {
            snprintf(err, errlen, "%s: %zu bytes crc32c 0x%08x, the manifest says %llu bytes crc32c 0x%08x", p, len, crc, (unsigned long long)d->m.dict_bytes, d->m.dict_crc32c);
            free(buf); goto fail;
        }
        d->ddict = ZSTD_createDDict(buf, len);
        unsigned id = ZSTD_getDictID_fromDDict(d->ddict);
        free(buf);
        if (!d->ddict || id != d->m.dict_id) { snprintf(err, errlen, "%s: dictionary id %u, the manifest says %u", p, id, d->m.dict_id); goto fail; }
    }
    if (reserve_fds(dir, d->m.n_shards, err, errlen)) goto fail;
    d->shards = calloc((size_t)d->m.n_shards + 1, sizeof *d->shards);
    for (int i = 0; i < d->m.n_shards; i++) {
        const manifest_shard *ms = &d->m.shards[i];
        if (shard_open(&d->shards[i], dir, ms->name, ms->first_id, ms->samples, ms->bytes, err, errlen)) goto fail;
    }
    if (!(flags & DATASET_NO_SIZES)) {
        d->sizes = malloc(sizeof(uint16_t) * 2 * (d->m.samples + 1));
        if (!d->sizes) { snprintf(err, errlen, "%s: out of memory for the sizes of %llu samples", dir, (unsigned long long)d->m.samples); goto fail; }
        for (int i = 0; i < d->m.n_shards; i++) {
            shard *s = &d->shards[i];
            MDB_txn *t = shard_begin(s, err, errlen);
            if (!t) goto fail;
            int rc = shard_read_sizes(s, t, d->sizes + 2 * s->first_id, err, errlen);
            mdb_txn_abort(t);
            if (rc) goto fail;
        }
    }
    if (load_characters(d, err, errlen)) goto fail;
    return 0;
fail:
    dataset_close(d);
    return -1;
}

void dataset_close(dataset *d) {
    if (d->shards) for (int i = 0; i < d->m.n_shards; i++) shard_close(&d->shards[i]);
    free(d->shards);
    if (d->ddict) ZSTD_freeDDict(d->ddict);
    free(d->sizes);
    free(d->char_first);
    free(d->char_count);
    manifest_free(&d->m);
    memset(d, 0, sizeof *d);
}

int64_t dataset_character_of(const dataset *d, uint64_t id) {
    int64_t lo = 0, hi = (int64_t)d->n_chars - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        if (id < d->char_first[mid]) hi = mid - 1;
        else if (id >= d->char_first[mid] + d->char_count[mid]) lo = mid + 1;
        else return mid;
    }
    return -1;
}

int dataset_reader_init(dataset_reader *r, dataset *d) {
    memset(r, 0, sizeof *r);
    r->d = d;
    r->txn = calloc((size_t)d->m.n_shards + 1, sizeof *r->txn);
    r->dctx = ZSTD_createDCtx();
    return r->txn && r->dctx ? 0 : -1;
}

void dataset_reader_free(dataset_reader *r) {
    if (r->txn) for (int i = 0; i < r->d->m.n_shards; i++) if (r->txn[i]) mdb_txn_abort(r->txn[i]);
    free(r->txn);
    if (r->dctx) ZSTD_freeDCtx(r->dctx);
    free(r->meta_raw);
    record_meta_free(&r->meta);
    memset(r, 0, sizeof *r);
}

static int lookup(dataset_reader *r, uint64_t id, MDB_val *v, int *si, char *err, size_t errlen) {
    int s = manifest_shard_of(&r->d->m, id);
    *si = s;
    if (s < 0) { snprintf(err, errlen, "%s: sample %llu is beyond the dataset's %llu samples", r->d->dir, (unsigned long long)id, (unsigned long long)r->d->m.samples); return DS_MISSING; }
    if (!r->txn[s] && !(r->txn[s] = shard_begin(&r->d->shards[s], err, errlen))) return DS_ERROR;
    int rc = shard_get(&r->d->shards[s], r->txn[s], id, v);
    if (rc == MDB_NOTFOUND) { snprintf(err, errlen, "%s: sample %llu not found", r->d->shards[s].path, (unsigned long long)id); return DS_MISSING; }
    if (rc) {
        snprintf(err, errlen, "%s: sample %llu: %s", r->d->shards[s].path, (unsigned long long)id, mdb_strerror(rc));
        // a damaged page fails the read transaction (MDB_TXN_ERROR): every later get in it would answer
        // MDB_BAD_TXN and this reader would lose the rest of the shard; the next lookup begins a new one
        mdb_txn_abort(r->txn[s]);
        r->txn[s] = NULL;
        return DS_CORRUPT;
    }
    return DS_OK;
}

int dataset_get(dataset_reader *r, uint64_t id, record_view *rec, char *err, size_t errlen) {
    MDB_val v;
    int s, rc = lookup(r, id, &v, &s, err, errlen);
    if (rc) return rc;
    char why[256];
    // the value's pointer and size come from its node as they are: a damaged one may run past
    // the map, so the CRC pass (which reads every byte, after which they are known mapped) is guarded
    sigjmp_buf jb, *prev = shard_guard_prev();
    if (sigsetjmp(jb, 1)) {
        shard_guard_arm(prev);
        snprintf(err, errlen, "%s: sample %llu: its value (%zu bytes) runs outside the map: a damaged LMDB node", r->d->shards[s].path, (unsigned long long)id,
                 v.mv_size);
        return DS_CORRUPT;
    }
    shard_guard_arm(&jb);
    rc = record_parse(v.mv_data, v.mv_size, rec, why, sizeof why);
    shard_guard_arm(prev);
    if (rc) {
        snprintf(err, errlen, "%s: sample %llu: %s", r->d->shards[s].path, (unsigned long long)id, why);
        return DS_CORRUPT;
    }
    if (rec->id != id) { snprintf(err, errlen, "%s: sample %llu: record says id %llu", r->d->shards[s].path, (unsigned long long)id, (unsigned long long)rec->id); return DS_CORRUPT; }
    return DS_OK;
}

int dataset_get_meta(dataset_reader *r, const record_view *rec, char *err, size_t errlen) {
    char why[256];
    int s = manifest_shard_of(&r->d->m, rec->id);
    const char *where = s >= 0 ? r->d->shards[s].path : r->d->dir;
    if (record_meta_decompress(r->dctx, r->d->ddict, rec, &r->meta_raw, &r->meta_cap, why, sizeof why) ||
        record_meta_decode(r->meta_raw, rec->meta_raw_len, &r->meta, why, sizeof why)) {
        snprintf(err, errlen, "%s: sample %llu: %s", where, (unsigned long long)rec->id, why);
        return DS_BAD_META;
    }
    return DS_OK;
}

void dataset_prefetch(dataset_reader *r, uint64_t id) {
    MDB_val v;
    int s;
    char err[8];
    if (lookup(r, id, &v, &s, err, sizeof err) == DS_OK) shard_prefetch(&v);
}
