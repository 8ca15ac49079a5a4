// test_data_preprocess.c — reference views and target geometry: normalisations, the quadrant
// order TL, TR, BL, BR, stretching (not padding), alpha on white, crop and flip; the resize
// equals Pillow's bytes and every SIMD level gives the scalar path's bytes.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "data/preprocess.h"
#include "testutil.h"

static float at(const float *v, int R, int view, int c, int y, int x) { return v[(((size_t)view * 3 + c) * R + y) * R + x]; }

// Image.fromarray(a).resize((fw, fh), Image.BICUBIC) with Pillow 13.0 for the 9x6 RGB image
// a[y][x][c] = (53x + 97y + 31c + 7xy) % 256 (both cases are horizontal-first in every Pillow)
static const uint8_t pil_5x4[] = {63,94,126,132,163,140,124,155,104,87,118,96,102,133,166,112,143,91,104,135,124,115,146,105,108,139,113,130,161,102,108,144,119,100,134,154,99,132,103,136,172,125,98,130,142,158,107,92,138,116,128,136,126,105,153,99,136,117,140,173};
static const uint8_t pil_13x8[] = {0,23,54,19,50,80,59,90,124,96,127,171,142,173,228,193,224,173,219,250,11,58,89,38,2,33,89,59,90,135,106,137,171,150,181,212,176,207,238,50,80,130,89,120,171,147,178,171,187,218,73,106,137,102,72,103,123,121,152,106,104,135,155,125,156,121,154,185,39,55,86,80,55,86,138,96,127,177,147,178,104,121,152,147,119,150,149,171,202,49,96,127,89,67,98,118,120,151,101,105,136,155,128,159,126,161,192,51,70,101,103,75,106,100,119,150,75,196,227,0,88,119,30,5,36,88,70,101,145,110,141,195,160,191,148,200,231,17,68,99,57,32,63,107,95,126,148,134,165,211,185,216,128,222,253,21,41,72,78,65,96,123,116,147,191,182,213,246,68,99,131,13,44,71,81,112,132,123,154,200,181,212,146,211,242,30,72,103,85,74,105,140,135,166,173,78,128,183,147,187,116,181,210,75,91,122,143,59,103,155,91,137,116,161,192,48,87,116,102,85,124,127,145,195,127,149,184,194,88,117,160,25,56,99,176,106,148,175,160,87,144,183,56,71,105,127,131,94,146,179,132,111,160,191,43,84,125,102,89,81,132,153,90,138,163,175,209,111,148,178,56,87,118,245,0,21,133,35,74,58,113,156,147,188,219,230,68,98,198,11,46,62,93,138,125,184,219,211,133,163,247,11,42,100,75,106,109,157,188,179,210,241};

static void resize_checks(void) {
    int best = resize_set_isa(99);
    uint8_t src[9 * 6 * 3], out[13 * 8 * 3];
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 9; x++)
            for (int c = 0; c < 3; c++) src[(y * 9 + x) * 3 + c] = (uint8_t)((53 * x + 97 * y + 31 * c + 7 * x * y) % 256);
    resize_scratch rs = {0};
    for (int l = 0; l <= best; l++) {
        resize_set_isa(l);
        TEST_CHECK(resize_u8(src, 9, 6, 3, 5, 4, 0, 0, 5, 4, out, &rs) == 0 && !memcmp(out, pil_5x4, sizeof pil_5x4), "Pillow bytes 9x6 -> 5x4, level %d", l);
        TEST_CHECK(resize_u8(src, 9, 6, 3, 13, 8, 0, 0, 13, 8, out, &rs) == 0 && !memcmp(out, pil_13x8, sizeof pil_13x8), "Pillow bytes 9x6 -> 13x8, level %d", l);
        uint8_t win[4 * 3 * 3];  // a window equals the crop of the full resize
        resize_u8(src, 9, 6, 3, 13, 8, 7, 2, 4, 3, win, &rs);
        int same = 1;
        for (int y = 0; y < 3; y++) same &= !memcmp(win + y * 12, pil_13x8 + ((2 + y) * 13 + 7) * 3, 12);
        TEST_CHECK(same, "window = crop of the full resize, level %d", l);
    }
    // every SIMD level gives the scalar bytes (random images, shrink and enlarge, windows, last rows)
    static const int sz[][4] = {{640, 480, 640, 640}, {640, 640, 384, 384}, {640, 640, 768, 768}, {480, 640, 640, 640}, {640, 480, 597, 448},
                                {37, 5, 12, 40}, {5, 5, 7, 3}, {2, 3, 9, 1}, {1000, 700, 384, 384}, {6, 6, 1, 1}, {17, 300, 80, 33}};
    uint64_t st = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
        int sw = sz[k][0], sh = sz[k][1], fw = sz[k][2], fh = sz[k][3];
        uint8_t *im = malloc((size_t)sw * sh * 3), *ref = malloc((size_t)fw * fh * 3), *got = malloc((size_t)fw * fh * 3);
        for (size_t i = 0; i < (size_t)sw * sh * 3; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; im[i] = (uint8_t)(st >> 56); }
        int x0 = fw / 3, y0 = fh / 4, ww = fw - x0, wh = fh - y0;
        resize_set_isa(0);
        resize_u8(im, sw, sh, 3, fw, fh, 0, 0, fw, fh, ref, &rs);
        for (int l = 1; l <= best; l++) {
            resize_set_isa(l);
            TEST_CHECK(resize_u8(im, sw, sh, 3, fw, fh, 0, 0, fw, fh, got, &rs) == 0 && !memcmp(got, ref, (size_t)fw * fh * 3), "level %d = scalar, %dx%d -> %dx%d", l, sw, sh, fw, fh);
            resize_u8(im, sw, sh, 3, fw, fh, x0, y0, ww, wh, got, &rs);
            int same = 1;
            for (int y = 0; y < wh; y++) same &= !memcmp(got + (size_t)y * ww * 3, ref + ((size_t)(y0 + y) * fw + x0) * 3, (size_t)ww * 3);
            TEST_CHECK(same, "level %d window, %dx%d -> %dx%d", l, sw, sh, fw, fh);
        }
        free(im); free(ref); free(got);
    }
    resize_set_isa(best);
    resize_scratch_free(&rs);
}

