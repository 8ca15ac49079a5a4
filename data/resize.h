// resize.h — separable bicubic resampling of 8-bit HWC images as PIL's Image.resize(BICUBIC)
// does it: a = -0.5, support widened by the scale when shrinking, weights normalised, the
// horizontal pass first into an 8-bit image, then the vertical pass, each rounded and clamped
// (PIL uses fixed-point weights: results may differ by one level). A pass whose axis keeps its
// size is skipped, as in PIL. A window of the full output can be computed alone (crops).
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *tmp; size_t tmp_cap;  // intermediate rows (8-bit, as PIL)
    float *acc;  size_t acc_cap;   // one output row of accumulators
    float *wx;   size_t wx_cap;    // horizontal weights [ww, kx]
    float *wy;   size_t wy_cap;    // vertical weights [wh, ky]
    int *ix;     size_t ix_cap;    // horizontal first tap per output column [ww]
    int *iy;     size_t iy_cap;    // vertical first tap per output row [wh]
} resize_scratch;

// src: [sh, sw, c]; conceptual output [fh, fw, c]; writes the window rows y0..y0+wh-1,
// columns x0..x0+ww-1 into dst: [wh, ww, c]. Returns 0, -1 on allocation failure.
int resize_u8(const uint8_t *src, int sw, int sh, int c, int fw, int fh, int x0, int y0, int ww, int wh, uint8_t *dst,
              resize_scratch *s);
void resize_scratch_free(resize_scratch *s);
