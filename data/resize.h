// resize.h — separable bicubic resampling of 8-bit HWC images exactly as Pillow's
// Image.resize(BICUBIC) does it: a = -0.5, support widened by the scale when shrinking, weights
// normalised in double and rounded to 22-bit fixed point (PRECISION_BITS), the horizontal pass
// first into an 8-bit image, then the vertical pass, each accumulated in int32 from a half-unit
// bias, shifted and clamped. A pass whose axis keeps its size is skipped, as in Pillow. A window
// of the full output can be computed alone (crops); it equals the same window of the full
// resize. Filter tables are cached per (input, output) axis size in the scratch. The inner
// loops have SSE4.1 and AVX2 versions picked at run time; every path gives identical bytes.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define RESIZE_TABLES 16

typedef struct {
    int in, out;    // key (in == 0: unused)
    int kk;         // weights per output (stride), >= Pillow's ksize, a multiple of 2
    int32_t *w;     // [out, kk] fixed-point weights, taps lo..lo+n-1 (the rest 0)
    int *lo, *n;    // [out] first source index, taps
    int *hfirst;    // [out] first index for the SIMD horizontal pass (hfirst + kk <= in)
    int32_t *hx;    // [out, kk, 4] those weights shifted to hfirst, each repeated 4 times
} resize_table;

typedef struct {
    resize_table t[RESIZE_TABLES];
    unsigned next;                  // round-robin replacement
    uint8_t *tmp; size_t tmp_cap;   // horizontal-pass rows (8-bit, as Pillow)
    uint8_t *row; size_t row_cap;   // padded copy of the last source row (SIMD over-read)
} resize_scratch;

// src: [sh, sw, c]; conceptual output [fh, fw, c]; writes the window rows y0..y0+wh-1,
// columns x0..x0+ww-1 into dst: [wh, ww, c]. Returns 0, -1 on allocation failure.
int resize_u8(const uint8_t *src, int sw, int sh, int c, int fw, int fh, int x0, int y0, int ww, int wh, uint8_t *dst,
              resize_scratch *s);
void resize_scratch_free(resize_scratch *s);

// Highest instruction set the kernels may use: 0 scalar, 1 SSE4.1, 2 AVX2 (the default is the
// best this CPU runs); a negative level changes nothing. Returns the level in effect. For tests
// and benchmarks (data/preprocess.c follows it for its AVX2 conversions).
int resize_set_isa(int max_level);
