// preprocess.c — see preprocess.h. The 8-bit resizes are data/resize.c; the conversions to f32
// CHW (target [-1, 1]; SigLIP and DINOv2 from one read of each view) have an AVX2 version.
#include "data/preprocess.h"
#include "data/buckets.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PP_X86 1
#else
#define PP_X86 0
#endif

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

// ---- 8-bit RGB rows → f32 planes ----
// target: x/127.5 - 1, optionally mirrored; reference: SigLIP (x/255 - 0.5) * 2 (the same
// operations as before, so bit-identical) and DINOv2 x * a[c] + b[c] with a = 1/(255 std),
// b = -mean/std (within 2 ulp of (x/255 - mean)/std).

typedef struct { float a[3], b[3]; } dino_affine;

static dino_affine dino_coeffs(void) {
    dino_affine d;
    for (int c = 0; c < 3; c++) { d.a[c] = (float)(1.0 / (255.0 * dino_std[c])); d.b[c] = (float)(-(double)dino_mean[c] / dino_std[c]); }
    return d;
}

static void target_row_scalar(const uint8_t *restrict row, int x, int W, int flip, float *restrict d0, float *restrict d1, float *restrict d2) {
    for (; x < W; x++) {
        int o = flip ? W - 1 - x : x;
        d0[o] = row[3 * x] * (1.f / 127.5f) - 1.f;
        d1[o] = row[3 * x + 1] * (1.f / 127.5f) - 1.f;
        d2[o] = row[3 * x + 2] * (1.f / 127.5f) - 1.f;
    }
}

static void ref_row_scalar(const uint8_t *restrict row, int x, int n, float *restrict s0, float *restrict s1, float *restrict s2, float *restrict e0,
                           float *restrict e1, float *restrict e2, const dino_affine *d) {
    float *sp[3] = {s0, s1, s2}, *ep[3] = {e0, e1, e2};
    for (; x < n; x++)
        for (int c = 0; c < 3; c++) {
            float p = row[3 * x + c];
            sp[c][x] = (p * (1.f / 255.f) - 0.5f) * 2.f;
            ep[c][x] = p * d->a[c] + d->b[c];
        }
}

#if PP_X86
// 8 RGB pixels (24 bytes at p) → three vectors of 8 floats
__attribute__((target("avx2"))) static inline void load8_rgb(const uint8_t *p, __m256 *r, __m256 *g, __m256 *b) {
    __m128i lo = _mm_loadu_si128((const __m128i *)p), hi = _mm_loadu_si128((const __m128i *)(p + 8));
    const __m128i rl = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1), rh = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i gl = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1), gh = _mm_setr_epi8(-1, -1, -1, -1, -1, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i bl = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1), bh = _mm_setr_epi8(-1, -1, -1, -1, -1, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1);
    *r = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_or_si128(_mm_shuffle_epi8(lo, rl), _mm_shuffle_epi8(hi, rh))));
    *g = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_or_si128(_mm_shuffle_epi8(lo, gl), _mm_shuffle_epi8(hi, gh))));
    *b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_or_si128(_mm_shuffle_epi8(lo, bl), _mm_shuffle_epi8(hi, bh))));
}

// no FMA in the target: x * s - 1 stays two rounded operations, as in the scalar code
__attribute__((target("avx2"))) static void target_row_avx2(const uint8_t *restrict row, int W, int flip, float *restrict d0, float *restrict d1, float *restrict d2) {
    const __m256 s = _mm256_set1_ps(1.f / 127.5f), one = _mm256_set1_ps(1.f);
    const __m256i rev = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    int x = 0;
    for (; x + 8 <= W; x += 8) {
        __m256 r, g, b;
        load8_rgb(row + 3 * x, &r, &g, &b);
        r = _mm256_sub_ps(_mm256_mul_ps(r, s), one);
        g = _mm256_sub_ps(_mm256_mul_ps(g, s), one);
        b = _mm256_sub_ps(_mm256_mul_ps(b, s), one);
        if (flip) {
            int o = W - 8 - x;
            _mm256_storeu_ps(d0 + o, _mm256_permutevar8x32_ps(r, rev));
            _mm256_storeu_ps(d1 + o, _mm256_permutevar8x32_ps(g, rev));
            _mm256_storeu_ps(d2 + o, _mm256_permutevar8x32_ps(b, rev));
        } else {
            _mm256_storeu_ps(d0 + x, r);
            _mm256_storeu_ps(d1 + x, g);
            _mm256_storeu_ps(d2 + x, b);
        }
    }
    target_row_scalar(row, x, W, flip, d0, d1, d2);
}

