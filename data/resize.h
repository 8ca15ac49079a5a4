// resize.h — separable bicubic resampling on float HWC images, as PIL's Image.resize(BICUBIC)
// does it (a = -0.5, support widened by the scale when shrinking, weights normalised), but in
// f32 throughout (PIL rounds to 8 bits between passes: differences stay within ±1 level).
// A window of the full output can be computed alone (used for crops).
#pragma once
#include <stddef.h>

typedef struct {
    float *tmp;  size_t tmp_cap;   // intermediate rows
    float *wx;   size_t wx_cap;    // horizontal weights [ww, kx]
    float *wy;   size_t wy_cap;    // vertical weights [wh, ky]
    int *ix;     size_t ix_cap;    // horizontal first tap per output column [ww]
    int *iy;     size_t iy_cap;    // vertical first tap per output row [wh]
} resize_scratch;

// src: [sh, sw, c]; conceptual output [fh, fw, c]; writes the window rows y0..y0+wh-1,
// columns x0..x0+ww-1 into dst: [wh, ww, c]. Returns 0, -1 on allocation failure.
int resize_f32(const float *src, int sw, int sh, int c, int fw, int fh, int x0, int y0, int ww, int wh, float *dst,
               resize_scratch *s);
void resize_scratch_free(resize_scratch *s);
