// test_eval_results.c — a sweep folder's bookkeeping, without models: a pair's id goes by its
// content (the reference's absolute path and the prompt), not its line; images of different keys
// get different files (steps, size, pair in the name); tags stay unique across commands into one
// folder (DIR/tags.json; older folders from results.jsonl's lines) and the summary keeps two
// sources under one tag apart; rank files are merged after results.jsonl's cut-off tail is dropped;
// the command lines' numbers are parsed strictly.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/fsutil.h"
#include "data/image.h"
#include "eval/args.h"
#include "eval/report.h"
#include "eval/results.h"
#include "eval/tags.h"
#include "testutil.h"

static char dir[64];

static void put(const char *name, const char *text) {
    char p[256], err[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    TEST_CHECK(fs_write_atomic(p, text, strlen(text), err, sizeof err) == 0, "%s", err);
}

// a results line as eval_cli writes it (the fields eval_results_read needs)
static void line(char *out, size_t len, const char *key, const char *ckpt, const char *tag, double dino) {
    snprintf(out, len,
             "{\"key\":\"%s\",\"checkpoint\":\"%s\",\"checkpoint_tag\":\"%s\",\"scale\":0.9,\"guidance\":3.5,\"dino_i\":%g,"
             "\"siglip_i\":0.5,\"seconds\":1,\"steps\":4,\"width\":64,\"height\":64}",
             key, ckpt, tag, dino);
}

static void test_pair_id(void) {
    char a[EVAL_PAIR_ID_LEN], b[EVAL_PAIR_ID_LEN], c[EVAL_PAIR_ID_LEN], d[EVAL_PAIR_ID_LEN], p1[256], p2[256];
    put("ref.png", "x");
    TEST_CHECK(mkdir(strcat(strcpy(p1, dir), "/sub"), 0755) == 0, "mkdir sub");
    snprintf(p1, sizeof p1, "%s/ref.png", dir);
    snprintf(p2, sizeof p2, "%s/sub/../ref.png", dir);
    eval_pair_id(p1, "waving", a);
    eval_pair_id(p2, "waving", b);
    eval_pair_id(p1, "sitting", c);
    put("other.png", "y");
    snprintf(p2, sizeof p2, "%s/other.png", dir);
    eval_pair_id(p2, "waving", d);
    TEST_CHECK(strlen(a) == 16 && !strcmp(a, b), "one image through two paths: ids %s and %s", a, b);
    TEST_CHECK(strcmp(a, c) && strcmp(a, d), "another prompt or reference keeps the id %s", a);
    char *k1 = eval_key("/ck/step-4", a, 0.9, 3.5, 0, 4, 64, 64, NULL), *k2 = eval_key("/ck/step-4", c, 0.9, 3.5, 0, 4, 64, 64, NULL);
    TEST_CHECK(strstr(k1, a) && strcmp(k1, k2), "the key carries the pair's id: %s / %s", k1, k2);
    free(k1), free(k2);
}

static void test_image_name(void) {
    char id[EVAL_PAIR_ID_LEN] = "0123456789abcdef", n[5][300];
    eval_image_name(n[0], sizeof n[0], "step-4", 1, id, 0.9, 3.5, 2, 4, 64, 64, NULL);
    eval_image_name(n[1], sizeof n[1], "step-4", 1, id, 0.9, 3.5, 2, 8, 64, 64, NULL);
    eval_image_name(n[2], sizeof n[2], "step-4", 1, id, 0.9, 3.5, 2, 4, 32, 64, NULL);
    eval_image_name(n[3], sizeof n[3], "step-4", 1, "fedcba9876543210", 0.9, 3.5, 2, 4, 64, 64, NULL);
    eval_image_name(n[4], sizeof n[4], "step-4", 1, id, 0.9, 3.5, 2, 4, 64, 32, NULL);
    TEST_CHECK(!strcmp(n[0], "images/step-4/p1-01234567_s0.9_g3.5_seed2_4steps_64x64.png"), "the name: %s", n[0]);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < i; j++) TEST_CHECK(strcmp(n[i], n[j]), "two keys, one file: %s", n[i]);
    // scales (guidances) the key tells apart (%.9g) get files of their own
    eval_image_name(n[0], sizeof n[0], "step-4", 1, id, 0.1234567, 3.5, 2, 4, 64, 64, NULL);
    eval_image_name(n[1], sizeof n[1], "step-4", 1, id, 0.1234568, 3.5, 2, 4, 64, 64, NULL);
    eval_image_name(n[2], sizeof n[2], "step-4", 1, id, 0.9, 3.1234567, 2, 4, 64, 64, NULL);
    eval_image_name(n[3], sizeof n[3], "step-4", 1, id, 0.9, 3.1234568, 2, 4, 64, 64, NULL);
    TEST_CHECK(strcmp(n[0], n[1]) && strcmp(n[2], n[3]), "scales 0.1234567 / 0.1234568 (or guidances) share a file: %s, %s", n[0], n[2]);
}

