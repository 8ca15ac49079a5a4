// test_data_preprocess.c — reference views and target geometry: normalisations, the quadrant
// order TL, TR, BL, BR, stretching (not padding), alpha on white, crop and flip.
#include <math.h>
#include <string.h>
#include "data/preprocess.h"
#include "testutil.h"

static float at(const float *v, int R, int view, int c, int y, int x) { return v[(((size_t)view * 3 + c) * R + y) * R + x]; }

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
    return test_summary("test_data_preprocess");
}
