// e2e_eval.c — `cameo eval` as a user runs it: a tiny three-stage `cameo train` run leaves
// checkpoints step-2 and step-4; a sweep of both × two subject scales × two (reference, prompt)
// pairs writes 8 images, 8 result lines and a 4-row summary; plain FLUX (scale 0) scores the same
// for both checkpoints, the adapter's scale does not; a rerun makes nothing and changes nothing;
// a line cut off mid-write is made again with the same scores; --clip over earlier lines; two MPI
// ranks give the lines of one process; evaluation during training leaves the weights as they
// were and resumes to the same lines, and a sweep into its folder is refused; bad pairs, a missing reference, a bad list and a checkpoint
// of other models are errors that name the thing.
// Usage: e2e_eval PATH/TO/cameo [PATH/TO/mpirun]   (registered by tests/eval/extra.cmake)
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <math.h>
#include <unistd.h>
#include "data/fsutil.h"
#include "data/image.h"
#include "testutil.h"

static const char *cameo, *mpirun;
static char dir[64];

static void write_png(const char *name, int w, int h, int kind) {
    image im = {w, h, 3, malloc((size_t)w * h * 3)};
    for (int i = 0; i < w * h; i++) {
        int x = i % w, y = i / w;
        im.px[i * 3 + 0] = (uint8_t)(kind ? x * y : x * 37 + y * 11);
        im.px[i * 3 + 1] = (uint8_t)(kind ? 90 : x * 6);
        im.px[i * 3 + 2] = (uint8_t)(kind ? 200 - 3 * y : y * 4);
    }
    char p[256], err[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    TEST_CHECK(image_write_png(p, &im, err, sizeof err) == 0, "%s", err);
    free(im.px);
}

static void write_text(const char *name, const char *text) {
    char p[256], err[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    TEST_CHECK(fs_write_atomic(p, text, strlen(text), err, sizeof err) == 0, "%s", err);
}

static char *read_text(const char *name) {
    char p[256];
    size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return fs_read_file(p, &n, 1 << 24);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static int count_lines_file(const char *name) {
    char *t = read_text(name);
    int n = count_lines(t);
    free(t);
    return n;
}

// runs cameo eval with ARGS in dir; its stderr into dir/eval.log; the exit status
static int eval(const char *args) {
    return test_sh("cd %s && %s eval run/tiny/checkpoints/step-2 run/tiny/checkpoints/step-4 %s >eval.out 2>eval.log", dir, cameo, args);
}

static bool log_has(const char *what) { return test_sh("grep -qF -- '%s' %s/eval.log", what, dir) == 0; }

typedef struct { char tag[32]; double scale, dino, siglip; int pair; } rec;

static int parse_results(const char *text, rec *r, int max) {
    int n = 0;
    for (const char *s = text; s && *s && n < max;) {
        const char *e = strchr(s, '\n');
        char line[4096];
        size_t len = e ? (size_t)(e - s) : strlen(s);
        snprintf(line, sizeof line, "%.*s", (int)len, s);
        cJSON *j = cJSON_Parse(line);
        if (j) {  // (the training's evaluation lines have no tag: "")
            const cJSON *t = cJSON_GetObjectItem(j, "checkpoint_tag"), *sc = cJSON_GetObjectItem(j, "scale"),
                        *di = cJSON_GetObjectItem(j, "dino_i"), *si = cJSON_GetObjectItem(j, "siglip_i"), *pa = cJSON_GetObjectItem(j, "pair");
            snprintf(r[n].tag, sizeof r[n].tag, "%s", cJSON_IsString(t) ? t->valuestring : "");
            r[n].scale = sc ? sc->valuedouble : NAN;
            r[n].dino = di ? di->valuedouble : NAN;
            r[n].siglip = si ? si->valuedouble : NAN;
            r[n].pair = pa ? pa->valueint : -1;
            n++;
            cJSON_Delete(j);
        }
        s = e ? e + 1 : NULL;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) test_skip("usage: e2e_eval PATH/TO/cameo [PATH/TO/mpirun]");
    mpirun = argc > 2 ? argv[2] : NULL;
    static char abs_cameo[4096];
    cameo = realpath(argv[1], abs_cameo) ? abs_cameo : argv[1];  // the sweeps run from inside dir
    snprintf(dir, sizeof dir, "/tmp/cameo-eval-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    TEST_CHECK(test_sh("%s train --set stages.0.steps=2 --set stages.1.steps=1 --set stages.2.steps=1 --set run.ckpt_every=2 "
                       "--set optimizer.ema=0.5 --set run.keep_last=0 --set run.out_dir=%s/run --set data.path=%s/data --quiet >%s/train.log 2>&1",
                       cameo, dir, dir, dir) == 0, "the tiny training run (see %s/train.log)", dir);
    write_png("a.png", 40, 56, 0);
    write_png("refs-b.png", 48, 48, 1);
    write_text("pairs.jsonl", "{\"ref\": \"a.png\", \"prompt\": \"a tiny character waving\"}\n\n"
                              "{\"ref\": \"refs-b.png\", \"prompt\": \"the \\\"same\\\" one, sitting\"}\n");

    // the sweep
    TEST_CHECK(eval("--pairs pairs.jsonl --out out --scales 0,0.9 --steps 2") == 0, "the sweep (see %s/eval.log)", dir);
    char *res = read_text("out/results.jsonl"), *sum = read_text("out/summary.md");
    TEST_CHECK(res && count_lines(res) == 8, "results.jsonl: %d lines, want 8", count_lines(res));
    char want_ref[300];  // absolute: readable from any folder, as checkpoint is
    snprintf(want_ref, sizeof want_ref, "\"ref\":\"%s/a.png\"", dir);
    TEST_CHECK(res && strstr(res, want_ref), "results.jsonl: no %s", want_ref);
    TEST_CHECK(sum && test_sh("test $(grep -c '^| step-' %s/out/summary.md) -eq 4", dir) == 0, "summary.md: want 4 rows");
    TEST_CHECK(test_sh("test $(ls %s/out/images/step-2/*.png %s/out/images/step-4/*.png | wc -l) -eq 8", dir, dir) == 0, "8 images");
    char sp[256], e2[256];
    image sheet = {0};
    snprintf(sp, sizeof sp, "%s/out/sheets/p1.png", dir);
    TEST_CHECK(image_load(sp, &sheet, e2, sizeof e2) == 0 && sheet.w == 2 * 64 + 3 * 4 && sheet.h == 4 * 64 + 5 * 4,
               "the contact sheet of pair 1: %dx%d, want 140x276 (reference + 1 seed, 2 checkpoints x 2 scales)", sheet.w, sheet.h);
    free(sheet.px);
    rec r[16];
    int n = parse_results(res, r, 16);
    TEST_CHECK(n == 8, "%d parsable lines", n);
    int same0 = 0, differ9 = 0;
    for (int i = 0; i < n; i++) {
        TEST_CHECK(r[i].dino >= -1 - 1e-9 && r[i].dino <= 1 + 1e-9 && r[i].siglip >= -1 - 1e-9 && r[i].siglip <= 1 + 1e-9,
                   "line %d: scores %g %g outside [-1, 1]", i, r[i].dino, r[i].siglip);
        for (int j = 0; j < n; j++)
            if (!strcmp(r[i].tag, "step-2") && !strcmp(r[j].tag, "step-4") && r[i].pair == r[j].pair && r[i].scale == r[j].scale) {
                if (r[i].scale == 0) same0 += r[i].dino == r[j].dino && r[i].siglip == r[j].siglip;
                else differ9 += r[i].dino != r[j].dino || r[i].siglip != r[j].siglip;
            }
    }
    TEST_CHECK(same0 == 2, "plain FLUX (scale 0) scores differ between checkpoints (%d of 2 pairs the same)", same0);
    TEST_CHECK(differ9 == 2, "with the adapter (scale 0.9) the checkpoints score the same (%d of 2 pairs differ)", differ9);

    // an adapter file outside a run (cameo export's) with the models of a config: the same scores
    // as its checkpoint
    TEST_CHECK(test_sh("cd %s && %s export run/tiny/checkpoints/step-4 --out ad4.safetensors >/dev/null 2>&1 && %s eval --config "
                       "run/tiny/checkpoints/step-4/config.yaml ad4.safetensors --pairs pairs.jsonl --out out-file --scales 0.9 "
                       "--steps 2 >eval.out 2>eval.log", dir, cameo, cameo) == 0, "eval --config ADAPTER (see %s/eval.log)", dir);
    char *rf = read_text("out-file/results.jsonl");
    rec f[4];
    int nf = parse_results(rf, f, 4), same_file = 0;
    for (int i = 0; i < nf; i++)
        for (int j = 0; j < n; j++)
            same_file += !strcmp(f[i].tag, "ad4") && !strcmp(r[j].tag, "step-4") && r[j].scale == 0.9 && r[j].pair == f[i].pair &&
                         r[j].dino == f[i].dino && r[j].siglip == f[i].siglip;
    TEST_CHECK(nf == 2 && same_file == 2, "the exported adapter scores as its checkpoint for %d of %d pairs", same_file, nf);
    free(rf);
    // the weight average (optimizer.ema): --ema evaluates it under tags of its own in the same sweep
    // folder (the images made before are kept, the averages' made), with the very scores of its
    // export (export --ema) evaluated as a file
    TEST_CHECK(eval("--pairs pairs.jsonl --out out-ema --scales 0.9 --steps 2") == 0 &&
               eval("--pairs pairs.jsonl --out out-ema --scales 0.9 --steps 2 --ema") == 0 && log_has("0 done before, 4 to make") &&
               test_sh("test $(ls %s/out-ema/images/step-4/*.png %s/out-ema/images/step-4-ema/*.png | wc -l) -eq 4", dir, dir) == 0,
               "the sweep of the averages beside the weights' (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("cd %s && %s export run/tiny/checkpoints/step-4 --ema --out ad4-ema.safetensors >/dev/null 2>&1 && %s eval "
                       "--config run/tiny/checkpoints/step-4/config.yaml ad4-ema.safetensors --pairs pairs.jsonl --out out-file-ema "
                       "--scales 0.9 --steps 2 >eval.out 2>eval.log", dir, cameo, cameo) == 0, "eval the export --ema (see %s/eval.log)", dir);
    char *re = read_text("out-ema/results.jsonl"), *rfe = read_text("out-file-ema/results.jsonl");
    rec ea[16], fe[4];
    int ne = parse_results(re, ea, 16), nfe = parse_results(rfe, fe, 4), same_ema = 0, differ_raw = 0;
    for (int i = 0; i < ne; i++)
        for (int j = 0; j < ne; j++)
            differ_raw += !strcmp(ea[i].tag, "step-4-ema") && !strcmp(ea[j].tag, "step-4") && ea[i].scale == 0.9 &&
                          ea[j].scale == 0.9 && ea[i].pair == ea[j].pair && (ea[i].dino != ea[j].dino || ea[i].siglip != ea[j].siglip);
    for (int i = 0; i < nfe; i++)
        for (int j = 0; j < ne; j++)
            same_ema += !strcmp(fe[i].tag, "ad4-ema") && !strcmp(ea[j].tag, "step-4-ema") && ea[j].pair == fe[i].pair &&
                        ea[j].dino == fe[i].dino && ea[j].siglip == fe[i].siglip;
    TEST_CHECK(ne == 8 && nfe == 2 && same_ema == 2 && differ_raw >= 1,
               "--ema: %d results (want 8); its export scores as it for %d of %d pairs; %d of 2 pairs score otherwise than the weights",
               ne, same_ema, nfe, differ_raw);
    free(re), free(rfe);
    // the same sweep with a --set: other models (run.seed makes the tiny ones), so other images; they
    // were taken for the first's ("0 to make", its scores in the summary)
    TEST_CHECK(test_sh("cd %s && %s eval --config run/tiny/checkpoints/step-4/config.yaml --set run.seed=5 ad4-ema.safetensors --pairs "
                       "pairs.jsonl --out out-file-ema --scales 0.9 --steps 2 >eval.out 2>eval.log", dir, cameo) == 0 &&
                   log_has("0 done before, 2 to make") &&
                   test_sh("cd %s/out-file-ema && test $(wc -l <results.jsonl) -eq 4 && test $(grep -c '^| ad4-ema |' summary.md) -eq 2 && "
                           "grep -q '^| ad4-ema |.* --set run.seed=5 |$' summary.md && test $(ls images/ad4-ema/*.png | wc -l) -eq 4", dir) == 0,
               "a rerun with --set run.seed=5: 2 images more, a summary row of its own (see %s/out-file-ema, eval.log)", dir);
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad --ema --config x.yaml") == 2 && log_has("--ema reads checkpoints"), "--ema with --config");
    // --set reaches --config's keys (there was no --set); checkpoints carry their own config
    TEST_CHECK(test_sh("cd %s && %s eval --config run/tiny/checkpoints/step-4/config.yaml --set model.no_such_key=1 ad4.safetensors "
                       "--pairs pairs.jsonl --out bad --steps 2 2>eval.log", dir, cameo) == 1 && log_has("model.no_such_key"),
               "eval --config --set: the override reaches the config");
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad --set run.threads=1") == 2 && log_has("--set overrides --config"),
               "--set without --config");
    TEST_CHECK(test_sh("cd %s && %s eval data --pairs pairs.jsonl --out bad2 --ema 2>eval.log", dir, cameo) != 0, "no checkpoint");

    TEST_CHECK(test_sh("cd %s && %s eval --config run/tiny/checkpoints/step-4/config.yaml nope.safetensors --pairs pairs.jsonl "
                       "--out bad --steps 2 2>eval.log", dir, cameo) == 1 && log_has("nope.safetensors: cannot read the adapter"),
               "a missing adapter file");

    // pairs drawn from the dataset: 3 characters, their files written once and kept by a rerun
    TEST_CHECK(test_sh("cd %s && %s eval run/tiny/checkpoints/step-4 --pairs-from data --pairs-n 3 --out out-ds --steps 2 "
                       ">eval.out 2>eval.log", dir, cameo) == 0, "eval --pairs-from (see %s/eval.log)", dir);
    char *pd = read_text("out-ds/pairs.jsonl");
    TEST_CHECK(pd && count_lines(pd) == 3 && strstr(pd, "\"character\"") && strstr(pd, "refs/p2-char"), "the drawn pairs: %s", pd ? pd : "(none)");
    TEST_CHECK(test_sh("test $(ls %s/out-ds/refs/*.png | wc -l) -eq 3", dir) == 0, "3 reference images");
    TEST_CHECK(test_sh("cd %s && %s eval run/tiny/checkpoints/step-4 --pairs-from data --pairs-n 3 --out out-ds --steps 2 "
                       ">eval.out 2>eval.log", dir, cameo) == 0 && log_has("3 done before, 0 to make"),
               "a rerun keeps the drawn pairs (see %s/eval.log)", dir);
    // another N or dataset would not be the pairs the folder's results were made with: refused, naming both
    TEST_CHECK(test_sh("cd %s && %s eval run/tiny/checkpoints/step-4 --pairs-from data --pairs-n 5 --out out-ds --steps 2 "
                       ">eval.out 2>eval.log", dir, cameo) == 1 && log_has("data with --pairs-n 3, not ") && log_has("data with --pairs-n 5"),
               "--pairs-n changed over a folder's drawn pairs (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("cd %s && mkdir -p data2 && %s eval run/tiny/checkpoints/step-4 --pairs-from data2 --pairs-n 3 --out out-ds "
                       "--steps 2 >eval.out 2>eval.log", dir, cameo) == 1 && log_has("/data2 with --pairs-n 3"),
               "another dataset over a folder's drawn pairs (see %s/eval.log)", dir);
    TEST_CHECK(eval("--pairs pairs.jsonl --pairs-from data --out bad") == 2 && log_has("--pairs or --pairs-from, not both"), "both");
    TEST_CHECK(eval("--pairs pairs.jsonl --pairs-n 3 --out bad") == 2 && log_has("--pairs-n sizes the pairs --pairs-from draws"),
               "--pairs-n with --pairs (it was ignored)");
    free(pd);
    // sample 0 (character 0's first image) damaged in a copy of the dataset: skipped, counted, and
    // the character's next image is its reference
    char mdb[256];
    snprintf(mdb, sizeof mdb, "%s/data-bad/shard-00000/data.mdb", dir);
    TEST_CHECK(test_sh("cp -r %s/data %s/data-bad", dir, dir) == 0, "copy the dataset");
    size_t mlen = 0;
    uint8_t *mb = (uint8_t *)fs_read_file(mdb, &mlen, 1 << 26);
    long at = -1;
    for (size_t i = 0; mb && i + 48 < mlen && at < 0; i++) {
        static const uint8_t zero[8];
        if (!memcmp(mb + i, "CMR1", 4) && !memcmp(mb + i + 8, zero, 8)) at = (long)i;  // id (u64 at 8) == 0
    }
    TEST_CHECK(at >= 0, "sample 0's record in %s", mdb);
    if (at >= 0) {
        FILE *fm = fopen(mdb, "r+b");
        fseek(fm, at + 44, SEEK_SET);  // inside the image bytes: the record's CRC fails
        fputc(mb[at + 44] ^ 0x5a, fm);
        fclose(fm);
    }
    free(mb);
    TEST_CHECK(test_sh("cd %s && %s eval run/tiny/checkpoints/step-4 --pairs-from data-bad --pairs-n 1 --out out-dsbad --steps 2 "
                       ">eval.out 2>eval.log", dir, cameo) == 0 && log_has("1 damaged records skipped"),
               "a damaged record while drawing pairs (see %s/eval.log)", dir);
    pd = read_text("out-dsbad/pairs.jsonl");
    TEST_CHECK(pd && strstr(pd, "\"ref_id\":1,"), "the reference after the damaged one: %s", pd ? pd : "(none)");
    free(pd);

    // a dataset of cut-outs (alpha): the drawn reference is on white, as the loader shows the adapter
    // its references, not the colour behind the transparent pixels (black here)
    TEST_CHECK(test_sh("mkdir -p %s/cut/c", dir) == 0, "mkdir cut/c");
    for (int k = 0; k < 2; k++) {
        image im = {32, 32, 4, calloc(32 * 32, 4)};
        for (int i = 0; i < 32 * 32; i++)
            if (i % 32 >= 8 && i % 32 < 24) im.px[i * 4] = (uint8_t)(200 + 20 * k), im.px[i * 4 + 3] = 255;  // a red bar on black, clear
        char p[256], e[256];
        snprintf(p, sizeof p, "%s/cut/c/%d.png", dir, k);
        TEST_CHECK(image_write_png(p, &im, e, sizeof e) == 0, "%s", e);
        free(im.px);
    }
    TEST_CHECK(test_sh("cd %s && %s data build --images cut --out data-cut --character c --caption 'a red bar' --lossless >cut.log 2>&1 && "
                       "%s eval run/tiny/checkpoints/step-4 --pairs-from data-cut --pairs-n 1 --out out-cut --steps 1 >eval.out 2>eval.log",
                       dir, cameo, cameo) == 0, "--pairs-from a dataset of cut-outs (see %s/cut.log, eval.log)", dir);
    image cut = {0};
    char cp[256], ce[256];
    snprintf(cp, sizeof cp, "%s/out-cut/refs/p0-char0.png", dir);
    TEST_CHECK(image_load(cp, &cut, ce, sizeof ce) == 0 && cut.c == 3 && cut.w == 32, "%s: %s", cp, ce);
    if (cut.px)
        TEST_CHECK(cut.px[0] == 255 && cut.px[1] == 255 && cut.px[2] == 255 && cut.px[8 * 3] == 200 && cut.px[8 * 3 + 1] == 0,
                   "the drawn cut-out: clear pixel %d,%d,%d (want white), bar %d,%d,%d (want 200,0,0)", cut.px[0], cut.px[1], cut.px[2],
                   cut.px[24], cut.px[25], cut.px[26]);
    free(cut.px);

    // a rerun makes nothing and leaves the results as they were
    TEST_CHECK(eval("--pairs pairs.jsonl --out out --scales 0,0.9 --steps 2") == 0, "the rerun");
    TEST_CHECK(log_has("8 done before, 0 to make"), "the rerun made images (see %s/eval.log)", dir);
    char *res2 = read_text("out/results.jsonl");
    TEST_CHECK(res2 && !strcmp(res, res2), "the rerun changed results.jsonl");
    free(res2);

    // the last line cut off mid-write: dropped, made again, the same scores
    char p[256];
    snprintf(p, sizeof p, "%s/out/results.jsonl", dir);
    TEST_CHECK(truncate(p, (off_t)strlen(res) - 30) == 0, "truncate");
    TEST_CHECK(eval("--pairs pairs.jsonl --out out --scales 0,0.9 --steps 2") == 0, "the resumed sweep");
    TEST_CHECK(log_has("1 damaged line(s) dropped") && log_has("7 done before, 1 to make"), "resume (see %s/eval.log)", dir);
    res2 = read_text("out/results.jsonl");
    rec r2[16];
    int n2 = parse_results(res2, r2, 16);
    TEST_CHECK(n2 == 8 && count_lines(res2) == 8, "after the resume: %d lines", n2);
    TEST_CHECK(n2 == 8 && r2[7].dino == r[7].dino && r2[7].siglip == r[7].siglip && r2[7].pair == r[7].pair,
               "the image made again scores differently");
    free(res2);
    free(sum);

    // --clip: the 8 images made again with CLIP-I and CLIP-T (the file keeps the old lines; the
    // summary takes the newest of each image), the other scores unchanged; a rerun makes nothing
    char root[4096], clip_arg[4200];
    TEST_CHECK(getcwd(root, sizeof root) != NULL, "getcwd");
    snprintf(clip_arg, sizeof clip_arg, "--pairs pairs.jsonl --out out --scales 0,0.9 --steps 2 --clip %s/tests/fixtures/clip_full/model", root);
    TEST_CHECK(eval(clip_arg) == 0, "the sweep with --clip (see %s/eval.log)", dir);
    TEST_CHECK(log_has("8 of them made before without CLIP scores"), "with --clip (see %s/eval.log)", dir);
    free(res);
    res = read_text("out/results.jsonl");
    TEST_CHECK(res && count_lines(res) == 16, "results.jsonl after --clip: %d lines, want 8 + 8", count_lines(res));
    TEST_CHECK(test_sh("grep -q '^| step-.*n/a' %s/out/summary.md", dir) != 0, "summary.md still has n/a with every image CLIP-scored");
    n2 = parse_results(res, r2, 16);
    int same = 0;
    for (int i = 0; i < 8 && n2 == 16; i++) same += r2[8 + i].dino == r[i].dino && r2[8 + i].siglip == r[i].siglip;
    TEST_CHECK(same == 8, "%d of 8 images kept their DINO-I / SigLIP-I when made again", same);
    TEST_CHECK(test_sh("test $(grep -c '\"clip_t\"' %s/out/results.jsonl) -eq 8", dir) == 0, "8 lines with clip_t");
    TEST_CHECK(eval(clip_arg) == 0 && log_has("8 done before, 0 to make"), "the rerun with --clip made images");
    // another CLIP model (a copy elsewhere stands for one): its scores are not the first model's, so
    // the images are scored again, and the lines name the model
    TEST_CHECK(test_sh("cd %s && cp -r out out-clip2 && cp -r %s/tests/fixtures/clip_full/model clip-other", dir, root) == 0, "copies");
    TEST_CHECK(eval("--pairs pairs.jsonl --out out-clip2 --scales 0,0.9 --steps 2 --clip clip-other") == 0 &&
                   log_has("8 of them scored before with another CLIP model"),
               "a rerun with another --clip kept the first model's CLIP scores (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("test $(grep -c 'clip-other\"' %s/out-clip2/results.jsonl) -eq 8", dir) == 0, "8 lines naming the other model");
    TEST_CHECK(eval("--pairs pairs.jsonl --out out-clip2 --scales 0,0.9 --steps 2 --clip clip-other") == 0 &&
                   log_has("8 done before, 0 to make"),
               "the rerun with the other model made images");
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad --steps 2 --clip /nonexistent/clip") == 1 && log_has("--clip /nonexistent/clip"),
               "a missing CLIP model");
    free(res);

    // bad input: every error names what is wrong
    write_text("bad.jsonl", "{\"ref\": \"a.png\", \"prompt\": \"ok\"}\n{\"ref\": \"a.png\"}\n");
    TEST_CHECK(eval("--pairs bad.jsonl --out bad --steps 2") == 1 && log_has("bad.jsonl:2: want {\"ref\""), "a line without a prompt");
    write_text("glued.jsonl", "{\"ref\": \"a.png\", \"prompt\": \"ok\"}\n{\"ref\": \"a.png\", \"prompt\": \"x\"}{\"ref\": \"a.png\", \"prompt\": \"y\"}\n");
    TEST_CHECK(eval("--pairs glued.jsonl --out bad --steps 2") == 1 && log_has("glued.jsonl:2: want {\"ref\"") && log_has("(not one JSON object)"),
               "two pairs glued on one line (a lost newline): the second silently dropped");
    write_text("missing.jsonl", "{\"ref\": \"a.png\", \"prompt\": \"x\"}\n\n\n{\"ref\": \"nope.png\", \"prompt\": \"x\"}\n");
    TEST_CHECK(eval("--pairs missing.jsonl --out bad --steps 2") == 1 && log_has("missing.jsonl, line 4") && log_has("nope.png: cannot read"),
               "a missing reference after blank lines: its line named (see %s/eval.log)", dir);
    // the same refused before any model is loaded (badck: a copy of a checkpoint whose config no
    // longer matches its manifest — loading would fail first)
    TEST_CHECK(test_sh("cd %s && rm -rf badck && cp -r run/tiny/checkpoints/step-4 badck && "
                       "sed -i 's/sizes: tiny/sizes: full/' badck/config.yaml", dir) == 0, "a damaged checkpoint copy");
    TEST_CHECK(test_sh("cd %s && %s eval badck --pairs missing.jsonl --out bad-early >eval.out 2>eval.log", dir, cameo) == 1 &&
                   log_has("missing.jsonl, line 4") && log_has("nope.png: cannot read") && !log_has("damaged") &&
                   test_sh("test ! -e %s/bad-early", dir) == 0,
               "a missing reference named before the models load, nothing made (see %s/eval.log)", dir);
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad --scales 0,x") == 2 && log_has("want a comma-separated list"), "a bad list");
    TEST_CHECK(test_sh("%s train --set stages.0.steps=2 --set stages.1.steps=0 --set stages.2.steps=0 --set run.seed=7 "
                       "--set run.out_dir=%s/other --set data.path=%s/data --quiet >%s/train2.log 2>&1", cameo, dir, dir, dir) == 0,
               "a second run (see %s/train2.log)", dir);
    TEST_CHECK(test_sh("cd %s && %s eval run/tiny/checkpoints/step-2 other/tiny/checkpoints/step-2 --pairs pairs.jsonl --out bad "
                       "--steps 2 2>eval.log", dir, cameo) == 1 && log_has("differs in"),
               "checkpoints of other models (see %s/eval.log)", dir);

    // pairs by content: an edited line made anew, an unchanged one (even moved) reused; every line's
    // image a file of its own (a new --steps or --size, an edited pair, keep the earlier images)
    write_text("pairs-edit.jsonl", "{\"ref\": \"a.png\", \"prompt\": \"a tiny character waving\"}\n"
                                   "{\"ref\": \"refs-b.png\", \"prompt\": \"the same one, standing\"}\n");
    write_text("pairs-swap.jsonl", "{\"ref\": \"refs-b.png\", \"prompt\": \"the same one, standing\"}\n"
                                   "{\"ref\": \"./a.png\", \"prompt\": \"a tiny character waving\"}\n");
