// test_data_lmdb_damage.c — damaged LMDB structure under the readers (dataset_get, the loader):
// one damaged leaf node costs its own record only, not the rest of its shard; a read that
// faults inside LMDB (a damaged page, a file shrunk under its map) fails that read instead of
// killing the process.
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include "data/dataset.h"
#include "data/loader.h"
#include "data/shard.h"
#include "helpers.h"

// the file offset of the samples leaf node of the n-th (1-based) record in data.mdb, or -1;
// *id gets the record's sample id. A node: mn_lo, mn_hi (value size), mn_flags, mn_ksize = 8,
// then the 8-byte big-endian key.
static long find_node(const char *path, int n, uint64_t *id) {
    size_t len;
    uint8_t *buf = (uint8_t *)fs_read_file(path, &len, 1 << 26);
    long rec = -1, node = -1;
    for (size_t i = 0; buf && i + 48 < len; i++)
        if (!memcmp(buf + i, "CMR1", 4) && --n == 0) { rec = (long)i; break; }
    if (rec >= 0) {
        *id = 0;
        for (int i = 0; i < 8; i++) *id |= (uint64_t)buf[rec + 8 + i] << (8 * i);
        uint8_t pat[10] = {8, 0};
        shard_key64(pat + 2, *id);
        if (rec >= 16 && !memcmp(buf + rec - 10, pat, 10)) node = rec - 16;  // the value follows its key
    }
    free(buf);
    return node;
}

static void poke(const char *path, long at, uint8_t bits) {
    FILE *f = fopen(path, "r+b");
    int c = f && fseek(f, at, SEEK_SET) == 0 ? fgetc(f) : EOF;
    TEST_CHECK(c != EOF && fseek(f, at, SEEK_SET) == 0 && fputc(c | bits, f) != EOF, "damage %s at %ld", path, at);
    if (f) fclose(f);
}

// a node flagged F_BIGDATA: LMDB reads its record bytes as an overflow page number, answers
// MDB_PAGE_NOTFOUND and marks the read transaction failed; every later get in that transaction
// answered MDB_BAD_TXN, so one reader lost the rest of the shard (987 of 1000 samples)
static void test_one_bad_node(void) {
    const char *ds = make_demo("bignode", 4, 4, 64, 8);
    char p[1024], err[1024];
    snprintf(p, sizeof p, "%s/shard-00000/data.mdb", ds);
    uint64_t victim = 0;
    long node = find_node(p, 3, &victim);
    TEST_CHECK(node >= 0, "the leaf node of the third record");
    if (node < 0) return;
    poke(p, node + 4, 0x01);  // mn_flags |= F_BIGDATA
    dataset d;
    TEST_CHECK(dataset_open(&d, ds, 0, err, sizeof err) == 0, "opens: %s", err);
    dataset_reader r;
    dataset_reader_init(&r, &d);
    int bad = 0, bad_victim = 0;
    for (uint64_t id = 0; id < d.m.samples; id++) {
        record_view rec;
        if (dataset_get(&r, id, &rec, err, sizeof err)) {
            bad++;
            bad_victim += id == victim;
            if (bad > 1) fprintf(stderr, "also lost: %s\n", err);
        }
    }
    TEST_CHECK(bad == 1 && bad_victim == 1, "one reader loses only sample %llu (lost %d)", (unsigned long long)victim, bad);
    dataset_reader_free(&r);
    dataset_close(&d);
    loader_config c = loader_config_default();
    c.path = ds; c.global_batch = 1; c.resolution = 64; c.bucket_step = 16; c.ref_size = 28; c.threads = 1; c.max_epochs = 2;
    loader *L = loader_open(&c, NULL);
    TEST_CHECK(L != NULL, "loader opens");
    if (!L) return;
    loader_batch b;
    int n = 0, rc;
    while ((rc = loader_next(L, &b)) == 0) n += b.B;
    loader_counts lc;
    loader_stats(L, &lc);
    TEST_CHECK(rc == 1 && n == 30 && lc.corrupt_record == 2, "two epochs skip only the damaged sample (rc %d, %d samples, %llu corrupt)", rc, n,
               (unsigned long long)lc.corrupt_record);
    loader_close(L);
}

