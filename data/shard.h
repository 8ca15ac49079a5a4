// shard.h — one shard = one LMDB environment (a folder holding data.mdb) with four named
// databases: samples, pairs (dupsort), characters, info. Keys and values in
// docs/dataset-format.md. Writer: temp name, MDB_APPEND, fsync, rename. Reader: read-only,
// MDB_NOLOCK | MDB_NORDAHEAD, map size from the file size.
#pragma once
#include <lmdb.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#define SHARD_DB_SAMPLES "samples"
#define SHARD_DB_PAIRS "pairs"
#define SHARD_DB_CHARACTERS "characters"
#define SHARD_DB_INFO "info"

static inline void shard_key64(uint8_t k[8], uint64_t v) { for (int i = 0; i < 8; i++) k[i] = (uint8_t)(v >> (56 - 8 * i)); }
static inline void shard_key32(uint8_t k[4], uint32_t v) { for (int i = 0; i < 4; i++) k[i] = (uint8_t)(v >> (24 - 8 * i)); }
static inline uint64_t shard_unkey64(const uint8_t *k) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = v << 8 | k[i]; return v; }
static inline uint32_t shard_unkey32(const uint8_t *k) { uint32_t v = 0; for (int i = 0; i < 4; i++) v = v << 8 | k[i]; return v; }

// ---- writer ----
typedef struct shard_writer shard_writer;

// Creates DATASET/<name>.tmp-<pid>@<host>/ (host: fs_host_name) and its environment. NULL + err on failure.
shard_writer *shard_writer_open(const char *dataset, const char *name, uint64_t first_id, char *err, size_t errlen);
// Appends sample `id` (must be the next id). Records its stored size and character.
int shard_writer_put(shard_writer *w, uint64_t id, const void *value, size_t len, int width, int height, uint32_t character,
                     char *err, size_t errlen);
// Writes pairs/characters/info, commits, fsyncs, removes lock.mdb, renames to DATASET/<name>,
// fsyncs the dataset folder; computes *bytes and *crc of data.mdb. Frees w (also on failure,
// when the temporary folder is removed).
// names: character index → name (dataset-wide table; only the shard's characters are written).
int shard_writer_finish(shard_writer *w, const char *const *names, uint64_t *samples, uint64_t *characters, uint64_t *bytes,
                        uint32_t *crc, char *err, size_t errlen);
// Removes the temporary folder and frees w.
void shard_writer_abort(shard_writer *w);

// ---- reader ----
typedef struct {
    char path[4096];       // DATASET/<name>
    MDB_env *env;
    MDB_dbi samples, pairs, characters, info;
    uint64_t first_id, count;
    uint64_t file_bytes;
} shard;

// ---- fault guard ----
// LMDB does not checksum its pages: a damaged page header or node (a bit flip on disk, a bad
// copy) can send its binary search outside the map (SIGSEGV), and a file shrunk under an open
// map faults when touched (SIGBUS). Shard reads therefore run inside a guard:
//   sigjmp_buf jb; sigjmp_buf *prev = shard_guard_prev();
//   if (sigsetjmp(jb, 1)) { shard_guard_arm(prev); ...the read failed: damaged... }
//   shard_guard_arm(&jb);  ...LMDB reads...  shard_guard_arm(prev);
// A SIGSEGV / SIGBUS raised in this thread while a guard is armed, or a failed LMDB assert
// (abort), jumps back to it; any other goes on to the handler installed before (or the default
// action: a crash, as without it).
// The shard functions below do this themselves. A value's pointer and size come from its node
// as they are: read it under a guard too (dataset_get checks its CRC so), after which the
// bytes are known to be mapped.
sigjmp_buf *shard_guard_prev(void);
void shard_guard_arm(sigjmp_buf *jb);
// faults caught since the start of the process (for tests and logs)
uint64_t shard_guard_faults(void);

// Opens DATASET/<name> read-only (call after any fork). expected_bytes (the manifest's size of
// data.mdb) is checked before mapping: a truncated file would fault when touched. 0 or -1 with
// err naming the file.
int shard_open(shard *s, const char *dataset, const char *name, uint64_t first_id, uint64_t count, uint64_t expected_bytes, char *err,
               size_t errlen);
void shard_close(shard *s);
// A read transaction (one long-lived one per thread per shard). NULL + err on failure.
MDB_txn *shard_begin(shard *s, char *err, size_t errlen);
// The value of sample id (pointer into the map, valid while txn lives). 0, MDB_NOTFOUND, or error
// (MDB_CORRUPTED when the lookup faulted on a damaged page).
int shard_get(shard *s, MDB_txn *txn, uint64_t id, MDB_val *val);
// Advises the kernel to read the value's pages now (MADV_WILLNEED).
void shard_prefetch(const MDB_val *val);
// info["sizes"]: [count][2] u16 LE (width, height) of the stored images. 0 or -1.
int shard_read_sizes(shard *s, MDB_txn *txn, uint16_t *sizes, char *err, size_t errlen);
