// test_data_semantics.c — what is written and read means what docs/dataset-format.md and
// docs/data.md say: a downscaled cut-out keeps its colours at the mask edge (resize with
// premultiplied alpha, as Pillow does for RGBA).
#include <math.h>
#include <string.h>
#include "data/dataset.h"
#include "data/preprocess.h"
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

int main(void) {
    const char *root = tmp_dir();
    test_alpha_downscale(root);
    return test_summary("test_data_semantics");
}
