// sample_io.h — images in and out of the sampler: a reference image as the towers' views (what
// the loader makes), a generated image as 8 bits and as a PNG.
// defines: eval_reference_views, eval_image_from_tensor, eval_write_png
#pragma once
#include "autograd/tensor.h"
#include "data/image.h"

// the loader's reference views of im: square by stretching, the full view and four crops, per
// tower ([5, 3, R, R] each, malloc'd into *sig and *dino). 0, or -1 with err.
int eval_reference_views(const image *im, int R, float **sig, float **dino, char *err, size_t errlen);
// image b of a host f32 [B, 3, H, W] tensor in [-1, 1] as 8-bit RGB (out->px malloc'd). 0 or -1.
int eval_image_from_tensor(const cm_tensor *img, int b, image *out, char *err, size_t errlen);
// image b of the same as a PNG file. 0, or -1 with err.
int eval_write_png(const cm_tensor *img, int b, const char *path, char *err, size_t errlen);
