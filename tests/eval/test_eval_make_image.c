// test_eval_make_image.c — eval_make_image saves the image with one atomic write: a folder that
// cannot hold it gives a message naming PNG.tmp (not PNG.tmp.png.tmp), a PNG path that is a
// folder (the rename fails) leaves no temporary file behind, and a good path leaves only PNG.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "data/fsutil.h"
#include "eval/eval_models.h"
#include "eval/pairs.h"
#include "eval/sample.h"
#include "eval/sample_io.h"
#include "testutil.h"
#include "train/config.h"

static char dir[64];
static void cleanup(void) { fs_remove_tree(dir); }

// names in dir holding ".tmp"
static int leftovers(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) if (strstr(e->d_name, ".tmp")) { printf("left behind: %s\n", e->d_name); n++; }
    if (d) closedir(d);
    return n;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/cameo-make-image-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    atexit(cleanup);
    char err[2048] = "";
    train_config cfg;
    TEST_CHECK(train_config_parse(&cfg, train_config_tiny_yaml, strlen(train_config_tiny_yaml), "tiny", NULL, 0, err, sizeof err) == 0, "%s", err);
    ic_models m;
    TEST_CHECK(ic_models_init_tiny(&m, &cfg.model.tiny_dims, CM_DEV_CPU, CM_F32, false, 3, "default", err, sizeof err) == 0, "%s", err);
    vae_decoder dec;
    cm_params pd;
    TEST_CHECK(eval_decoder_open(&m, &cfg, &dec, &pd, err, sizeof err) == 0, "%s", err);

    // one pair whose reference is a small pattern
    image ref = {32, 32, 3, malloc(32 * 32 * 3)};
    for (int i = 0; i < 32 * 32 * 3; i++) ref.px[i] = (uint8_t)(i * 7);
    eval_pair p = {.prompt = "a character", .line = 1};
    TEST_CHECK(eval_reference_views(&ref, m.ref_size, &p.sig, &p.dino, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(eval_embed(&m, p.sig, p.dino, &p.emb, err, sizeof err) == 0, "%s", err);
    int f = m.vae_factor;
    eval_sample_opts o = {.steps = 1, .guidance = 3.5, .ip_scale = 0.9, .width = 2 * f, .height = 2 * f, .seed = 1};
    eval_scores sc;
    char png[256];

    // a folder that is not there: the message names the file written, once suffixed
    snprintf(png, sizeof png, "%s/missing/a.png", dir);
    TEST_CHECK(eval_make_image(&m, &dec, NULL, &p, &o, png, &sc, err, sizeof err) == -1, "a missing folder accepted");
    printf("missing folder -> %s\n", err);
    TEST_CHECK(strstr(err, "a.png.tmp") && !strstr(err, ".tmp.png"), "the message names a.png.tmp: %s", err);

    // the PNG path is a folder: the rename fails, and no temporary file is left beside it
    snprintf(png, sizeof png, "%s/b.png", dir);
    TEST_CHECK(mkdir(png, 0755) == 0, "mkdir %s", png);
    char keep[300];
    snprintf(keep, sizeof keep, "%s/inside", png);  // non-empty, so rename cannot replace it
    TEST_CHECK(fs_write_atomic(keep, "x", 1, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(eval_make_image(&m, &dec, NULL, &p, &o, png, &sc, err, sizeof err) == -1, "a folder replaced by an image");
    printf("folder in the way -> %s\n", err);
    TEST_CHECK(leftovers() == 0, "no temporary file left after a failed rename");

    // a good path: the image and nothing else
    snprintf(png, sizeof png, "%s/c.png", dir);
    TEST_CHECK(eval_make_image(&m, &dec, NULL, &p, &o, png, &sc, err, sizeof err) == 0, "%s", err);
    image back = {0};
    TEST_CHECK(image_load(png, &back, err, sizeof err) == 0 && back.w == o.width && back.h == o.height, "c.png reads back: %s", err);
    TEST_CHECK(leftovers() == 0, "no temporary file left after a good write");

    free(back.px), free(ref.px), free(p.sig), free(p.dino);
    eval_embedding_free(&p.emb);
    vae_decoder_free(&dec);
    params_free(&pd);
    ic_models_free(&m);
    return test_summary("test_eval_make_image");
}