#define ONE "cd %s && %s eval run/tiny/checkpoints/step-4 --out out-edit --steps 2 "
    TEST_CHECK(test_sh(ONE "--pairs pairs.jsonl >eval.out 2>eval.log", dir, cameo) == 0, "the sweep to edit (see %s/eval.log)", dir);
    TEST_CHECK(test_sh(ONE "--pairs pairs-edit.jsonl >eval.out 2>eval.log", dir, cameo) == 0 && log_has("1 done before, 1 to make"),
               "an edited pair: its old scores reused, or the unchanged one made again (see %s/eval.log)", dir);
    TEST_CHECK(test_sh(ONE "--pairs pairs-swap.jsonl >eval.out 2>eval.log", dir, cameo) == 0 && log_has("2 done before, 0 to make"),
               "the same pairs in another order (see %s/eval.log)", dir);
    TEST_CHECK(test_sh(ONE "--pairs pairs.jsonl --steps 3 >eval.out 2>eval.log && " ONE "--pairs pairs.jsonl --size 32x40 >eval.out 2>eval.log",
                       dir, cameo, dir, cameo) == 0, "--steps 3, --size 32x40 (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("cd %s/out-edit && test $(grep -o '\"image\":\"[^\"]*\"' results.jsonl | sort -u | wc -l) -eq 7 && "
                       "test $(ls images/step-4/*.png | wc -l) -eq 7", dir) == 0,
               "7 lines (2 + 1 edited + 2 at 3 steps + 2 at 32x40): want 7 images of their own");
    // a checkpoint named as one evaluated into the folder by an earlier command: a tag of its own
    // (recorded in tags.json), its own images and summary rows; the first keeps its tag
