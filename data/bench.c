// bench.c — `cameo data bench`: loader vs decode-only throughput, metadata lookup cost, and the
// order/resume cost of a simulated 10M-sample index. Prints a table; never fails on speed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include "data/buckets.h"
#include "data/cpus.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/preprocess.h"
#include "data/rng.h"
#include "data/sampler.h"
#include "data/tools.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void scale_bench(uint64_t n) {
    const uint64_t per = 10000;
    int ns = (int)((n + per - 1) / per);
    uint64_t *cnt = malloc(sizeof(uint64_t) * ns);
    for (int i = 0; i < ns; i++) cnt[i] = (uint64_t)i == (uint64_t)ns - 1 ? n - per * (uint64_t)(ns - 1) : per;
    uint8_t *bk = malloc(n);
    for (uint64_t i = 0; i < n; i++) bk[i] = (uint8_t)(rng_mix(i) % 5);
    sampler s;
    sampler_config c = {.n_samples = n, .n_shards = ns, .shard_count = cnt, .bucket = bk, .n_buckets = 5, .global_batch = 256, .seed = 1};
    double t0 = now();
    sampler_init(&s, &c);
    double t1 = now();
    sampler_order o = {0};
    sampler_order_epoch(&s, 0, &o);
    double t2 = now();
    // resume to an arbitrary position: recompute that epoch's order, index the batch
    uint64_t e = 7, k = rng_mix(42) % s.batches_per_epoch;
    double t3 = now();
    sampler_order_epoch(&s, e, &o);
    volatile uint32_t first = o.ids[k * 256];
    double t4 = now();
    (void)first;
    double mem = (sampler_order_bytes(&s) + n) / 1048576.0;
    printf("| order of a simulated %llu-sample index (%d shards, 5 buckets, G=256) | %.2f s (init %.2f s) |\n", (unsigned long long)n, ns, t2 - t0, t1 - t0);
    printf("| memory for the order (ids u32 + bucket byte per sample + queues) | %.1f MiB |\n", mem);
    printf("| resume to epoch %llu batch %llu (recompute + index) | %.2f s |\n", (unsigned long long)e, (unsigned long long)k, t4 - t3);
    sampler_order_free(&o);
    sampler_free(&s);
    free(cnt);
    free(bk);
}

