// show.c — `cameo data show`: one sample as the loader prepares it, as a PNG strip.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/buckets.h"
#include "data/dataset.h"
#include "data/preprocess.h"
#include "data/rng.h"
#include "data/tools.h"

static uint8_t to8(float v) {  // [-1, 1] → 0..255
    float x = (v + 1.f) * 127.5f + 0.5f;
    return x <= 0 ? 0 : x >= 255 ? 255 : (uint8_t)x;
}

static void blit(image *dst, int x0, const float *chw, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) dst->px[3 * ((size_t)y * dst->w + x0 + x) + c] = to8(chw[(size_t)c * w * h + (size_t)y * w + x]);
}

int show_run(const char *dir, uint64_t id, const char *out_png, int paired, int ref_size, int resolution, int step, uint64_t seed) {
    dataset d;
    char err[1024];
    if (dataset_open(&d, dir, 0, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    int rc = 1;
    if (id >= d.m.samples) { fprintf(stderr, "%s: sample %llu does not exist (the dataset has ids 0..%llu)\n", dir, (unsigned long long)id, (unsigned long long)d.m.samples - 1); dataset_close(&d); return 1; }
    dataset_reader r;
    dataset_reader_init(&r, &d);
    preprocess_scratch ps = {0};
    record_view rec;
    if (dataset_get(&r, id, &rec, err, sizeof err) || dataset_get_meta(&r, &rec, err, sizeof err)) { fprintf(stderr, "%s\n", err); goto out; }
    int bt[BUCKETS_MAX][2];
    int nb = buckets_make(resolution, step, 2.0, bt, BUCKETS_MAX);
    if (nb < 1) {  // no table: the target size would come from uninitialised memory
        fprintf(stderr, "cameo data show: --resolution %d with --step %d gives no bucket (a bucket side is a multiple of the step, the area at most resolution²: "
                "use a step of at most the resolution)\n", resolution, step);
        goto out;
    }
    int b = buckets_nearest((const int(*)[2])bt, nb, rec.width, rec.height), W = bt[b][0], H = bt[b][1], R = ref_size;
    printf("sample %llu: %ux%u stored (original %ux%u), character %u \"%s\", source %s\n", (unsigned long long)id, rec.width, rec.height, r.meta.orig_w, r.meta.orig_h,
           rec.character, r.meta.character, r.meta.source);
    for (int c = 0; c < r.meta.n_captions; c++) printf("caption %d: %s\n", c, r.meta.captions[c]);
    if (image_webp_decode_into(rec.image, rec.image_len, (rec.flags & RECORD_FLAG_ALPHA) != 0, &ps.dec, &ps.dec_cap) || preprocess_load(&ps.dec, &ps)) {
        fprintf(stderr, "%s: sample %llu: WebP decode failed\n", dir, (unsigned long long)id);
        goto out;
    }
    float *tgt = malloc(sizeof(float) * 3 * W * H), *sig = malloc(sizeof(float) * 15 * R * R), *dino = malloc(sizeof(float) * 15 * R * R);
    int32_t crop[4];
    preprocess_target(&ps, rec.width, rec.height, W, H, 0.5, 0.5, 0, tgt, crop);
    uint64_t ref = id;
    if (paired && d.char_count[rec.character] >= 2) {
        uint64_t st = rng_key(seed, 0, id, RNG_PAIR_PICK), n = d.char_count[rec.character];
        ref = d.char_first[rec.character] + rng_below(&st, n - 1);
        if (ref >= id) ref++;
        record_view rr;
        err[0] = 0;
        if (dataset_get(&r, ref, &rr, err, sizeof err) || image_webp_decode_into(rr.image, rr.image_len, (rr.flags & RECORD_FLAG_ALPHA) != 0, &ps.dec, &ps.dec_cap) ||
            preprocess_load(&ps.dec, &ps)) {
            fprintf(stderr, "cameo data show: the paired reference, sample %llu: %s\n", (unsigned long long)ref,
                    err[0] ? err : "its WebP image does not decode");
            free(tgt); free(sig); free(dino); goto out;
        }
        preprocess_reference(&ps, rr.width, rr.height, R, sig, dino);
    } else preprocess_reference(&ps, rec.width, rec.height, R, sig, dino);
    printf("target %dx%d (bucket of %d², step %d); reference sample %llu, views of %d² (full, TL, TR, BL, BR, SigLIP normalisation shown)\n", W, H, resolution, step,
           (unsigned long long)ref, R);
    int gap = 4, tw = W + gap + 5 * (R + gap), th = H > R ? H : R;
    image strip = {tw, th, 3, malloc((size_t)tw * th * 3)};
    memset(strip.px, 255, (size_t)tw * th * 3);
    blit(&strip, 0, tgt, W, H);
    for (int v = 0; v < 5; v++) blit(&strip, W + gap + v * (R + gap), sig + (size_t)v * 3 * R * R, R, R);
    if (image_write_png(out_png, &strip, err, sizeof err)) fprintf(stderr, "%s\n", err);
    else { printf("wrote %s (%dx%d)\n", out_png, tw, th); rc = 0; }
    free(strip.px); free(tgt); free(sig); free(dino);
out:
    preprocess_scratch_free(&ps);
    dataset_reader_free(&r);
    dataset_close(&d);
    return rc;
}
