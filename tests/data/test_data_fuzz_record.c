// test_data_fuzz_record.c — runs the fuzz_record.c entry over valid records, every truncation,
// and a few hundred random mutations (no fuzzer needed; a sanitizer build checks memory).
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "data/rng.h"
#include "fuzz_record.c"
#include "testutil.h"

int main(void) {
    const char *caps[3] = {"one", "two two", "a much longer third caption for the fox"};
    record_meta_in in = {.n_captions = 3, .captions = caps, .character = "fox", .source = "x.png", .orig_w = 5, .orig_h = 6, .has_bbox = 1, .bbox = {1, 1, 2, 2}};
    uint8_t *raw, *z;
    size_t rn, zn, len;
    record_meta_encode(&in, &raw, &rn);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    record_meta_compress(cc, NULL, raw, rn, &z, &zn);
    uint8_t img[64];
    memset(img, 7, sizeof img);
    uint8_t *rec = record_assemble(3, 1, 0, 8, 8, img, sizeof img, z, zn, rn, &len);
    int runs = 0;
    for (size_t n = 0; n <= len; n++) { LLVMFuzzerTestOneInput(rec, n); runs++; }
    for (size_t n = 0; n <= rn; n++) { LLVMFuzzerTestOneInput(raw, n); runs++; }
    uint64_t st = rng_key(1, 0, 0, 999);
    uint8_t *buf = malloc(len + 64);
    for (int k = 0; k < 400; k++) {
        const uint8_t *src = k & 1 ? rec : raw;
        size_t n = k & 1 ? len : rn;
        memcpy(buf, src, n);
        int flips = 1 + (int)rng_below(&st, 4);
        for (int f = 0; f < flips; f++) buf[rng_below(&st, n)] ^= (uint8_t)(1 + rng_below(&st, 255));
        if (k % 3 == 0) {  // also fix up the CRC so the decoders behind it are reached
            size_t dummy;
            record_view v;
            char err[128];
            if (k & 1 && record_parse_nocrc(buf, n, &v, err, sizeof err) == 0) {
                uint8_t *fixed = record_assemble(v.id, v.character, v.flags, v.width, v.height, v.image, v.image_len, v.meta, v.meta_len, v.meta_raw_len, &dummy);
                LLVMFuzzerTestOneInput(fixed, dummy);
                free(fixed);
                runs++;
            }
        }
        LLVMFuzzerTestOneInput(buf, n - (k % 5 == 0 ? rng_below(&st, n) : 0));
        runs++;
    }
    for (int k = 0; k < 200; k++) {  // pure noise
        size_t n = (size_t)rng_below(&st, len + 64);
        for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rng_next(&st);
        if (n >= 4 && k & 1) memcpy(buf, "CMR1", 4);
        LLVMFuzzerTestOneInput(buf, n);
        runs++;
    }
    TEST_CHECK(runs > 600, "ran %d inputs without a crash", runs);
    free(buf); free(rec); free(raw); free(z);
    ZSTD_freeCCtx(cc);
    return test_summary("test_data_fuzz_record");
}
