// stats.c — `cameo data stats`: samples, characters, pairs, buckets, caption lengths, bytes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/buckets.h"
#include "data/dataset.h"
#include "data/tools.h"

int stats_run(const char *dir, int resolution, int step, uint64_t records) {
    dataset d;
    char err[1024];
    if (dataset_open(&d, dir, 0, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    uint64_t n = d.m.samples, multi = 0, pairs = 0, single = 0, cmin = UINT64_MAX, cmax = 0, bytes = 0;
    for (uint32_t c = 0; c < d.n_chars; c++) {
        uint64_t k = d.char_count[c];
        if (k >= 2) { multi++; pairs += k * (k - 1); } else single++;
        if (k < cmin) cmin = k;
        if (k > cmax) cmax = k;
    }
    for (int i = 0; i < d.m.n_shards; i++) bytes += d.m.shards[i].bytes;
    printf("dataset %s: format %d, %llu samples in %d shard(s), %.1f MiB, metadata dictionary: %s\n", dir, d.m.version, (unsigned long long)n, d.m.n_shards,
           bytes / 1048576.0, d.m.has_dict ? d.m.dict_file : "none");
    printf("characters: %u (%llu with >= 2 images, %llu single-image); images per character min %llu mean %.2f max %llu\n", d.n_chars,
           (unsigned long long)multi, (unsigned long long)single, (unsigned long long)cmin, d.n_chars ? (double)n / d.n_chars : 0.0, (unsigned long long)cmax);
    printf("ordered pairs (reference, target) of the same character: %llu\n", (unsigned long long)pairs);
    int bt[BUCKETS_MAX][2];
    int nb = buckets_make(resolution, step, 2.0, bt, BUCKETS_MAX);
    if (nb < 1) {
        fprintf(stderr, "cameo data stats: --resolution %d with --step %d gives no bucket (a bucket side is a multiple of the step, the area at most resolution²: "
                "use a step of at most the resolution)\n", resolution, step);
        dataset_close(&d);
        return 1;
    }
    buckets_tally t;
    buckets_tally_init(&t);
    buckets_tally_add(&t, (const int(*)[2])bt, nb, d.sizes, 0, n);
    printf("buckets at %d² (step %d):", resolution, step);
    for (int b = 0; b < nb; b++) printf(" %dx%d:%llu", bt[b][0], bt[b][1], (unsigned long long)t.count[b]);
    printf("\n");
    uint64_t up = t.upscaled;  // enlarged to cover their bucket: a stage at this resolution learns blur from them
    if (n) printf("image shorter side: %d to %d px; enlarged to their bucket at %d²: %llu (%.0f%%)%s", t.short_min, t.short_max, resolution,
                  (unsigned long long)up, 100.0 * (double)up / (double)n, up ? "" : "\n");
    if (up) printf(", up to %.1fx\n", t.most);
    dataset_reader r;
    dataset_reader_init(&r, &d);
    uint64_t ncap = 0, lmin = UINT64_MAX, lmax = 0, lsum = 0, alpha = 0, imbytes = 0, badrec = 0;
    // the captions and images are read record by record (each checksummed, every image byte read):
    // at most `records` of them, spread evenly over the ids — a 10M-image dataset is terabytes
    uint64_t nr = records && records < n ? records : n;
    for (uint64_t k = 0; k < nr; k++) {
        uint64_t id = nr == n ? k : (uint64_t)((unsigned __int128)k * n / nr);
        record_view rec;
        if (dataset_get(&r, id, &rec, err, sizeof err) || dataset_get_meta(&r, &rec, err, sizeof err)) { badrec++; continue; }
        if (rec.flags & RECORD_FLAG_ALPHA) alpha++;
        imbytes += rec.image_len;
        for (int c = 0; c < r.meta.n_captions; c++) {
            uint64_t l = strlen(r.meta.captions[c]);
            ncap++; lsum += l;
            if (l < lmin) lmin = l;
            if (l > lmax) lmax = l;
        }
    }
    if (nr < n) printf("records read for the lines below: %llu of %llu, spread evenly (--records 0 reads every one)\n",
                       (unsigned long long)nr, (unsigned long long)n);
    printf("captions: %llu (%.2f per sample), length in bytes min %llu mean %.1f max %llu\n", (unsigned long long)ncap, nr ? (double)ncap / nr : 0.0,
           (unsigned long long)(ncap ? lmin : 0), ncap ? (double)lsum / ncap : 0.0, (unsigned long long)lmax);
    printf("images: %llu with alpha, mean %.1f KiB\n", (unsigned long long)alpha, nr ? imbytes / 1024.0 / nr : 0.0);
    if (badrec) printf("unreadable records: %llu%s (run `cameo data verify`)\n", (unsigned long long)badrec, nr < n ? " of those read" : "");
    dataset_reader_free(&r);
    dataset_close(&d);
    return badrec ? 1 : 0;
}