#define TAGGED "cd %s && %s eval %s/tiny/checkpoints/step-2 --pairs pairs.jsonl --out out-tag --steps 2 >eval.out 2>eval.log"
    TEST_CHECK(test_sh(TAGGED, dir, cameo, "run") == 0 && test_sh(TAGGED, dir, cameo, "other") == 0 &&
                   test_sh(TAGGED, dir, cameo, "run") == 0 && log_has("2 done before, 0 to make"),
               "two checkpoints named step-2 by two commands (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("cd %s/out-tag && test $(ls images/step-2/*.png images/step-2-2/*.png | wc -l) -eq 4 && "
                       "grep -q '\"step-2-2\":.*other/tiny/checkpoints/step-2\"' tags.json && "
                       "test $(grep -c '^| step-2 |' summary.md) -eq 1 && test $(grep -c '^| step-2-2 |' summary.md) -eq 1", dir) == 0,
               "images/step-2 and images/step-2-2, tags.json and a summary row each (see %s/out-tag)", dir);
    // a value twice in a list, a checkpoint twice, a pair twice: refused before anything is made
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad-dup --seeds 0,1,0,2,3") == 2 && log_has("--seeds") && log_has("0,1,0,2,3") && log_has(": 0 is given twice"),
               "a seed twice (see %s/eval.log)", dir);
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad-dup --seeds 0,1e20") == 2 && log_has("1e+20 is not a whole number in 0..9007199254740991") &&
                   eval("--pairs pairs.jsonl --out bad-dup --seeds 9007199254740993") == 2,
               "a seed past 2^53 (rounded to another, or past the sampler's uint64) accepted (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("cd %s && %s eval run/tiny/checkpoints/step-4 --pairs pairs.jsonl --out out-seed --steps 1 --seeds 9007199254740991 "
                       ">eval.out 2>eval.log && test $(grep -c '\"seed\":9007199254740991,' out-seed/results.jsonl) -eq 2 && "
                       "ls out-seed/images/step-4/*_seed9007199254740991_*", dir, cameo) == 0,
               "the largest seed: its lines' \"seed\" rounded, or its images misnamed (see %s/out-seed)", dir);
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad-dup --scales 0.9,0.90") == 2 && log_has("0.9 is given twice"), "a scale twice");
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad-dup --guidance 3.5,3.5000000001") == 2 && log_has("--guidance") &&
                   log_has("the same to 9 significant digits"),
               "two guidances one key keeps apart no more: one image made twice (see %s/eval.log)", dir);
    TEST_CHECK(eval("run/tiny/checkpoints/step-4/ --pairs pairs.jsonl --out bad-dup") == 2 && log_has("are the same checkpoint"),
               "a checkpoint twice (see %s/eval.log)", dir);
    // (messages name the lines of the file, blank ones counted)
    write_text("pairs-dup.jsonl", "{\"ref\": \"a.png\", \"prompt\": \"x\"}\n\n{\"ref\": \"./a.png\", \"prompt\": \"x\"}\n");
    TEST_CHECK(eval("--pairs pairs-dup.jsonl --out bad-dup") == 2 && log_has("lines 1 and 3 are the same pair"), "a pair twice (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("test ! -e %s/bad-dup/images", dir) == 0, "a refused sweep made images");
    // numbers parsed strictly; a size the sampler cannot make refused before the models are loaded
    static const char *bad_sample[][3] = {{"--scale abc", "abc", "want a number"}, {"--guidance x", "--guidance", "want a number"},
                                          {"--seed -1", "--seed", "want a whole number >= 0"},
                                          {"--steps 2x", "2x", "want a whole number in 1..1024"}, {"--size 0x32", "0x32", "want WxH"},
                                          {"--size 36x36", "--size 36x36", "these models need multiples of 8"}};
    for (int i = 0; i < 6; i++)
        TEST_CHECK(test_sh("cd %s && %s sample run/tiny/checkpoints/step-4 --ref a.png --prompt x --out s.png %s >eval.out 2>eval.log",
                           dir, cameo, bad_sample[i][0]) == 2 && log_has(bad_sample[i][1]) && log_has(bad_sample[i][2]) &&
                       test_sh("test ! -e %s/s.png", dir) == 0,
                   "cameo sample %s (see %s/eval.log)", bad_sample[i][0], dir);
    TEST_CHECK(test_sh("cd %s && %s sample run/tiny/checkpoints/step-4 --ref a.png --prompt x --out s.jpg >eval.out 2>eval.log",
                       dir, cameo) == 2 && log_has("--out s.jpg: the image is written as PNG") && test_sh("test ! -e %s/s.jpg", dir) == 0,
               "cameo sample --out s.jpg refused (see %s/eval.log)", dir);
    // a missing reference or --out folder refused before the models are loaded (badck: loading
    // would fail first)
    TEST_CHECK(test_sh("cd %s && %s sample badck --ref nothere.png --prompt x --out s.png >eval.out 2>eval.log", dir, cameo) == 1 &&
                   log_has("nothere.png: cannot read") && !log_has("damaged"),
               "cameo sample --ref nothere.png: named before the models load (see %s/eval.log)", dir);
    TEST_CHECK(test_sh("cd %s && %s sample badck --ref a.png --prompt x --out nodir/s.png >eval.out 2>eval.log", dir, cameo) == 1 &&
                   log_has("--out nodir/s.png: its folder nodir does not exist") && !log_has("damaged"),
               "cameo sample --out nodir/s.png: named before the models load (see %s/eval.log)", dir);
    TEST_CHECK(eval("--pairs pairs.jsonl --out bad-size --size 36x40") == 2 && log_has("--size 36x40: these models need multiples of 8") &&
                   test_sh("test ! -e %s/bad-size/images", dir) == 0,
               "eval --size 36x40 (see %s/eval.log)", dir);

    // under mpirun: two ranks share the images; the same lines (by key) and scores as one process;
    // a rank file an interrupted distributed sweep left is merged at the next start
    if (mpirun && test_sh("%s --allow-run-as-root --oversubscribe -np 2 true >/dev/null 2>&1", mpirun) == 0) {
        TEST_CHECK(test_sh("cd %s && %s --allow-run-as-root --oversubscribe -np 2 %s eval run/tiny/checkpoints/step-2 "
                           "run/tiny/checkpoints/step-4 --pairs pairs.jsonl --out out-mpi --scales 0,0.9 --steps 2 >eval.out 2>eval.log",
                           dir, mpirun, cameo) == 0, "the sweep on 2 ranks (see %s/eval.log)", dir);
        TEST_CHECK(test_sh("test ! -e %s/out-mpi/results.rank-1.jsonl", dir) == 0, "the rank file was not merged");
        char *one = read_text("out/results.jsonl"), *two = read_text("out-mpi/results.jsonl");
        rec a[16], b[16];
        int na = parse_results(one, a, 16), nb = parse_results(two, b, 16), matched = 0;
        TEST_CHECK(nb == 8 && count_lines(two) == 8, "2 ranks: %d lines, want 8", nb);
        for (int i = 0; i < nb; i++)  // the first 8 lines of the one-process file: the sweep without --clip
            for (int j = 0; j < 8 && j < na; j++)
                if (!strcmp(a[j].tag, b[i].tag) && a[j].pair == b[i].pair && a[j].scale == b[i].scale)
                    matched += fabs(a[j].dino - b[i].dino) < 1e-6 && fabs(a[j].siglip - b[i].siglip) < 1e-6;
        TEST_CHECK(matched == 8, "%d of 8 images score the same on 2 ranks as in one process", matched);
        free(one), free(two);
        // a rank file left behind: its new whole line kept, its cut one dropped, and one that results.jsonl
        // has already (a merge cut short before the file was removed) not appended again
        char *l0 = read_text("out-mpi/results.jsonl");
        char *nl = l0 ? strchr(l0, '\n') : NULL;
        if (nl) nl[1] = 0;
        char left[8192];
        snprintf(left, sizeof left, "%s{\"note\":1,%s{\"key\": \"cut", l0 ? l0 : "", l0 ? l0 + 1 : "");
        write_text("out-mpi/results.rank-1.jsonl", left);
        TEST_CHECK(eval("--pairs pairs.jsonl --out out-mpi --scales 0,0.9 --steps 2") == 0 && log_has("8 done before, 0 to make"),
                   "the merge at the start (see %s/eval.log)", dir);
        char *after = read_text("out-mpi/results.jsonl");
        TEST_CHECK(count_lines(after) == 9 && test_sh("test ! -e %s/out-mpi/results.rank-1.jsonl", dir) == 0,
                   "after the merge: %d lines, want 8 + 1", count_lines(after));
        free(after), free(l0);
        // a seed twice would have two ranks make one image and none another: refused on every rank
        TEST_CHECK(test_sh("cd %s && %s --allow-run-as-root --oversubscribe -np 2 %s eval run/tiny/checkpoints/step-4 --pairs pairs.jsonl "
                           "--out out-mpi2 --seeds 0,1,0,2,3 --steps 2 >eval.out 2>eval.log", dir, mpirun, cameo) != 0 &&
                       log_has(": 0 is given twice") && test_sh("test ! -e %s/out-mpi2", dir) == 0,
                   "--seeds 0,1,0,2,3 on 2 ranks (see %s/eval.log)", dir);
    } else printf("e2e_eval: no usable mpirun: the 2-rank sweep is not checked\n");

    // evaluation during training: the same weights with it on or off; every 2 steps and after the
    // last; images, lines and TensorBoard scalars; a resume into the same run drops the lines after
    // its checkpoint and makes them again, to the same bytes
#define TRAIN "train --set stages.0.steps=2 --set stages.1.steps=1 --set stages.2.steps=2 --set run.ckpt_every=2 --set run.keep_last=0"
#define EVAL_SET "--set eval.every=2 --set eval.pairs=%s/pairs.jsonl --set eval.steps=2 --set eval.seeds=2"
    TEST_CHECK(test_sh("%s " TRAIN " --set run.out_dir=%s/t-off --set data.path=%s/data --quiet >%s/t-off.log 2>&1", cameo, dir, dir, dir) == 0,
               "training without evaluation (see %s/t-off.log)", dir);
    TEST_CHECK(test_sh("%s " TRAIN " " EVAL_SET " --set run.out_dir=%s/t-on --set data.path=%s/data --quiet >%s/t-on.log 2>&1", cameo, dir,
                       dir, dir, dir) == 0, "training with evaluation (see %s/t-on.log)", dir);
    TEST_CHECK(test_sh("cmp -s %s/t-off/tiny/adapter.safetensors %s/t-on/tiny/adapter.safetensors", dir, dir) == 0,
               "evaluation changed the trained adapter");
    // on 2 ranks an evaluation longer than run.step_timeout (1.8 s per image, 4 images, a 3 s limit:
    // 2 s once failed on a machine loaded 12 deep, a tiny step or an image's own work passing it)
    // is not a hang: the other rank waits for it unwatched, and the validation right after it is
    // watched from its own start (it could not be watched: the other rank waited in its first
    // collective for the whole evaluation); an image that takes longer than the limit is a hang, named
    // by rank 0 (the evaluation was not watched at all)
    if (mpirun && test_sh("%s --allow-run-as-root --oversubscribe -np 2 true >/dev/null 2>&1", mpirun) == 0) {
        TEST_CHECK(test_sh("CAMEO_FAULT_EVAL_SLEEP=1800 timeout 300 %s --allow-run-as-root --oversubscribe -np 2 -x CAMEO_FAULT_EVAL_SLEEP "
                           "%s " TRAIN " " EVAL_SET " --set run.step_timeout=3 --set validation.every=2 --set validation.samples=2 "
                           "--set run.out_dir=%s/t-slow --set data.path=%s/data "
                           "--quiet >%s/t-slow.log 2>&1", mpirun, cameo, dir, dir, dir, dir) == 0 &&
                       count_lines_file("t-slow/tiny/eval/results.jsonl") == 12 &&
                       count_lines_file("t-slow/tiny/validation.jsonl") == 3,
                   "2 ranks, evaluations longer than run.step_timeout (see %s/t-slow.log)", dir);
        TEST_CHECK(test_sh("CAMEO_FAULT_EVAL_SLEEP=5000 timeout 120 %s --allow-run-as-root --oversubscribe -np 2 -x CAMEO_FAULT_EVAL_SLEEP "
                           "%s " TRAIN " " EVAL_SET " --set run.step_timeout=3 --set run.out_dir=%s/t-hang --set data.path=%s/data "
                           "--quiet >%s/t-hang.log 2>&1", mpirun, cameo, dir, dir, dir, dir) != 0 &&
                       test_sh("grep -q 'rank 0: an image of the evaluation after step 2 has not finished after 3 s' %s/t-hang.log", dir) == 0,
                   "an evaluation image past run.step_timeout ends the job, named (see %s/t-hang.log)", dir);
    }
    char *ev = read_text("t-on/tiny/eval/results.jsonl");
    TEST_CHECK(ev && count_lines(ev) == 3 * 2 * 2, "eval/results.jsonl: %d lines, want 3 evaluations (steps 2, 4, 5) x 2 pairs x 2 seeds",
               count_lines(ev));
    TEST_CHECK(test_sh("test -f %s/t-on/tiny/eval/step-2/p1_seed1.png && test -f %s/t-on/tiny/eval/step-5/p0_seed0.png", dir, dir) == 0,
               "the evaluation images");
    TEST_CHECK(test_sh("cat %s/t-on/tiny/tb/events.out.tfevents.* | grep -aq eval/dino_i", dir) == 0, "eval/dino_i in TensorBoard");
    TEST_CHECK(test_sh("cat %s/t-on/tiny/tb/events.out.tfevents.* | grep -aq eval/p1", dir) == 0, "the eval/p1 images in TensorBoard");
    // TensorBoard's event file on a full disk (CAMEO_FAULT_TB_FULL): the validations' and the
    // evaluations' lost values are each said once (they went unnoticed), and the run goes on to its end
    TEST_CHECK(test_sh("CAMEO_FAULT_TB_FULL=1 %s " TRAIN " " EVAL_SET " --set validation.every=2 --set validation.samples=2 "
                       "--set run.out_dir=%s/t-full --set data.path=%s/data --quiet >%s/t-full.log 2>&1", cameo, dir, dir, dir, dir) == 0 &&
                   test_sh("test \"$(grep -c '^validation: .*/tb/events.out.tfevents.*: cannot write: No space left on device; the "
                           "training goes on' %s/t-full.log)\" = 1", dir) == 0 &&
                   test_sh("test \"$(grep -c '^eval: .*/tb/events.out.tfevents.*: cannot write: No space left on device; the "
                           "training goes on' %s/t-full.log)\" = 1", dir) == 0 &&
                   count_lines_file("t-full/tiny/eval/results.jsonl") == 12 && count_lines_file("t-full/tiny/validation.jsonl") == 3,
               "TensorBoard on a full disk: one warning each for the validation and the evaluation (see %s/t-full.log)", dir);
    TEST_CHECK(test_sh("cp -r %s/t-on %s/t-re && %s train --resume %s/t-re/tiny/checkpoints/step-2 --set run.out_dir=%s/t-re --quiet "
                       ">%s/t-re.log 2>&1", dir, dir, cameo, dir, dir, dir) == 0, "the resumed run (see %s/t-re.log)", dir);
    char *ev2 = read_text("t-re/tiny/eval/results.jsonl");
    // a line of a `cameo eval` sweep in the same file (it has a "key") is not the training's to drop
    TEST_CHECK(test_sh("cp -r %s/t-on %s/t-key && echo '{\"key\":\"k1\",\"step\":4}' >>%s/t-key/tiny/eval/results.jsonl && "
                       "%s train --resume %s/t-key/tiny/checkpoints/step-2 --set run.out_dir=%s/t-key --quiet >%s/t-key.log 2>&1 && "
                       "grep -c '\"key\":\"k1\"' %s/t-key/tiny/eval/results.jsonl | grep -qx 1", dir, dir, dir, cameo, dir, dir, dir,
                       dir) == 0, "a resume keeps a sweep's line in RUN/eval/results.jsonl (see %s/t-key.log)", dir);
    TEST_CHECK(ev && ev2 && !strcmp(ev, ev2), "after the resume from step 2, eval/results.jsonl differs from the uninterrupted run's");
    // a run killed during step 2's evaluation (after its checkpoint) leaves none of its lines — they
    // are appended together at its end —, and the resume makes that evaluation again: the same file
    TEST_CHECK(test_sh("cp -r %s/t-on %s/t-cut && grep -v '\"step\":2,' %s/t-on/tiny/eval/results.jsonl >%s/t-cut/tiny/eval/results.jsonl && "
                       "%s train --resume %s/t-cut/tiny/checkpoints/step-2 --set run.out_dir=%s/t-cut --quiet >%s/t-cut.log 2>&1 && "
                       "grep -q 'eval at step 2 was cut short' %s/t-cut.log", dir, dir, dir, dir, cameo, dir, dir, dir, dir) == 0,
               "a resume after a cut-short evaluation makes it again (see %s/t-cut.log)", dir);
    char *ev3 = read_text("t-cut/tiny/eval/results.jsonl");
    TEST_CHECK(ev && ev3 && !strcmp(ev, ev3), "after the cut-short evaluation's resume, eval/results.jsonl differs from the uninterrupted run's");
    free(ev3);
    // scoring the weight average (eval.ema, optimizer.ema): the same trained adapter, other scores
    TEST_CHECK(test_sh("%s " TRAIN " " EVAL_SET " --set optimizer.ema=0.5 --set eval.ema=true --set run.out_dir=%s/t-ema "
                       "--set data.path=%s/data --quiet >%s/t-ema.log 2>&1 && cmp -s %s/t-off/tiny/adapter.safetensors "
                       "%s/t-ema/tiny/adapter.safetensors", cameo, dir, dir, dir, dir, dir, dir) == 0,
               "training with the weight average evaluated (see %s/t-ema.log)", dir);
    char *eva = read_text("t-ema/tiny/eval/results.jsonl");
    rec ra[16], ro[16];
    int na = parse_results(eva, ra, 16), no = parse_results(ev, ro, 16), moved = 0;
    for (int i = 0; i < na && i < no; i++) moved += ra[i].dino != ro[i].dino || ra[i].siglip != ro[i].siglip;
    TEST_CHECK(na == 12 && no == 12 && moved > 0, "eval.ema: %d lines, %d of them score otherwise than the weights'", na, moved);
    free(eva);
    // a sweep into a training run's evaluation folder (RUN/eval: the same results.jsonl) would drop
    // the training's lines as damaged: refused, the file left as it was
    TEST_CHECK(test_sh("cd %s && %s eval t-on/tiny/checkpoints/step-4 --pairs pairs.jsonl --out t-on/tiny/eval --steps 2 "
                       ">eval.out 2>eval.log", dir, cameo) == 1 && log_has("12 lines of cameo train") && log_has("give another --out"),
               "a sweep into a training run's eval folder (see %s/eval.log)", dir);
    char *ev4 = read_text("t-on/tiny/eval/results.jsonl");
    TEST_CHECK(ev && ev4 && !strcmp(ev, ev4), "the training's eval/results.jsonl rewritten by a sweep into its folder");
    free(ev4);
    free(ev), free(ev2);
    // an evaluation that cannot write its images is reported; the training goes on to its end
    TEST_CHECK(test_sh("mkdir -p %s/t-fail/tiny/eval && touch %s/t-fail/tiny/eval/step-2 && %s " TRAIN " " EVAL_SET
                       " --set run.out_dir=%s/t-fail --set data.path=%s/data >%s/t-fail.log 2>&1", dir, dir, cameo, dir, dir, dir, dir) == 0 &&
                   test_sh("grep -q 'eval at step 2 failed, training goes on' %s/t-fail.log && test -f %s/t-fail/tiny/adapter.safetensors",
                           dir, dir) == 0,
               "a failed evaluation (see %s/t-fail.log)", dir);
    TEST_CHECK(test_sh("%s train --set eval.every=3 --set run.out_dir=%s/t-bad --quiet >%s/t-bad.log 2>&1", cameo, dir, dir) == 1 &&
                   test_sh("grep -q 'eval.pairs: needed when eval.every' %s/t-bad.log", dir) == 0,
               "eval.every without eval.pairs (see %s/t-bad.log)", dir);

    if (!test_failures && !getenv("KEEP")) test_sh("rm -rf %s", dir);
    return test_summary("e2e_eval");
}
