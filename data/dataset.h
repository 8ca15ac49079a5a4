// dataset.h — an opened dataset: manifest, zstd dictionary, every shard (read-only), the per-
// sample stored sizes and the character table; and per-thread readers of records.
// Open it in each process after any fork: an LMDB environment must not cross a fork.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "data/manifest.h"
#include "data/record.h"
#include "data/shard.h"

enum { DS_OK = 0, DS_MISSING = 1, DS_CORRUPT = 2, DS_BAD_META = 3, DS_ERROR = 4 };

typedef struct {
    char dir[4096];
    manifest m;
    shard *shards;          // [m.n_shards]
    void *ddict;            // ZSTD_DDict* or NULL (no dictionary)
    uint16_t *sizes;        // [m.samples][2] stored (width, height)
    uint32_t n_chars;
    uint64_t *char_first;   // [n_chars] first global id of each character (ids are contiguous)
    uint32_t *char_count;   // [n_chars] images of each character
    pid_t opened_by;        // getpid() at open (use after fork is refused)
} dataset;

// flags: DATASET_NO_SIZES skips reading the per-sample sizes (tools that do not sample).
#define DATASET_NO_SIZES 1
// Opens dir. Returns 0, or -1 with err naming the file and what is wrong.
int dataset_open(dataset *d, const char *dir, int flags, char *err, size_t errlen);
void dataset_close(dataset *d);
// Character index of a global id (binary search), or -1.
int64_t dataset_character_of(const dataset *d, uint64_t id);

// Per-thread reader: one long-lived read transaction per shard, own zstd context.
typedef struct {
    dataset *d;
    MDB_txn **txn;          // [n_shards], opened lazily
    void *dctx;             // ZSTD_DCtx*
    uint8_t *meta_raw; size_t meta_cap;
    record_meta meta;
} dataset_reader;

int dataset_reader_init(dataset_reader *r, dataset *d);
void dataset_reader_free(dataset_reader *r);
// Looks up and checks (CRC) sample id. DS_OK / DS_MISSING / DS_CORRUPT / DS_ERROR, err names
// shard and sample. The record points into the map and stays valid while r lives.
int dataset_get(dataset_reader *r, uint64_t id, record_view *rec, char *err, size_t errlen);
// Decompresses + decodes its metadata into r->meta. DS_OK or DS_BAD_META.
int dataset_get_meta(dataset_reader *r, const record_view *rec, char *err, size_t errlen);
// MADV_WILLNEED on the value of id (no checks).
void dataset_prefetch(dataset_reader *r, uint64_t id);
