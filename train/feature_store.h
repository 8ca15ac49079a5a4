// feature_store.h — the store under the caches of frozen encoders' outputs (the text cache,
// train/text_cache.h; the reference cache, train/ref_cache.h): one LMDB environment of checked
// entries, with a "meta" entry naming the encoders that made them and the datasets covered.
// defines: fstore_kind, fstore_id, fstore, fstore_entry and the fstore_* functions.
//
// On disk: a folder (data.mdb, lock.mdb). Key "meta": JSON {format, version, fingerprint, encoders,
// the kind's three sizes by name, datasets: [{path, manifest_hash, samples}]}. Every other key: 16
// bytes, made from the entry's name by the kind, whose value is
//   [0, 32)  header (little-endian): u32 magic (the kind's), u16 version 1, u16 dtype (0 f32, 1 bf16),
//            u32 × 3 the kind's sizes (the store's, or the entry's own: fstore_kind.entry_dims), u32 name bytes, u32 CRC-32C of the bytes from 32 to the end, u32 0
//   then the name (checked against the key on every read), then the values.
// Each write is one transaction: an interrupted build keeps what it committed.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "autograd/tensor.h"
#include "train/config.h"

typedef struct fstore_kind {
    const char *format;          // meta "format", e.g. "cameo-text-cache"
    const char *what;            // in messages: "text cache"
    const char *build;           // the command that builds one: "cameo cache-text"
    const char *setting;         // the config key naming one: "model.text_cache"
    const char *dims[3];         // the meta names of the three sizes every entry is checked against
    uint32_t magic;              // of every entry's header
    size_t (*values)(const int64_t dim[3]);                               // values an entry holds
    void (*key_of)(const uint8_t *name, size_t n, uint8_t key[16]);       // an entry's key from its name
    const char *(*shown)(const uint8_t *name, size_t n, char *buf, size_t len);  // "the caption '...'"
    // NULL: every entry has the store's sizes; else an entry's own sizes from its name and the
    // store's (the latent cache: a latent's grid is its bucket's)
    void (*entry_dims)(const int64_t store[3], const uint8_t *name, size_t n, int64_t out[3]);
    // what a covered dataset's key is, in `inspect`: NULL "manifest" (its manifest hash); the latent
    // cache's is the manifest hash with the run's bucket tables
    const char *set_key;
} fstore_kind;

typedef struct fstore_id {  // the encoders that made (or would make) the entries
    uint64_t fingerprint;    // of their files (name, size, bytes at the start, middle, end), or of a tiny preset + seed
    char encoders[1200];     // the same in words, for messages
    int64_t dim[3];          // the kind's sizes
} fstore_id;

typedef struct fstore_set {  // a dataset every entry of which is in the store
    char path[CFG_PATH];
    uint64_t manifest_hash, samples;
} fstore_set;

typedef struct fstore {
    const fstore_kind *kind;
    char path[CFG_PATH];
    void *env;               // MDB_env*
    unsigned dbi;
    bool writable;
    fstore_id id;            // as stored
    int n_sets;
    fstore_set *sets;        // [n_sets]
} fstore;

// what a cache's build did (`cameo cache-text`, `cache-refs`, `cache-latents`)
typedef struct fstore_report {
    uint64_t records, skipped;   // records read; damaged or missing ones skipped (counted, no entry)
    uint64_t captions;           // the text cache's: distinct captions met (0 for the others)
    uint64_t added;              // entries written
    int sets, sets_done;         // datasets; of them already covered before this build
    double seconds;
} fstore_report;

// the store at path: read-only (write false; it must exist), or for writing (made when missing;
// never inside a folder holding another LMDB environment). want != NULL: its encoders and sizes
// must be the store's, else an error names both. 0 or -1.
int fstore_open(fstore *s, const fstore_kind *k, const char *path, const fstore_id *want, bool write, char *err, size_t errlen);
void fstore_close(fstore *s);
bool fstore_covers(const fstore *s, uint64_t manifest_hash);
// every dataset a run of c reads (cfg_run_datasets) covered by s, each under the key cover(c, path,
// its manifest hash) gives (NULL: the manifest hash itself; a cover may write into also what the
// key holds besides, for the message: " in the buckets ..."). 0, or -1 with err naming the first
// dataset that is not and the command that adds it (what: "captions", "references", "latents")
typedef uint64_t (*fstore_cover_fn)(const train_config *c, const char *path, uint64_t manifest_hash, char *also, size_t alen);
int fstore_covers_run(const fstore *s, const train_config *c, const char *what, fstore_cover_fn cover, char *err, size_t errlen);
// the dataset at path (its manifest hash, samples) is covered now: recorded in "meta"
int fstore_add_set(fstore *s, const char *path, uint64_t manifest_hash, uint64_t samples, char *err, size_t errlen);
uint64_t fstore_count(fstore *s);  // entries less "meta"
// whether path is a store of kind k (a data.mdb whose "meta" says so)
bool fstore_applies(const fstore_kind *k, const char *path);

// name, size and 64 KiB at the start, the middle and the end of every regular file in dir (not
// below it), in name order, into *h; dir itself when it is a file. 0 or -1 with err.
int fstore_hash_folder(const char *dir, uint64_t *h, char *err, size_t errlen);
int fstore_hash_file(const char *path, const char *name, uint64_t *h, char *err, size_t errlen);

// ---- entries: reads and writes inside a transaction (txn: MDB_txn*) ----
int fstore_begin(fstore *s, bool write, void **txn, char *err, size_t errlen);
void fstore_abort(void *txn);
int fstore_commit(fstore *s, void *txn, char *err, size_t errlen);  // and synced to disk

typedef struct fstore_entry {
    const uint8_t *data;     // the values, inside the map: valid until the transaction ends
    size_t values;
    cm_dtype dt;             // CM_F32 or CM_BF16, as stored
} fstore_entry;
#define FSTORE_MISSING 1
// the entry of name: 0 found and checked (sizes, checksum, name), FSTORE_MISSING (err untouched),
// or -1 with err (damaged, or the read failed)
int fstore_get(fstore *s, void *txn, const uint8_t *name, size_t n, fstore_entry *e, char *err, size_t errlen);
// n values of e from element `from` into dst as dt (CM_F32, or CM_BF16 when e is bf16)
void fstore_entry_copy(const fstore_entry *e, size_t from, size_t n, cm_dtype dt, void *dst);
// writes the entry of name: the values are parts[0..np) of bytes[i] each, dt CM_F32 or CM_BF16
int fstore_put(fstore *s, void *txn, const uint8_t *name, size_t n, cm_dtype dt, const void *const *parts, const size_t *bytes,
               int np, char *err, size_t errlen);
// whether name's key is present; and present with an entry that passes fstore_get's checks
bool fstore_has(fstore *s, const uint8_t *name, size_t n, bool check);

// every entry read and checked (its key against its name, sizes, checksum): entries, of them
// bf16, damaged, and in first the first damaged one's message. 0, or -1 with err
typedef struct fstore_check {
    uint64_t entries, bf16, damaged;
    char first[1024];
} fstore_check;
int fstore_verify(fstore *s, fstore_check *r, char *err, size_t errlen);
// `cameo inspect DIR` for kind k: the store's encoders, rows (the kind's line, from rows()), datasets
// and every entry verified; the exit code. unit: what an entry is, plural ("captions")
int fstore_inspect_cli(const fstore_kind *k, const char *path, const char *unit,
                       void (*rows)(const fstore *s, const fstore_check *r));
