// image.h — 8-bit images: load PNG / JPEG / WebP (alpha kept), encode WebP, write PNG/JPEG,
// and an 8-bit bicubic resize for the builder's --max-side.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h, c;      // c = 3 (RGB) or 4 (RGBA)
    uint8_t *px;      // [h, w, c] row-major, interleaved
} image;

// Decodes by content (PNG, JPEG or WebP signature), sides up to 65535 and 2^28 pixels (checked on
// the header); a JPEG is turned upright by its EXIF
// orientation. 0, or -1 with err naming what failed.
int image_decode_mem(const uint8_t *data, size_t len, image *out, char *err, size_t errlen);
int image_load(const char *path, image *out, char *err, size_t errlen);
// WebP only, into out (px reallocated when too small; *cap tracks its capacity). keep_alpha=0
// decodes RGB. 0 or -1.
int image_webp_decode_into(const uint8_t *data, size_t len, int keep_alpha, image *out, size_t *cap);
// WebP encode (RGB or RGBA by im->c). quality 0..100, lossless 0/1. malloc'd (free with free()).
uint8_t *image_webp_encode(const image *im, int quality, int lossless, size_t *len);
// PNG through PATH.tmp (fsync, rename): PATH is the new image whole or, on a failure (err names the
// cause: ENOSPC, EFBIG), still what it was. 0, or -1 with err.
int image_write_png(const char *path, const image *im, char *err, size_t errlen);
int image_write_jpeg(const char *path, const image *im, int quality, char *err, size_t errlen);
// Bicubic (PIL-style antialiased, a = -0.5) resize to dw x dh; dst->px malloc'd.
// RGBA is resampled with premultiplied alpha (as Pillow does).
int image_resize(const image *src, int dw, int dh, image *dst);
// 1 when c == 4 and some alpha < 255
int image_has_alpha(const image *im);
void image_free(image *im);
