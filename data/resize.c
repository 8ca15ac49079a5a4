// resize.c — PIL-style antialiased bicubic, separable, f32.
#include "data/resize.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double cubic(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (*cap >= need) return 0;
    void *q = realloc(*p, need * elem);
    if (!q) return -1;
    *p = q;
    *cap = need;
    return 0;
}

// weights for outputs o0..o0+n-1 of an in→out resize; returns taps per output (k)
static int coeffs(int in, int out, int o0, int n, float **w, size_t *wcap, int **first, size_t *fcap) {
    double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale, support = 2.0 * fs;
    int k = (int)ceil(support) * 2 + 1;
    if (grow((void **)w, wcap, (size_t)n * k, sizeof(float)) || grow((void **)first, fcap, (size_t)n, sizeof(int))) return -1;
    for (int i = 0; i < n; i++) {
        double center = (o0 + i + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int taps = hi - lo;
        if (taps > k) taps = k;
        double ww[64 * 4 + 8], sum = 0;
        double *wp = taps <= (int)(sizeof ww / sizeof ww[0]) ? ww : malloc(sizeof(double) * taps);
        for (int t = 0; t < taps; t++) { wp[t] = cubic((t + lo - center + 0.5) / fs); sum += wp[t]; }
        float *dst = *w + (size_t)i * k;
        for (int t = 0; t < k; t++) dst[t] = t < taps ? (float)(sum != 0 ? wp[t] / sum : 0) : 0.f;
        // taps beyond `in` are zero-weighted; clamp the start so lo + k never reads past the input
        if (lo + k > in) {
            int shift = lo + k - in;
            if (shift > lo) shift = lo;
            memmove(dst + shift, dst, sizeof(float) * (k - shift));
            for (int t = 0; t < shift; t++) dst[t] = 0.f;
            lo -= shift;
        }
        (*first)[i] = lo;
        if (wp != ww) free(wp);
    }
    return k;
}

int resize_f32(const float *src, int sw, int sh, int c, int fw, int fh, int x0, int y0, int ww, int wh, float *dst, resize_scratch *s) {
    int kx = coeffs(sw, fw, x0, ww, &s->wx, &s->wx_cap, &s->ix, &s->ix_cap);
    int ky = coeffs(sh, fh, y0, wh, &s->wy, &s->wy_cap, &s->iy, &s->iy_cap);
    if (kx < 0 || ky < 0) return -1;
    int kxstride = kx, kystride = ky;  // row length of the weight tables
    if (kx > sw) kx = sw;  // a tap window wider than the input: the extra weights are zero
    if (ky > sh) ky = sh;
    // source rows needed by the vertical pass
    int r0 = s->iy[0], r1 = s->iy[wh - 1] + ky;
    if (r1 > sh) r1 = sh;
    int rows = r1 - r0;
    if (grow((void **)&s->tmp, &s->tmp_cap, (size_t)rows * ww * c, sizeof(float))) return -1;
    // horizontal pass: rows r0..r1-1 → tmp [rows, ww, c]
    for (int y = 0; y < rows; y++) {
        const float *in = src + (size_t)(r0 + y) * sw * c;
        float *out = s->tmp + (size_t)y * ww * c;
        for (int x = 0; x < ww; x++) {
            const float *wt = s->wx + (size_t)x * kxstride;
            const float *p = in + (size_t)s->ix[x] * c;
            if (c == 3) {
                float a0 = 0, a1 = 0, a2 = 0;
                for (int t = 0; t < kx; t++) { a0 += wt[t] * p[3 * t]; a1 += wt[t] * p[3 * t + 1]; a2 += wt[t] * p[3 * t + 2]; }
                out[3 * x] = a0; out[3 * x + 1] = a1; out[3 * x + 2] = a2;
            } else {
                for (int ch = 0; ch < c; ch++) {
                    float a = 0;
                    for (int t = 0; t < kx; t++) a += wt[t] * p[c * t + ch];
                    out[c * x + ch] = a;
                }
            }
        }
    }
    // vertical pass: tmp → dst [wh, ww, c]
    size_t rowlen = (size_t)ww * c;
    for (int y = 0; y < wh; y++) {
        const float *wt = s->wy + (size_t)y * kystride;
        float *out = dst + (size_t)y * rowlen;
        const float *base = s->tmp + (size_t)(s->iy[y] - r0) * rowlen;
        for (size_t i = 0; i < rowlen; i++) out[i] = 0.f;
        for (int t = 0; t < ky; t++) {
            float w = wt[t];
            if (w == 0.f) continue;
            const float *p = base + (size_t)t * rowlen;
            for (size_t i = 0; i < rowlen; i++) out[i] += w * p[i];
        }
    }
    return 0;
}

void resize_scratch_free(resize_scratch *s) {
    free(s->tmp); free(s->wx); free(s->wy); free(s->ix); free(s->iy);
    memset(s, 0, sizeof *s);
}
