// test_data_loader.c — the loader end to end on a small demo dataset: determinism across
// thread counts, resume at any batch (also with a different world size), rank slices, paired /
// mixed / unpaired references, caption and reference drop, single-image characters.
#include <math.h>
#include <string.h>
#include "data/checksum.h"
#include "data/loader.h"
#include "helpers.h"

#define MAXB 64
typedef struct { int B; int64_t ids[16], refs[16]; uint32_t sum[16]; uint64_t epoch, index; } rec_batch;

static loader_config cfg_for(const char *path) {
    loader_config c = loader_config_default();
    c.path = path;
    c.seed = 5;
    c.global_batch = 4;
    c.resolution = 64;
    c.bucket_step = 16;
    c.ref_size = 28;
    c.threads = 2;
    c.random_flip = 1;
    c.max_epochs = 2;
    return c;
}

static void take(loader_batch *b, rec_batch *r) {
    size_t t = (size_t)3 * b->H * b->W, v = (size_t)15 * b->R * b->R;
    r->B = b->B; r->epoch = b->epoch; r->index = b->batch_index;
    for (int j = 0; j < b->B; j++) {
        r->ids[j] = b->sample_ids[j];
        r->refs[j] = b->ref_ids[j];
        uint32_t s = crc32c(b->target + j * t, t * sizeof(float));
        s = crc32c_update(s, b->ref_siglip + j * v, v * sizeof(float));
        s = crc32c_update(s, b->ref_dino + j * v, v * sizeof(float));
        r->sum[j] = crc32c_update(s, b->captions[j], strlen(b->captions[j]));
    }
}

// runs a loader to the end (or n batches), recording batches; returns the count
static int run(const loader_config *c, const loader_resume *res, rec_batch *out, int n) {
    loader *L = loader_open(c, res);
    if (!L) return -1;
    loader_batch b;
    int k = 0;
    while (k < n && loader_next(L, &b) == 0) take(&b, &out[k++]);
    loader_close(L);
    return k;
}

static int same(const rec_batch *a, const rec_batch *b) {
    if (a->B != b->B || a->epoch != b->epoch || a->index != b->index) return 0;
    for (int j = 0; j < a->B; j++) if (a->ids[j] != b->ids[j] || a->sum[j] != b->sum[j] || a->refs[j] != b->refs[j]) return 0;
    return 1;
}

// opens and closes a loader (run_captured: its notes on stderr)
static int open_close(const void *arg) {
    loader *L = loader_open(arg, NULL);
    loader_close(L);
    return L ? 0 : 1;
}

static int load_demo(void *ctx, const build_item *it, image *out, char *err, size_t errlen) {
    char *caps[2];
    demo_draw(ctx, (int)(it->user >> 16), (int)(it->user & 0xffff), out, caps, NULL);
    free(caps[0]); free(caps[1]);
    return 0;
}

