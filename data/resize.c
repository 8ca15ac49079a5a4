// resize.c — Pillow's antialiased bicubic (Resample.c, 8 bpc): fixed-point weight tables cached
// per axis size, horizontal then vertical pass, int32 accumulation; scalar, SSE4.1 and AVX2
// kernels with identical results.
#include "data/resize.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RESIZE_X86 1
#else
#define RESIZE_X86 0
#endif

#define PREC 22  // Pillow's PRECISION_BITS for 8-bit images (32 - 8 - 2)
#define HALF (1 << (PREC - 1))
#define HPAD 16  // bytes the SIMD horizontal kernels may read past 3 * (hfirst + kk)

static double bicubic(double x) {  // Pillow's bicubic_filter, a = -0.5
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static inline uint8_t clip8(int32_t v) {
    v >>= PREC;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static void table_free(resize_table *t) {
    free(t->w); free(t->lo); free(t->n); free(t->hfirst); free(t->hx);
    memset(t, 0, sizeof *t);
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for an in → out axis (box = whole input)
static int table_build(resize_table *t, int in, int out) {
    double scale = (double)in / out, filterscale = scale < 1.0 ? 1.0 : scale, support = 2.0 * filterscale, ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1, kk = (ksize + 1) & ~1;
    t->w = calloc((size_t)out * kk, sizeof(int32_t));
    t->lo = malloc(sizeof(int) * out);
    t->n = malloc(sizeof(int) * out);
    double *k = malloc(sizeof(double) * ksize);
    int simd = kk <= in;  // the SIMD horizontal pass reads kk whole pixels from hfirst
    if (simd) { t->hfirst = malloc(sizeof(int) * out); t->hx = calloc((size_t)out * kk * 4, sizeof(int32_t)); }
    if (!t->w || !t->lo || !t->n || !k || (simd && (!t->hfirst || !t->hx))) { free(k); table_free(t); return -1; }
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize;
        for (int x = 0; x < xmax; x++) { k[x] = bicubic((x + xmin - center + 0.5) * ss); ww += k[x]; }
        int32_t *w = t->w + (size_t)xx * kk;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? k[x] / ww : k[x];
            w[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC)) : (int32_t)(0.5 + v * (1 << PREC));
        }
        t->lo[xx] = xmin;
        t->n[xx] = xmax;
        if (simd) {
            int f = xmin + kk > in ? in - kk : xmin, sh = xmin - f;
            t->hfirst[xx] = f;
            int32_t *h = t->hx + (size_t)xx * kk * 4;
            for (int x = 0; x < xmax; x++)
                for (int j = 0; j < 4; j++) h[4 * (sh + x) + j] = w[x];
        }
    }
    free(k);
    t->in = in;
    t->out = out;
    t->kk = kk;
    return 0;
}

// keep: a table the caller still holds (the other axis of the same resize), never the victim —
// evicting it would leave the caller's pointer on a table for other sizes
static resize_table *table_get(resize_scratch *s, int in, int out, const resize_table *keep) {
    for (int i = 0; i < RESIZE_TABLES; i++)
        if (s->t[i].in == in && s->t[i].out == out) return &s->t[i];
    resize_table *t = &s->t[s->next++ % RESIZE_TABLES];
    if (t == keep) t = &s->t[s->next++ % RESIZE_TABLES];
    table_free(t);
    return table_build(t, in, out) ? NULL : t;
}

static int grow(uint8_t **p, size_t *cap, size_t need) {
    if (*cap >= need) return 0;
    uint8_t *q = realloc(*p, need);
    if (!q) return -1;
    *p = q;
    *cap = need;
    return 0;
}

// ---- horizontal pass: one source row → outputs x0..x0+ww-1 ----