// the device type, dtype and --config / --set overrides are part of a key: two sweeps that differ only
// there made one key (the second skipped every image as made, its summary the first's scores)
static void test_setup_key(void) {
    const char *sets[] = {"run.seed=5", "model.dtype=bf16"};
    char *cpu = eval_setup("cpu", "f32", NULL, NULL, 0), *gpu = eval_setup("cuda", "bf16", NULL, NULL, 0);
    char *cfg = eval_setup("cpu", "f32", "/c/tiny.yaml", sets, 2), *cfg1 = eval_setup("cpu", "f32", "/c/tiny.yaml", sets, 1);
    TEST_CHECK(!strcmp(cpu, "cpu f32") && !strcmp(cfg, "cpu f32 config /c/tiny.yaml --set run.seed=5 --set model.dtype=bf16"),
               "setups: '%s', '%s'", cpu, cfg);
    const char *setups[] = {NULL, cpu, gpu, cfg, cfg1};
    char *k[5], n[5][300], id[EVAL_PAIR_ID_LEN] = "0123456789abcdef";
    for (int i = 0; i < 5; i++) {
        k[i] = eval_key("/ck/step-4", id, 0.9, 3.5, 0, 4, 64, 64, setups[i]);
        eval_image_name(n[i], sizeof n[i], "step-4", 1, id, 0.9, 3.5, 0, 4, 64, 64, setups[i]);
        for (int j = 0; j < i; j++)
            TEST_CHECK(strcmp(k[i], k[j]) && strcmp(n[i], n[j]), "setups '%s' and '%s': one key or file (%s, %s)", setups[i] ? setups[i] : "-",
                       setups[j] ? setups[j] : "-", k[i], n[i]);
    }
    TEST_CHECK(!strcmp(k[0], "/ck/step-4|0123456789abcdef|0.9|3.5|0|4|64x64") && strstr(k[2], "|cuda bf16"),
               "no setup: the key of lines from before (%s); a setup after it (%s)", k[0], k[2]);
    // lines of two setups (and one from before lines named theirs): read as three images, three rows
    char text[2048];
    snprintf(text, sizeof text,
             "{\"key\":\"%s\",\"checkpoint\":\"/ck/step-4\",\"checkpoint_tag\":\"step-4\",\"scale\":0.9,\"guidance\":3.5,"
             "\"dino_i\":0.1,\"siglip_i\":0.5,\"seconds\":1,\"steps\":4,\"width\":64,\"height\":64}\n"
             "{\"key\":\"%s\",\"checkpoint\":\"/ck/step-4\",\"checkpoint_tag\":\"step-4\",\"scale\":0.9,\"guidance\":3.5,"
             "\"dino_i\":0.2,\"siglip_i\":0.5,\"seconds\":1,\"steps\":4,\"width\":64,\"height\":64,\"setup\":\"%s\"}\n"
             "{\"key\":\"%s\",\"checkpoint\":\"/ck/step-4\",\"checkpoint_tag\":\"step-4\",\"scale\":0.9,\"guidance\":3.5,"
             "\"dino_i\":0.3,\"siglip_i\":0.5,\"seconds\":1,\"steps\":4,\"width\":64,\"height\":64,\"setup\":\"%s\"}\n",
             k[0], k[1], cpu, k[2], gpu);
    put("setup.jsonl", text);
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/setup.jsonl", dir);
    eval_results r = {0};
    int dmg;
    TEST_CHECK(eval_results_read(path, &r, &dmg, err, sizeof err) == 0 && r.n == 3 && dmg == 0, "%s (%d images)", err, r.n);
    TEST_CHECK(eval_results_has(&r, k[1], 0) && eval_results_has(&r, k[2], 0) && !eval_results_has(&r, k[3], 0), "found by setup");
    char *md = eval_summary_text(&r, "t");
    TEST_CHECK(strstr(md, "| 1 | 0.1000 | 0.5000 | n/a | n/a | 1.00 | n/a |") && strstr(md, "| 1 | 0.2000 | 0.5000 | n/a | n/a | 1.00 | cpu f32 |") &&
                   strstr(md, "| 1 | 0.3000 | 0.5000 | n/a | n/a | 1.00 | cuda bf16 |"),
               "a row per setup, the setup in its last column:\n%s", md);
    free(md);
    eval_results_free(&r);
    for (int i = 0; i < 5; i++) free(k[i]);
    free(cpu), free(gpu), free(cfg), free(cfg1);
}