// the weight-table cache is round-robin: when one axis's table is a hit in the slot the other
// axis's miss evicts next, the hit must survive (it used to be rebuilt for the other axis's
// sizes under the caller: wrong bytes and reads past the row)
static void cache_eviction_checks(void) {
    enum { SW = 100, SH = 200, FW = 37, FH = 50 };
    uint8_t *src = malloc((size_t)SW * SH * 3), *got = malloc((size_t)FW * FH * 3), *ref = malloc((size_t)FW * FH * 3);
    for (int i = 0; i < SW * SH * 3; i++) src[i] = (uint8_t)(i * 131 % 251);
    resize_scratch rs = {0}, fresh = {0};
    resize_u8(src, SW, 60, 3, FW, 23, 0, 0, FW, 23, got, &rs);  // slot 0: 100 -> 37, slot 1: 60 -> 23
    for (int k = 0; k < RESIZE_TABLES - 2; k++)                  // fill the rest: slot 0 is the next victim
        resize_u8(src, SW, 1, 3, 40 + k, 1, 0, 0, 40 + k, 1, got, &rs);
    // 100 -> 37 hits slot 0, 200 -> 50 misses and must not evict it
    TEST_CHECK(resize_u8(src, SW, SH, 3, FW, FH, 0, 0, FW, FH, got, &rs) == 0, "resize with a full cache");
    resize_u8(src, SW, SH, 3, FW, FH, 0, 0, FW, FH, ref, &fresh);
    TEST_CHECK(!memcmp(got, ref, (size_t)FW * FH * 3), "full table cache: a hit that is the next victim survives the other axis's miss");
    resize_scratch_free(&rs);
    resize_scratch_free(&fresh);
    free(src); free(got); free(ref);
}

// the reference views from the scalar and the best SIMD conversion agree
static void conversion_checks(void) {
    int best = resize_set_isa(99), R = 40;
    image im = {70, 50, 3, malloc(70 * 50 * 3)};
    for (int i = 0; i < 70 * 50 * 3; i++) im.px[i] = (uint8_t)(i * 37 % 251);
    preprocess_scratch s = {0};
    preprocess_load(&im, &s);
    size_t n = (size_t)15 * R * R;
    float *sg[2], *dn[2], *tg[2];
    int32_t crop[4];
    for (int k = 0; k < 2; k++) {
        sg[k] = malloc(n * sizeof(float)); dn[k] = malloc(n * sizeof(float)); tg[k] = malloc(3 * 64 * 48 * sizeof(float));
        resize_set_isa(k ? best : 0);
        preprocess_reference(&s, 70, 50, R, sg[k], dn[k]);
        preprocess_target(&s, 70, 50, 64, 48, 0.7, 0.2, 1, tg[k], crop);
    }
    int ok = !memcmp(sg[0], sg[1], n * sizeof(float)) && !memcmp(tg[0], tg[1], 3 * 64 * 48 * sizeof(float));
    for (size_t i = 0; i < n; i++) ok &= fabsf(dn[0][i] - dn[1][i]) <= 1e-6f * (1 + fabsf(dn[0][i]));
    TEST_CHECK(ok, "SIMD conversions = scalar (SigLIP and target bit for bit, DINOv2 within 1e-6)");
    resize_set_isa(best);
    for (int k = 0; k < 2; k++) { free(sg[k]); free(dn[k]); free(tg[k]); }
    free(im.px);
    preprocess_scratch_free(&s);
}

