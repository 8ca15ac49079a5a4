// shard_read.c — read-only shard access: MDB_RDONLY | MDB_NOLOCK | MDB_NORDAHEAD, map size from
// the file size, MADV_WILLNEED prefetch; LMDB reads under a fault guard (see shard.h).
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data/shard.h"

// ---- fault guard ----
static __thread sigjmp_buf *guard_jb;   // armed in this thread when non-NULL
static struct sigaction guard_old[2];   // SIGSEGV, SIGBUS handlers found at install
static uint64_t guard_caught;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void guard_on_fault(int sig, siginfo_t *si, void *uc) {
    sigjmp_buf *jb = guard_jb;
    if (jb) {
        guard_jb = NULL;
        __atomic_add_fetch(&guard_caught, 1, __ATOMIC_RELAXED);
        siglongjmp(*jb, sig);
    }
    // not a guarded shard read: what would have happened without the guard
    const struct sigaction *old = &guard_old[sig == SIGBUS];
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) { old->sa_sigaction(sig, si, uc); return; }
    if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) { old->sa_handler(sig); return; }
    signal(sig, SIG_DFL);
    if (si->si_code <= 0) raise(sig);  // sent by kill(): deliver it again; a real fault repeats on return
}

// LMDB's consistency asserts (a damaged page, e.g. a branch that leads to a non-leaf) call this,
// then abort(): inside a guard, jump back instead
static void guard_on_assert(MDB_env *env, const char *msg) {
    (void)env, (void)msg;
    sigjmp_buf *jb = guard_jb;
    if (jb) {
        guard_jb = NULL;
        __atomic_add_fetch(&guard_caught, 1, __ATOMIC_RELAXED);
        siglongjmp(*jb, SIGABRT);
    }
}

static void guard_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &guard_old[0]);
    sigaction(SIGBUS, &sa, &guard_old[1]);
}

sigjmp_buf *shard_guard_prev(void) {
    pthread_once(&guard_once, guard_install);
    return guard_jb;
}

void shard_guard_arm(sigjmp_buf *jb) { guard_jb = jb; }

uint64_t shard_guard_faults(void) { return __atomic_load_n(&guard_caught, __ATOMIC_RELAXED); }

int shard_open(shard *s, const char *dataset, const char *name, uint64_t first_id, uint64_t count, uint64_t expected_bytes, char *err,
               size_t errlen) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s/%s", dataset, name);
    s->first_id = first_id;
    s->count = count;
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", s->path);
    struct stat st;
    if (stat(p, &st)) { snprintf(err, errlen, "%s: missing (%s); the manifest lists shard %s", p, strerror(errno), name); return -1; }
    if (st.st_size < 2 * 4096) { snprintf(err, errlen, "%s: %lld bytes, too small for an LMDB file (truncated?)", p, (long long)st.st_size); return -1; }
    s->file_bytes = (uint64_t)st.st_size;
    if (expected_bytes && s->file_bytes != expected_bytes) {
        snprintf(err, errlen, "%s: %llu bytes, the manifest says %llu (truncated or replaced?)", p, (unsigned long long)s->file_bytes, (unsigned long long)expected_bytes);
        return -1;
    }
    int rc;
    MDB_txn *txn = NULL;
    if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_assert(s->env, guard_on_assert)) || (rc = mdb_env_set_maxdbs(s->env, 4)) || (rc = mdb_env_set_mapsize(s->env, (size_t)st.st_size)) ||
        (rc = mdb_env_open(s->env, s->path, MDB_RDONLY | MDB_NOLOCK | MDB_NORDAHEAD | MDB_NOTLS, 0444))) {
        snprintf(err, errlen, "%s: cannot open the LMDB environment: %s", s->path, mdb_strerror(rc));
        goto fail;
    }
    MDB_envinfo ei;
    MDB_stat es;
    mdb_env_info(s->env, &ei);
    mdb_env_stat(s->env, &es);
    if ((ei.me_last_pgno + 1) * (uint64_t)es.ms_psize > s->file_bytes) {  // pages past the end fault when touched
        snprintf(err, errlen, "%s: its LMDB meta page says %llu pages of %u bytes, the file has %llu bytes (damaged; run `cameo data verify`)", s->path,
                 (unsigned long long)ei.me_last_pgno + 1, es.ms_psize, (unsigned long long)s->file_bytes);
        goto fail;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))) { snprintf(err, errlen, "%s: read transaction: %s", s->path, mdb_strerror(rc)); goto fail; }
    sigjmp_buf jb, *prev = shard_guard_prev();
    if (sigsetjmp(jb, 1)) {
        shard_guard_arm(prev);
        snprintf(err, errlen, "%s: reading its databases faulted: a damaged LMDB page (run `cameo data verify`)", s->path);
        goto fail;
    }
    shard_guard_arm(&jb);
    if ((rc = mdb_dbi_open(txn, SHARD_DB_SAMPLES, 0, &s->samples)) ||
        (rc = mdb_dbi_open(txn, SHARD_DB_PAIRS, 0, &s->pairs)) || (rc = mdb_dbi_open(txn, SHARD_DB_CHARACTERS, 0, &s->characters)) ||
        (rc = mdb_dbi_open(txn, SHARD_DB_INFO, 0, &s->info))) {
        shard_guard_arm(prev);
        snprintf(err, errlen, "%s: cannot open its databases (samples, pairs, characters, info): %s", s->path, mdb_strerror(rc));
        goto fail;
    }
    MDB_stat ms;
    rc = mdb_stat(txn, s->samples, &ms);
    shard_guard_arm(prev);
    if (rc) { snprintf(err, errlen, "%s: stat: %s", s->path, mdb_strerror(rc)); goto fail; }
    if (ms.ms_entries != count) {
        snprintf(err, errlen, "%s: holds %zu samples, the manifest says %llu", s->path, ms.ms_entries, (unsigned long long)count);
        goto fail;
    }
    mdb_txn_commit(txn);  // commit (not abort) so the dbi handles stay valid for the environment
    return 0;
