// preprocess.h — decoded image → training tensors.
// Target: resize (bicubic) to cover the bucket, crop (random or centre), optional horizontal
// flip, [-1, 1], CHW. Reference (spec §2.1–2.2): stretch to a square of side max(w, h), then one
// R² view and the (2R)² resize cut into TL, TR, BL, BR R² crops; SigLIP (x/255−0.5)/0.5 and
// DINOv2 (x/255−mean)/std with ImageNet mean/std. Images with alpha are composited on white
// first. Intermediate images are 8-bit, as PIL stores them (data/resize.h).
#pragma once
#include <stdint.h>
#include "data/image.h"
#include "data/resize.h"

typedef struct {
    resize_scratch rs;
    uint8_t *src; size_t src_cap; // [h, w, 3] the decoded image on white
    uint8_t *sq;  size_t sq_cap;  // [S, S, 3] the stretched square
    uint8_t *v;   size_t v_cap;   // [2R, 2R, 3] / [H, W, 3] resize output
    image dec;  size_t dec_cap;   // decoded 8-bit pixels
} preprocess_scratch;

void preprocess_scratch_free(preprocess_scratch *s);
// im (RGB or RGBA, 8-bit) → s->src 8-bit RGB on white. 0 or -1 (memory).
int preprocess_load(const image *im, preprocess_scratch *s);
// From s->src ([h, w, 3]): dst [3, H, W] in [-1, 1]. ux, uy in [0,1) pick the crop (0.5 = centre);
// crop[4] = (scaled w, scaled h, x, y). 0 or -1.
int preprocess_target(preprocess_scratch *s, int w, int h, int W, int H, double ux, double uy, int flip, float *dst, int32_t crop[4]);
// From s->src ([h, w, 3]): siglip, dino [5, 3, R, R] each (views: full, TL, TR, BL, BR). 0 or -1.
int preprocess_reference(preprocess_scratch *s, int w, int h, int R, float *siglip, float *dino);
