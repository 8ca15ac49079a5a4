// test_eval_metrics.c — the evaluation scores: the cosine (known vectors), the embeddings are the
// towers' own outputs (DINOv2's CLS row after the final layernorm, SigLIP's token mean, recomputed
// here from dino_forward / siglip_forward), an image scores 1 against itself and less against
// another, scores are deterministic, and the 8-bit conversion of a sampled image rounds and clamps.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/ops.h"
#include "eval/metrics.h"
#include "eval/sample_io.h"
#include "testutil.h"
#include "train/config.h"

static image pattern(int w, int h, int kind) {
    image im = {w, h, 3, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im.px + (y * w + x) * 3;
            p[0] = (uint8_t)(kind ? (x * y) % 256 : (x * 37 + y * 11) % 256);
            p[1] = (uint8_t)(kind ? 90 : (x * 6) % 256);
            p[2] = (uint8_t)(kind ? (200 - 3 * y) % 256 : (y * 4) % 256);
        }
    return im;
}

// the embedding recomputed from the tower outputs: DINOv2 row 0, SigLIP mean over tokens
static void direct(ic_models *m, const float *sv, const float *dv, float *dino, float *sig) {
    int R = m->ref_size;
    cm_tensor *xs = tensor_from_host(CM_F32, SHAPE(1, 3, R, R), sv, CM_DEV_CPU);
    cm_tensor *xd = tensor_from_host(CM_F32, SHAPE(1, 3, R, R), dv, CM_DEV_CPU);
    cm_tensor *hs = siglip_forward(&m->sig, xs, 0, NULL, NULL), *hd = dino_forward(&m->dino, xd, 0, NULL, NULL);
    int64_t T = hs->shape[1], Ds = hs->shape[2], Dd = hd->shape[2];
    for (int64_t d = 0; d < Dd; d++) dino[d] = (float)tensor_get(hd, d);
    for (int64_t d = 0; d < Ds; d++) {
        double s = 0;
        for (int64_t t = 0; t < T; t++) s += tensor_get(hs, t * Ds + d);
        sig[d] = (float)(s / (double)T);
    }
    tensor_release(xs), tensor_release(xd), tensor_release(hs), tensor_release(hd);
}