fail:
    if (txn) mdb_txn_abort(txn);  // (set before the guarded reads: a jump back leaves it as it was)
    if (s->env) mdb_env_close(s->env);
    s->env = NULL;
    return -1;
}

void shard_close(shard *s) {
    if (s->env) mdb_env_close(s->env);
    s->env = NULL;
}

MDB_txn *shard_begin(shard *s, char *err, size_t errlen) {
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t);
    if (rc) { snprintf(err, errlen, "%s: read transaction: %s", s->path, mdb_strerror(rc)); return NULL; }
    return t;
}

int shard_get(shard *s, MDB_txn *txn, uint64_t id, MDB_val *val) {
    uint8_t k[8];
    shard_key64(k, id);
    MDB_val key = {8, k};
    sigjmp_buf jb, *prev = shard_guard_prev();
    if (sigsetjmp(jb, 1)) { shard_guard_arm(prev); return MDB_CORRUPTED; }
    shard_guard_arm(&jb);
    int rc = mdb_get(txn, s->samples, &key, val);
    shard_guard_arm(prev);
    return rc;
}

void shard_prefetch(const MDB_val *val) {
    static long page_size = 0;  // set by the first loader thread here; relaxed atomics: a benign race, TSan-clean
    long page = __atomic_load_n(&page_size, __ATOMIC_RELAXED);
    if (!page) __atomic_store_n(&page_size, page = sysconf(_SC_PAGESIZE), __ATOMIC_RELAXED);
    uintptr_t a = (uintptr_t)val->mv_data & ~(uintptr_t)(page - 1);
    size_t n = (uintptr_t)val->mv_data + val->mv_size - a;
    madvise((void *)a, n, MADV_WILLNEED);
}

int shard_read_sizes(shard *s, MDB_txn *txn, uint16_t *sizes, char *err, size_t errlen) {
    MDB_val key = {5, "sizes"}, val;
    sigjmp_buf jb, *prev = shard_guard_prev();
    if (sigsetjmp(jb, 1)) { shard_guard_arm(prev); snprintf(err, errlen, "%s: info[\"sizes\"]: reading faulted: a damaged LMDB page (run `cameo data verify`)", s->path); return -1; }
    shard_guard_arm(&jb);
    int rc = mdb_get(txn, s->info, &key, &val);
    if (rc) { shard_guard_arm(prev); snprintf(err, errlen, "%s: info[\"sizes\"]: %s", s->path, mdb_strerror(rc)); return -1; }
    if (val.mv_size != s->count * 4) {
        shard_guard_arm(prev);
        snprintf(err, errlen, "%s: info[\"sizes\"] has %zu bytes, expected %llu (4 per sample)", s->path, val.mv_size, (unsigned long long)s->count * 4);
        return -1;
    }
    const uint8_t *p = val.mv_data;  // read under the guard: a damaged node may point past the map
    for (uint64_t i = 0; i < 2 * s->count; i++) sizes[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    shard_guard_arm(prev);
    return 0;
}