static void h_scalar(const uint8_t *restrict in, uint8_t *restrict out, int c, int ww, const resize_table *t, int x0) {
    const int kk = t->kk;
    for (int x = 0; x < ww; x++) {
        const int32_t *w = t->w + (size_t)(x0 + x) * kk;
        const uint8_t *p = in + (size_t)t->lo[x0 + x] * c;
        int n = t->n[x0 + x];
        if (c == 3) {
            int32_t s0 = HALF, s1 = HALF, s2 = HALF;
            for (int k = 0; k < n; k++) { s0 += p[3 * k] * w[k]; s1 += p[3 * k + 1] * w[k]; s2 += p[3 * k + 2] * w[k]; }
            out[3 * x] = clip8(s0); out[3 * x + 1] = clip8(s1); out[3 * x + 2] = clip8(s2);
        } else {
            for (int ch = 0; ch < c; ch++) {
                int32_t s = HALF;
                for (int k = 0; k < n; k++) s += p[c * k + ch] * w[k];
                out[c * x + ch] = clip8(s);
            }
        }
    }
}

// ---- vertical pass: n rows (base, base + stride, ...) → one output row of len bytes ----

static void v_scalar(const uint8_t *restrict base, size_t stride, const int32_t *restrict w, int n, uint8_t *restrict out, size_t i, size_t len) {
    for (; i < len; i++) {
        int32_t s = HALF;
        for (int k = 0; k < n; k++) s += base[(size_t)k * stride + i] * w[k];
        out[i] = clip8(s);
    }
}

#if RESIZE_X86
// RGB: each tap's pixel as 4 int32 lanes (the 4th byte belongs to the next pixel: a lane that
// is computed and dropped); the weights come pre-broadcast in t->hx.
__attribute__((target("sse4.1"))) static void h3_sse41(const uint8_t *restrict in, uint8_t *restrict out, int ww, const resize_table *t, int x0) {
    const int kk = t->kk;
    const __m128i half = _mm_set1_epi32(HALF);
    for (int x = 0; x < ww; x++) {
        const uint8_t *p = in + 3 * (size_t)t->hfirst[x0 + x];
        const __m128i *w = (const __m128i *)(t->hx + (size_t)(x0 + x) * kk * 4);
        __m128i a = half, b = _mm_setzero_si128();
        for (int k = 0; k < kk; k += 2) {
            int32_t q0, q1;
            memcpy(&q0, p + 3 * k, 4);
            memcpy(&q1, p + 3 * k + 3, 4);
            a = _mm_add_epi32(a, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(q0)), _mm_loadu_si128(w + k)));
            b = _mm_add_epi32(b, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(q1)), _mm_loadu_si128(w + k + 1)));
        }
        a = _mm_srai_epi32(_mm_add_epi32(a, b), PREC);
        a = _mm_packus_epi16(_mm_packs_epi32(a, a), a);
        int32_t v = _mm_cvtsi128_si32(a);
        if (x + 1 < ww) memcpy(out + 3 * x, &v, 4);
        else memcpy(out + 3 * x, &v, 3);
    }
}

__attribute__((target("avx2"))) static void h3_avx2(const uint8_t *restrict in, uint8_t *restrict out, int ww, const resize_table *t, int x0) {
    const int kk = t->kk;
    const __m256i lo = _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, -1, -1, -1, -1, 3, -1, -1, -1, 4, -1, -1, -1, 5, -1, -1, -1, -1, -1, -1, -1);
    const __m256i hi = _mm256_setr_epi8(6, -1, -1, -1, 7, -1, -1, -1, 8, -1, -1, -1, -1, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1, -1, -1, -1, -1);
    const __m128i half = _mm_set1_epi32(HALF);
    for (int x = 0; x < ww; x++) {
        const uint8_t *p = in + 3 * (size_t)t->hfirst[x0 + x];
        const __m256i *w = (const __m256i *)(t->hx + (size_t)(x0 + x) * kk * 4);
        __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
        int k = 0;
        for (; k + 4 <= kk; k += 4, p += 12, w += 2) {  // taps k..k+3: [k | k+1], [k+2 | k+3]
            __m256i px = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
            a = _mm256_add_epi32(a, _mm256_mullo_epi32(_mm256_shuffle_epi8(px, lo), _mm256_loadu_si256(w)));
            b = _mm256_add_epi32(b, _mm256_mullo_epi32(_mm256_shuffle_epi8(px, hi), _mm256_loadu_si256(w + 1)));
        }
        if (k < kk) {  // two taps left
            __m256i px = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
            a = _mm256_add_epi32(a, _mm256_mullo_epi32(_mm256_shuffle_epi8(px, lo), _mm256_loadu_si256(w)));
        }
        a = _mm256_add_epi32(a, b);
        __m128i s = _mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1)), half);
        s = _mm_srai_epi32(s, PREC);
        s = _mm_packus_epi16(_mm_packs_epi32(s, s), s);
        int32_t v = _mm_cvtsi128_si32(s);
        if (x + 1 < ww) memcpy(out + 3 * x, &v, 4);
        else memcpy(out + 3 * x, &v, 3);
    }
}

