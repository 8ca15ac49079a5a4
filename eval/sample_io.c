// sample_io.c — see sample_io.h
#include "eval/sample_io.h"
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include "data/preprocess.h"

int eval_reference_views(const image *im, int R, float **sig, float **dino, char *err, size_t errlen) {
    preprocess_scratch s = {0};
    *sig = malloc(sizeof(float) * 5 * 3 * (size_t)R * R);
    *dino = malloc(sizeof(float) * 5 * 3 * (size_t)R * R);
    int rc = (!*sig || !*dino || preprocess_load(im, &s) || preprocess_reference(&s, im->w, im->h, R, *sig, *dino)) ? -1 : 0;
    if (rc) {
        snprintf(err, errlen, "could not prepare the reference views of a %dx%d image (out of memory?)", im->w, im->h);
        free(*sig), free(*dino);
        *sig = *dino = NULL;
    }
    preprocess_scratch_free(&s);
    return rc;
}

int eval_image_from_tensor(const cm_tensor *img, int b, image *out, char *err, size_t errlen) {
    if (img->ndim != 4 || img->shape[1] != 3 || img->dtype != CM_F32 || img->storage->dev.type != CM_CPU || b < 0 ||
        b >= img->shape[0] || !tensor_is_contiguous(img)) {
        snprintf(err, errlen, "eval_image_from_tensor: want a host f32 [B, 3, H, W] tensor and b < B");
        return -1;
    }
    int H = (int)img->shape[2], W = (int)img->shape[3];
    const float *p = (const float *)tensor_data(img) + (int64_t)b * 3 * H * W;
    *out = (image){W, H, 3, malloc((size_t)W * H * 3)};
    if (!out->px) {
        snprintf(err, errlen, "out of memory for a %dx%d image", W, H);
        return -1;
    }
    int64_t bad = 0;  // NaN / inf: a diverged adapter or sampler; no picture to save or score
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < H * W; i++) {
            float v = (p[c * H * W + i] + 1.0f) * 127.5f;  // [-1, 1] -> [0, 255], rounded
            if (!isfinite(v)) { bad++; v = 0; }
            out->px[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
        }
    if (bad) {
        snprintf(err, errlen, "the decoded image has %lld non-finite value(s) of %lld (NaN or inf: the adapter's weights or "
                 "the sampling diverged)", (long long)bad, (long long)3 * H * W);
        free(out->px);
        out->px = NULL;
        return -1;
    }
    return 0;
}

int eval_write_png(const cm_tensor *img, int b, const char *path, char *err, size_t errlen) {
    image out = {0};
    if (eval_image_from_tensor(img, b, &out, err, errlen)) return -1;
    int rc = image_write_png(path, &out, err, errlen);
    free(out.px);
    return rc;
}
