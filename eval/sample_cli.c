// sample_cli.c — `cameo sample CKPT --ref IMAGE --prompt TEXT --out OUT.png`: one image from a
// checkpoint's adapter, with the models its config names (tiny preset or published weights).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/image.h"
#include "data/preprocess.h"
#include "eval/sample.h"
#include "train/checkpoint.h"
#include "train/cli.h"
#include "train/config.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cameo sample CHECKPOINT --ref IMAGE --prompt TEXT --out OUT.png\n"
               "                    [--steps 28] [--guidance 3.5] [--scale 0.9] [--size WxH] [--seed 0] [--device D]\n"
               "  CHECKPOINT  a checkpoint folder, a run's checkpoints/ folder or its latest file\n"
               "  --scale     the subject (IP) scale; 0 gives plain FLUX\n"
               "  --device    cpu, cuda or cuda:N (default: the run's run.device); the dtype is the run's model.dtype\n");
}

// the reference as the loader makes it: square by stretching, the full view and four crops
static int load_reference(const char *path, int R, float **sig, float **dino, char *err, size_t errlen) {
    image im = {0};
    if (image_load(path, &im, err, errlen)) return -1;
    preprocess_scratch s = {0};
    *sig = malloc(sizeof(float) * 5 * 3 * (size_t)R * R);
    *dino = malloc(sizeof(float) * 5 * 3 * (size_t)R * R);
    int rc = (!*sig || !*dino || preprocess_load(&im, &s) || preprocess_reference(&s, im.w, im.h, R, *sig, *dino)) ? -1 : 0;
    if (rc) snprintf(err, errlen, "%s: could not prepare the reference views (out of memory?)", path);
    preprocess_scratch_free(&s);
    image_free(&im);
    return rc;
}

static int write_png(const cm_tensor *img, const char *path, char *err, size_t errlen) {  // [1, 3, H, W] in [-1, 1]
    int H = (int)img->shape[2], W = (int)img->shape[3];
    const float *p = tensor_data(img);
    image out = {W, H, 3, malloc((size_t)W * H * 3)};
    if (!out.px) { snprintf(err, errlen, "out of memory"); return -1; }
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < H * W; i++) {
            float v = (p[c * H * W + i] + 1.0f) * 127.5f;
            out.px[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
        }
    int rc = image_write_png(path, &out, err, errlen);
    free(out.px);
    return rc;
}

int sample_cli(int argc, char **argv) {
    const char *ckpt = NULL, *ref = NULL, *prompt = NULL, *out = NULL, *device = NULL;
    eval_sample_opts o = {.steps = 28, .guidance = 3.5, .ip_scale = 0.9, .seed = 0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--ref") && v) ref = argv[++i];
        else if (!strcmp(a, "--prompt") && v) prompt = argv[++i];
        else if (!strcmp(a, "--out") && v) out = argv[++i];
        else if (!strcmp(a, "--steps") && v) o.steps = atoi(argv[++i]);
        else if (!strcmp(a, "--guidance") && v) o.guidance = atof(argv[++i]);
        else if (!strcmp(a, "--scale") && v) o.ip_scale = atof(argv[++i]);
        else if (!strcmp(a, "--seed") && v) o.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--size") && v) {
            if (sscanf(argv[++i], "%dx%d", &o.width, &o.height) != 2) { fprintf(stderr, "cameo sample: --size wants WxH, got '%s'\n", v); return 2; }
        } else if (a[0] != '-' && !ckpt) ckpt = a;
        else { fprintf(stderr, "cameo sample: unknown argument '%s'\n", a); usage(stderr); return 2; }
    }
    if (!ckpt || !ref || !prompt || !out) { usage(stderr); return 2; }
    if (o.steps < 1 || o.steps > 1024) { fprintf(stderr, "cameo sample: --steps %d (allowed 1..1024)\n", o.steps); return 2; }

    static char err[8192];
    char dir[PATH_MAX], cfg_path[PATH_MAX + 16];
    static train_config cfg;
    if (ckpt_resolve(ckpt, dir, sizeof dir, err, sizeof err)) { fprintf(stderr, "cameo sample: %s\n", err); return 1; }
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
    if (train_config_load(&cfg, cfg_path, NULL, 0, err, sizeof err)) { fprintf(stderr, "cameo sample: %s\n", err); return 1; }
    if (!o.width) o.width = o.height = cfg.stages[0].resolution;
    cm_device dev = cfg.run.dev;
    if (device && cfg_parse_device(device, &dev)) { fprintf(stderr, "cameo sample: --device '%s' (allowed: cpu, cuda, cuda:N)\n", device); return 2; }
    if (ic_device_check(dev, device ? "--device" : "run.device", err, sizeof err)) { fprintf(stderr, "cameo sample: %s\n", err); return 1; }
    cm_dtype dt = dev.type == CM_CPU ? CM_F32 : cfg_model_dtype(&cfg, dev);  // a CPU computes in f32 whatever the run used

    ic_models m;
    int rc;
    if (cfg.model.tiny) rc = ic_models_init_tiny(&m, &cfg.model.tiny_dims, dev, dt, cfg.run.seed, "default", err, sizeof err);
    else {
        ic_model_paths p = {cfg.model.flux, cfg.model.siglip, cfg.model.dinov2, cfg.model.vae, cfg.model.t5, cfg.model.clip, NULL, 0};
        rc = ic_models_load(&m, &p, dev, dt, "default", cfg.run.seed, err, sizeof err);
    }
    if (rc) { fprintf(stderr, "cameo sample: %s\n", err); return 1; }
    cm_params *regs[1] = {&m.ps_adapter};
    vae_decoder dec;
    cm_params pd;  // the decoder: published weights beside the encoder's, or the tiny preset's
    params_init_registry(&pd, m.dev, m.dtype, false);
    vae_decoder_init(&dec, &m.vae.cfg, &pd);
    if (cfg.model.tiny) params_randomize(&pd, cfg.run.seed ^ 0xdec);
    int n_extra;
    float *sig = NULL, *dino = NULL;
    rc = ckpt_load(dir, regs, 1, NULL, NULL, err, sizeof err);
    if (!rc && !cfg.model.tiny) rc = params_load(&pd, cfg.model.vae, NULL, false, &n_extra, err, sizeof err);
    if (!rc) rc = load_reference(ref, m.ref_size, &sig, &dino, err, sizeof err);
    if (!rc) {
        const char *prompts[1] = {prompt};
        cm_tensor *img = eval_sample(&m, &dec, 1, prompts, sig, dino, &o);
        rc = write_png(img, out, err, sizeof err);
        tensor_release(img);
        if (!rc) printf("cameo sample: %s (%dx%d, %d steps, guidance %g, subject scale %g, seed %llu) from %s\n", out, o.width,
                        o.height, o.steps, o.guidance, o.ip_scale, (unsigned long long)o.seed, dir);
    }
    if (rc) fprintf(stderr, "cameo sample: %s\n", err);
    free(sig);
    free(dino);
    vae_decoder_free(&dec);
    params_free(&pd);
    ic_models_free(&m);
    return rc ? 1 : 0;
}
