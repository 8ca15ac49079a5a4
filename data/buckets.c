// buckets.c — bucket table and nearest-aspect assignment.
#include "data/buckets.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "data/checksum.h"

static int by_aspect(const void *a, const void *b) {
    const int *x = a, *y = b;
    double ax = (double)x[0] / x[1], ay = (double)y[0] / y[1];
    return ax < ay ? -1 : ax > ay ? 1 : x[0] - y[0];
}

int buckets_make(int resolution, int step, double max_aspect, int (*out)[2], int max) {
    if (resolution <= 0 || step <= 0 || max_aspect < 1.0) return -1;
    long area = (long)resolution * resolution;
    int n = 0;
    // landscape-or-square buckets W >= H, then their transposes; from the squarest down, so a table
    // cut at `max` loses the most elongated buckets, never the square ones most images need
    int h0 = step;
    while ((long)(h0 + step) * (h0 + step) <= area) h0 += step;
    for (int h = h0; h >= step && (long)h * h <= area; h -= step) {
        int w = (int)(area / h / step) * step;
        if (w < h || (double)w / h > max_aspect + 1e-9) continue;
        int dup = 0;
        for (int i = 0; i < n; i++) if (out[i][0] == w && out[i][1] == h) dup = 1;
        if (dup) continue;
        if (n + 2 > max) break;
        out[n][0] = w; out[n][1] = h; n++;
        if (w != h) { out[n][0] = h; out[n][1] = w; n++; }
    }
    if (!n) return -1;
    qsort(out, (size_t)n, sizeof out[0], by_aspect);
    return n;
}

int buckets_nearest(const int (*b)[2], int n, int w, int h) {
    double a = log((double)w / h), best = 1e30;
    int bi = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(a - log((double)b[i][0] / b[i][1]));
        if (d < best - 1e-12) { best = d; bi = i; }
    }
    return bi;
}

uint64_t buckets_hash(const int (*b)[2], int n) {
    uint64_t h = HASH64_INIT;
    for (int i = 0; i < n; i++) { int32_t v[2] = {b[i][0], b[i][1]}; h = hash64_update(h, v, sizeof v); }
    return h;
}

double buckets_cover_scale(const int b[2], int w, int h) {
    if (w <= 0 || h <= 0) return 1.0;
    double sx = (double)b[0] / w, sy = (double)b[1] / h;
    return sx > sy ? sx : sy;
}

void buckets_tally_init(buckets_tally *t) {
    memset(t, 0, sizeof *t);
    t->most = 1.0;
    t->short_min = 65536;
}

void buckets_tally_add(buckets_tally *t, const int (*b)[2], int nb, const uint16_t *sizes, uint64_t first, uint64_t n) {
    for (uint64_t i = first; i < first + n; i++) {
        int w = sizes[2 * i], h = sizes[2 * i + 1], k = buckets_nearest(b, nb, w, h), s = w < h ? w : h;
        double f = buckets_cover_scale(b[k], w, h);
        t->count[k]++;
        t->all++;
        if (f > BUCKETS_UPSCALE_NOTED) t->upscaled++;
        if (f > t->most) t->most = f;
        if (s < t->short_min) t->short_min = s;
        if (s > t->short_max) t->short_max = s;
    }
}
