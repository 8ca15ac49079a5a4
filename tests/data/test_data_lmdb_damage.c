// test_data_lmdb_damage.c — damaged LMDB structure under the readers (dataset_get, the loader):
// one damaged leaf node costs its own record only, not the rest of its shard.
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

int main(void) {
    test_one_bad_node();
    return test_summary("test_data_lmdb_damage");
}
