// manifest.h — DATASET/manifest.json: format version, shard list (ids, counts, checksums), the
// zstd dictionary, image settings, the bucket table. Parsed with cJSON, validated fully.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_FORMAT "cameo-dataset"
#define MANIFEST_VERSION 1
#define MANIFEST_NAME_MAX 64

typedef struct {
    char name[MANIFEST_NAME_MAX];  // folder name inside the dataset, e.g. "shard-00000"
    uint64_t first_id;             // global id of its first sample
    uint64_t samples;              // sample count (ids first_id .. first_id+samples-1)
    uint64_t characters;           // distinct characters in the shard
    uint64_t bytes;                // size of <name>/data.mdb
    uint32_t crc32c;               // CRC-32C of <name>/data.mdb
} manifest_shard;

typedef struct {
    int version;
    uint64_t samples, characters;
    int has_dict;
    char dict_file[MANIFEST_NAME_MAX];  // e.g. "meta.zdict"
    uint32_t dict_id;                   // ZDICT_getDictID of the file
    uint64_t dict_bytes;
    uint32_t dict_crc32c;
    int quality, lossless, max_side;    // WebP settings of the build (informative)
    int bucket_resolution, bucket_step; // the bucket table below was made for this area/step
    double bucket_max_aspect;
    int n_buckets;
    int (*buckets)[3];                  // [n_buckets] (W, H, sample count)
    int n_shards;
    manifest_shard *shards;             // [n_shards], ids contiguous in list order
    uint64_t hash;                      // FNV-1a 64 of the manifest file's bytes
} manifest;

// Parses and validates text (named `what` in messages). Returns 0 or -1 with err.
int manifest_parse(const char *text, size_t len, manifest *m, const char *what, char *err, size_t errlen);
// Loads DIR/manifest.json.
int manifest_load(const char *dir, manifest *m, char *err, size_t errlen);
// Writes DIR/manifest.json atomically (manifest.json.tmp, fsync, rename, fsync DIR).
int manifest_write(const char *dir, const manifest *m, char *err, size_t errlen);
void manifest_free(manifest *m);
// Index of the shard holding global id, or -1.
int manifest_shard_of(const manifest *m, uint64_t id);
