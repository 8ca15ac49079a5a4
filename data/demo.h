// demo.h — a synthetic character dataset drawn procedurally (no downloads): each character is a
// mascot with its own body shape, colours, eyes, mouth and accessory, drawn in several poses,
// scales, positions, aspect ratios and backgrounds; captions name the character and the pose.
// Deterministic from the seed. Built through the same builder as real data.
#pragma once
#include <stdint.h>
#include "data/build.h"

typedef struct {
    uint64_t seed;       // default 0
    int characters;      // default 12
    int per_character;   // default 6
    int size;            // longer image side in pixels, default 128
} demo_options;

demo_options demo_options_default(void);
// Draws view `view` of character `character`: *out RGB 8-bit; captions[2] malloc'd strings.
int demo_draw(const demo_options *d, int character, int view, image *out, char *captions[2], char **name);
// Builds the dataset `out` (lossless WebP unless o->quality is set by the caller).
int demo_build(const char *out, const demo_options *d, const build_options *o, build_report *r, char *err, size_t errlen);