static void test_tags(void) {
    char out[256], tf[300], srcs[3][PATH_MAX + 8] = {"/a/run/checkpoints/step-4", "/b/run/checkpoints/step-4", "/a/run/checkpoints/step-4#ema"};
    char bases[3][96] = {"step-4", "step-4", "step-4-ema"}, tags[3][96], err[512];
    snprintf(out, sizeof out, "%s/sweep", dir);
    TEST_CHECK(fs_mkdirs(out) == 0, "mkdir");
    // one command: the first source; a later one: the second, whose name the first has
    TEST_CHECK(eval_tags_assign(out, 1, srcs, bases, true, tags, err, sizeof err) == 0 && !strcmp(tags[0], "step-4"), "%s %s", err, tags[0]);
    TEST_CHECK(eval_tags_assign(out, 1, srcs + 1, bases + 1, true, tags, err, sizeof err) == 0 && !strcmp(tags[0], "step-4-2"),
               "another checkpoint named step-4 in a later command: tag %s, want step-4-2", tags[0]);
    // both again in one command (another order): each keeps its tag; the --ema source has its own
    char s2[3][PATH_MAX + 8], b2[3][96];
    memcpy(s2[0], srcs[1], sizeof s2[0]), memcpy(s2[1], srcs[0], sizeof s2[1]), memcpy(s2[2], srcs[2], sizeof s2[2]);
    memcpy(b2[0], bases[1], 96), memcpy(b2[1], bases[0], 96), memcpy(b2[2], bases[2], 96);
    TEST_CHECK(eval_tags_assign(out, 3, s2, b2, true, tags, err, sizeof err) == 0 && !strcmp(tags[0], "step-4-2") &&
                   !strcmp(tags[1], "step-4") && !strcmp(tags[2], "step-4-ema"),
               "rerun: %s %s %s", tags[0], tags[1], tags[2]);
    snprintf(tf, sizeof tf, "%s/tags.json", out);
    size_t len;
    char *t = fs_read_file(tf, &len, 1 << 20);
    TEST_CHECK(t && strstr(t, "\"step-4-2\":\t\"/b/run/checkpoints/step-4\""), "tags.json: %s", t ? t : "(none)");
    free(t);
    // a folder from before tags.json: its results lines' tags count as taken
    char l[1024], text[2200];
    snprintf(out, sizeof out, "%s/old", dir);
    TEST_CHECK(fs_mkdirs(out) == 0, "mkdir");
    line(l, sizeof l, "k1", "/a/run/checkpoints/step-4", "step-4", 0.5);
    snprintf(text, sizeof text, "%s\n", l);
    put("old/results.jsonl", text);
    TEST_CHECK(eval_tags_assign(out, 2, srcs, bases, false, tags, err, sizeof err) == 0 && !strcmp(tags[0], "step-4") &&
                   !strcmp(tags[1], "step-4-2"),
               "an older folder: %s %s", tags[0], tags[1]);
    TEST_CHECK(access("old/tags.json", F_OK) != 0, "write=false wrote tags.json");
}

