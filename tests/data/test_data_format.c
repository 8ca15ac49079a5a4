// test_data_format.c — checksums, RNG, record and metadata encoding, manifest validation, buckets.
#include <string.h>
#include <zstd.h>
#include "data/buckets.h"
#include "data/checksum.h"
#include "data/manifest.h"
#include "data/record.h"
#include "data/rng.h"
#include "helpers.h"

static int parse_fails(const char *text, const char *want_in_msg) {
    manifest m;
    char err[512] = "";
    int rc = manifest_parse(text, strlen(text), &m, "X/manifest.json", err, sizeof err);
    if (rc == 0) { manifest_free(&m); return 0; }
    if (!strstr(err, "X/manifest.json") || (want_in_msg && !strstr(err, want_in_msg))) { fprintf(stderr, "unexpected message: %s\n", err); return 0; }
    return 1;
}

int main(void) {
    // CRC-32C check value and chaining
    TEST_CHECK(crc32c("123456789", 9) == 0xE3069283u, "crc32c check value 0x%08x", crc32c("123456789", 9));
    TEST_CHECK(crc32c_update(crc32c("1234", 4), "56789", 5) == 0xE3069283u, "crc32c chaining");
    // counter RNG: pure function of the key, purposes independent
    TEST_CHECK(rng_key(1, 2, 3, 4) == rng_key(1, 2, 3, 4), "rng determinism");
    TEST_CHECK(rng_key(1, 2, 3, 4) != rng_key(1, 2, 3, 5) && rng_key(1, 2, 3, 4) != rng_key(1, 3, 2, 4), "rng keys differ");
    double mean = 0;
    for (int i = 0; i < 10000; i++) mean += rng_unit_key(7, 0, (uint64_t)i, RNG_FLIP);
    TEST_NEAR(mean / 10000, 0.5, 0.02, 0, "rng uniform mean");

    // metadata + record round trip
    const char *caps[2] = {"a red fox", "fox, sitting"};
    record_meta_in in = {.n_captions = 2, .captions = caps, .character = "fox-1", .source = "img/fox.png", .orig_w = 640, .orig_h = 480, .has_bbox = 1, .bbox = {1, 2, 30, 40}};
    uint8_t *raw, *z;
    size_t rawn, zn;
    TEST_CHECK(record_meta_encode(&in, &raw, &rawn) == 0, "meta encode");
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    TEST_CHECK(record_meta_compress(cc, NULL, raw, rawn, &z, &zn) == 0, "compress");
    uint8_t img[37];
    for (int i = 0; i < 37; i++) img[i] = (uint8_t)(i * 7);
    size_t len;
    uint8_t *rec = record_assemble(42, 5, RECORD_FLAG_ALPHA, 33, 44, img, sizeof img, z, zn, rawn, &len);
    record_view v;
    char err[512];
    TEST_CHECK(record_parse(rec, len, &v, err, sizeof err) == 0, "parse: %s", err);
    TEST_CHECK(v.id == 42 && v.character == 5 && v.width == 33 && v.height == 44 && v.image_len == 37 && !memcmp(v.image, img, 37) && v.flags == RECORD_FLAG_ALPHA, "record fields");
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    uint8_t *buf = NULL;
    size_t cap = 0;
    record_meta m = {0};
    TEST_CHECK(record_meta_decompress(dc, NULL, &v, &buf, &cap, err, sizeof err) == 0, "decompress: %s", err);
    TEST_CHECK(record_meta_decode(buf, v.meta_raw_len, &m, err, sizeof err) == 0, "decode: %s", err);
    TEST_CHECK(m.n_captions == 2 && !strcmp(m.captions[1], "fox, sitting") && !strcmp(m.character, "fox-1") && !strcmp(m.source, "img/fox.png"), "meta strings");
    TEST_CHECK(m.orig_w == 640 && m.orig_h == 480 && m.has_bbox && m.bbox[3] == 40, "meta numbers");
    // every single-byte flip is caught by the CRC (or the header checks)
    int caught = 0;
    for (size_t i = 0; i < len; i++) {
        if (i >= 36 && i < 40) continue;  // the CRC field itself: changing it is a mismatch too
        rec[i] ^= 0x10;
        caught += record_parse(rec, len, &v, err, sizeof err) != 0;
        rec[i] ^= 0x10;
    }
    TEST_CHECK(caught == (int)len - 4, "flips caught %d of %zu", caught, len - 4);
    rec[50] ^= 1;
    TEST_CHECK(record_parse(rec, len, &v, err, sizeof err) != 0 && strstr(err, "checksum"), "checksum message: %s", err);
    TEST_CHECK(record_parse(rec, len - 1, &v, err, sizeof err) != 0 && strstr(err, "length"), "length message: %s", err);
    free(rec); free(raw); free(z); free(buf);
    record_meta_free(&m);
    ZSTD_freeCCtx(cc); ZSTD_freeDCtx(dc);

    // manifest validation: each bad input is rejected with a message naming the file
    const char *good = "{\"format\":\"cameo-dataset\",\"version\":1,\"samples\":5,\"characters\":2,\"dictionary\":null,"
                       "\"shards\":[{\"name\":\"shard-00000\",\"first_id\":0,\"samples\":3,\"characters\":1,\"bytes\":8192,\"crc32c\":1},"
                       "{\"name\":\"shard-00001\",\"first_id\":3,\"samples\":2,\"characters\":1,\"bytes\":8192,\"crc32c\":2}]}";
    manifest mf;
    TEST_CHECK(manifest_parse(good, strlen(good), &mf, "X/manifest.json", err, sizeof err) == 0, "good manifest: %s", err);
    TEST_CHECK(mf.n_shards == 2 && manifest_shard_of(&mf, 4) == 1 && manifest_shard_of(&mf, 2) == 0 && manifest_shard_of(&mf, 5) == -1, "shard_of");
    manifest_free(&mf);
    TEST_CHECK(parse_fails("{\"format\":", "JSON"), "truncated JSON");
    TEST_CHECK(parse_fails("{\"format\":\"other\",\"version\":1}", "format"), "wrong format");
    TEST_CHECK(parse_fails("{\"format\":\"cameo-dataset\",\"version\":2,\"samples\":0,\"characters\":0,\"shards\":[]}", "version"), "future version");
    TEST_CHECK(parse_fails("{\"format\":\"cameo-dataset\",\"version\":1,\"samples\":5,\"characters\":1,\"shards\":[{\"name\":\"a\",\"first_id\":1,\"samples\":5,\"characters\":1,\"bytes\":1,\"crc32c\":1}]}", "contiguous"), "gap in ids");
    TEST_CHECK(parse_fails("{\"format\":\"cameo-dataset\",\"version\":1,\"samples\":5,\"characters\":1,\"shards\":[{\"name\":\"../etc\",\"first_id\":0,\"samples\":5,\"characters\":1,\"bytes\":1,\"crc32c\":1}]}", "name"), "path in name");
    TEST_CHECK(parse_fails("{\"format\":\"cameo-dataset\",\"version\":1,\"samples\":6,\"characters\":1,\"shards\":[{\"name\":\"a\",\"first_id\":0,\"samples\":5,\"characters\":1,\"bytes\":1,\"crc32c\":1}]}", "samples"), "count mismatch");
    TEST_CHECK(parse_fails("{\"format\":\"cameo-dataset\",\"version\":1,\"samples\":-1}", "samples"), "negative");
    TEST_CHECK(manifest_load("/nonexistent/ds", &mf, err, sizeof err) != 0 && strstr(err, "/nonexistent/ds/manifest.json"), "missing manifest: %s", err);

    // buckets: 64-px multiples near 512², both orientations, nearest aspect
    int b[BUCKETS_MAX][2];
    int n = buckets_make(512, 64, 2.0, b, BUCKETS_MAX);
    TEST_CHECK(n >= 3 && n % 2 == 1, "bucket count %d", n);
    int has_sq = 0;
    for (int i = 0; i < n; i++) {
        TEST_CHECK(b[i][0] % 64 == 0 && b[i][1] % 64 == 0 && b[i][0] * b[i][1] <= 512 * 512 && b[i][0] * b[i][1] > 512 * 512 * 0.8, "bucket %dx%d", b[i][0], b[i][1]);
        int t = 0;
        for (int k = 0; k < n; k++) t |= b[k][0] == b[i][1] && b[k][1] == b[i][0];
        TEST_CHECK(t, "transpose of %dx%d present", b[i][0], b[i][1]);
        has_sq |= b[i][0] == 512 && b[i][1] == 512;
    }
    TEST_CHECK(has_sq, "512x512 bucket");
    int wide = buckets_nearest((const int(*)[2])b, n, 1000, 600), tall = buckets_nearest((const int(*)[2])b, n, 600, 1000);
    TEST_CHECK(b[wide][0] > b[wide][1] && b[tall][0] < b[tall][1], "nearest aspect");
    // a table cut at `max` keeps the squarest buckets: at 8192² in 16-px steps more than 254 fit
    // 2:1, and the cut once kept the most elongated, leaving no square bucket for square images
    n = buckets_make(512, 64, 2.0, b, 3);
    TEST_CHECK(n == 3 && b[0][0] == 448 && b[0][1] == 576 && b[1][0] == 512 && b[1][1] == 512 && b[2][0] == 576,
               "cut at 3: the squarest three (%d: %dx%d ...)", n, b[0][0], b[0][1]);
    n = buckets_make(8192, 16, 2.0, b, BUCKETS_MAX);
    int sq = buckets_nearest((const int(*)[2])b, n, 1000, 1000);
    TEST_CHECK(n == BUCKETS_MAX - 1 && b[sq][0] == 8192 && b[sq][1] == 8192, "8192² in 16-px steps: %d buckets, a square image "
               "goes to %dx%d (want 8192x8192)", n, b[sq][0], b[sq][1]);
    // the tally `data stats` and the stage check share: a range of samples, its buckets, the enlarged
    n = buckets_make(512, 64, 2.0, b, 3);  // 448x576, 512x512, 576x448
    const uint16_t sz[5][2] = {{512, 512}, {256, 256}, {1000, 600}, {300, 400}, {600, 1000}};  // [5][2] (w, h)
    buckets_tally t;
    buckets_tally_init(&t);
    buckets_tally_add(&t, (const int(*)[2])b, n, &sz[0][0], 1, 3);  // samples 1..3
    TEST_CHECK(t.all == 3 && t.count[0] == 1 && t.count[1] == 1 && t.count[2] == 1, "tally of samples 1..3: %llu (%llu %llu %llu)",
               (unsigned long long)t.all, (unsigned long long)t.count[0], (unsigned long long)t.count[1], (unsigned long long)t.count[2]);
    TEST_CHECK(t.upscaled == 2 && t.most == 2.0 && t.short_min == 256 && t.short_max == 600,
               "tally: %llu enlarged (want 2: 256² by 2x, 300x400 by 1.49x), most %.3f (want 2), short sides %d..%d (want 256..600)",
               (unsigned long long)t.upscaled, t.most, t.short_min, t.short_max);
    TEST_CHECK(fs_network_type("/tmp") == NULL, "local /tmp is not reported as a network filesystem");
    return test_summary("test_data_format");
}
