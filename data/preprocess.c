// preprocess.c — see preprocess.h.
#include "data/preprocess.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float dino_mean[3] = {0.485f, 0.456f, 0.406f}, dino_std[3] = {0.229f, 0.224f, 0.225f};

static int grow(uint8_t **p, size_t *cap, size_t n) {
    if (*cap >= n) return 0;
    uint8_t *q = realloc(*p, n);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static inline uint8_t q8(float v) {
    v += 0.5f;
    return v <= 0.f ? 0 : v >= 255.f ? 255 : (uint8_t)v;
}

void preprocess_scratch_free(preprocess_scratch *s) {
    resize_scratch_free(&s->rs);
    free(s->src); free(s->sq); free(s->v);
    free(s->dec.px);
    memset(s, 0, sizeof *s);
}

int preprocess_load(const image *im, preprocess_scratch *s) {
    size_t n = (size_t)im->w * im->h;
    if (grow(&s->src, &s->src_cap, n * 3)) return -1;
    const uint8_t *p = im->px;
    uint8_t *o = s->src;
    if (im->c == 3) {
        memcpy(o, p, 3 * n);
    } else {
        for (size_t i = 0; i < n; i++, p += 4, o += 3) {
            if (p[3] == 255) { o[0] = p[0]; o[1] = p[1]; o[2] = p[2]; continue; }
            float a = p[3] * (1.f / 255.f), w = 255.f * (1.f - a);
            o[0] = q8(p[0] * a + w); o[1] = q8(p[1] * a + w); o[2] = q8(p[2] * a + w);
        }
    }
    return 0;
}

int preprocess_target(preprocess_scratch *s, int w, int h, int W, int H, double ux, double uy, int flip, float *dst, int32_t crop[4]) {
    double scale = fmax((double)W / w, (double)H / h);
    int rw = (int)lround(w * scale), rh = (int)lround(h * scale);
    if (rw < W) rw = W;
    if (rh < H) rh = H;
    int x0 = (int)floor(ux * (rw - W + 1)), y0 = (int)floor(uy * (rh - H + 1));
    if (x0 > rw - W) x0 = rw - W;
    if (y0 > rh - H) y0 = rh - H;
    crop[0] = rw; crop[1] = rh; crop[2] = x0; crop[3] = y0;
    if (grow(&s->v, &s->v_cap, (size_t)W * H * 3)) return -1;
    if (resize_u8(s->src, w, h, 3, rw, rh, x0, y0, W, H, s->v, &s->rs)) return -1;
    size_t plane = (size_t)W * H;
    for (int y = 0; y < H; y++) {
        const uint8_t *row = s->v + (size_t)y * W * 3;
        for (int x = 0; x < W; x++) {
            int sx = flip ? W - 1 - x : x;
            for (int c = 0; c < 3; c++) dst[c * plane + (size_t)y * W + x] = row[3 * sx + c] * (1.f / 127.5f) - 1.f;
        }
    }
    return 0;
}

// one R×R view from rows/cols (x0, y0) of img [side, side, 3] → view v of siglip/dino
static void write_view(const uint8_t *img, int side, int x0, int y0, int R, float *sig, float *dino) {
    size_t plane = (size_t)R * R;
    for (int y = 0; y < R; y++) {
        const uint8_t *row = img + ((size_t)(y0 + y) * side + x0) * 3;
        for (int x = 0; x < R; x++)
            for (int c = 0; c < 3; c++) {
                float v = row[3 * x + c] * (1.f / 255.f);
                sig[c * plane + (size_t)y * R + x] = (v - 0.5f) * 2.f;
                dino[c * plane + (size_t)y * R + x] = (v - dino_mean[c]) / dino_std[c];
            }
    }
}

int preprocess_reference(preprocess_scratch *s, int w, int h, int R, float *siglip, float *dino) {
    int S = w > h ? w : h;
    const uint8_t *sq = s->src;
    if (w != h) {  // PIL: subject_image.resize((S, S)) — stretch, bicubic
        if (grow(&s->sq, &s->sq_cap, (size_t)S * S * 3)) return -1;
        if (resize_u8(s->src, w, h, 3, S, S, 0, 0, S, S, s->sq, &s->rs)) return -1;
        sq = s->sq;
    }
    size_t view = (size_t)3 * R * R;
    if (grow(&s->v, &s->v_cap, (size_t)4 * R * R * 3)) return -1;
    // low: S² → R²
    if (resize_u8(sq, S, S, 3, R, R, 0, 0, R, R, s->v, &s->rs)) return -1;
    write_view(s->v, R, 0, 0, R, siglip, dino);
    // high: S² → (2R)², crops TL, TR, BL, BR
    if (resize_u8(sq, S, S, 3, 2 * R, 2 * R, 0, 0, 2 * R, 2 * R, s->v, &s->rs)) return -1;
    static const int off[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    for (int k = 0; k < 4; k++) write_view(s->v, 2 * R, off[k][0] * R, off[k][1] * R, R, siglip + (k + 1) * view, dino + (k + 1) * view);
    return 0;
}