int main(void) {
    // cosine
    float a[4] = {1, 2, 3, 4}, b[4] = {2, 4, 6, 8}, c[4] = {-1, -2, -3, -4}, d[4] = {2, -1, 0, 0}, z[4] = {0};
    TEST_NEAR(eval_cosine(a, b, 4), 1.0, 1e-12, 0, "parallel");
    TEST_NEAR(eval_cosine(a, c, 4), -1.0, 1e-12, 0, "antiparallel");
    TEST_NEAR(eval_cosine(a, d, 4), 0.0, 1e-12, 0, "orthogonal");
    TEST_NEAR(eval_cosine(a, z, 4), 0.0, 0, 0, "a zero vector");
    TEST_NEAR(eval_cosine(a, (float[]){1, 0, 0, 0}, 4), 1 / sqrt(30.0), 1e-12, 0, "1/sqrt(30)");

    // 8-bit conversion: -1 -> 0, 1 -> 255, 0 -> 128 (127.5 rounded up), clamped outside [-1, 1]
    float px[3 * 2 * 2] = {-1, 1, 0, -3, 3, 0.5f, -0.5f, 0.999f, 0, 0, 0, 0};
    cm_tensor *t = tensor_from_host(CM_F32, SHAPE(1, 3, 2, 2), px, CM_DEV_CPU);
    image im8 = {0};
    char err[512];
    TEST_CHECK(eval_image_from_tensor(t, 0, &im8, err, sizeof err) == 0, "%s", err);
    const uint8_t want[4] = {0, 255, 128, 0};  // channel 0 of the 4 pixels
    for (int i = 0; i < 4; i++) TEST_CHECK(im8.px[i * 3] == want[i], "pixel %d: %d, want %d", i, im8.px[i * 3], want[i]);
    TEST_CHECK(im8.px[0 * 3 + 1] == 255 && im8.px[1 * 3 + 1] == 191 && im8.px[2 * 3 + 1] == 64 && im8.px[3 * 3 + 1] == 255,
               "channel 1: %d %d %d %d", im8.px[1], im8.px[4], im8.px[7], im8.px[10]);
    TEST_CHECK(eval_image_from_tensor(t, 1, &(image){0}, err, sizeof err) == -1, "image 1 of a batch of 1 accepted");
    free(im8.px);
    tensor_release(t);
    // a non-finite sample is refused by count, never cast (undefined in C) into a picture to score
    px[5] = NAN, px[9] = INFINITY;
    t = tensor_from_host(CM_F32, SHAPE(1, 3, 2, 2), px, CM_DEV_CPU);
    image imn = {0};
    TEST_CHECK(eval_image_from_tensor(t, 0, &imn, err, sizeof err) == -1 && strstr(err, "2 non-finite value(s) of 12") &&
               !imn.px, "a NaN / inf sample refused by count (%s)", err);
    tensor_release(t);

    // embeddings with the tiny towers
    train_config cfg;
    TEST_CHECK(train_config_parse(&cfg, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "tiny", NULL, 0, err, sizeof err) == 0, "%s", err);
    ic_models m;
    TEST_CHECK(ic_models_init_tiny(&m, &cfg.model.tiny_dims, CM_DEV_CPU, CM_F32, false, 3, "default", err, sizeof err) == 0, "%s", err);
    image A = pattern(40, 56, 0), B = pattern(48, 48, 1);
    float *sa, *da, *sb, *db;
    TEST_CHECK(eval_reference_views(&A, m.ref_size, &sa, &da, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(eval_reference_views(&B, m.ref_size, &sb, &db, err, sizeof err) == 0, "%s", err);
    eval_embedding ea, ea2, eb;
    TEST_CHECK(eval_embed(&m, sa, da, &ea, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(eval_embed(&m, sa, da, &ea2, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(eval_embed(&m, sb, db, &eb, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(!memcmp(ea.dino, ea2.dino, sizeof(float) * ea.dd) && !memcmp(ea.siglip, ea2.siglip, sizeof(float) * ea.ds),
               "the same image embeds differently twice");
    float *dino = malloc(sizeof(float) * ea.dd), *sig = malloc(sizeof(float) * ea.ds);
    direct(&m, sa, da, dino, sig);
    double worst = 0;
    for (int i = 0; i < ea.dd; i++) worst = test_max(worst, fabs(dino[i] - ea.dino[i]));
    for (int i = 0; i < ea.ds; i++) worst = test_max(worst, fabs(sig[i] - ea.siglip[i]));
    TEST_CHECK(worst < 1e-6, "embedding differs from the towers' CLS / token mean by %.3g", worst);
    double self_d = eval_cosine(ea.dino, ea2.dino, ea.dd), self_s = eval_cosine(ea.siglip, ea2.siglip, ea.ds);
    double ab_d = eval_cosine(ea.dino, eb.dino, ea.dd), ab_s = eval_cosine(ea.siglip, eb.siglip, ea.ds);
    printf("DINO-I self %.6f, other %.6f; SigLIP-I self %.6f, other %.6f\n", self_d, ab_d, self_s, ab_s);
    TEST_NEAR(self_d, 1.0, 1e-9, 0, "DINO-I of an image with itself");
    TEST_NEAR(self_s, 1.0, 1e-9, 0, "SigLIP-I of an image with itself");
    TEST_CHECK(ab_d < 0.999 && ab_s < 0.999 && ab_d >= -1 && ab_s >= -1, "two different images: DINO-I %.6f, SigLIP-I %.6f", ab_d, ab_s);
    TEST_NEAR(eval_cosine(ea.dino, eb.dino, ea.dd), eval_cosine(eb.dino, ea.dino, ea.dd), 1e-15, 0, "symmetric");

    free(dino), free(sig), free(sa), free(da), free(sb), free(db), free(A.px), free(B.px);
    eval_embedding_free(&ea), eval_embedding_free(&ea2), eval_embedding_free(&eb);
    ic_models_free(&m);
    return test_summary("test_eval_metrics");
}
