// buckets.h — aspect-ratio buckets: (W, H) in `step`-pixel multiples with W*H close to (and not
// above) resolution², both orientations, aspect long/short ≤ max_aspect. Each sample goes to the
// bucket nearest its aspect ratio (|log(w/h) − log(W/H)| smallest; ties → the earlier bucket).
#pragma once
#include <stdint.h>

#define BUCKETS_MAX 254

// Fills out[n][2] sorted by W/H ascending; where more than `max` fit, the squarest max (the most
// elongated are left out). Returns n (>= 1), or -1 if no bucket fits.
int buckets_make(int resolution, int step, double max_aspect, int (*out)[2], int max);
int buckets_nearest(const int (*b)[2], int n, int w, int h);
// the factor a w x h image is scaled by to cover bucket b (preprocess_target's; > 1: enlarged)
double buckets_cover_scale(const int b[2], int w, int h);
// an image enlarged by more than this is counted as upscaled (a few % is resampling, not blur)
#define BUCKETS_UPSCALE_NOTED 1.05
// FNV-1a hash of the table (goes into the resume state)
uint64_t buckets_hash(const int (*b)[2], int n);

// What a set of images makes of a bucket table: samples per bucket, how many are enlarged to cover
// theirs (by more than BUCKETS_UPSCALE_NOTED) and by how much at most, their shorter sides. Shared
// by `cameo data stats` and the trainer's stage check, so both count alike.
typedef struct {
    uint64_t count[BUCKETS_MAX];  // [n] samples nearest each bucket
    uint64_t all, upscaled;       // samples tallied; of them enlarged to their bucket
    double most;                  // the largest cover scale (1 when none is enlarged)
    int short_min, short_max;     // the images' shorter side (65536, 0 when none tallied)
} buckets_tally;
void buckets_tally_init(buckets_tally *t);
// adds samples [first, first + n) of sizes[][2] (stored width, height) to t, with table b[nb]
void buckets_tally_add(buckets_tally *t, const int (*b)[2], int nb, const uint16_t *sizes, uint64_t first, uint64_t n);
