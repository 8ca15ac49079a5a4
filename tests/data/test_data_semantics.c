// test_data_semantics.c — what is written and read means what docs/dataset-format.md and
// docs/data.md say: a downscaled cut-out keeps its colours at the mask edge (resize with
// premultiplied alpha, as Pillow does for RGBA); metadata the encoder accepts, a reader accepts.
#include <math.h>
#include <string.h>
#include "data/dataset.h"
#include "data/preprocess.h"
#include "data/record.h"
#include <zstd.h>
#include "helpers.h"

// a red square on a fully transparent black background, downscaled by --max-side: the edge
// pixels are partly transparent and must stay red (straight-alpha resampling would mix in the
// black of the invisible pixels and draw a dark halo once composited on white)
static void test_alpha_downscale(const char *root) {
    char dir[512], p[640], err[2048], out[640];
    snprintf(dir, sizeof dir, "%s/alpha", root);
    fs_mkdirs(dir);
    const int S = 64;
    image im = {S, S, 4, calloc((size_t)S * S * 4, 1)};  // [S, S, 4] transparent black
    for (int y = 16; y < 48; y++)
        for (int x = 16; x < 48; x++) {
            uint8_t *q = im.px + ((size_t)y * S + x) * 4;
            q[0] = 255, q[1] = 0, q[2] = 0, q[3] = 255;
        }
    snprintf(p, sizeof p, "%s/red.png", dir);
    TEST_CHECK(image_write_png(p, &im, err, sizeof err) == 0, "%s", err);
    image_free(&im);
    char jl[640];
    snprintf(jl, sizeof jl, "%s/in.jsonl", dir);
    FILE *f = fopen(jl, "w");
    fprintf(f, "{\"image\":\"red.png\",\"caption\":\"red\",\"character\":\"r\"}\n");
    fclose(f);
    build_options o = build_options_default();
    o.lossless = 1, o.quiet = 1, o.threads = 1, o.max_side = 24;  // 64 → 24: edges fall between pixels
    build_report r;
    snprintf(out, sizeof out, "%s/ds", dir);
    TEST_CHECK(build_from_jsonl(dir, jl, out, &o, &r, err, sizeof err) == 0 && r.kept == 1, "alpha build: %s", err);
    dataset d;
    TEST_CHECK(dataset_open(&d, out, 0, err, sizeof err) == 0, "open: %s", err);
    dataset_reader rd;
    dataset_reader_init(&rd, &d);
    record_view rec;
    TEST_CHECK(dataset_get(&rd, 0, &rec, err, sizeof err) == 0 && (rec.flags & RECORD_FLAG_ALPHA) && rec.width == 24, "record: %s", err);
    image dec = {0};
    size_t cap = 0;
    TEST_CHECK(image_webp_decode_into(rec.image, rec.image_len, 1, &dec, &cap) == 0 && dec.c == 4, "decode");
    int partial = 0, dark = 0, worst = 255;
    for (int i = 0; i < dec.w * dec.h; i++) {
        const uint8_t *q = dec.px + 4 * i;
        if (q[3] < 32 || q[3] == 255) continue;  // nearly invisible pixels carry little colour either way
        partial++;
        if (q[0] < worst) worst = q[0];
        if (q[0] < 235 || q[1] > 20 || q[2] > 20) dark++;
    }
    TEST_CHECK(partial > 0 && dark == 0, "edge pixels of a red cut-out stay red: %d of %d partly transparent pixels off (red down to %d)", dark,
               partial, worst);
    // after compositing on white (what the loader does) an edge pixel lies between red and white
    preprocess_scratch ps = {0};
    TEST_CHECK(preprocess_load(&dec, &ps) == 0, "composite");
    int halo = 0;
    for (int i = 0; i < dec.w * dec.h; i++) {
        const uint8_t *s = ps.src + 3 * i;
        if (s[0] < 235) halo++;  // red and white both have R = 255
    }
    TEST_CHECK(halo == 0, "no dark halo on white: %d pixels with R < 235", halo);
    preprocess_scratch_free(&ps);
    free(dec.px);
    dataset_reader_free(&rd);
    dataset_close(&d);
}

// the largest metadata the encoder takes must decode: 255 captions, character and source of
// 65535 bytes each are 16.84 MB, above the reader's 16 MiB (16.78 MB) bound (it was written,
// then every read of it failed)
static void test_meta_bound(void) {
    static char cap[65536];
    memset(cap, 'a', 65535);
    const char *caps[RECORD_MAX_CAPTIONS];
    for (int i = 0; i < RECORD_MAX_CAPTIONS; i++) caps[i] = cap;
    record_meta_in in = {.n_captions = RECORD_MAX_CAPTIONS, .captions = caps, .character = cap, .source = cap, .orig_w = 1, .orig_h = 1};
    uint8_t *raw = NULL;
    size_t rawn = 0;
    int enc = record_meta_encode(&in, &raw, &rawn);
    if (enc == 0) {  // accepted: then it must read back
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        ZSTD_DCtx *dc = ZSTD_createDCtx();
        uint8_t *z = NULL, *back = NULL;
        size_t zn = 0, cap2 = 0;
        char err[256] = "";
        int ok = record_meta_compress(cc, NULL, raw, rawn, &z, &zn) == 0;
        record_view r = {.meta = z, .meta_len = (uint32_t)zn, .meta_raw_len = (uint32_t)rawn};
        ok = ok && record_meta_decompress(dc, NULL, &r, &back, &cap2, err, sizeof err) == 0;
        TEST_CHECK(ok, "metadata of %zu bytes was encoded but does not read back: %s", rawn, err);
        free(z), free(back);
        ZSTD_freeCCtx(cc), ZSTD_freeDCtx(dc);
        free(raw);
    }
    in.n_captions = 200;  // 13.2 MB: under the bound, kept
    TEST_CHECK(record_meta_encode(&in, &raw, &rawn) == 0 && rawn <= RECORD_MAX_META, "200 captions of 64 KiB encode (%zu bytes)", rawn);
    free(raw);
}

int main(void) {
    const char *root = tmp_dir();
    test_alpha_downscale(root);
    test_meta_bound();
    return test_summary("test_data_semantics");
}