__attribute__((target("sse4.1"))) static void v_sse41(const uint8_t *restrict base, size_t stride, const int32_t *restrict w, int n, uint8_t *restrict out, size_t len) {
    const __m128i half = _mm_set1_epi32(HALF);
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        __m128i a0 = half, a1 = half, a2 = half, a3 = half;
        const uint8_t *p = base + i;
        for (int k = 0; k < n; k++, p += stride) {
            __m128i wk = _mm_set1_epi32(w[k]), v = _mm_loadu_si128((const __m128i *)p);
            a0 = _mm_add_epi32(a0, _mm_mullo_epi32(_mm_cvtepu8_epi32(v), wk));
            a1 = _mm_add_epi32(a1, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(v, 4)), wk));
            a2 = _mm_add_epi32(a2, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(v, 8)), wk));
            a3 = _mm_add_epi32(a3, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(v, 12)), wk));
        }
        __m128i s01 = _mm_packs_epi32(_mm_srai_epi32(a0, PREC), _mm_srai_epi32(a1, PREC));
        __m128i s23 = _mm_packs_epi32(_mm_srai_epi32(a2, PREC), _mm_srai_epi32(a3, PREC));
        _mm_storeu_si128((__m128i *)(out + i), _mm_packus_epi16(s01, s23));
    }
    v_scalar(base, stride, w, n, out, i, len);
}

__attribute__((target("avx2"))) static void v_avx2(const uint8_t *restrict base, size_t stride, const int32_t *restrict w, int n, uint8_t *restrict out, size_t len) {
    const __m256i half = _mm256_set1_epi32(HALF), perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        __m256i a0 = half, a1 = half, a2 = half, a3 = half;
        const uint8_t *p = base + i;
        for (int k = 0; k < n; k++, p += stride) {
            __m256i wk = _mm256_set1_epi32(w[k]);
            __m256i v = _mm256_loadu_si256((const __m256i *)p);
            __m128i vl = _mm256_castsi256_si128(v), vh = _mm256_extracti128_si256(v, 1);
            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(vl), wk));
            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(vl, 8)), wk));
            a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(vh), wk));
            a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(vh, 8)), wk));
        }
        __m256i s01 = _mm256_packs_epi32(_mm256_srai_epi32(a0, PREC), _mm256_srai_epi32(a1, PREC));
        __m256i s23 = _mm256_packs_epi32(_mm256_srai_epi32(a2, PREC), _mm256_srai_epi32(a3, PREC));
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_permutevar8x32_epi32(_mm256_packus_epi16(s01, s23), perm));
    }
    v_scalar(base, stride, w, n, out, i, len);
}

static int isa_best(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return 2;
    if (__builtin_cpu_supports("sse4.1")) return 1;
    return 0;
}
#else
static int isa_best(void) { return 0; }
#endif

// set lazily by whichever loader thread resizes first (each would store the same value): relaxed
// atomics, so the race is benign by the language's rules too (TSan reported it)
static int isa = -1;

