// loader.h — the threaded training loader: dataset → ready f32 batches, exact and resumable.
//
// Usage (one loader per rank, opened in each process AFTER any fork):
//   loader_config c = loader_config_default();
//   c.path = "data/demo"; c.global_batch = 8; c.rank = r; c.world = w; c.resolution = 512;
//   loader *L = loader_open(&c, resume_or_NULL);          // NULL + message on stderr on failure
//   loader_batch b;
//   while (loader_next(L, &b) == 0) { ... use b (valid until the next loader_next/close) ... }
//   loader_resume st; loader_state(L, &st);                 // save with the checkpoint
//   loader_close(L);
//
// Order: a pure function of (seed, epoch) (see data/sampler.h). Every rank computes the same
// global batches; rank r of w takes samples [r*G/w, (r+1)*G/w) of each. Resuming with a
// different world size but the same global batch continues the same global order.
// Per-sample randomness (crop, flip, caption choice/drop, reference drop, paired reference)
// comes from a counter-based RNG keyed by (seed, epoch, sample id, purpose): no RNG state.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LOADER_UNPAIRED = 0,  // stage 1: the reference is the target image itself
    LOADER_PAIRED = 1,    // stage 2: the reference is another image of the same character
    LOADER_MIXED = 2,     // stage 3: a share `paired_share` of samples paired, the rest unpaired
} loader_mode;

typedef struct {
    const char *path;       // dataset folder (holds manifest.json)
    loader_mode mode;       // see loader_mode
    float paired_share;     // LOADER_MIXED: probability a sample is paired, [0,1]
    uint64_t seed;          // order + per-sample randomness
    int rank, world;        // this rank r of world w (0 <= r < w); global_batch % world == 0
    int global_batch;       // G: samples per global batch over all ranks
    int resolution;         // bucket area = resolution² (512 stage 1/2, 1024 stage 3)
    int bucket_step;        // bucket sides are multiples of this (default 64; tiny demo 16)
    float max_aspect;       // largest bucket aspect ratio long/short (default 2.0)
    const int *buckets;     // optional explicit bucket list [n_buckets][2] = (W, H); NULL = derived
    int n_buckets;          // entries in `buckets` when given
    int ref_size;           // R: side of each reference view (384 for SigLIP/DINOv2; demo 28/56)
    float caption_drop;     // probability the caption is replaced by "" (caption_dropped=1)
    float ref_drop;         // probability the reference is dropped (views zeroed, ref_dropped=1)
    int random_crop;        // 1: random crop offset inside the resized target; 0: centre crop
    int random_flip;        // 1: horizontal flip with probability 1/2 (target only)
    int threads;            // decode threads (0 = the CPUs this process may use: cpus_usable)
    int prefetch;           // ready batches queued ahead (0 = 2)
    int max_epochs;         // 0 = endless; else loader_next returns 1 after this many epochs
    uint64_t max_batches;   // 0 = no limit; else loader_next returns 1 after handing out this many, and no
                            // batch past them is decoded (a reader of a known count: validation)
    int verbose;            // 1: log each skipped record on stderr (always counted)
    int quiet;              // 1: no notes on stderr (what a paired / mixed stage cannot pair); errors still
    int no_skip_log;        // 1: skipped records counted, not logged (a loader opened again over the same records)
    int no_ref_views;       // 1: no reference views made (a reference cache holds their features): ref_siglip /
                            // ref_dino not allocated (not to be read), and a paired reference not decoded (ref_ids its pick even when
                            // damaged: the cache has no entry for it, and the reader falls back to the target's)
    int no_target;          // 1: the target decoded (a damaged one skipped, as always) but not resized or cut (a latent
                            // cache holds its VAE moments): target not allocated (not to be read), crop zeros
} loader_config;

// Resume state: a few integers. Saved with a checkpoint, passed back to loader_open.
typedef struct {
    uint64_t seed;           // must equal config seed
    uint64_t epoch;          // epoch of the next batch
    uint64_t batches_done;   // global batches already consumed in `epoch`
    uint64_t manifest_hash;  // hash of manifest.json (a different dataset is refused)
    uint64_t bucket_hash;    // hash of the bucket table and mode (a different table is refused)
} loader_resume;

