// e2e_ref_cache.c — the reference cache (model.ref_cache, `cameo cache-refs`), as a user runs it and
// through its API:
//   - `cameo cache-refs` stores every record of the dataset as a reference and the dropped reference
//     (zero views), and a second run adds none; a run killed in the middle (SIGKILL after its first
//     batches) goes on from what it committed;
//   - each entry is bit for bit what the towers give for the same batch of views made as the loader
//     makes them; the dropped reference's is the features of zero views;
//   - `cameo train` with the cache (the loader makes no views, the towers run on no training
//     reference) follows the run without it: every logged loss and validation loss within 1e-6
//     relative, the adapter within 1e-4 relative RMS. Not bit for bit: a reference's features differ
//     in the last bits with the batch it goes through the towers in, and AdamW's normalised step
//     turns such differences in near-zero gradients into whole steps (measured: the losses equal to
//     the 9 digits logged, the exported bf16 adapter 1.2e-5 relative RMS after 10 steps). The bound
//     can fail: every reference dropped moves the losses by 3e-4 relative, 300x it;
//   - damaged records: the build skips them, and a paired draw of one falls back to its target's
//     features, as the loader falls back to its target's views: the same losses and the same count
//     of references replaced;
//   - without an evaluation the towers are given back (a step that would need them stops with a
//     message); with one they stay for its references, which are image files;
//   - refused with a message naming the thing: a dataset the cache does not cover, a missing cache,
//     a cache of other towers (another run.seed for the tiny preset), a reference not in it, an
//     entry whose bytes were changed (its checksum), several ranks, no folder;
//   - `cameo inspect CACHE` lists and verifies it; `cameo cache-refs --repair` rewrites a damaged entry;
//   - `cameo bench ref-cache --tiny` prints its table (a smoke run).
// The store under it (train/feature_store.c) is the text cache's; bf16 and mixed entries, an LMDB
// environment of another kind as --out: tests/train/e2e_text_cache.c. On a GPU in bf16:
// tests/train/test_ref_cache_device.c.
// Usage: e2e_ref_cache PATH/TO/cameo   (registered by tests/train/extra.cmake)
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "data/dataset.h"
#include "data/preprocess.h"
#include "e2e_helpers.h"
#include "testutil.h"
#include "train/config.h"
#include "train/models.h"
#include "train/ref_cache.h"
#include "train/step.h"

static const char *cameo;
static char dir[64];

static bool same_features(const vision_features *a, const vision_features *b) {
    const cm_tensor *x[3] = {a->low_res_deep, a->low_res_shallow, a->high_res_deep};
    const cm_tensor *y[3] = {b->low_res_deep, b->low_res_shallow, b->high_res_deep};
    for (int k = 0; k < 3; k++) {
        int64_t n = tensor_numel(x[k]);
        if (n != tensor_numel(y[k])) return false;
        float *u = malloc((size_t)n * 4), *v = malloc((size_t)n * 4);
        tensor_copy_to_host(x[k], CM_F32, u);
        tensor_copy_to_host(y[k], CM_F32, v);
        bool same = !memcmp(u, v, (size_t)n * 4);
        free(u), free(v);
        if (!same) return false;
    }
    return true;
}

// the views of records ids[0..B) as the loader makes them: [B, 5, 3, R, R] each
static void views_of(const char *data, const uint64_t *ids, int B, int R, float *sig, float *dino) {
    dataset d;
    char err[1024];
    TEST_CHECK(dataset_open(&d, data, DATASET_NO_SIZES, err, sizeof err) == 0, "%s", err);
    dataset_reader rd;
    TEST_CHECK(dataset_reader_init(&rd, &d) == 0, "reader");
    preprocess_scratch ps = {0};
    size_t v = (size_t)5 * 3 * R * R;
    for (int i = 0; i < B; i++) {
        record_view rec;
        TEST_CHECK(dataset_get(&rd, ids[i], &rec, err, sizeof err) == DS_OK &&
                   !image_webp_decode_into(rec.image, rec.image_len, (rec.flags & RECORD_FLAG_ALPHA) != 0, &ps.dec, &ps.dec_cap) &&
                   !preprocess_load(&ps.dec, &ps) && !preprocess_reference(&ps, rec.width, rec.height, R, sig + i * v, dino + i * v),
                   "record %llu: %s", (unsigned long long)ids[i], err);
    }
    preprocess_scratch_free(&ps);
    dataset_reader_free(&rd);
    dataset_close(&d);
}

