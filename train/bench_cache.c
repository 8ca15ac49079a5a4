// bench_cache.c — `cameo bench text-cache` and `cameo bench ref-cache`: what a step pays to read
// its frozen encoders' outputs from a cache (model.text_cache, model.ref_cache) instead of running
// them: the lookup (LMDB read, checksum, copy) of a batch of full-size entries, and the same with
// the copy to the training device and its cast, as the step does it, beside a plain memcpy of the
// same bytes (the host's limit).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "train/bench.h"
#include "train/models.h"
#include "train/progress.h"
#include "train/ref_cache.h"
#include "train/text_cache.h"

typedef struct {
    bool refs;               // ref-cache, else text-cache
    const char *name;        // "text-cache"
    fstore_id id;
    fstore_kind const *kind;
    text_cache *tc;
    ref_cache *rc;
    char **caps;             // [entries] text: the captions
    int64_t *ids;            // [entries] refs: the record ids
    cm_tensor *t[3];         // a batch of random outputs written for every batch of entries
    int nt;
} bench_cache;

static void usage(FILE *f, bool refs) {
    if (refs)
        fprintf(f, "usage: cameo bench ref-cache [--device cpu|cuda:N] [--batch N] [--entries N] [--iters N] [--dir DIR] [--tiny]\n"
                   "  times reading a batch of references' features from a reference cache (SigLIP + DINOv2 on 5 views:\n"
                   "  5832 tokens x 2688, bf16 as a GPU build stores them), to the host and on to the device, against\n"
                   "  memcpy of the same bytes.\n"
                   "  --entries  references written first (default 16); --batch references a lookup (8); --dir where the\n"
                   "             scratch cache goes (default /tmp; removed after); --tiny: 16 tokens x 64 (a smoke run)\n");
    else
        fprintf(f, "usage: cameo bench text-cache [--device cpu|cuda:N] [--batch N] [--entries N] [--iters N] [--dir DIR] [--tiny]\n"
                   "  times reading a batch of text embeddings from a text cache (FLUX's 512 T5 tokens x 4096 + CLIP's 768,\n"
                   "  bf16 as a GPU build stores them), to the host and on to the device, against memcpy of the same bytes.\n"
                   "  --entries  captions written first (default 32); --batch captions a lookup (8); --dir where the\n"
                   "             scratch cache goes (default /tmp; removed after); --tiny: 16 x 32 + 16 (a smoke run)\n");
}

static double secs_since(double t0) { return progress_now() - t0; }

// entries [i, i + B) written with the batch of random outputs
static int put(bench_cache *b, int i, int B, char *err, size_t errlen) {
    if (!b->refs) return text_cache_put(b->tc, (const char *const *)b->caps + i, B, b->t[0], b->t[1], err, errlen);
    uint64_t ids[4096];
    for (int k = 0; k < B; k++) ids[k] = (uint64_t)b->ids[i + k];
    vision_features f = {b->t[0], b->t[1], b->t[2]};
    return ref_cache_put(b->rc, 1, ids, B, &f, err, errlen);
}

// entries [i, i + B) read into out[nt] host tensors
static int lookup(bench_cache *b, int i, int B, cm_tensor **out, char *err, size_t errlen) {
    if (!b->refs) return text_cache_lookup(b->tc, (const char *const *)b->caps + i, B, &out[0], &out[1], err, errlen);
    vision_features f;
    int rc = ref_cache_lookup(b->rc, 1, b->ids + i, b->ids + i, NULL, B, &f, err, errlen);
    if (!rc) out[0] = f.low_res_deep, out[1] = f.low_res_shallow, out[2] = f.high_res_deep;
    return rc;
}

