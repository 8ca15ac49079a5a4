// rng.h — counter-based randomness: every draw is a pure function of its key, no state to save.
// A key is (seed, epoch, sample id, purpose); rng_stream() gives a splitmix64 stream from it.
#pragma once
#include <stdint.h>

enum rng_purpose {
    RNG_SHARD_ORDER = 1,   // shard permutation (seed only)
    RNG_GROUP_ORDER = 2,   // canonical group order per epoch
    RNG_GROUP_SHUFFLE = 3, // within-group shuffle per epoch
    RNG_CROP = 10,
    RNG_FLIP = 11,
    RNG_CAPTION = 12,
    RNG_CAPTION_DROP = 13,
    RNG_REF_DROP = 14,
    RNG_PAIR_PICK = 15,
    RNG_PAIR_MODE = 16,    // mixed mode: paired or unpaired
    RNG_DEMO = 100,
};

// splitmix64 finaliser: a bijective 64-bit mix
static inline uint64_t rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// the stream state for a key; each component is mixed in turn so keys never collide by sum
static inline uint64_t rng_key(uint64_t seed, uint64_t epoch, uint64_t id, uint64_t purpose) {
    uint64_t h = rng_mix(seed ^ 0x9e3779b97f4a7c15ull);
    h = rng_mix(h ^ (epoch + 0x632be59bd9b4e019ull));
    h = rng_mix(h ^ (id + 0x8cb92ba72f3d8dd7ull));
    h = rng_mix(h ^ (purpose + 0x52dce729da3ed4a3ull));
    return h;
}

// splitmix64 step: the stream of a key
static inline uint64_t rng_next(uint64_t *s) {
    *s += 0x9e3779b97f4a7c15ull;
    return rng_mix(*s);
}

// uniform in [0, n) (Lemire multiply-shift; bias < n/2^64)
static inline uint64_t rng_below(uint64_t *s, uint64_t n) {
    return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

// uniform in [0, 1) with 53 bits
static inline double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

// one draw for a key: uniform [0,1)
static inline double rng_unit_key(uint64_t seed, uint64_t epoch, uint64_t id, uint64_t purpose) {
    uint64_t s = rng_key(seed, epoch, id, purpose);
    return rng_unit(&s);
}
