// sampler.h — the deterministic order. A pure function of (seed, epoch) over an index of shard
// sizes and per-sample buckets:
//   1. the shards are permuted once per run (seed) and cut into fixed "canonical groups" of
//      consecutive shards holding >= `block` samples each;
//   2. per epoch the group order is permuted and each group's samples are shuffled together
//      (seed, epoch, group), spreading every shard's samples over the group's whole block
//      (as MosaicML Streaming's py1e spreads them) while reads stay within a few shards;
//   3. the shuffled stream is dealt into per-bucket queues; a queue reaching the global batch G
//      emits one global batch (all samples of one bucket). The partial queues left at the end
//      of the epoch are dropped (counted). Excluded samples (bucket == SAMPLER_EXCLUDED) never
//      enter.
// So batches per epoch = Σ_b floor(n_b / G), the same every epoch. Resume = recompute the
// epoch's order and start at batch k: O(n) time once, O(1) state.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SAMPLER_EXCLUDED 255
#define SAMPLER_DEFAULT_BLOCK (1u << 17)

typedef struct {
    uint64_t n_samples;          // ids 0..n-1 (< 2^32)
    int n_shards;
    const uint64_t *shard_count; // [n_shards] samples per shard; shard i starts at Σ_{j<i}
    const uint8_t *bucket;       // [n_samples] bucket index or SAMPLER_EXCLUDED
    int n_buckets;               // <= 254
    int global_batch;            // G
    uint64_t seed;
    uint64_t block;              // canonical group size target (0 = SAMPLER_DEFAULT_BLOCK)
} sampler_config;

typedef struct {
    sampler_config c;
    uint64_t *shard_first;       // [n_shards]
    int n_groups;
    int *group_shards;           // [n_shards] shard indices in run order
    int *group_begin;            // [n_groups+1] ranges into group_shards
    uint64_t max_group;          // samples in the largest group
    uint64_t batches_per_epoch;
    uint64_t dropped_per_epoch;  // remainder samples (< G per bucket)
    uint64_t excluded;           // samples marked SAMPLER_EXCLUDED
} sampler;

typedef struct {
    uint64_t epoch;
    uint64_t n_batches;
    uint32_t *ids;               // [n_batches, G] global sample ids
    uint8_t *bucket;             // [n_batches] bucket of each global batch
    size_t cap_batches;
} sampler_order;

// Copies the config pointers (the arrays must outlive the sampler). 0 or -1 (bad config).
int sampler_init(sampler *s, const sampler_config *c);
void sampler_free(sampler *s);
// Computes the order of `epoch` into o (buffers reused). 0 or -1 (out of memory).
int sampler_order_epoch(const sampler *s, uint64_t epoch, sampler_order *o);
void sampler_order_free(sampler_order *o);
// Bytes held by an order of this sampler (for the scale benchmark).
size_t sampler_order_bytes(const sampler *s);
