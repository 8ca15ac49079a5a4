// sample_cli.c — `cameo sample CKPT --ref IMAGE --prompt TEXT --out OUT.png`: one image from a
// checkpoint's adapter, with the models its config names (tiny preset or published weights).
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "eval/args.h"
#include "eval/sample.h"
#include "eval/eval_models.h"
#include "eval/sample_io.h"
#include "train/cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cameo sample CHECKPOINT --ref IMAGE --prompt TEXT --out OUT.png\n"
               "                    [--steps 28] [--guidance 3.5] [--scale 0.9] [--size WxH] [--seed 0] [--device D] [--ema]\n"
               "  CHECKPOINT  a checkpoint folder, a run's checkpoints/ folder or its latest file\n"
               "  --scale     the subject (IP) scale; 0 gives plain FLUX\n"
               "  --ema       the checkpoint's weight average (a run with optimizer.ema) in place of its weights\n"
               "  --device    cpu, cuda or cuda:N (default: the run's run.device); the dtype is the run's model.dtype\n");
}

// --out's folder exists and takes files, and --out is not a folder. 0, or -1 with err.
static int out_folder_check(const char *out, char *err, size_t errlen) {
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", out);
    char *sl = strrchr(d, '/');
    if (!sl) snprintf(d, sizeof d, ".");
    else if (sl == d) sl[1] = 0;  // "/x.png": the root
    else *sl = 0;
    struct stat st;
    if (stat(d, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--out %s: its folder %s does not exist (create it first)", out, d);
        return -1;
    }
    if (access(d, W_OK | X_OK)) {
        snprintf(err, errlen, "--out %s: its folder %s is not writable (%s)", out, d, strerror(errno));
        return -1;
    }
    if (!stat(out, &st) && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--out %s is a folder: give the image's file name", out);
        return -1;
    }
    return 0;
}

int sample_cli(int argc, char **argv) {
    const char *ckpt = NULL, *ref = NULL, *prompt = NULL, *out = NULL, *device = NULL;
    eval_sample_opts o = {.steps = 28, .guidance = 3.5, .ip_scale = 0.9, .seed = 0};
    bool ema = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--ref") && v) ref = argv[++i];
        else if (!strcmp(a, "--prompt") && v) prompt = argv[++i];
        else if (!strcmp(a, "--out") && v) out = argv[++i];
        // numbers strictly (the whole argument, in range): "--scale abc" is an error, not 0
        else if (!strcmp(a, "--steps") && v) { if (eval_arg_int("sample", a, argv[++i], 1, 1024, &o.steps)) return 2; }
        else if (!strcmp(a, "--guidance") && v) { if (eval_arg_double("sample", a, argv[++i], &o.guidance)) return 2; }
        else if (!strcmp(a, "--scale") && v) { if (eval_arg_double("sample", a, argv[++i], &o.ip_scale)) return 2; }
        else if (!strcmp(a, "--seed") && v) { if (eval_arg_u64("sample", a, argv[++i], &o.seed)) return 2; }
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--ema")) ema = true;
        else if (!strcmp(a, "--size") && v) { if (eval_arg_size("sample", a, argv[++i], &o.width, &o.height)) return 2; }
        else if (a[0] != '-' && !ckpt) ckpt = a;
        else if (!v && eval_arg_missing("sample", a, (const char *const[]){"--ref", "--prompt", "--out", "--steps", "--guidance", "--scale",
                                                                          "--seed", "--device", "--size", NULL})) return 2;
        else { fprintf(stderr, "cameo sample: unknown argument '%s'\n", a); usage(stderr); return 2; }
    }
    if (!ckpt || !ref || !prompt || !out) {  // say which: the usage alone leaves the user to compare
        fprintf(stderr, "cameo sample: missing %s\n", !ckpt ? "CHECKPOINT" : !ref ? "--ref IMAGE" : !prompt ? "--prompt TEXT" : "--out OUT.png");
        usage(stderr);
        return 2;
    }
    size_t lo = strlen(out);  // PNG is what is written: another name would lie about the bytes
    if (lo < 4 || strcasecmp(out + lo - 4, ".png")) {
        fprintf(stderr, "cameo sample: --out %s: the image is written as PNG; give a name ending in .png\n", out);
        return 2;
    }

    static char err[8192];
    // the reference read and the output's folder checked before the models are loaded: a typo in
    // either would otherwise cost the loading (minutes at full size) and, for --out, the sampling
    image refim = {0};
    char e[256];
    if (image_load(ref, &refim, e, sizeof e)) {  // its message does not name the file
        fprintf(stderr, "cameo sample: %s: %s\n", ref, e);
        return 1;
    }
    if (out_folder_check(out, err, sizeof err)) {
        fprintf(stderr, "cameo sample: %s\n", err);
        image_free(&refim);
        return 1;
    }
    char dir[PATH_MAX];
    eval_models em;
    int rc = eval_models_open(&em, ckpt, device, 0, &o.width, &o.height, dir, sizeof dir, err, sizeof err);  // the size checked first
    float *sig = NULL, *dino = NULL;
    if (!rc) rc = eval_models_load_adapter(&em, dir, ema, err, sizeof err);
    if (!rc && eval_reference_views(&refim, em.m.ref_size, &sig, &dino, e, sizeof e)) {
        snprintf(err, sizeof err, "%s: %s", ref, e);
        rc = 1;
    }
    image_free(&refim);
    if (!rc) {
        const char *prompts[1] = {prompt};
        cm_tensor *img = eval_sample(&em.m, &em.dec, 1, prompts, sig, dino, &o);
        rc = eval_write_png(img, 0, out, err, sizeof err);
        tensor_release(img);
        if (!rc) printf("cameo sample: %s (%dx%d, %d steps, guidance %g, subject scale %g, seed %llu) from %s\n", out, o.width,
                        o.height, o.steps, o.guidance, o.ip_scale, (unsigned long long)o.seed, dir);
        if (!rc && ema) printf("cameo sample: with the checkpoint's weight average\n");
    }
    if (rc) fprintf(stderr, "cameo sample: %s\n", err);
    free(sig);
    free(dino);
    eval_models_close(&em);
    return rc == 2 ? 2 : rc ? 1 : 0;
}