static inline int isa_level(void);

int resize_set_isa(int max_level) {
    if (max_level < 0) return isa_level();
    int b = isa_best();
    int l = max_level < b ? max_level : b;
    __atomic_store_n(&isa, l, __ATOMIC_RELAXED);
    return l;
}

static inline int isa_level(void) {
    int l = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (l < 0) __atomic_store_n(&isa, l = isa_best(), __ATOMIC_RELAXED);
    return l;
}

static void h_row(const uint8_t *in, uint8_t *out, int c, int ww, const resize_table *t, int x0) {
#if RESIZE_X86
    if (c == 3 && t->hx) {
        int l = isa_level();
        if (l == 2) { h3_avx2(in, out, ww, t, x0); return; }
        if (l == 1) { h3_sse41(in, out, ww, t, x0); return; }
    }
#endif
    h_scalar(in, out, c, ww, t, x0);
}

static void v_row(const uint8_t *base, size_t stride, const int32_t *w, int n, uint8_t *out, size_t len) {
#if RESIZE_X86
    int l = isa_level();
    if (l == 2) { v_avx2(base, stride, w, n, out, len); return; }
    if (l == 1) { v_sse41(base, stride, w, n, out, len); return; }
#endif
    v_scalar(base, stride, w, n, out, 0, len);
}

int resize_u8(const uint8_t *src, int sw, int sh, int c, int fw, int fh, int x0, int y0, int ww, int wh, uint8_t *dst, resize_scratch *s) {
    // an axis that keeps its size is copied (Pillow skips that pass; a window of it is a crop)
    int hpass = fw != sw, vpass = fh != sh;
    resize_table *tx = hpass ? table_get(s, sw, fw, NULL) : NULL, *ty = vpass ? table_get(s, sh, fh, tx) : NULL;
    if ((hpass && !tx) || (vpass && !ty)) return -1;
    int r0 = y0, r1 = y0 + wh;  // source rows the vertical pass reads
    if (vpass) { r0 = ty->lo[y0]; r1 = ty->lo[y0 + wh - 1] + ty->n[y0 + wh - 1]; }
    size_t rowlen = (size_t)ww * c, srcstride = (size_t)sw * c;
    const uint8_t *mid;
    size_t midstride;
    if (hpass) {
        uint8_t *t = dst;
        if (vpass) {
            if (grow(&s->tmp, &s->tmp_cap, (size_t)(r1 - r0) * rowlen)) return -1;
            t = s->tmp;
        }
        for (int y = r0; y < r1; y++) {
            const uint8_t *in = src + (size_t)y * srcstride;
            if (y == sh - 1 && c == 3 && tx->hx) {  // the SIMD kernels read a few bytes past the row
                if (grow(&s->row, &s->row_cap, srcstride + HPAD)) return -1;
                memcpy(s->row, in, srcstride);
                memset(s->row + srcstride, 0, HPAD);
                in = s->row;
            }
            h_row(in, t + (size_t)(y - r0) * rowlen, c, ww, tx, x0);
        }
        if (!vpass) return 0;
        mid = t;
        midstride = rowlen;
    } else {
        mid = src + (size_t)r0 * srcstride + (size_t)x0 * c;
        midstride = srcstride;
        if (!vpass) {
            for (int y = 0; y < wh; y++) memcpy(dst + (size_t)y * rowlen, mid + (size_t)y * midstride, rowlen);
            return 0;
        }
    }
    for (int y = 0; y < wh; y++) {
        int o = y0 + y;
        v_row(mid + (size_t)(ty->lo[o] - r0) * midstride, midstride, ty->w + (size_t)o * ty->kk, ty->n[o], dst + (size_t)y * rowlen, rowlen);
    }
    return 0;
}

void resize_scratch_free(resize_scratch *s) {
    for (int i = 0; i < RESIZE_TABLES; i++) table_free(&s->t[i]);
    free(s->tmp); free(s->row);
    memset(s, 0, sizeof *s);
}