// every sample through one reader: the number that failed (a negative count is a signal)
static int read_all(const char *ds, int shrink_after_open) {
    dataset d;
    char err[1024], p[1024];
    if (dataset_open(&d, ds, 0, err, sizeof err)) { fprintf(stderr, "open: %s\n", err); return -1000; }
    if (shrink_after_open) {  // replaced under a running loader (an rsync over it): the map now runs past the file
        snprintf(p, sizeof p, "%s/shard-00000/data.mdb", ds);
        if (truncate(p, 8192)) return -1001;
    }
    dataset_reader r;
    dataset_reader_init(&r, &d);
    int bad = 0;
    for (uint64_t id = 0; id < d.m.samples; id++) {
        record_view rec;
        if (dataset_get(&r, id, &rec, err, sizeof err) || dataset_get_meta(&r, &rec, err, sizeof err)) {
            if (bad++ < 2) fprintf(stderr, "%s\n", err);
        }
    }
    dataset_reader_free(&r);
    dataset_close(&d);
    return bad;
}

static int read_all_shrunk(const void *ds) { return read_all(ds, 1) + 100; }

// a shard shrunk after open: LMDB's lookups touch pages past the end of the file (SIGBUS); each
// such sample fails as corrupt and the other shard's are read
static void test_shrunk(void) {
    const char *ds = make_demo("shrunk", 4, 4, 64, 8);
    char log[4096];
    int rc = run_captured(read_all_shrunk, ds, log, sizeof log);
    TEST_CHECK(rc == 108, "the 8 samples of the shrunk shard fail, the other 8 are read (rc %d: %d failed; a negative rc is a signal): %s", rc,
               rc - 100, log);
    TEST_CHECK(strstr(log, "shard-00000") != NULL, "the failures name the shard: %s", log);
}

static int read_all_intact(const void *ds) { return read_all(ds, 0) + 100; }

// a samples leaf page whose mp_lower reads 0: LMDB takes it for 32760 nodes and its binary
// search follows garbage node offsets out of the map (SIGSEGV, found by flipping single bits of
// page headers: 26 of 1400 flips of this dataset's killed the reader)
static void test_leaf_header(void) {
    const char *ds = make_demo("leafhdr", 4, 4, 64, 8);
    char p[1024], log[4096];
    snprintf(p, sizeof p, "%s/shard-00000/data.mdb", ds);
    uint64_t id;
    long node = find_node(p, 1, &id);
    TEST_CHECK(node >= 0, "the leaf node of the first record");
    if (node < 0) return;
    long page = node / 4096 * 4096;
    FILE *f = fopen(p, "r+b");
    TEST_CHECK(f && fseek(f, page + 12, SEEK_SET) == 0 && fputc(0, f) != EOF && fputc(0, f) != EOF, "zero mp_lower of the leaf page at %ld", page);
    if (f) fclose(f);
    int rc = run_captured(read_all_intact, ds, log, sizeof log);
    TEST_CHECK(rc > 100 && rc <= 108, "the damaged leaf's samples fail, the other shard's are read (rc %d; a negative rc is a signal): %s", rc, log);
    TEST_CHECK(strstr(log, "shard-00000") != NULL, "the failures name the shard: %s", log);
}

static int fault_outside(const void *ds) {
    dataset d;
    char err[1024];
    if (dataset_open(&d, ds, 0, err, sizeof err)) return 1;  // the guard's handler is installed by now
    volatile int *volatile null = NULL;
    return *null;
}

// a fault outside a guarded read is not swallowed: it still kills the process with SIGSEGV
static void test_fault_elsewhere(void) {
    const char *ds = make_demo("elsewhere", 2, 2, 32, 8);
    char log[1024];
    int rc = run_captured(fault_outside, ds, log, sizeof log);
    // (under the sanitizers their report ends it first: UBSan's null load, ASan's SEGV handler, which
    // the guard hands the fault to)
    bool reported = rc != 0 && (strstr(log, "runtime error: load of null") || strstr(log, "SEGV"));
    TEST_CHECK(rc == -SIGSEGV || reported, "a null read outside a shard read dies of SIGSEGV (rc %d): %s", rc, log);
}

int main(void) {
    test_one_bad_node();
    test_fault_elsewhere();
    test_shrunk();
    test_leaf_header();
    return test_summary("test_data_lmdb_damage");
}