int main(void) {
    preprocess_scratch s = {0};
    const int R = 8;
    float sig[5 * 3 * 8 * 8], dino[5 * 3 * 8 * 8];
    // constant colour: exact normalisation
    image im = {12, 12, 3, malloc(12 * 12 * 3)};
    for (int i = 0; i < 12 * 12; i++) { im.px[3 * i] = 255; im.px[3 * i + 1] = 0; im.px[3 * i + 2] = 51; }
    preprocess_load(&im, &s);
    TEST_CHECK(preprocess_reference(&s, 12, 12, R, sig, dino) == 0, "reference");
    TEST_NEAR(at(sig, R, 3, 0, 4, 4), 1.0, 1e-6, 0, "siglip red");
    TEST_NEAR(at(sig, R, 0, 1, 0, 0), -1.0, 1e-6, 0, "siglip green");
    TEST_NEAR(at(sig, R, 4, 2, 7, 7), 51 / 127.5 - 1, 1e-6, 0, "siglip blue");
    TEST_NEAR(at(dino, R, 2, 0, 1, 1), (1 - 0.485) / 0.229, 1e-5, 0, "dino red");
    TEST_NEAR(at(dino, R, 1, 1, 1, 1), (0 - 0.456) / 0.224, 1e-5, 0, "dino green");
    free(im.px);
    // quadrants: a wide image (W=20, H=10) with four coloured quadrants; stretching to a square
    // keeps quadrant colours in the matching crops (padding would put white in them)
    im = (image){20, 10, 3, malloc(20 * 10 * 3)};
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 20; x++) {
            int q = (y >= 5) * 2 + (x >= 10);
            uint8_t *p = im.px + 3 * (y * 20 + x);
            p[0] = (uint8_t)(q * 60); p[1] = (uint8_t)(200 - q * 50); p[2] = 10;
        }
    preprocess_load(&im, &s);
    preprocess_reference(&s, 20, 10, R, sig, dino);
    for (int q = 0; q < 4; q++) {
        TEST_NEAR((at(sig, R, 1 + q, 0, 3, 3) + 1) * 127.5, q * 60, 0.51, 0, "crop quadrant red");
        TEST_NEAR((at(sig, R, 1 + q, 1, 3, 3) + 1) * 127.5, 200 - q * 50, 0.51, 0, "crop quadrant green");
    }
    int qy = 0, qx = 0;
    TEST_NEAR((at(sig, R, 0, 0, 1 + qy, 1 + qx) + 1) * 127.5, 0, 0.51, 0, "full view TL");
    TEST_NEAR((at(sig, R, 0, 0, 6, 6) + 1) * 127.5, 180, 0.51, 0, "full view BR");
    // target: crop covers the bucket; flip mirrors
    float t1[3 * 10 * 20], t2[3 * 10 * 20];
    int32_t crop[4];
    TEST_CHECK(preprocess_target(&s, 20, 10, 20, 10, 0.5, 0.5, 0, t1, crop) == 0 && crop[0] == 20 && crop[1] == 10 && crop[2] == 0, "identity target");
    TEST_NEAR((t1[0 * 200 + 0] + 1) * 127.5, 0, 0.51, 0, "target TL red");
    TEST_NEAR((t1[0 * 200 + 9 * 20 + 19] + 1) * 127.5, 180, 0.51, 0, "target BR red");
    preprocess_target(&s, 20, 10, 20, 10, 0.5, 0.5, 1, t2, crop);
    int mirrored = 1;
    for (int c = 0; c < 3; c++) for (int y = 0; y < 10; y++) for (int x = 0; x < 20; x++) mirrored &= t2[c * 200 + y * 20 + x] == t1[c * 200 + y * 20 + 19 - x];
    TEST_CHECK(mirrored, "flip mirrors the target");
    float t3[3 * 10 * 10];
    preprocess_target(&s, 20, 10, 10, 10, 0.0, 0.0, 0, t3, crop);
    TEST_CHECK(crop[0] == 20 && crop[1] == 10 && crop[2] == 0 && crop[3] == 0, "left crop (%d,%d,%d,%d)", crop[0], crop[1], crop[2], crop[3]);
    TEST_NEAR((t3[0] + 1) * 127.5, 0, 0.51, 0, "left crop red");
    preprocess_target(&s, 20, 10, 10, 10, 0.999, 0.0, 0, t3, crop);
    TEST_CHECK(crop[2] == 10, "right crop x %d", crop[2]);
    TEST_NEAR((t3[0] + 1) * 127.5, 60, 0.51, 0, "right crop red");
    free(im.px);
    // alpha composited on white
    im = (image){4, 4, 4, malloc(64)};
    for (int i = 0; i < 16; i++) { im.px[4 * i] = 0; im.px[4 * i + 1] = 0; im.px[4 * i + 2] = 0; im.px[4 * i + 3] = i < 8 ? 0 : 255; }
    preprocess_load(&im, &s);
    TEST_CHECK(s.src[0] == 255 && s.src[3 * 15] == 0, "transparent → white, opaque kept");
    free(im.px);
    preprocess_scratch_free(&s);
    resize_checks();
    cache_eviction_checks();
    conversion_checks();
    return test_summary("test_data_preprocess");
}