__attribute__((target("avx2"))) static void ref_row_avx2(const uint8_t *restrict row, int n, float *restrict s0, float *restrict s1, float *restrict s2, float *restrict e0,
                                                         float *restrict e1, float *restrict e2, const dino_affine *d) {
    const __m256 k = _mm256_set1_ps(1.f / 255.f), h = _mm256_set1_ps(0.5f), two = _mm256_set1_ps(2.f);
    const __m256 a0 = _mm256_set1_ps(d->a[0]), a1 = _mm256_set1_ps(d->a[1]), a2 = _mm256_set1_ps(d->a[2]);
    const __m256 b0 = _mm256_set1_ps(d->b[0]), b1 = _mm256_set1_ps(d->b[1]), b2 = _mm256_set1_ps(d->b[2]);
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 r, g, b;
        load8_rgb(row + 3 * x, &r, &g, &b);
        _mm256_storeu_ps(s0 + x, _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(r, k), h), two));
        _mm256_storeu_ps(s1 + x, _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(g, k), h), two));
        _mm256_storeu_ps(s2 + x, _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(b, k), h), two));
        _mm256_storeu_ps(e0 + x, _mm256_add_ps(_mm256_mul_ps(r, a0), b0));
        _mm256_storeu_ps(e1 + x, _mm256_add_ps(_mm256_mul_ps(g, a1), b1));
        _mm256_storeu_ps(e2 + x, _mm256_add_ps(_mm256_mul_ps(b, a2), b2));
    }
    ref_row_scalar(row, x, n, s0, s1, s2, e0, e1, e2, d);
}

#endif

static void target_row(const uint8_t *row, int W, int flip, float *d0, float *d1, float *d2) {
#if PP_X86
    if (resize_set_isa(-1) >= 2) { target_row_avx2(row, W, flip, d0, d1, d2); return; }
#endif
    target_row_scalar(row, 0, W, flip, d0, d1, d2);
}

int preprocess_target(preprocess_scratch *s, int w, int h, int W, int H, double ux, double uy, int flip, float *dst, int32_t crop[4]) {
    double scale = buckets_cover_scale((const int[2]){W, H}, w, h);
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
        float *d = dst + (size_t)y * W;
        target_row(s->v + (size_t)y * W * 3, W, flip, d, d + plane, d + 2 * plane);
    }
    return 0;
}

// one R×R view from rows/cols (x0, y0) of img [side, side, 3] → both normalisations in one read
static void write_view(const uint8_t *img, int side, int x0, int y0, int R, float *sig, float *dino, const dino_affine *d) {
    size_t plane = (size_t)R * R;
#if PP_X86
    int avx2 = resize_set_isa(-1) >= 2;
#endif
    for (int y = 0; y < R; y++) {
        const uint8_t *row = img + ((size_t)(y0 + y) * side + x0) * 3;
        float *s = sig + (size_t)y * R, *e = dino + (size_t)y * R;
#if PP_X86
        if (avx2) { ref_row_avx2(row, R, s, s + plane, s + 2 * plane, e, e + plane, e + 2 * plane, d); continue; }
#endif
        ref_row_scalar(row, 0, R, s, s + plane, s + 2 * plane, e, e + plane, e + 2 * plane, d);
    }
}

int preprocess_reference(preprocess_scratch *s, int w, int h, int R, float *siglip, float *dino) {
    int S = w > h ? w : h;
    const uint8_t *sq = s->src;
    dino_affine d = dino_coeffs();
    if (w != h) {  // PIL: subject_image.resize((S, S)) — stretch, bicubic (one axis changes)
        if (grow(&s->sq, &s->sq_cap, (size_t)S * S * 3)) return -1;
        if (resize_u8(s->src, w, h, 3, S, S, 0, 0, S, S, s->sq, &s->rs)) return -1;
        sq = s->sq;
    }
    size_t view = (size_t)3 * R * R;
    if (grow(&s->v, &s->v_cap, (size_t)4 * R * R * 3)) return -1;
    // low: S² → R²
    if (resize_u8(sq, S, S, 3, R, R, 0, 0, R, R, s->v, &s->rs)) return -1;
    write_view(s->v, R, 0, 0, R, siglip, dino, &d);
    // high: S² → (2R)² once, cut into TL, TR, BL, BR
    if (resize_u8(sq, S, S, 3, 2 * R, 2 * R, 0, 0, 2 * R, 2 * R, s->v, &s->rs)) return -1;
    static const int off[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    for (int k = 0; k < 4; k++) write_view(s->v, 2 * R, off[k][0] * R, off[k][1] * R, R, siglip + (k + 1) * view, dino + (k + 1) * view, &d);
    return 0;
}