static int bench_cache_main(bool refs, int argc, char **argv) {
    const char *device = "cpu", *where = "/tmp", *name = refs ? "ref-cache" : "text-cache";
    int B = 8, entries = refs ? 16 : 32, iters = 20;
    bool tiny = false;
    for (int i = 0; i < argc; i++) {
        bool val = i + 1 < argc;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout, refs); return 0; }
        else if (!strcmp(argv[i], "--device") && val) device = argv[++i];
        else if (!strcmp(argv[i], "--batch") && val) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--entries") && val) entries = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && val) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && val) where = argv[++i];
        else if (!strcmp(argv[i], "--tiny")) tiny = true;
        else {
            fprintf(stderr, "cameo bench %s: unexpected argument '%s'\n", name, argv[i]);
            usage(stderr, refs);
            return 2;
        }
    }
    if (B < 1 || B > 4096 || entries < B || iters < 1) {
        fprintf(stderr, "cameo bench %s: want 1 <= --batch <= 4096, --entries >= --batch, --iters >= 1\n", name);
        return 2;
    }
    cm_device dev;
    char err[2048];
    if (cfg_parse_device(device, &dev) || ic_device_check(dev, "--device", err, sizeof err)) {
        fprintf(stderr, "cameo bench %s: --device %s: %s\n", name, device, cfg_parse_device(device, &dev) ? "not cpu or cuda:N" : err);
        return 2;
    }
    text_cache tc = {0};
    ref_cache rc_ = {0};
    bench_cache b = {.refs = refs, .name = name, .kind = refs ? &REF_CACHE_KIND : &TEXT_CACHE_KIND, .tc = &tc, .rc = &rc_};
    if (refs) b.id = (fstore_id){.fingerprint = 1, .dim = {tiny ? 16 : 729, tiny ? 64 : 2688, 3}};
    else b.id = (fstore_id){.fingerprint = 1, .dim = {tiny ? 16 : 512, tiny ? 32 : 4096, tiny ? 16 : 768}};
    snprintf(b.id.encoders, sizeof b.id.encoders, "random values (cameo bench %s)", name);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/cameo-bench-%s-XXXXXX", where, refs ? "refs" : "text");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cameo bench %s: cannot make a folder under %s\n", name, where);
        return 1;
    }
    int rc = refs ? ref_cache_open(&rc_, dir, &b.id, true, err, sizeof err) : text_cache_open(&tc, dir, &b.id, true, err, sizeof err);
    autograd_no_grad_push();
    const int64_t *d = b.id.dim;
    if (refs) {
        b.ids = calloc((size_t)entries, sizeof *b.ids);
        for (int i = 0; i < entries; i++) b.ids[i] = 1000 + i;
        const int64_t rows[3] = {d[0], d[2] * d[0], 4 * d[0]};
        for (int k = 0; k < 3; k++) b.t[k] = tensor_empty(CM_BF16, 3, (int64_t[]){B, rows[k], d[1]}, CM_DEV_CPU);
        b.nt = 3;
    } else {
        b.caps = calloc((size_t)entries, sizeof *b.caps);
        for (int i = 0; i < entries; i++) {
            b.caps[i] = malloc(64);
            snprintf(b.caps[i], 64, "a caption of the benchmark, number %d", i);
        }
        b.t[0] = tensor_empty(CM_BF16, 3, (int64_t[]){B, d[0], d[1]}, CM_DEV_CPU);
        b.t[1] = tensor_empty(CM_BF16, 2, (int64_t[]){B, d[2]}, CM_DEV_CPU);
        b.nt = 2;
    }
    for (int k = 0; k < b.nt; k++) tensor_fill_randn(b.t[k], (uint64_t)k + 1, 1.0);
    double t0 = progress_now();
    for (int i = 0; i + B <= entries && !rc; i += B) rc = put(&b, i, B, err, sizeof err);
    double t_put = secs_since(t0);
    if (refs) ref_cache_close(&rc_);
    else text_cache_close(&tc);
    if (!rc) rc = refs ? ref_cache_open(&rc_, dir, &b.id, false, err, sizeof err) : text_cache_open(&tc, dir, &b.id, false, err, sizeof err);
    const double bytes = (double)B * 2.0 * (double)b.kind->values(d);  // a batch's values, bf16
    double *tl = calloc((size_t)iters, sizeof *tl), *td = calloc((size_t)iters, sizeof *td), *tm = calloc((size_t)iters, sizeof *tm);
    uint8_t *src = malloc((size_t)bytes), *dst = malloc((size_t)bytes);
    CM_CHECK(tl && td && tm && src && dst, "bench", "out of host memory");
    memset(src, 1, (size_t)bytes), memset(dst, 0, (size_t)bytes);
    cm_dtype model_dt = dev.type == CM_CPU ? CM_F32 : CM_BF16;
    for (int it = -2; it < iters && !rc; it++) {  // two rounds unmeasured: the map's pages in memory
        int first = (it + 2) * B % (entries - B + 1);
        cm_tensor *h[3] = {0}, *dv[3] = {0}, *cv[3] = {0};
        t0 = progress_now();
        rc = lookup(&b, first, B, h, err, sizeof err);
        double t1 = secs_since(t0);
        if (rc) break;
        t0 = progress_now();  // the step's cached path: to the device, the model's dtype
        for (int k = 0; k < b.nt; k++) dv[k] = op_to_device(h[k], dev), cv[k] = op_cast(dv[k], model_dt);
        backend_get(dev.type)->sync(backend_ctx(dev));
        double t2 = secs_since(t0);
        t0 = progress_now();
        memcpy(dst, src, (size_t)bytes);
        double t3 = secs_since(t0);
        if (it >= 0) tl[it] = t1, td[it] = t1 + t2, tm[it] = t3;
        for (int k = 0; k < b.nt; k++) tensor_release(h[k]), tensor_release(dv[k]), tensor_release(cv[k]);
    }
    autograd_no_grad_pop();
    if (!rc) {
        double l = bench_median(tl, iters), dd = bench_median(td, iters), m = bench_median(tm, iters);
        if (refs)
            printf("## The reference cache: a batch of %d references read (%lld tokens x %lld values each, bf16; %.1f MiB a batch)\n\n",
                   B, (long long)(d[0] * (5 + d[2])), (long long)d[1], bytes / 1048576.0);
        else
            printf("## The text cache: a batch of %d captions read (%lld x %lld + %lld values each, bf16; %.2f MiB a batch)\n\n", B,
                   (long long)d[0], (long long)d[1], (long long)d[2], bytes / 1048576.0);
        printf("| part | ms a batch | ms a sample | GB/s | of memcpy's |\n|---|---:|---:|---:|---:|\n");
        printf("| memcpy of the same bytes (the host's limit) | %.3f | %.3f | %.1f | 100%% |\n", m * 1e3, m * 1e3 / B, bytes / m / 1e9);
        printf("| lookup: LMDB read, CRC-32C, copy into a host tensor | %.3f | %.3f | %.1f | %.0f%% |\n", l * 1e3, l * 1e3 / B,
               bytes / l / 1e9, 100.0 * m / l);
        printf("| lookup + to %s in %s (the step's cached path) | %.3f | %.3f | %.1f | %.0f%% |\n\n", device,
               model_dt == CM_F32 ? "f32" : "bf16", dd * 1e3, dd * 1e3 / B, bytes / dd / 1e9, 100.0 * m / dd);
        printf("Written first: %d entries in %.2f s (%.1f MiB/s, a transaction and an fsync a batch). ", entries, t_put,
               (double)(entries / B) * bytes / t_put / 1048576.0);
        if (refs)
            printf("At full size the reference\ncache takes SigLIP's and DINOv2's 12.26 TFLOP a 512^2 sample out of the step (their time on a "
                   "GPU: `cameo bench\nblocks --device cuda:0 --full-step`, 'The frozen encoders, measured') and the loader's "
                   "reference views off the CPU.\n");
        else
            printf("At full size the text\ncache takes T5-XXL's 4.86 TFLOP and CLIP-L's share of a 512^2 sample out of the step (its time "
                   "on a GPU: `cameo\nbench blocks --device cuda:0 --full-step`, 'The frozen encoders, measured') and 8.9 GiB of "
                   "weights off the card.\n");
    } else fprintf(stderr, "cameo bench %s: %s\n", name, err);
    if (refs && rc_.s.env) ref_cache_close(&rc_);
    if (!refs && tc.env) text_cache_close(&tc);
    for (int k = 0; k < b.nt; k++) tensor_release(b.t[k]);
    for (int i = 0; b.caps && i < entries; i++) free(b.caps[i]);
    free(b.caps), free(b.ids), free(tl), free(td), free(tm), free(src), free(dst);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cameo bench %s: could not remove %s\n", name, dir);
    return rc ? 1 : 0;
}

int bench_text_cache_main(int argc, char **argv) { return bench_cache_main(false, argc, argv); }
int bench_ref_cache_main(int argc, char **argv) { return bench_cache_main(true, argc, argv); }