int bench_run(const bench_options *o) {
    dataset d;
    char err[1024];
    if (dataset_open(&d, o->dir, 0, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    int T = o->threads > 0 ? o->threads : cpus_usable();
    int R = o->ref_size > 0 ? o->ref_size : 384, res = o->resolution > 0 ? o->resolution : 512;
    uint64_t n = (uint64_t)(o->samples > 0 ? o->samples : 256);
    if (n > d.m.samples) n = d.m.samples;
    int bt[BUCKETS_MAX][2];
    int nb = buckets_make(res, 64, 2.0, bt, BUCKETS_MAX);
    if (nb < 1) {
        fprintf(stderr, "cameo data bench: --resolution %d gives no bucket (bench uses a step of 64: the resolution must be at least 64)\n", res);
        dataset_close(&d);
        return 1;
    }
    dataset_reader r;
    dataset_reader_init(&r, &d);
    preprocess_scratch ps = {0};
    record_view rec;
    double mp = 0;
    printf("dataset %s: %llu samples; %d decode threads; targets in %d² buckets; reference views %d²\n\n", o->dir, (unsigned long long)d.m.samples, T, res, R);
    printf("| measure | value |\n|---|---|\n");
    // 1. decode-only loop (one thread): WebP → 8-bit pixels, same images as the loader. Rates are
    // per record decoded: a damaged record (skipped, as the loader skips it) costs almost nothing
    // and must not count as a sample
    uint64_t ok_dec = 0, ok_full = 0;
    for (uint64_t i = 0; i < n; i++) dataset_get(&r, i, &rec, err, sizeof err);  // warm the page cache
    double t0 = now();
    for (uint64_t i = 0; i < n; i++)
        if (!dataset_get(&r, i, &rec, err, sizeof err) &&
            !image_webp_decode_into(rec.image, rec.image_len, (rec.flags & RECORD_FLAG_ALPHA) != 0, &ps.dec, &ps.dec_cap))
            ok_dec++, mp += (double)rec.width * rec.height;
    double dec = (now() - t0) / (double)(ok_dec ? ok_dec : 1);
    if (ok_dec < n) printf("| records skipped (checksum, decode or metadata errors) | %llu of the first %llu |\n",
                           (unsigned long long)(n - ok_dec), (unsigned long long)n);
    printf("| decode-only loop, 1 thread (%.2f MP/image mean) | %.1f samples/s/core (%.2f ms) |\n", mp / (double)(ok_dec ? ok_dec : 1) / 1e6,
           1.0 / dec, dec * 1e3);
    // 2. decode + full preprocessing in a plain loop (one thread)
    float *tgt = malloc(sizeof(float) * 3 * (size_t)res * res * 2), *sig = malloc(sizeof(float) * 15 * R * R), *dino = malloc(sizeof(float) * 15 * R * R);
    t0 = now();
    for (uint64_t i = 0; i < n; i++) {
        if (dataset_get(&r, i, &rec, err, sizeof err) || dataset_get_meta(&r, &rec, err, sizeof err) ||
            image_webp_decode_into(rec.image, rec.image_len, (rec.flags & RECORD_FLAG_ALPHA) != 0, &ps.dec, &ps.dec_cap) ||
            preprocess_load(&ps.dec, &ps))
            continue;
        int b = buckets_nearest((const int(*)[2])bt, nb, rec.width, rec.height);
        int32_t crop[4];
        if (preprocess_target(&ps, rec.width, rec.height, bt[b][0], bt[b][1], 0.3, 0.6, 1, tgt, crop) ||
            preprocess_reference(&ps, rec.width, rec.height, R, sig, dino))
            continue;
        ok_full++;
    }
    double full = (now() - t0) / (double)(ok_full ? ok_full : 1);
    printf("| decode + target + 5 reference views, plain loop, 1 thread | %.1f samples/s/core (%.2f ms) |\n", 1.0 / full, full * 1e3);
    // 3. the loader: as a plain run reads, then as a run with the reference and latent caches
    // (model.ref_cache, model.latent_cache: each target decoded, to skip a damaged one, but no view
    // made and no target cut; the caches' entries are read by the step, not here)
    for (int cached = 0; cached < 2; cached++) {
        loader_config lc = loader_config_default();
        lc.path = o->dir;
        lc.resolution = res;
        lc.ref_size = R;
        lc.threads = T;
        lc.prefetch = 4;
        lc.global_batch = 1;
        lc.random_flip = 1;
        lc.no_ref_views = lc.no_target = cached;
        loader *L = loader_open(&lc, NULL);
        if (!L) continue;
        loader_batch b;
        uint64_t got = 0;
        loader_next(L, &b);  // warm-up
        t0 = now();
        while (got < n && loader_next(L, &b) == 0) got += (uint64_t)b.B;
        double el = now() - t0;
        loader_close(L);
        double per_core = got / el / T;
        if (!cached) {
            printf("| loader, %d threads, %d²-area targets + 5 views + captions | %.1f samples/s (%.1f per core) |\n", T, res, got / el,
                   per_core);
            printf("| loader per core vs plain loop (same work) | %.0f%% |\n", 100.0 * per_core * full);
        } else
            printf("| loader with the reference and latent caches, %d threads (targets decoded, no views, no cut) | %.1f samples/s "
                   "(%.1f per core) |\n", T, got / el, per_core);
        printf("| %s per core vs decode-only loop | %.0f%% |\n", cached ? "the same" : "loader", 100.0 * per_core * dec);
    }
    // 4. metadata lookup + decompression (no image), with and without the record CRC, over the same
    // first n records (in the page cache now), repeated to 20000 lookups: not over the whole
    // dataset, whose 10M records cost an hour of cold page faults, and whose CRC pass read every
    // image byte of it (terabytes) before the bench could print these rows
    uint64_t m = n, reps = m ? (20000 + m - 1) / m : 0;
    t0 = now();
    for (uint64_t rep = 0; rep < reps; rep++)
        for (uint64_t id = 0; id < m; id++) {
            MDB_val v;
            int s = manifest_shard_of(&d.m, id);
            if (!r.txn[s]) r.txn[s] = shard_begin(&d.shards[s], err, sizeof err);
            if (shard_get(&d.shards[s], r.txn[s], id, &v) || record_parse_nocrc(v.mv_data, v.mv_size, &rec, err, sizeof err)) continue;
            dataset_get_meta(&r, &rec, err, sizeof err);
        }
    double meta_us = (now() - t0) / (double)(m && reps ? m * reps : 1) * 1e6;
    t0 = now();
    for (uint64_t rep = 0; rep < reps; rep++)
        for (uint64_t id = 0; id < m; id++)
            if (!dataset_get(&r, id, &rec, err, sizeof err)) dataset_get_meta(&r, &rec, err, sizeof err);
    double meta_crc_us = (now() - t0) / (double)(m && reps ? m * reps : 1) * 1e6;
    printf("| metadata lookup + zstd%s decompression + decode (first %llu records, %llu passes) | %.2f µs/sample |\n",
           d.m.has_dict ? " (dictionary)" : "", (unsigned long long)m, (unsigned long long)reps, meta_us);
    printf("| same plus CRC-32C of the whole record (image included) | %.2f µs/sample |\n", meta_crc_us);
    free(tgt); free(sig); free(dino);
    preprocess_scratch_free(&ps);
    dataset_reader_free(&r);
    dataset_close(&d);
    // 5. scale without images
    if (o->scale_samples > 0) scale_bench((uint64_t)o->scale_samples);
    return 0;
}
