// test_clip_score.c — evaluation's CLIP against transformers (tiny random CLIPModel from
// scripts/fixtures_clip_full.py): shape detection of the vision tower and projections, loading
// by the published keys, image_embeds of given pixels, text_embeds of two prompts through the
// tokenizer, CLIPImageProcessor's PIL backend on a square and a 40x56 image (resize + centre crop),
// a file without a vision tower, and a CLIP whose config names another activation (refused).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "eval/clip_score.h"
#include "models/fixture.h"
#include "models/safetensors.h"
#include "testutil.h"

#define DIR "tests/fixtures/clip_full"

static void compare(const char *what, const float *got, const cm_tensor *want, int64_t row, int64_t n, double tol) {
    double num = 0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double w = tensor_get(want, row * n + i);
        num = test_max(num, fabs(got[i] - w));
        den = fmax(den, fabs(w));
    }
    printf("%-34s max rel err %.3g\n", what, num / den);
    TEST_CHECK(num / den <= tol, "%s: rel err %.3g > %.1g", what, num / den, tol);
}

int main(void) {
    char err[512];
    clip_vision_config vc;
    TEST_CHECK(clip_vision_detect(DIR "/model/model.safetensors", &vc, err, sizeof err) == 0, "detect: %s", err);
    TEST_CHECK(vc.hidden == 32 && vc.layers == 2 && vc.heads == 4 && vc.mlp == 64 && vc.patch == 4 && vc.image_size == 16 &&
                   vc.proj == 16 && vc.eps == 1e-5,
               "detected %lld/%lld/%lld/%lld patch %lld image %lld proj %lld", (long long)vc.hidden, (long long)vc.layers,
               (long long)vc.heads, (long long)vc.mlp, (long long)vc.patch, (long long)vc.image_size, (long long)vc.proj);
    TEST_CHECK(clip_vision_detect("tests/fixtures/siglip/weights.safetensors", &vc, err, sizeof err) == -1 &&
                   strstr(err, "vision_model.embeddings.position_embedding.weight") == NULL && strstr(err, "CLIP"),
               "a SigLIP file: %s", err);

    eval_clip c;
    TEST_CHECK(eval_clip_open(&c, DIR "/model", CM_DEV_CPU, CM_F32, err, sizeof err) == 0, "open: %s", err);
    TEST_CHECK(eval_clip_dim(&c) == 16, "projection width %d", eval_clip_dim(&c));
    st_file *io = st_open("tests/fixtures/clip_full/io.safetensors", err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io || !c.tok) return test_summary("test_clip_score");

    // image_embeds of the fixture's pixels (already normalised)
    cm_tensor *px = fixture_tensor(io, "pixel_values"), *ie = fixture_tensor(io, "image_embeds");
    cm_tensor *e = clip_vision_image_embeds(&c.vision, px);
    float got[64];
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < 16; i++) got[i] = (float)tensor_get(e, b * 16 + i);
        compare(b ? "image_embeds, image 1" : "image_embeds, image 0", got, ie, b, 16, 1e-5);
    }
    tensor_release(e), tensor_release(px), tensor_release(ie);

    // text_embeds of the prompts, through cameo's tokenizer (padded with eos to the 16 positions)
    cm_tensor *te = fixture_tensor(io, "text_embeds");
    const char *prompts[2] = {"a character with a red coat", "a photo of a cat"};
    for (int b = 0; b < 2; b++) {
        TEST_CHECK(eval_clip_text(&c, prompts[b], got, err, sizeof err) == 0, "text: %s", err);
        compare(b ? "text_embeds, 'a photo of a cat'" : "text_embeds, 'a character ...'", got, te, b, 16, 1e-5);
    }
    tensor_release(te);

    // CLIPImageProcessor (PIL): a square image (resize only) and a 40x56 one (resize + centre crop)
    const char *files[2] = {"docs/examples/eval/ref-a.png", DIR "/rect.png"}, *keys[2] = {"proc_a", "proc_rect"};
    for (int k = 0; k < 2; k++) {
        image im = {0};
        TEST_CHECK(image_load(files[k], &im, err, sizeof err) == 0, "%s: %s", files[k], err);
        float pix[3 * 16 * 16];
        TEST_CHECK(eval_clip_pixels(&im, 16, pix) == 0, "pixels");
        cm_tensor *want = fixture_tensor(io, keys[k]);
        double worst = 0;
        for (int i = 0; i < 3 * 16 * 16; i++) worst = test_max(worst, fabs(pix[i] - tensor_get(want, i)));
        printf("%-34s max abs err %.3g\n", keys[k], worst);
        TEST_CHECK(worst < 1e-5, "%s: CLIP's view of %s differs from CLIPImageProcessor's by %.3g", keys[k], files[k], worst);
        // the image's embedding end to end is what eval_clip_image returns
        float emb[16];
        TEST_CHECK(eval_clip_image(&c, &im, emb, err, sizeof err) == 0, "%s", err);
        cm_tensor *x = tensor_from_host(CM_F32, SHAPE(1, 3, 16, 16), pix, CM_DEV_CPU), *ex = clip_vision_image_embeds(&c.vision, x);
        double d = 0;
        for (int i = 0; i < 16; i++) d = test_max(d, fabs(emb[i] - tensor_get(ex, i)));
        TEST_CHECK(d < 1e-6, "eval_clip_image differs from the tower on its pixels by %.3g", d);
        tensor_release(x), tensor_release(ex), tensor_release(want);
        free(im.px);
    }
    // a reference with transparency is seen on white, as the adapter and DINO-I see it (not with
    // its alpha dropped: a cut-out on black)
    {
        image im = {0};
        TEST_CHECK(image_load("docs/examples/eval/ref-a.png", &im, err, sizeof err) == 0, "%s", err);
        int n = im.w * im.h;
        image ra = {im.w, im.h, 4, malloc((size_t)n * 4)}, wh = {im.w, im.h, 3, malloc((size_t)n * 3)};
        for (int i = 0; i < n; i++) {
            int clear = (i % im.w) < im.w / 3;  // the left third transparent, its colour black
            for (int k = 0; k < 3; k++) {
                ra.px[4 * i + k] = clear ? 0 : im.px[3 * i + k];
                wh.px[3 * i + k] = clear ? 255 : im.px[3 * i + k];
            }
            ra.px[4 * i + 3] = clear ? 0 : 255;
        }
        float pa[3 * 16 * 16], pw[3 * 16 * 16];
        TEST_CHECK(eval_clip_pixels(&ra, 16, pa) == 0 && eval_clip_pixels(&wh, 16, pw) == 0, "pixels");
        TEST_CHECK(!memcmp(pa, pw, sizeof pa), "an RGBA reference is CLIP's on white");
        free(im.px), free(ra.px), free(wh.px);
    }
    st_close(io);
    eval_clip_close(&c);

    // the fixture's weights with a config.json naming "gelu" (as LAION's CLIPs do): the towers compute
    // quick_gelu, so opening it must fail naming the key rather than score with the wrong activation
    char tmp[] = "/tmp/cameo-clip-act-XXXXXX", path[256], src[512];
    TEST_CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    const char *tf[] = {"model.safetensors", "vocab.json", "merges.txt"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, tf[i]);
        TEST_CHECK(realpath(DIR "/model", src) != NULL, "realpath");
        strncat(src, "/", sizeof src - strlen(src) - 1);
        strncat(src, tf[i], sizeof src - strlen(src) - 1);
        TEST_CHECK(symlink(src, path) == 0, "symlink %s", path);
    }
    FILE *in = fopen(DIR "/model/config.json", "rb");
    char cfg[4096] = {0};
    size_t n = in ? fread(cfg, 1, sizeof cfg - 1, in) : 0;
    if (in) fclose(in);
    char *act = strstr(cfg, "\"vision_config\"");
    act = act ? strstr(act, "\"quick_gelu\"") : NULL;
    TEST_CHECK(n > 0 && act, "the fixture's config.json names the vision tower's quick_gelu");
    if (act) {
        memmove(act + 6, act + 12, strlen(act + 12) + 1);  // "quick_gelu" -> "gelu"
        memcpy(act, "\"gelu\"", 6);
        snprintf(path, sizeof path, "%s/config.json", tmp);
        FILE *out = fopen(path, "wb");
        TEST_CHECK(out && fputs(cfg, out) >= 0 && fclose(out) == 0, "write %s", path);
        eval_clip g;
        TEST_CHECK(eval_clip_open(&g, tmp, CM_DEV_CPU, CM_F32, err, sizeof err) == -1 && strstr(err, "vision_config.hidden_act") &&
                       strstr(err, "gelu"),
                   "a gelu CLIP opened (or a message without the key): %s", err);
        eval_clip_close(&g);
        unlink(path);
    }
    for (int i = 0; i < 3; i++) snprintf(path, sizeof path, "%s/%s", tmp, tf[i]), unlink(path);
    rmdir(tmp);
    return test_summary("test_clip_score");
}