// two sources under one tag (lines of two commands before the tags were recorded): two summary rows
static void test_summary_by_source(void) {
    char l[4][1024], text[4400], path[256], err[256];
    line(l[0], sizeof l[0], "a|1", "/a/step-4", "step-4", 0.2);
    line(l[1], sizeof l[1], "a|2", "/a/step-4", "step-4", 0.4);
    line(l[2], sizeof l[2], "b|1", "/b/step-4", "step-4", 0.8);
    line(l[3], sizeof l[3], "b|2", "/b/step-4", "step-4", 0.6);
    snprintf(text, sizeof text, "%s\n%s\n%s\n%s\n", l[0], l[1], l[2], l[3]);
    put("sum.jsonl", text);
    snprintf(path, sizeof path, "%s/sum.jsonl", dir);
    eval_results r = {0};
    int dmg;
    TEST_CHECK(eval_results_read(path, &r, &dmg, err, sizeof err) == 0 && r.n == 4, "%s", err);
    char *md = eval_summary_text(&r, "t");
    TEST_CHECK(strstr(md, "| step-4 | 64x64 | 4 | 0.9 | 3.5 | 2 | 0.3000 ± 0.1414") && strstr(md, "| 2 | 0.7000 ± 0.1414"),
               "two checkpoints tagged step-4 averaged into one row:\n%s", md);
    free(md);
    eval_results_free(&r);
}

// a row whose images were made partly with --clip (a later sweep without it added seeds): the CLIP
// means cover only those images, and say so, else they read as the row's
static void test_summary_partial_clip(void) {
    char l[3][1024], text[3300], path[256], err[256];
    line(l[0], sizeof l[0], "c|1", "/c/step-4", "step-4", 0.2);
    line(l[1], sizeof l[1], "c|2", "/c/step-4", "step-4", 0.4);
    line(l[2], sizeof l[2], "c|3", "/c/step-4", "step-4", 0.6);
    for (int i = 0; i < 2; i++) {  // the first two with CLIP scores
        char *end = strrchr(l[i], '}');
        snprintf(end, sizeof l[i] - (size_t)(end - l[i]), ",\"clip_i\":%g,\"clip_t\":0.25}", 0.7 + 0.1 * i);
    }
    snprintf(text, sizeof text, "%s\n%s\n%s\n", l[0], l[1], l[2]);
    put("clip.jsonl", text);
    snprintf(path, sizeof path, "%s/clip.jsonl", dir);
    eval_results r = {0};
    int dmg;
    TEST_CHECK(eval_results_read(path, &r, &dmg, err, sizeof err) == 0 && r.n == 3, "%s", err);
    char *md = eval_summary_text(&r, "t");
    TEST_CHECK(strstr(md, "| 3 | 0.4000 ± 0.2000 | 0.5000 ± 0.0000 | 0.7500 ± 0.0707 (2 of 3) | 0.2500 ± 0.0000 (2 of 3) |"),
               "CLIP means over 2 of the row's 3 images not marked:\n%s", md);
    free(md);
    eval_results_free(&r);
}

// rows of scales (guidances) that differ past %g's 6 digits: labelled apart, as the key keeps them
static void test_summary_digits(void) {
    char path[256], err[256];
    put("dig.jsonl", "{\"key\":\"d|1\",\"checkpoint\":\"/d\",\"checkpoint_tag\":\"d\",\"scale\":0.1234567,\"guidance\":3.5,"
                     "\"dino_i\":0.1,\"siglip_i\":0.5,\"seconds\":1,\"steps\":4,\"width\":64,\"height\":64}\n"
                     "{\"key\":\"d|2\",\"checkpoint\":\"/d\",\"checkpoint_tag\":\"d\",\"scale\":0.1234568,\"guidance\":3.5,"
                     "\"dino_i\":0.2,\"siglip_i\":0.5,\"seconds\":1,\"steps\":4,\"width\":64,\"height\":64}\n");
    snprintf(path, sizeof path, "%s/dig.jsonl", dir);
    eval_results r = {0};
    int dmg;
    TEST_CHECK(eval_results_read(path, &r, &dmg, err, sizeof err) == 0 && r.n == 2, "%s", err);
    char *md = eval_summary_text(&r, "t");
    TEST_CHECK(strstr(md, "| d | 64x64 | 4 | 0.1234567 | 3.5 |") && strstr(md, "| d | 64x64 | 4 | 0.1234568 | 3.5 |"),
               "two scales' rows under one label:\n%s", md);
    free(md);
    eval_results_free(&r);
}

