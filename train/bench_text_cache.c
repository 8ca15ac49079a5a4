// bench_text_cache.c — `cameo bench text-cache`: what a step pays to read its text from a text
// cache (model.text_cache) instead of running T5-XXL and CLIP-L: the lookup (LMDB read, checksum,
// copy) of a batch of full-size entries, and the same with the copy to the training device and its
// cast, as ic_text_encode does it, beside a plain memcpy of the same bytes (the host's limit).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "train/bench.h"
#include "train/models.h"
#include "train/progress.h"
#include "train/text_cache.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cameo bench text-cache [--device cpu|cuda:N] [--batch N] [--entries N] [--iters N] [--dir DIR] [--tiny]\n"
               "  times reading a batch of text embeddings from a text cache (FLUX's 512 T5 tokens x 4096 + CLIP's 768,\n"
               "  bf16 as a GPU build stores them), to the host and on to the device, against memcpy of the same bytes.\n"
               "  --entries  captions written first (default 32); --batch captions a lookup (8); --dir where the\n"
               "             scratch cache goes (default /tmp; removed after); --tiny: 16 x 32 + 16 (a smoke run)\n");
}

static double secs_since(double t0) { return progress_now() - t0; }

int bench_text_cache_main(int argc, char **argv) {
    const char *device = "cpu", *where = "/tmp";
    int B = 8, entries = 32, iters = 20;
    bool tiny = false;
    for (int i = 0; i < argc; i++) {
        bool val = i + 1 < argc;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--device") && val) device = argv[++i];
        else if (!strcmp(argv[i], "--batch") && val) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--entries") && val) entries = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && val) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && val) where = argv[++i];
        else if (!strcmp(argv[i], "--tiny")) tiny = true;
        else {
            fprintf(stderr, "cameo bench text-cache: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (B < 1 || entries < B || iters < 1) {
        fprintf(stderr, "cameo bench text-cache: want --batch >= 1, --entries >= --batch, --iters >= 1\n");
        return 2;
    }
    cm_device dev;
    char err[2048];
    if (cfg_parse_device(device, &dev) || ic_device_check(dev, "--device", err, sizeof err)) {
        fprintf(stderr, "cameo bench text-cache: --device %s: %s\n", device, cfg_parse_device(device, &dev) ? "not cpu or cuda:N" : err);
        return 2;
    }
    text_cache_id id = {.fingerprint = 1, .dim = {tiny ? 16 : 512, tiny ? 32 : 4096, tiny ? 16 : 768}};
    snprintf(id.encoders, sizeof id.encoders, "random rows (cameo bench text-cache)");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/cameo-bench-text-XXXXXX", where);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cameo bench text-cache: cannot make a folder under %s\n", where);
        return 1;
    }
    text_cache tc;
    int rc = text_cache_open(&tc, dir, &id, true, err, sizeof err);
    char **caps = calloc((size_t)entries, sizeof *caps);
    for (int i = 0; i < entries; i++) {
        caps[i] = malloc(64);
        snprintf(caps[i], 64, "a caption of the benchmark, number %d", i);
    }
    autograd_no_grad_push();
    cm_tensor *h = tensor_empty(CM_BF16, 3, (int64_t[]){B, id.dim[0], id.dim[1]}, CM_DEV_CPU);
    cm_tensor *p = tensor_empty(CM_BF16, 2, (int64_t[]){B, id.dim[2]}, CM_DEV_CPU);
    tensor_fill_randn(h, 1, 1.0), tensor_fill_randn(p, 2, 1.0);
    double t0 = progress_now();
    for (int i = 0; i + B <= entries && !rc; i += B) rc = text_cache_put(&tc, (const char *const *)caps + i, B, h, p, err, sizeof err);
    double t_put = secs_since(t0);
    text_cache_close(&tc);
    if (!rc) rc = text_cache_open(&tc, dir, &id, false, err, sizeof err);  // as training opens it
    const double bytes = (double)B * 2.0 * (double)(id.dim[0] * id.dim[1] + id.dim[2]);  // a batch's rows, bf16
    double *tl = calloc((size_t)iters, sizeof *tl), *td = calloc((size_t)iters, sizeof *td), *tm = calloc((size_t)iters, sizeof *tm);
    uint8_t *src = malloc((size_t)bytes), *dst = malloc((size_t)bytes);
    memset(src, 1, (size_t)bytes), memset(dst, 0, (size_t)bytes);
    cm_dtype model_dt = dev.type == CM_CPU ? CM_F32 : CM_BF16;
    for (int it = -2; it < iters && !rc; it++) {  // two rounds unmeasured: the map's pages in memory
        const char *const *batch = (const char *const *)caps + (size_t)((it + 2) * B % (entries - B + 1));
        cm_tensor *a, *b;
        t0 = progress_now();
        rc = text_cache_lookup(&tc, batch, B, &a, &b, err, sizeof err);
        double t1 = secs_since(t0);
        if (rc) break;
        t0 = progress_now();  // ic_text_encode's cached path: to the device, the model's dtype
        cm_tensor *ad = op_to_device(a, dev), *bd = op_to_device(b, dev), *ac = op_cast(ad, model_dt), *bc = op_cast(bd, model_dt);
        backend_get(dev.type)->sync(backend_ctx(dev));
        double t2 = secs_since(t0);
        t0 = progress_now();
        memcpy(dst, src, (size_t)bytes);
        double t3 = secs_since(t0);
        if (it >= 0) tl[it] = t1, td[it] = t1 + t2, tm[it] = t3;
        cm_tensor *tmp[] = {a, b, ad, bd, ac, bc};
        for (int k = 0; k < 6; k++) tensor_release(tmp[k]);
    }
    autograd_no_grad_pop();
    if (!rc) {
        double l = bench_median(tl, iters), d = bench_median(td, iters), m = bench_median(tm, iters);
        printf("## The text cache: a batch of %d captions read (%d x %lld + %lld values each, bf16; %.2f MiB a batch)\n\n", B,
               (int)id.dim[0], (long long)id.dim[1], (long long)id.dim[2], bytes / 1048576.0);
        printf("| part | ms a batch | ms a sample | GB/s | of memcpy's |\n|---|---:|---:|---:|---:|\n");
        printf("| memcpy of the same bytes (the host's limit) | %.3f | %.3f | %.1f | 100%% |\n", m * 1e3, m * 1e3 / B, bytes / m / 1e9);
        printf("| lookup: LMDB read, CRC-32C, copy into a host tensor | %.3f | %.3f | %.1f | %.0f%% |\n", l * 1e3, l * 1e3 / B,
               bytes / l / 1e9, 100.0 * m / l);
        printf("| lookup + to %s in %s (ic_text_encode's cached path) | %.3f | %.3f | %.1f | %.0f%% |\n\n", device,
               model_dt == CM_F32 ? "f32" : "bf16", d * 1e3, d * 1e3 / B, bytes / d / 1e9, 100.0 * m / d);
        printf("Written first: %d entries in %.2f s (%.1f MiB/s, a transaction and an fsync a batch). At full size the text\n"
               "cache takes T5-XXL's 4.86 TFLOP and CLIP-L's share of a 512^2 sample out of the step (its time on a GPU: `cameo\n"
               "bench blocks --device cuda:0 --full-step`, 'The frozen encoders, measured') and 8.9 GiB of weights off the card.\n",
               entries, t_put, (double)entries / B * bytes / t_put / 1048576.0);
    } else fprintf(stderr, "cameo bench text-cache: %s\n", err);
    if (tc.env) text_cache_close(&tc);
    tensor_release(h), tensor_release(p);
    for (int i = 0; i < entries; i++) free(caps[i]);
    free(caps), free(tl), free(td), free(tm), free(src), free(dst);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cameo bench text-cache: could not remove %s\n", dir);
    return rc ? 1 : 0;
}