int main(int argc, char **argv) {
    if (argc < 2) test_skip("usage: e2e_ref_cache PATH/TO/cameo");
    cameo = argv[1];
    snprintf(dir, sizeof dir, "/tmp/cameo-rc-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *steps = "--set stages.0.steps=4 --set stages.1.steps=3 --set stages.2.steps=3 --set run.log_every=1 --quiet "
                        "--set validation.every=5 --set validation.samples=4";
    char data[128], data2[128], bad[128], cache[128], cache_bad[128], log[128];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(data2, sizeof data2, "%s/data2", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(cache_bad, sizeof cache_bad, "%s/cache-bad", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    TEST_CHECK(test_sh("%s data demo --out %s --characters 4 --per-character 3 --size 64 >/dev/null 2>&1", cameo, data) == 0, "demo data");
    TEST_CHECK(test_sh("%s data demo --out %s --characters 3 --per-character 3 --size 64 --seed 5 >/dev/null 2>&1", cameo, data2) == 0,
               "second demo data");

    // a build killed after its first batches (CAMEO_FAULT_CACHE_REFS_KILL=2: SIGKILL itself once two
    // are committed: the dropped reference alone, then records 0-3), then run again: it goes on from there
    int rc = test_sh("CAMEO_FAULT_CACHE_REFS_KILL=2 %s cache-refs --set data.path=%s --out %s --batch 4 --quiet >%s 2>&1", cameo, data,
                     cache, log);
    TEST_CHECK(rc != 0, "the killed build exits non-zero (got %d)", rc);
    TEST_CHECK(test_sh("%s cache-refs --set data.path=%s --out %s --batch 4 >%s 2>&1", cameo, data, cache, log) == 0 &&
               file_has(log, "MiB a reference;") && file_has(log, "GiB free there: room for about"), "cache-refs (%s)", log);
    char want[200];
    snprintf(want, sizeof want, "cache %s: 8 references added (12 records read", cache);
    TEST_CHECK(file_has(log, want), "the rerun adds the 8 references the killed build had not committed (%s)", log);
    TEST_CHECK(test_sh("%s cache-refs --set data.path=%s --out %s --batch 4 >%s 2>&1", cameo, data, cache, log) == 0 &&
               file_has(log, ": 0 references added") && file_has(log, "1 already covered"), "a third run adds nothing (%s)", log);

    // training with the cache follows training without it; without the features (every reference
    // dropped) the losses move far past the bound
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/plain >/dev/null 2>%s", cameo, steps, data, dir, log) == 0,
               "train without the cache (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/cached --set model.ref_cache=%s >/dev/null 2>%s", cameo,
                       steps, data, dir, cache, log) == 0 && file_has(log, "the towers run on no training reference and are not loaded"),
               "train with the cache, the towers given back (%s)", log);
    test_same_runs(dir, "plain", "cached", 10, 2, 1e-6);
    double diff, amax, rel;
    char pa[160], pb[160];
    snprintf(pa, sizeof pa, "%s/plain/tiny/adapter.safetensors", dir);
    snprintf(pb, sizeof pb, "%s/cached/tiny/adapter.safetensors", dir);
    adapter_diff(pa, pb, &diff, &amax, &rel);
    printf("adapter after 10 steps, with the cache against without: relative RMS %.3g, max |diff| %.3g, max |w| %.3g\n", rel, diff, amax);
    TEST_CHECK(rel <= 1e-4, "adapter relative RMS difference %.3g > 1e-4", rel);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/dropped --set train.ref_drop=1 >/dev/null 2>%s", cameo, steps,
                       data, dir, log) == 0, "train with every reference dropped (%s)", log);
    double la[16], ld[16], worst = 0;
    int n = test_run_losses(dir, "plain", la, 16);
    TEST_CHECK(test_run_losses(dir, "dropped", ld, 16) == n, "losses of the dropped run");
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(ld[i] - la[i]) / fabs(la[i]));
    printf("every reference dropped against none: largest relative loss difference %.3g\n", worst);
    TEST_CHECK(worst > 1e-4, "the features move the losses (%.3g): the 1e-6 bound above can fail", worst);

    // with an evaluation the towers stay: its references are image files, not records
    char pairs[160], ref[4096];
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    TEST_CHECK(realpath("docs/examples/eval/ref-a.png", ref) != NULL, "docs/examples/eval/ref-a.png");
    FILE *pf = fopen(pairs, "w");
    TEST_CHECK(pf && fprintf(pf, "{\"ref\": \"%s\", \"prompt\": \"a character\"}\n", ref) > 0 && !fclose(pf), "pairs");
    TEST_CHECK(test_sh("%s train %s --set eval.every=10 --set eval.steps=1 --set eval.seeds=1 --set eval.pairs=%s --set data.path=%s "
                       "--set run.out_dir=%s/ev --set model.ref_cache=%s >/dev/null 2>%s", cameo, steps, pairs, data, dir, cache, log) == 0 &&
               file_has(log, "(loaded for the evaluation's)"), "train with the cache and an evaluation (%s)", log);
    char evdir[200];
    snprintf(evdir, sizeof evdir, "%s/ev/tiny/eval", dir);
    TEST_CHECK(test_sh("ls %s | grep -q .", evdir) == 0, "the evaluation wrote its images under %s", evdir);

    // damaged records: skipped by the build, and a paired draw of one falls back to its target's
    // features (the loader's fallback to its target's views): the same losses, the same count replaced
    TEST_CHECK(test_sh("cp -r %s %s", data, bad) == 0 && test_damage_records(bad, 4) > 0, "damaged copy");
    TEST_CHECK(test_sh("%s cache-refs --set data.path=%s --out %s --quiet >%s 2>&1", cameo, bad, cache_bad, log) == 0 &&
               file_has(log, "skipped as damaged") && !file_has(log, " 0 skipped as damaged"), "cache-refs over damaged records (%s)", log);
    const char *loud = "--set stages.0.steps=4 --set stages.1.steps=3 --set stages.2.steps=3 --set run.log_every=1 "
                       "--set validation.every=5 --set validation.samples=4";
    char la_log[160], lb_log[160];
    snprintf(la_log, sizeof la_log, "%s/log-bad-plain", dir);
    snprintf(lb_log, sizeof lb_log, "%s/log-bad-cached", dir);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/bad-plain >/dev/null 2>%s", cameo, loud, bad, dir, la_log) == 0 &&
               test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/bad-cached --set model.ref_cache=%s >/dev/null 2>%s", cameo,
                       loud, bad, dir, cache_bad, lb_log) == 0, "train over damaged records (%s, %s)", la_log, lb_log);
    test_same_runs(dir, "bad-plain", "bad-cached", 10, 2, 1e-6);
    TEST_CHECK(test_sh("grep -o 'stage [a-z]*: [0-9]* records skipped as damaged, [0-9]* references replaced' %s > %s.a && "
                       "grep -o 'stage [a-z]*: [0-9]* records skipped as damaged, [0-9]* references replaced' %s > %s.b && "
                       "cmp -s %s.a %s.b && grep -q 'references replaced' %s.a", la_log, log, lb_log, log, log, log, log) == 0,
               "the same damage counted per stage with the cache as without (%s, %s)", la_log, lb_log);

    // refusals at the start, by name
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s --set run.name=other --set model.ref_cache=%s >/dev/null "
                       "2>%s", cameo, steps, data2, dir, cache, log) == 1 && file_has(log, "does not hold the references of") &&
               file_has(log, "data2"), "a dataset the cache lacks is refused by name (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s --set run.name=nocache --set model.ref_cache=%s/none "
                       ">/dev/null 2>%s", cameo, steps, data, dir, dir, log) == 1 && file_has(log, "no reference cache at") &&
               file_has(log, "cameo cache-refs"), "a missing cache is named with the command that builds it (%s)", log);
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 0 && file_has(log, "the tiny preset's SigLIP and DINOv2") &&
               file_has(log, "13 references") && file_has(log, "verified: every entry's") && file_has(log, "/data (12 samples"),
               "inspect the cache (%s)", log);
    // a reader maps the file, not the writer's 4 TiB: it works under an address-space limit (a
    // cluster's `ulimit -v`; not in a sanitizer's build, whose shadow memory wants terabytes)
    if (!getenv("ASAN_OPTIONS"))
        TEST_CHECK(test_sh("ulimit -v 3000000 && %s inspect %s >%s 2>&1", cameo, cache, log) == 0 && file_has(log, "verified: every"),
                   "the cache read under ulimit -v 3 GB (%s)", log);
    // its benchmark runs (a smoke run; the figures go to docs/performance.md, not into a test)
    TEST_CHECK(test_sh("%s bench ref-cache --tiny --iters 2 --dir %s >%s 2>&1", cameo, dir, log) == 0 &&
               file_has(log, "## The reference cache") && file_has(log, "| lookup + to cpu in f32"), "bench ref-cache (%s)", log);
    TEST_CHECK(test_sh("OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 %s cache-refs --set data.path=%s --out %s >/dev/null 2>%s", cameo,
                       data, cache, log) == 2 && file_has(log, "run it as one process"), "several ranks refused (%s)", log);
    TEST_CHECK(test_sh("%s cache-refs --set data.path=%s >/dev/null 2>%s", cameo, data, log) == 2 && file_has(log, "--out DIR"),
               "cache-refs without a folder says how to name one");

    // through the API: entries bit for bit, the dropped reference, the fallback, the refusals
    train_config c;
    char err[2048], set1[160];
    snprintf(set1, sizeof set1, "data.path=%s", data);
    const char *sets[] = {set1};
    TEST_CHECK(train_config_load(&c, NULL, sets, 1, err, sizeof err) == 0, "%s", err);
    fstore_id id;
    TEST_CHECK(ref_cache_identity(&c, &id, err, sizeof err) == 0, "%s", err);
    ref_cache rc_;
    TEST_CHECK(ref_cache_open(&rc_, cache, &id, false, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(fstore_count(&rc_.s) == 13, "%llu entries, want 13 (12 records and the dropped reference)",
               (unsigned long long)fstore_count(&rc_.s));
    ic_models m;
    TEST_CHECK(ic_models_vision(&m, &c.model.tiny_dims, c.run.seed, NULL, NULL, 0, CM_DEV_CPU, CM_F32, err, sizeof err) == 0, "%s", err);
    int R = m.ref_size;
    size_t v = (size_t)5 * 3 * R * R;
    float *sig = calloc(4 * v, sizeof(float)), *dino = calloc(4 * v, sizeof(float));
    dataset d;
    TEST_CHECK(dataset_open(&d, data, DATASET_NO_SIZES, err, sizeof err) == 0, "%s", err);
    uint64_t mh = d.m.hash;
    dataset_close(&d);
    autograd_no_grad_push();
    for (int b0 = 0; b0 < 12; b0 += 4) {  // the build's batches: records 4 at a time in id order
        uint64_t ids[4] = {b0, b0 + 1, b0 + 2, b0 + 3};
        int64_t rid[4] = {b0, b0 + 1, b0 + 2, b0 + 3};
        views_of(data, ids, 4, R, sig, dino);
        vision_features f, g;
        step_reference_features(&m, sig, dino, 4, R, &f);
        TEST_CHECK(ref_cache_lookup(&rc_, mh, rid, rid, NULL, 4, &g, err, sizeof err) == 0, "%s", err);
        TEST_CHECK(same_features(&f, &g), "records %d..%d: the cached features are the towers' own, bit for bit", b0, b0 + 3);
        vision_features_release(&f), vision_features_release(&g);
    }
    {  // the dropped reference: zero views; a paired reference not in the cache: its target's, counted
        memset(sig, 0, v * sizeof(float)), memset(dino, 0, v * sizeof(float));
        vision_features f, g, h, k;
        step_reference_features(&m, sig, dino, 1, R, &f);
        const int64_t any[1] = {3}, gone[1] = {999}, self[1] = {2};
        const uint8_t dropped[1] = {1};
        TEST_CHECK(ref_cache_lookup(&rc_, mh, any, any, dropped, 1, &g, err, sizeof err) == 0 && same_features(&f, &g),
                   "a dropped reference reads the features of zero views: %s", err);
        TEST_CHECK(ref_cache_lookup(&rc_, mh, gone, self, NULL, 1, &h, err, sizeof err) == 0 &&
                   ref_cache_lookup(&rc_, mh, self, self, NULL, 1, &k, err, sizeof err) == 0 && same_features(&h, &k) &&
                   rc_.fallbacks == 1, "a reference not in the cache falls back to its target's (%llu counted): %s",
                   (unsigned long long)rc_.fallbacks, err);
        vision_features_release(&h);
        TEST_CHECK(ref_cache_lookup(&rc_, mh, gone, gone, NULL, 1, &h, err, sizeof err) != 0 && strstr(err, "holds no entry for") &&
                   strstr(err, "reference 999") && strstr(err, "cameo cache-refs"), "a reference in neither: %s", err);
        TEST_CHECK(ref_cache_lookup(&rc_, mh ^ 1, self, self, NULL, 1, &h, err, sizeof err) != 0 && strstr(err, "holds no entry for"),
                   "another dataset's ids: %s", err);
        vision_features_release(&f), vision_features_release(&g), vision_features_release(&k);
    }
    autograd_no_grad_pop();
    ref_cache_close(&rc_);
    ic_models_free(&m);
    free(sig), free(dino);
    // another run.seed: other tiny towers
    train_config c2 = c;
    c2.run.seed = c.run.seed + 1;
    fstore_id id2;
    TEST_CHECK(ref_cache_identity(&c2, &id2, err, sizeof err) == 0 && id2.fingerprint != id.fingerprint, "seed changes the identity");
    TEST_CHECK(ref_cache_open(&rc_, cache, &id2, false, err, sizeof err) != 0 && strstr(err, "holds the outputs of") &&
               strstr(err, "run.seed 1") && strstr(err, "model.ref_cache"), "other towers: %s", err);

    // an entry's bytes changed on disk: its checksum names it; inspect says so; --repair writes it anew
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    TEST_CHECK(!mdb_env_create(&env) && !mdb_env_set_mapsize(env, (size_t)1 << 40) && !mdb_env_open(env, cache, 0, 0644) &&
               !mdb_txn_begin(env, NULL, 0, &txn) && !mdb_dbi_open(txn, NULL, 0, &dbi) && !mdb_cursor_open(txn, dbi, &cur), "lmdb");
    MDB_val k, val;
    bool changed = false;
    while (!changed && !mdb_cursor_get(cur, &k, &val, MDB_NEXT))
        if (k.mv_size == 16 && ((const uint8_t *)k.mv_data)[15] != 0xff) {  // a record's entry, not the dropped reference's
            uint8_t *copy = malloc(val.mv_size);
            memcpy(copy, val.mv_data, val.mv_size);
            copy[32 + 16 + 9] ^= 0x40;
            MDB_val nv = {val.mv_size, copy};
            changed = !mdb_put(txn, dbi, &k, &nv, 0);
            free(copy);
        }
    mdb_cursor_close(cur);
    TEST_CHECK(changed && !mdb_txn_commit(txn), "an entry changed");
    mdb_env_close(env);
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 1 && file_has(log, "1 of 13 entries DAMAGED") &&
               file_has(log, "fails its checksum") && file_has(log, "cache-refs CONFIG --out"), "inspect a damaged cache (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/damaged --set model.ref_cache=%s >/dev/null 2>%s", cameo,
                       steps, data, dir, cache, log) != 0 && file_has(log, "fails its checksum"), "training stops on it, naming it (%s)", log);
    TEST_CHECK(test_sh("%s cache-refs --set data.path=%s --out %s --repair >%s 2>&1", cameo, data, cache, log) == 0 &&
               file_has(log, ": 1 references added"), "cache-refs --repair rewrites the damaged entry (%s)", log);
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 0 && file_has(log, "verified: every entry's"),
               "after --repair the cache verifies (%s)", log);

    if (!getenv("KEEP")) test_sh("rm -rf %s", dir);
    return test_summary("e2e_ref_cache");
}
