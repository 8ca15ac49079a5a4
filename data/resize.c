// resize.c — PIL-style antialiased bicubic, separable, 8-bit images with f32 accumulation.
#pragma GCC optimize("O3")
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

static inline uint8_t clamp8(float v) {
    v += 0.5f;
    return v <= 0.f ? 0 : v >= 255.f ? 255 : (uint8_t)v;
}

int resize_u8(const uint8_t *src, int sw, int sh, int c, int fw, int fh, int x0, int y0, int ww, int wh, uint8_t *dst, resize_scratch *s) {
    int hpass = !(fw == sw && x0 == 0 && ww == sw), vpass = !(fh == sh && y0 == 0 && wh == sh);
    int kx = 0, ky = 0, kxstride = 0, kystride = 0;
    if (hpass) { kx = coeffs(sw, fw, x0, ww, &s->wx, &s->wx_cap, &s->ix, &s->ix_cap); if (kx < 0) return -1; kxstride = kx; if (kx > sw) kx = sw; }
    if (vpass) { ky = coeffs(sh, fh, y0, wh, &s->wy, &s->wy_cap, &s->iy, &s->iy_cap); if (ky < 0) return -1; kystride = ky; if (ky > sh) ky = sh; }
    // source rows the vertical pass needs
    int r0 = vpass ? s->iy[0] : y0, r1 = vpass ? s->iy[wh - 1] + ky : y0 + wh;
    if (r1 > sh) r1 = sh;
    int rows = r1 - r0;
    size_t rowlen = (size_t)ww * c;
    const uint8_t *mid;  // [rows, ww, c]: horizontal result (or the source window)
    size_t midstride;
    if (hpass) {
        uint8_t *t = vpass ? (grow((void **)&s->tmp, &s->tmp_cap, (size_t)rows * rowlen, 1) ? NULL : s->tmp) : dst;
        if (!t) return -1;
        for (int y = 0; y < rows; y++) {
            const uint8_t *in = src + (size_t)(r0 + y) * sw * c;
            uint8_t *out = t + (size_t)y * rowlen;
            for (int x = 0; x < ww; x++) {
                const float *wt = s->wx + (size_t)x * kxstride;
                const uint8_t *p = in + (size_t)s->ix[x] * c;
                if (c == 3) {
                    float a0 = 0, a1 = 0, a2 = 0;
                    for (int k = 0; k < kx; k++) { float w = wt[k]; a0 += w * p[3 * k]; a1 += w * p[3 * k + 1]; a2 += w * p[3 * k + 2]; }
                    out[3 * x] = clamp8(a0); out[3 * x + 1] = clamp8(a1); out[3 * x + 2] = clamp8(a2);
                } else {
                    for (int ch = 0; ch < c; ch++) {
                        float a = 0;
                        for (int k = 0; k < kx; k++) a += wt[k] * p[c * k + ch];
                        out[c * x + ch] = clamp8(a);
                    }
                }
            }
        }
        if (!vpass) return 0;
        mid = t;
        midstride = rowlen;
    } else {
        mid = src + (size_t)r0 * sw * c + (size_t)x0 * c;
        midstride = (size_t)sw * c;
        if (!vpass) {
            for (int y = 0; y < wh; y++) memcpy(dst + (size_t)y * rowlen, mid + (size_t)y * midstride, rowlen);
            return 0;
        }
    }
    if (grow((void **)&s->acc, &s->acc_cap, rowlen, sizeof(float))) return -1;
    float *acc = s->acc;
    for (int y = 0; y < wh; y++) {
        const float *wt = s->wy + (size_t)y * kystride;
        const uint8_t *base = mid + (size_t)(s->iy[y] - r0) * midstride;
        for (size_t i = 0; i < rowlen; i++) acc[i] = 0.f;
        for (int k = 0; k < ky; k++) {
            float w = wt[k];
            if (w == 0.f) continue;
            const uint8_t *p = base + (size_t)k * midstride;
            for (size_t i = 0; i < rowlen; i++) acc[i] += w * (float)p[i];
        }
        uint8_t *out = dst + (size_t)y * rowlen;
        for (size_t i = 0; i < rowlen; i++) out[i] = clamp8(acc[i]);
    }
    return 0;
}

void resize_scratch_free(resize_scratch *s) {
    free(s->tmp); free(s->acc); free(s->wx); free(s->wy); free(s->ix); free(s->iy);
    memset(s, 0, sizeof *s);
}