// One batch for this rank. All pointers belong to the loader and stay valid until the next
// loader_next or loader_close. B may be smaller than global_batch/world when records were
// skipped as corrupt (see loader_stats); samples keep their order.
typedef struct {
    int B;                   // samples in this batch (this rank)
    int H, W;                // target height and width (the bucket)
    int R;                   // reference view side (config ref_size)
    float *target;           // [B, 3, H, W]  RGB in [-1, 1], CHW, alpha composited on white (not with no_target)
    float *ref_siglip;       // [B, 5, 3, R, R] views (full, TL, TR, BL, BR), (x/255 - 0.5)/0.5
    float *ref_dino;         // [B, 5, 3, R, R] same views, ((x/255) - mean)/std, ImageNet mean/std
    char **captions;         // [B] NUL-terminated UTF-8; "" when dropped
    uint8_t *caption_dropped;// [B] 1 = caption dropped
    uint8_t *ref_dropped;    // [B] 1 = reference dropped (its views are all zeros)
    uint8_t *paired;         // [B] 1 = reference is another image of the character
    uint8_t *flipped;        // [B] 1 = target flipped horizontally
    int64_t *sample_ids;     // [B] global sample id of the target
    int64_t *ref_ids;        // [B] global sample id of the reference (== sample_ids when unpaired)
    int32_t *character;      // [B] character index (dataset-wide, see docs/dataset-format.md)
    int32_t *orig_size;      // [B, 2] (width, height) of the original image before the build
    int32_t *crop;           // [B, 4] (scaled width, scaled height, crop x, crop y) of the target
    uint64_t epoch;          // epoch of this batch
    uint64_t batch_index;    // global batch index within the epoch
    uint64_t skipped;        // this rank's records of this batch skipped as damaged (B = its share less these)
    uint64_t ref_replaced;   // its paired references replaced by the target (ref_fallback)
    uint64_t manifest_hash;  // of the dataset read (what a reference cache keys the ids by)
} loader_batch;

// Skipped / substituted counts by reason, since loader_open, of the batches loader_next handed out
// (records of batches decoded ahead but not yet handed out are not in them).
typedef struct {
    uint64_t batches;            // batches returned
    uint64_t samples;            // samples returned
    uint64_t corrupt_record;     // checksum / header failure (target skipped)
    uint64_t bad_image;          // WebP decode failure (target skipped)
    uint64_t bad_metadata;       // metadata decompress / decode failure (target skipped)
    uint64_t missing_record;     // id in the order but not in its shard (target skipped)
    uint64_t ref_fallback;       // paired reference unreadable → target used as reference
    uint64_t single_image_characters; // paired mode: samples left out (character has 1 image)
    uint64_t dropped_remainder;  // samples left in incomplete bucket batches, summed over the epochs started
    uint64_t epochs_started;     // epochs of which a batch was handed out
    uint64_t samples_decoded;    // samples given to the decode threads, batches decoded ahead included: the work done
} loader_counts;

loader_config loader_config_default(void);

// Opens the dataset and starts the decode threads. resume == NULL starts at epoch 0, batch 0.
// Returns NULL after printing a message naming the file / option and what was expected.
typedef struct loader loader;
loader *loader_open(const loader_config *cfg, const loader_resume *resume);

// The index a loader reads from: the dataset opened, every sample's bucket, the sampler (what
// loader_open does before its threads start; at 10M samples seconds and ~50 MB, reading every
// sample's size). A reader that opens loaders again and again over the same samples (the
// validation, at each pass) opens the index once and lends it to each: no thread, no batch memory.
// cfg as for loader_open; cfg->max_batches > 0 keeps only that many global batches of the order
// from (epoch 0, batch 0) and frees the per-sample tables: the loaders lent it read those batches
// (their max_batches 1..that, no resume), the same samples as loader_open(cfg, NULL) reads.
// NULL after printing a message.
typedef struct loader_index loader_index;
loader_index *loader_index_open(const loader_config *cfg);
// Global batches it keeps (0: the whole order, epoch by epoch).
uint64_t loader_index_batches(const loader_index *ix);
void loader_index_close(loader_index *ix);  // safe with NULL; after every loader lent it is closed
// loader_open over a lent index (not copied: it outlives the loader). cfg must read the order it
// was opened for (path, seed, global_batch, mode, paired_share, buckets); the rest (rank, world,
// threads, prefetch, crop, drops, ...) is free. NULL + message otherwise.
loader *loader_open_index(const loader_config *cfg, loader_index *ix, const loader_resume *resume);

// Hands the next batch. Returns 0 on success, 1 when max_epochs are done, -1 on a fatal error
// (message on stderr). The previous batch's buffers are recycled by this call.
int loader_next(loader *L, loader_batch *out);

// The resume state after the last batch returned by loader_next.
void loader_state(const loader *L, loader_resume *out);

// Counts by reason (see loader_counts).
void loader_stats(const loader *L, loader_counts *out);

// Number of global batches in one epoch (after bucketing and drop of remainders).
uint64_t loader_batches_per_epoch(const loader *L);

// Returns once every decode thread waits for a task: all the decoding the prefetch allows now is
// done (tests and benchmarks: what was decoded ahead, without sleeping for it).
void loader_wait_idle(loader *L);

// Stops the threads, frees everything. Safe with NULL.
void loader_close(loader *L);