int main(void) {
    const char *ds = make_demo("demo", 6, 5, 64, 7);  // 30 samples over 5 shards; characters straddle shards
    static rec_batch A[MAXB], B[MAXB], C[MAXB];
    loader_config c = cfg_for(ds);
    int na = run(&c, NULL, A, MAXB);
    TEST_CHECK(na > 4, "batches over 2 epochs: %d", na);
    int per_epoch = 0;
    while (per_epoch < na && A[per_epoch].epoch == 0) per_epoch++;
    TEST_CHECK(per_epoch * 2 == na, "two epochs of %d batches (got %d)", per_epoch, na);
    // within an epoch, no sample twice; unpaired: reference = target
    for (int e = 0; e < 2; e++) {
        int seen[30] = {0}, dup = 0, selfref = 1;
        for (int k = e * per_epoch; k < (e + 1) * per_epoch; k++)
            for (int j = 0; j < A[k].B; j++) { dup += seen[A[k].ids[j]]++; selfref &= A[k].refs[j] == A[k].ids[j]; }
        TEST_CHECK(dup == 0, "epoch %d: no repeats", e);
        TEST_CHECK(selfref, "unpaired: reference is the target");
    }
    // determinism across thread counts
    c.threads = 1;
    int nb = run(&c, NULL, B, MAXB);
    int eq = nb == na;
    for (int k = 0; eq && k < na; k++) eq = same(&A[k], &B[k]);
    TEST_CHECK(eq, "1 thread gives bit-identical batches to 2 threads");
    c.threads = 2;
    // resume at every batch point (state taken from a live loader)
    for (int k = 0; k < na; k++) {
        loader *L = loader_open(&c, NULL);
        loader_batch b;
        for (int i = 0; i < k; i++) loader_next(L, &b);
        loader_resume st;
        loader_state(L, &st);
        loader_close(L);
        int got = run(&c, &st, C, MAXB);
        int ok = got == na - k;
        for (int i = 0; ok && i < got; i++) ok = same(&A[k + i], &C[i]);
        TEST_CHECK(ok, "resume after %d batches continues the same order (%d batches)", k, got);
    }
    // ranks: world 2 slices, and a resume from a world-1 state onto world 2
    for (int r = 0; r < 2; r++) {
        loader_config c2 = c;
        c2.world = 2; c2.rank = r;
        int n2 = run(&c2, NULL, C, MAXB);
        int ok = n2 == na;
        for (int k = 0; ok && k < na; k++) {
            ok = C[k].B == 2 && C[k].index == A[k].index;
            for (int j = 0; ok && j < 2; j++) ok = C[k].ids[j] == A[k].ids[2 * r + j] && C[k].sum[j] == A[k].sum[2 * r + j];
        }
        TEST_CHECK(ok, "rank %d of 2 takes its slice of every global batch", r);
        loader *L = loader_open(&c, NULL);
        loader_batch b;
        for (int i = 0; i < 3; i++) loader_next(L, &b);
        loader_resume st;
        loader_state(L, &st);
        loader_close(L);
        n2 = run(&c2, &st, C, 2);
        TEST_CHECK(n2 == 2 && C[0].ids[0] == A[3].ids[2 * r] && C[1].ids[1] == A[4].ids[2 * r + 1], "world-1 state resumed on world 2 (rank %d)", r);
    }
    // a state from another seed is refused
    {
        loader_resume st = {.seed = 99};
        TEST_CHECK(loader_open(&c, &st) == NULL, "mismatched resume state refused");
    }
    // paired: another image of the same character (demo ids are grouped 5 per character)
    loader_config cp = c;
    cp.mode = LOADER_PAIRED;
    int np = run(&cp, NULL, B, MAXB), ok = np > 0, n_paired = 0;
    for (int k = 0; k < np; k++)
        for (int j = 0; j < B[k].B; j++) { ok &= B[k].refs[j] != B[k].ids[j] && B[k].refs[j] / 5 == B[k].ids[j] / 5; n_paired++; }
    TEST_CHECK(ok && n_paired > 0, "paired: reference is another image of the same character");
    run(&cp, NULL, C, MAXB);
    ok = 1;
    for (int k = 0; k < np; k++) ok &= same(&B[k], &C[k]);
    TEST_CHECK(ok, "paired choice is deterministic");
    // mixed at 0.5: both kinds occur
    cp.mode = LOADER_MIXED;
    cp.paired_share = 0.5f;
    np = run(&cp, NULL, B, MAXB);
    int p = 0, u = 0;
    for (int k = 0; k < np; k++) for (int j = 0; j < B[k].B; j++) { if (B[k].refs[j] == B[k].ids[j]) u++; else p++; }
    TEST_CHECK(p > 0 && u > 0, "mixed: %d paired, %d unpaired", p, u);
    // no_ref_views (a reference cache holds the features): the same samples, references, drops, targets
    // and captions, the dataset's manifest hash given, and no views made
    {
        loader_config cv = cp, cn = cp;
        cv.ref_drop = cn.ref_drop = 0.5f;
        cn.no_ref_views = 1;
        loader *La = loader_open(&cv, NULL), *Ln = loader_open(&cn, NULL);
        loader_batch a, b;
        int all = La && Ln, n = 0, dropped = 0;
        while (all && loader_next(La, &a) == 0) {
            all &= loader_next(Ln, &b) == 0 && a.B == b.B && a.manifest_hash == b.manifest_hash && a.manifest_hash != 0;
            size_t t = (size_t)3 * a.H * a.W;
            for (int j = 0; all && j < a.B; j++, n++) {
                all &= a.sample_ids[j] == b.sample_ids[j] && a.ref_ids[j] == b.ref_ids[j] && a.ref_dropped[j] == b.ref_dropped[j] &&
                       a.paired[j] == b.paired[j] && !strcmp(a.captions[j], b.captions[j]) &&
                       !memcmp(a.target + j * t, b.target + j * t, t * sizeof(float));
                dropped += a.ref_dropped[j];
            }
        }
        loader_close(La);
        loader_close(Ln);
        TEST_CHECK(all && n > 0 && dropped > 0, "no_ref_views: the same %d samples (%d references dropped) without views", n, dropped);
    }
    // drops and value ranges
    {
        loader_config cd = c;
        cd.caption_drop = 1.0f;
        cd.ref_drop = 1.0f;
        loader *L = loader_open(&cd, NULL);
        loader_batch b;
        TEST_CHECK(loader_next(L, &b) == 0, "next");
        int all = 1;
        size_t v = (size_t)b.B * 15 * b.R * b.R;
        for (int j = 0; j < b.B; j++) all &= b.caption_dropped[j] && b.ref_dropped[j] && b.captions[j][0] == 0;
        for (size_t i = 0; i < v; i++) all &= b.ref_siglip[i] == 0.f && b.ref_dino[i] == 0.f;
        TEST_CHECK(all, "caption and reference drop");
        loader_close(L);
        L = loader_open(&c, NULL);
        loader_next(L, &b);
        size_t t = (size_t)b.B * 3 * b.H * b.W;
        float lo = 1e9f, hi = -1e9f;
        for (size_t i = 0; i < t; i++) { lo = fminf(lo, b.target[i]); hi = fmaxf(hi, b.target[i]); }
        TEST_CHECK(lo >= -1.f && hi <= 1.f && hi > lo, "target in [-1, 1] (%g..%g)", lo, hi);
        int rel = 1;
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
        for (int j = 0; j < b.B; j++)
            for (int vv = 0; vv < 5; vv++)
                for (int ch = 0; ch < 3; ch++) {
                    size_t o = (((size_t)j * 5 + vv) * 3 + ch) * b.R * b.R + 7;
                    float x = b.ref_siglip[o] * 0.5f + 0.5f;
                    rel &= fabsf((x - mean[ch]) / sd[ch] - b.ref_dino[o]) < 1e-4f;
                }
        TEST_CHECK(rel, "SigLIP and DINOv2 views are the same pixels, differently normalised");
        TEST_CHECK(b.captions[0][0] != 0 && strlen(b.captions[0]) > 5, "caption present: %s", b.captions[0]);
        loader_close(L);  // closes with prefetch in flight
    }
    // single-image characters in paired mode are left out and counted
    {
        demo_options d = demo_options_default();
        d.size = 64;
        int who[8] = {0, 0, 0, 1, 2, 2, 2, 2};
        build_item items[8];
        memset(items, 0, sizeof items);
        for (int i = 0; i < 8; i++) {
            char *caps[2], *name;
            image im;
            demo_draw(&d, who[i], i, &im, caps, &name);
            image_free(&im);
            items[i].line = i + 1; items[i].character = name; items[i].n_captions = 2;
            items[i].captions = malloc(2 * sizeof(char *));
            items[i].captions[0] = caps[0]; items[i].captions[1] = caps[1];
            items[i].source = strdup("demo");
            items[i].user = (uint64_t)who[i] << 16 | (uint64_t)i;
        }
        build_options o = build_options_default();
        o.quiet = 1;
        build_report r;
        char path[512], err[1024];
        snprintf(path, sizeof path, "%s/single", tmp_dir());
        TEST_CHECK(build_dataset(path, items, 8, load_demo, &d, &o, &r, err, sizeof err) == 0, "build: %s", err);
        for (int i = 0; i < 8; i++) build_item_free(&items[i]);
        loader_config cs = cfg_for(path);
        cs.mode = LOADER_PAIRED;
        cs.global_batch = 1;
        cs.max_epochs = 1;
        loader *L = loader_open(&cs, NULL);
        loader_batch b;
        int n = 0, saw3 = 0;
        while (loader_next(L, &b) == 0) { n += b.B; saw3 |= b.sample_ids[0] == 3; }
        loader_counts lc;
        loader_stats(L, &lc);
        TEST_CHECK(n == 7 && !saw3 && lc.single_image_characters == 1, "single-image character skipped and counted (%d samples, counted %llu)", n,
                   (unsigned long long)lc.single_image_characters);
        loader_close(L);
        // and said (rank 0, unless quiet: the validation opens its loader at every validation)
        char log[2048];
        TEST_CHECK(run_captured(open_close, &cs, log, sizeof log) == 0 &&
                       strstr(log, "paired: 1 of 8 samples are the only image of their character, left out"), "paired: the left-out "
                   "samples are told: '%s'", log);
        cs.quiet = 1;
        TEST_CHECK(run_captured(open_close, &cs, log, sizeof log) == 0 && !log[0], "quiet: nothing told: '%s'", log);
        cs.quiet = 0, cs.global_batch = 2, cs.world = 2, cs.rank = 1;
        TEST_CHECK(run_captured(open_close, &cs, log, sizeof log) == 0 && !log[0], "rank 1: nothing told: '%s'", log);
    }
    // mixed over half single-image characters: paired_share of ALL samples are paired (those with a
    // pair more often), not paired_share of the half that can be; a share above what the data
    // allows gives all it can
    {
        demo_options d = demo_options_default();
        d.size = 64;
        enum { NS = 32 };
        build_item items[NS];
        memset(items, 0, sizeof items);
        for (int i = 0; i < NS; i++) {  // 16 characters of one image, then 4 of 4
            int who = i < 16 ? i : 16 + (i - 16) / 4;
            char *caps[2], *name;
            image im;
            demo_draw(&d, who, i, &im, caps, &name);
            image_free(&im);
            items[i].line = i + 1; items[i].character = name; items[i].n_captions = 2;
            items[i].captions = malloc(2 * sizeof(char *));
            items[i].captions[0] = caps[0]; items[i].captions[1] = caps[1];
            items[i].source = strdup("demo");
            items[i].user = (uint64_t)who << 16 | (uint64_t)i;
        }
        build_options o = build_options_default();
        o.quiet = 1;
        build_report r;
        char path[512], err[1024];
        snprintf(path, sizeof path, "%s/halfsingle", tmp_dir());
        TEST_CHECK(build_dataset(path, items, NS, load_demo, &d, &o, &r, err, sizeof err) == 0, "build: %s", err);
        for (int i = 0; i < NS; i++) build_item_free(&items[i]);
        const float share[2] = {0.3f, 0.8f}, want[2] = {0.3f, 0.5f};
        for (int k = 0; k < 2; k++) {
            loader_config cm = cfg_for(path);
            cm.mode = LOADER_MIXED;
            cm.paired_share = share[k];
            cm.global_batch = 4;
            cm.max_epochs = 40;
            loader *L = loader_open(&cm, NULL);
            loader_batch b;
            int n = 0, paired = 0;
            while (L && loader_next(L, &b) == 0)
                for (int j = 0; j < b.B; j++) n++, paired += b.paired[j];
            double f = n ? (double)paired / n : 0;
            printf("mixed, paired_share %.1f over half single-image characters: %.3f of %d samples paired\n", share[k], f, n);
            TEST_CHECK(n >= 900 && fabs(f - want[k]) < 0.06, "mixed %.1f: %.3f of %d paired (want %.2f)", share[k], f, n, want[k]);
            loader_close(L);
        }
    }
    return test_summary("test_data_loader");
}