// results.jsonl cut off mid-line and a rank file: the cut tail dropped before the rank's line is
// appended (else the two glue into one unparsable line and both are lost)
static void test_merge_after_cut(void) {
    char l[3][1024], text[3200], out[256], res[300], err[256];
    snprintf(out, sizeof out, "%s/mpi", dir);
    TEST_CHECK(fs_mkdirs(out) == 0, "mkdir");
    line(l[0], sizeof l[0], "k0", "/a/step-4", "step-4", 0.1);
    line(l[1], sizeof l[1], "k1", "/a/step-4", "step-4", 0.2);
    line(l[2], sizeof l[2], "k2", "/a/step-4", "step-4", 0.3);
    snprintf(text, sizeof text, "%s\n%.40s", l[0], l[1]);
    put("mpi/results.jsonl", text);
    snprintf(text, sizeof text, "%s\n", l[2]);
    put("mpi/results.rank-1.jsonl", text);
    snprintf(res, sizeof res, "%s/results.jsonl", out);
    int cut = 0, dmg = 0;
    TEST_CHECK(eval_results_merge_ranks(out, res, &cut, err, sizeof err) == 1, "merge: %s", err);
    eval_results r = {0};
    TEST_CHECK(eval_results_read(res, &r, &dmg, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(r.n == 2 && eval_results_find(&r, "k0") >= 0 && eval_results_find(&r, "k2") >= 0 && cut + dmg == 1,
               "after the merge: %d lines (want k0 and the rank's k2), %d + %d dropped (want 1)", r.n, cut, dmg);
    eval_results_free(&r);
}

// a merge cut short between appending a rank file's lines and removing the file (a job killed at its
// time limit) appends them again at the next start: the lines results.jsonl has already are not
// appended twice (one line per image; a reader of the file would count them twice)
static void test_merge_again(void) {
    char l[2][1024], text[2200], out[256], res[300], err[256] = "";
    snprintf(out, sizeof out, "%s/mpi2", dir);
    TEST_CHECK(fs_mkdirs(out) == 0, "mkdir");
    line(l[0], sizeof l[0], "m0", "/a/step-4", "step-4", 0.1);
    line(l[1], sizeof l[1], "m1", "/a/step-4", "step-4", 0.2);
    snprintf(text, sizeof text, "%s\n", l[0]);
    put("mpi2/results.jsonl", text);  // m0 merged already, the rank file still there
    snprintf(text, sizeof text, "%s\n%s\n", l[0], l[1]);
    put("mpi2/results.rank-1.jsonl", text);
    snprintf(res, sizeof res, "%s/results.jsonl", out);
    int cut = 0;
    TEST_CHECK(eval_results_merge_ranks(out, res, &cut, err, sizeof err) == 1, "merge again: %s (want 1 line moved)", err);
    size_t len;
    char *t = fs_read_file(res, &len, 1 << 20);
    snprintf(text, sizeof text, "%s\n%s\n", l[0], l[1]);
    TEST_CHECK(t && !strcmp(t, text), "results.jsonl after merging again:\n%s", t ? t : "(unreadable)");
    free(t);
}

static void test_args(void) {
    int i, w, h, n;
    double x, l[8];
    uint64_t u;
    TEST_CHECK(eval_arg_int("t", "--steps", "12", 1, 1024, &i) == 0 && i == 12, "--steps 12");
    TEST_CHECK(eval_arg_int("t", "--steps", "2x", 1, 1024, &i) && eval_arg_int("t", "--steps", "", 1, 1024, &i) &&
                   eval_arg_int("t", "--steps", "0", 1, 1024, &i),
               "--steps 2x, '', 0 accepted");
    TEST_CHECK(eval_arg_double("t", "--scale", "0.9", &x) == 0 && x == 0.9, "--scale 0.9");
    TEST_CHECK(eval_arg_double("t", "--scale", "abc", &x) && eval_arg_double("t", "--guidance", "x", &x) &&
                   eval_arg_double("t", "--scale", "1e999", &x) && eval_arg_double("t", "--scale", "nan", &x),
               "--scale abc / x / 1e999 / nan accepted");
    TEST_CHECK(eval_arg_u64("t", "--seed", "18446744073709551615", &u) == 0 && u == UINT64_MAX, "the largest seed");
    TEST_CHECK(eval_arg_u64("t", "--seed", "-1", &u) && eval_arg_u64("t", "--seed", "1.5", &u) &&
                   eval_arg_u64("t", "--seed", "18446744073709551616", &u),
               "--seed -1 / 1.5 / 2^64 accepted");
    TEST_CHECK(eval_arg_size("t", "--size", "64x48", &w, &h) == 0 && w == 64 && h == 48, "--size 64x48");
    TEST_CHECK(eval_arg_size("t", "--size", "0x32", &w, &h) && eval_arg_size("t", "--size", "64x", &w, &h) &&
                   eval_arg_size("t", "--size", "64x64x", &w, &h) && eval_arg_size("t", "--size", "64", &w, &h),
               "--size 0x32 / 64x / 64x64x / 64 accepted");
    TEST_CHECK(eval_arg_list("t", "--seeds", "0,1,2", l, 8, &n) == 0 && n == 3, "--seeds 0,1,2");
    // -0 is 0: the keys and file names write it "-0", which would make the baseline of --scales 0 again
    // under a key of its own (and a summary row of its own)
    char k0[64], k1[64];
    TEST_CHECK(eval_arg_list("t", "--scales", "-0,0.5", l, 8, &n) == 0 && n == 2, "--scales -0,0.5");
    snprintf(k0, sizeof k0, "%.9g", l[0]), snprintf(k1, sizeof k1, "%.9g", 0.0);
    TEST_CHECK(!strcmp(k0, k1), "--scales -0 keyed as '%s', --scales 0 as '%s'", k0, k1);
    TEST_CHECK(eval_arg_list("t", "--seeds", "-0", l, 8, &n) == 0 && n == 1 && !signbit(l[0]), "--seeds -0 kept its sign");
    TEST_CHECK(eval_arg_list("t", "--seeds", "0,1,0,2,3", l, 8, &n) && eval_arg_list("t", "--scales", "0.9,0.90", l, 8, &n),
               "a value twice accepted");
}

// a contact sheet shows a reference with alpha on white, as the adapter sees it: its left half opaque
// red, its right half transparent black (the colour behind a cut-out, which the bare RGB would show)
static void test_sheet_alpha(void) {
    char err[512], ref[256], sp[256];
    image rgba = {8, 8, 4, malloc(8 * 8 * 4)};
    for (int i = 0; i < 64; i++) {
        uint8_t *q = rgba.px + i * 4;
        bool left = i % 8 < 4;
        q[0] = left ? 255 : 0, q[1] = q[2] = 0, q[3] = left ? 255 : 0;
    }
    snprintf(ref, sizeof ref, "%s/cutout.png", dir);
    TEST_CHECK(image_write_png(ref, &rgba, err, sizeof err) == 0, "%s", err);
    free(rgba.px);
    static eval_pair pair;
    snprintf(pair.ref, sizeof pair.ref, "%s", ref);
    char ids[1][EVAL_PAIR_ID_LEN] = {"0123456789abcdef"}, tags[1][96] = {"step-1"}, srcs[1][PATH_MAX + 8] = {"/ck/step-1"};
    double sc[] = {0.9}, gd[] = {3.5}, sd[] = {0};
    eval_results none = {0};
    TEST_CHECK(eval_contact_sheets(dir, &none, &pair, ids, 1, srcs, tags, 1, sc, 1, gd, 1, sd, 1, 4, 8, 8, NULL, err, sizeof err) == 0, "%s",
               err);
    snprintf(sp, sizeof sp, "%s/sheets/p0.png", dir);
    image sheet = {0};
    TEST_CHECK(image_load(sp, &sheet, err, sizeof err) == 0 && sheet.c == 3, "%s", err);
    const int gap = 4, SW = 2 * 8 + 3 * gap;  // the reference's cell at (gap, gap); the missing image grey beside it
    TEST_CHECK(sheet.w == SW && sheet.h == 8 + 2 * gap, "sheet %dx%d", sheet.w, sheet.h);
    const uint8_t *opaque = sheet.px + ((size_t)(gap + 4) * SW + gap + 1) * 3, *clear = sheet.px + ((size_t)(gap + 4) * SW + gap + 6) * 3;
    TEST_CHECK(opaque[0] == 255 && opaque[1] == 0 && opaque[2] == 0, "the opaque half red: %d %d %d", opaque[0], opaque[1], opaque[2]);
    TEST_CHECK(clear[0] == 255 && clear[1] == 255 && clear[2] == 255, "the transparent half on white, as the adapter sees it: %d %d %d",
               clear[0], clear[1], clear[2]);
    const uint8_t *missing = sheet.px + ((size_t)(gap + 4) * SW + 2 * gap + 8 + 4) * 3;
    TEST_CHECK(missing[0] == 128, "a missing image grey: %d", missing[0]);
    free(sheet.px);
}

// a pair moved in the pairs file keeps its images (its key goes by content), which were made under its
// old line number: its sheet shows them, not grey cells where the new number would name them
static void test_sheet_moved_pair(void) {
    char err[512], ref[256], img[400], sp[256];
    image px = {8, 8, 3, malloc(8 * 8 * 3)};
    memset(px.px, 200, 8 * 8 * 3);
    snprintf(ref, sizeof ref, "%s/moved-ref.png", dir);
    TEST_CHECK(image_write_png(ref, &px, err, sizeof err) == 0, "%s", err);
    char ids[1][EVAL_PAIR_ID_LEN] = {"fedcba9876543210"}, tags[1][96] = {"step-2"}, srcs[1][PATH_MAX + 8] = {"/ck/step-2"};
    double sc[] = {0.9}, gd[] = {3.5}, sd[] = {0};
    // made by an earlier run when the pair was line 1 of the file: images/step-2/p1-fedcba98_...png, a line saying so
    eval_image_name(img, sizeof img, "step-2", 1, ids[0], 0.9, 3.5, 0, 4, 8, 8, NULL);
    TEST_CHECK(fs_mkdirs("images/step-2") == 0, "mkdir");
    memset(px.px, 10, 8 * 8 * 3);
    TEST_CHECK(image_write_png(img, &px, err, sizeof err) == 0, "%s", err);
    free(px.px);
    char l[1024], key[256];
    char *k = eval_key(srcs[0], ids[0], 0.9, 3.5, 0, 4, 8, 8, NULL);
    snprintf(key, sizeof key, "%s", k);
    free(k);
    snprintf(l, sizeof l, "{\"key\":\"%s\",\"checkpoint\":\"/ck/step-2\",\"checkpoint_tag\":\"step-2\",\"pair\":1,\"scale\":0.9,"
             "\"guidance\":3.5,\"dino_i\":0.5,\"siglip_i\":0.5,\"seconds\":1,\"steps\":4,\"width\":8,\"height\":8}\n", key);
    put("moved.jsonl", l);
    eval_results d = {0};
    int damaged;
    snprintf(sp, sizeof sp, "%s/moved.jsonl", dir);
    TEST_CHECK(eval_results_read(sp, &d, &damaged, err, sizeof err) == 0 && d.n == 1, "%s", err);
    static eval_pair pair;  // now the file's first line: p0
    snprintf(pair.ref, sizeof pair.ref, "%s", ref);
    TEST_CHECK(eval_contact_sheets(dir, &d, &pair, ids, 1, srcs, tags, 1, sc, 1, gd, 1, sd, 1, 4, 8, 8, NULL, err, sizeof err) == 0, "%s", err);
    snprintf(sp, sizeof sp, "%s/sheets/p0.png", dir);
    image sheet = {0};
    TEST_CHECK(image_load(sp, &sheet, err, sizeof err) == 0, "%s", err);
    const int gap = 4, SW = 2 * 8 + 3 * gap;
    const uint8_t *cell = sheet.px ? sheet.px + ((size_t)(gap + 4) * SW + 2 * gap + 8 + 4) * 3 : NULL;
    TEST_CHECK(cell && cell[0] == 10, "the moved pair's image (made as p1, now line 0) on its sheet: %d, want 10 (128: grey, not found)",
               cell ? cell[0] : -1);
    free(sheet.px);
    eval_results_free(&d);
}

// a line appended onto a full disk (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG past it) fails naming the
// cause and leaves nothing of itself: validation.jsonl goes on after a failure, and a torn line was
// glued onto the next one appended (both then dropped as damaged on a resume)
static void test_append_full(void) {
    char path[300], err[512], a[200], b[200], c[200], want[700];
    snprintf(path, sizeof path, "%s/full.jsonl", dir);
    snprintf(a, sizeof a, "{\"step\":1,\"loss\":0.5}");
    snprintf(b, sizeof b, "{\"step\":2,\"loss\":0.25,\"note\":\"a line longer than the room that is left on the disk\"}");
    snprintf(c, sizeof c, "{\"step\":3,\"loss\":0.125}");
    TEST_CHECK(eval_append_line(path, a, err, sizeof err) == 0, "%s", err);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = strlen(a) + 1 + 20;  // room for 20 bytes of the line
    TEST_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    err[0] = 0;
    int rc = eval_append_line(path, b, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    TEST_CHECK(rc == -1 && strstr(err, "full.jsonl") && strstr(err, strerror(EFBIG)), "the failure names the file and the cause: %s", err);
    TEST_CHECK(eval_append_line(path, c, err, sizeof err) == 0, "with room again: %s", err);
    size_t n;
    char *text = fs_read_file(path, &n, 1 << 20);
    snprintf(want, sizeof want, "%s\n%s\n", a, c);
    TEST_CHECK(text && !strcmp(text, want), "lines 1 and 3 whole, nothing of line 2: [%s]", text ? text : "unreadable");
    free(text);
}

// results.jsonl / validation.jsonl that is no regular file (a symlink to /dev/null, /dev/zero or
// /dev/full, a FIFO): read as empty and left alone, as metrics.jsonl is; a FIFO used to block in
// open (no writer) and the devices failed with "Invalid argument". Each in a child killed after 5 s.
static void test_not_regular(void) {
    const char *names[4] = {"null", "zero", "full", "fifo"};
    for (int i = 0; i < 4; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/special-%s.jsonl", dir, names[i]);
        char dev[32];
        snprintf(dev, sizeof dev, "/dev/%s", names[i]);
        TEST_CHECK(i == 3 ? mkfifo(p, 0644) == 0 : symlink(dev, p) == 0, "make %s", p);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(5);
            eval_results d = {0};
            int damaged = -1;
            char err[1024] = "";
            int rc = eval_results_read(p, &d, &damaged, err, sizeof err);
            if (rc) fprintf(stderr, "%s: %s\n", names[i], err);
            _exit(rc ? 2 : damaged != 0 || d.n != 0 ? 3 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        TEST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: read as empty without error (status %d: %s)", p, status,
                   WIFSIGNALED(status) ? "killed: it blocked" : "see above");
        struct stat sb;
        TEST_CHECK(!lstat(p, &sb) && (i == 3 ? S_ISFIFO(sb.st_mode) : S_ISLNK(sb.st_mode)), "%s left in place", p);
        unlink(p);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/cameo-evres-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    TEST_CHECK(chdir(dir) == 0, "chdir");
    test_pair_id();
    test_image_name();
    test_tags();
    test_setup_key();
    test_summary_by_source();
    test_summary_partial_clip();
    test_summary_digits();
    test_merge_after_cut();
    test_merge_again();
    test_append_full();
    test_args();
    test_sheet_alpha();
    test_sheet_moved_pair();
    test_not_regular();
    if (!test_failures) test_sh("rm -rf %s", dir);
    return test_summary("test_eval_results");
}
