// e2e_latent_cache.c — the latent cache (model.latent_cache, `cameo cache-latents`), as a user runs it
// and through its API:
//   - `cameo cache-latents` stores every record of the dataset in each bucket a stage puts it in (the
//     tiny config's stages at 64 and 96 px: two entries a record), and a second run adds none; a run
//     killed in the middle (SIGKILL after its first batches) goes on from what it committed;
//   - each entry is bit for bit the VAE's mean and clamped logvar of the target the loader cuts from
//     the centre of the record's bucket resize, flipped and not;
//   - `cameo train` with the cache (the loader cuts no target, the VAE runs on none) follows the run
//     without it with data.random_crop: false: every logged loss and validation loss within 1e-6
//     relative, the adapter within 1e-4 relative RMS, with train.vae_sample on (the draw from the
//     stored moments with the step's noise) and off (the mean). The bound can fail: the random crop's
//     targets move the losses past it;
//   - stopped during a validation and resumed, the run with the cache is the uninterrupted one, byte
//     for byte;
//   - damaged records: the build skips them and the loader skips them: the same losses;
//   - a stage's resolution changed, or data.random_flip turned on: the run is refused, naming the
//     dataset and the command; the build run again adds the new buckets' (the flipped targets')
//     latents, and the run goes; with flips, the run follows its run without the cache too;
//   - refused with a message naming the thing: model.latent_cache with data.random_crop true (in the
//     config, and by `cameo cache-latents`), a missing cache, a cache of another VAE (another
//     run.seed for the tiny preset), a target not in it, an entry whose bytes were changed;
//   - `cameo inspect CACHE` lists and verifies it; `cameo cache-latents --repair` rewrites a damaged entry.
// The store under it (train/feature_store.c) is the text cache's; its other checks: e2e_text_cache.c.
// Usage: e2e_latent_cache PATH/TO/cameo   (registered by tests/train/extra.cmake)
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "data/dataset.h"
#include "data/preprocess.h"
#include "e2e_helpers.h"
#include "testutil.h"
#include "train/config.h"
#include "train/latent_cache.h"
#include "train/models.h"

static const char *cameo;
static char dir[64];

// the largest relative difference of runs a and b's logged losses
static double loss_gap(const char *a, const char *b) {
    double la[32], lb[32], worst = 0;
    int n = test_run_losses(dir, a, la, 32);
    TEST_CHECK(n > 0 && test_run_losses(dir, b, lb, 32) == n, "losses of %s and %s", a, b);
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(lb[i] - la[i]) / fabs(la[i]));
    return worst;
}

// the target of record id in the W x H bucket as the loader cuts it with data.random_crop false,
// flipped or not: [3, H, W]
static void target_of(const char *data, uint64_t id, int W, int H, int flip, float *dst) {
    dataset d;
    char err[1024];
    TEST_CHECK(dataset_open(&d, data, DATASET_NO_SIZES, err, sizeof err) == 0, "%s", err);
    dataset_reader rd;
    TEST_CHECK(dataset_reader_init(&rd, &d) == 0, "reader");
    preprocess_scratch ps = {0};
    record_view rec;
    int32_t crop[4];
    TEST_CHECK(dataset_get(&rd, id, &rec, err, sizeof err) == DS_OK &&
               !image_webp_decode_into(rec.image, rec.image_len, (rec.flags & RECORD_FLAG_ALPHA) != 0, &ps.dec, &ps.dec_cap) &&
               !preprocess_load(&ps.dec, &ps) && !preprocess_target(&ps, rec.width, rec.height, W, H, 0.5, 0.5, flip, dst, crop),
               "record %llu: %s", (unsigned long long)id, err);
    preprocess_scratch_free(&ps);
    dataset_reader_free(&rd);
    dataset_close(&d);
}

int main(int argc, char **argv) {
    if (argc < 2) test_skip("usage: e2e_latent_cache PATH/TO/cameo");
    cameo = argv[1];
    snprintf(dir, sizeof dir, "/tmp/cameo-lc-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    // the runs' settings (--quiet: no progress lines), and the same for the builds, which then say what they do
    const char *steps = "--set stages.0.steps=4 --set stages.1.steps=3 --set stages.2.steps=3 --set run.log_every=1 --quiet "
                        "--set validation.every=5 --set validation.samples=4 --set data.random_crop=false";
    const char *csteps = "--set stages.0.steps=4 --set stages.1.steps=3 --set stages.2.steps=3 --set validation.every=5 "
                         "--set validation.samples=4 --set data.random_crop=false";
    char data[128], bad[128], cache[128], cache1[128], cache_bad[128], log[128];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(cache1, sizeof cache1, "%s/cache1", dir);
    snprintf(cache_bad, sizeof cache_bad, "%s/cache-bad", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    TEST_CHECK(test_sh("%s data demo --out %s --characters 4 --per-character 3 --size 64 >/dev/null 2>&1", cameo, data) == 0, "demo data");

    // a build killed after its first batches (CAMEO_FAULT_CACHE_LATENTS_KILL=2: SIGKILL itself once
    // two batches of 4 are committed), then run again: it goes on from there
    int rc = test_sh("CAMEO_FAULT_CACHE_LATENTS_KILL=2 %s cache-latents %s --set data.path=%s --out %s --batch 4 >%s 2>&1", cameo, csteps,
                     data, cache, log);
    TEST_CHECK(rc != 0, "the killed build exits non-zero (got %d)", rc);
    TEST_CHECK(test_sh("%s cache-latents %s --set data.path=%s --out %s --batch 4 >%s 2>&1", cameo, csteps, data, cache, log) == 0 &&
               file_has(log, "MiB a target at the largest stage's resolution;") && file_has(log, "each target cut from the centre"),
               "cache-latents (%s)", log);
    char want[200];
    snprintf(want, sizeof want, "cache %s: 16 targets added (12 records read", cache);
    TEST_CHECK(file_has(log, want), "the rerun adds the 16 of 24 targets the killed build had not committed (%s)", log);
    TEST_CHECK(test_sh("%s cache-latents %s --set data.path=%s --out %s >%s 2>&1", cameo, csteps, data, cache, log) == 0 &&
               file_has(log, ": 0 targets added") && file_has(log, "1 already covered"), "a third run adds nothing (%s)", log);

    // training with the cache follows training without it (posterior draws, then the mean); the
    // random crop's targets move the losses far past the bound
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/plain >/dev/null 2>%s", cameo, steps, data, dir, log) == 0,
               "train without the cache (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/cached --set model.latent_cache=%s >/dev/null 2>%s", cameo,
                       steps, data, dir, cache, log) == 0 && file_has(log, "the VAE runs on no training target and the loader cuts none"),
               "train with the cache (%s)", log);
    test_same_runs(dir, "plain", "cached", 10, 2, 1e-6);
    double diff, amax, rel;
    char pa[160], pb[160];
    snprintf(pa, sizeof pa, "%s/plain/tiny/adapter.safetensors", dir);
    snprintf(pb, sizeof pb, "%s/cached/tiny/adapter.safetensors", dir);
    adapter_diff(pa, pb, &diff, &amax, &rel);
    printf("adapter after 10 steps, with the cache against without: relative RMS %.3g, max |diff| %.3g, max |w| %.3g\n", rel, diff, amax);
    TEST_CHECK(rel <= 1e-4, "adapter relative RMS difference %.3g > 1e-4", rel);
    // stopped (SIGTERM during the validation after step 5: it checkpoints and exits) and resumed, the
    // run with the cache is the run that was not stopped: the same losses, the same adapter bytes
    test_sh("CAMEO_FAULT_SIGNAL=0:5 %s train %s --set data.path=%s --set run.out_dir=%s/stopped --set model.latent_cache=%s >/dev/null "
            "2>%s", cameo, steps, data, dir, cache, log);
    TEST_CHECK(file_has(log, "stopped by signal 15 at step 5") &&
               test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/stopped --set model.latent_cache=%s --resume auto >/dev/null "
                       "2>%s", cameo, steps, data, dir, cache, log) == 0, "stopped at step 5, then resumed (%s)", log);
    test_same_runs(dir, "cached", "stopped", 10, 2, 0);
    TEST_CHECK(test_sh("cmp -s %s/cached/tiny/adapter.safetensors %s/stopped/tiny/adapter.safetensors", dir, dir) == 0,
               "the resumed run's adapter is the uninterrupted run's, byte for byte");
    TEST_CHECK(test_sh("%s train %s --set train.vae_sample=false --set data.path=%s --set run.out_dir=%s/mean >/dev/null 2>%s && "
                       "%s train %s --set train.vae_sample=false --set data.path=%s --set run.out_dir=%s/mean-cached "
                       "--set model.latent_cache=%s >/dev/null 2>%s", cameo, steps, data, dir, log, cameo, steps, data, dir, cache, log) == 0,
               "train on the latents' mean, without and with the cache (%s)", log);
    test_same_runs(dir, "mean", "mean-cached", 10, 2, 1e-6);
    TEST_CHECK(test_sh("%s train %s --set data.random_crop=true --set data.path=%s --set run.out_dir=%s/crop >/dev/null 2>%s", cameo, steps,
                       data, dir, log) == 0, "train with random crops (%s)", log);
    double worst = loss_gap("plain", "crop");
    printf("random crops against centre crops: largest relative loss difference %.3g\n", worst);
    TEST_CHECK(worst > 1e-4, "the targets move the losses (%.3g): the 1e-6 bound above can fail", worst);

    // damaged records: skipped by the build and by the loader: the same losses
    TEST_CHECK(test_sh("cp -r %s %s", data, bad) == 0 && test_damage_records(bad, 4) > 0, "damaged copy");
    TEST_CHECK(test_sh("%s cache-latents %s --set data.path=%s --out %s >%s 2>&1", cameo, csteps, bad, cache_bad, log) == 0 &&
               file_has(log, "skipped as damaged") && !file_has(log, " 0 skipped as damaged"), "cache-latents over damaged records (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/bad-plain >/dev/null 2>%s && "
                       "%s train %s --set data.path=%s --set run.out_dir=%s/bad-cached --set model.latent_cache=%s >/dev/null 2>%s", cameo,
                       steps, bad, dir, log, cameo, steps, bad, dir, cache_bad, log) == 0, "train over damaged records (%s)", log);
    test_same_runs(dir, "bad-plain", "bad-cached", 10, 2, 1e-6);

    // a stage's resolution changed: refused by name; the build adds the new buckets; then it runs
    TEST_CHECK(test_sh("%s train %s --set stages.2.resolution=128 --set data.path=%s --set run.out_dir=%s/res --set model.latent_cache=%s "
                       ">/dev/null 2>%s", cameo, steps, data, dir, cache, log) == 1 && file_has(log, "does not hold the latents of") &&
               file_has(log, "cameo cache-latents"), "a stage's new buckets are refused by name (%s)", log);
    TEST_CHECK(test_sh("%s cache-latents %s --set stages.2.resolution=128 --set data.path=%s --out %s >%s 2>&1", cameo, csteps, data, cache,
                       log) == 0 && file_has(log, ": 12 targets added"), "the build adds the 128 px buckets' latents (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set stages.2.resolution=128 --set data.path=%s --set run.out_dir=%s/res --set model.latent_cache=%s "
                       ">/dev/null 2>%s", cameo, steps, data, dir, cache, log) == 0, "then the run goes (%s)", log);

    // data.random_flip turned on: refused by name; the build adds the flipped targets; the run
    // follows its run without the cache, and the flips move the losses past the bound
    TEST_CHECK(test_sh("%s train %s --set data.random_flip=true --set data.path=%s --set run.out_dir=%s/flip-cached "
                       "--set model.latent_cache=%s >/dev/null 2>%s", cameo, steps, data, dir, cache, log) == 1 &&
               file_has(log, "flipped and not"), "flips without flipped latents are refused by name (%s)", log);
    TEST_CHECK(test_sh("%s cache-latents %s --set data.random_flip=true --set data.path=%s --out %s >%s 2>&1", cameo, csteps, data, cache,
                       log) == 0 && file_has(log, ": 24 targets added"), "the build adds the 24 flipped targets (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.random_flip=true --set data.path=%s --set run.out_dir=%s/flip >/dev/null 2>%s && "
                       "%s train %s --set data.random_flip=true --set data.path=%s --set run.out_dir=%s/flip-cached "
                       "--set model.latent_cache=%s >/dev/null 2>%s", cameo, steps, data, dir, log, cameo, steps, data, dir, cache, log) == 0,
               "train with flips, without and with the cache (%s)", log);
    test_same_runs(dir, "flip", "flip-cached", 10, 2, 1e-6);
    worst = loss_gap("plain", "flip");
    printf("flips against none: largest relative loss difference %.3g\n", worst);
    TEST_CHECK(worst > 1e-4, "the flips move the losses (%.3g): the flipped entries are read", worst);

    // refusals at the start, by name
    TEST_CHECK(test_sh("%s train --set data.path=%s --set run.out_dir=%s --set run.name=crop --set model.latent_cache=%s >/dev/null 2>%s",
                       cameo, data, dir, cache, log) == 1 && file_has(log, "model.latent_cache: needs data.random_crop: false"),
               "a latent cache with random crops is refused (%s)", log);
    TEST_CHECK(test_sh("%s cache-latents --set data.path=%s --out %s/x >/dev/null 2>%s", cameo, data, dir, log) == 1 &&
               file_has(log, "data.random_crop is true"), "cache-latents refuses random crops (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s --set run.name=nocache --set model.latent_cache=%s/none "
                       ">/dev/null 2>%s", cameo, steps, data, dir, dir, log) == 1 && file_has(log, "no latent cache at") &&
               file_has(log, "cameo cache-latents"), "a missing cache is named with the command that builds it (%s)", log);
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 0 && file_has(log, "the tiny preset's VAE") &&
               file_has(log, "60 targets") && file_has(log, "verified: every entry's") && file_has(log, "32 channels (mean, logvar)"),
               "inspect the cache (%s)", log);

    // through the API: each entry bit for bit the VAE's moments of the loader's centre cut (a build
    // of one target a batch, each through the VAE alone, as here)
    TEST_CHECK(test_sh("%s cache-latents %s --set data.random_flip=true --set data.path=%s --out %s --batch 1 --quiet >%s 2>&1", cameo,
                       csteps, data, cache1, log) == 0, "cache-latents --batch 1 with flips (%s)", log);
    train_config c;
    char err[2048], set1[160];
    snprintf(set1, sizeof set1, "data.path=%s", data);
    const char *sets[] = {set1, "data.random_crop=false", "stages.0.steps=4", "stages.1.steps=3", "stages.2.steps=3", "data.random_flip=true"};
    TEST_CHECK(train_config_load(&c, NULL, sets, 6, err, sizeof err) == 0, "%s", err);
    fstore_id id;
    TEST_CHECK(latent_cache_identity(&c, &id, err, sizeof err) == 0, "%s", err);
    latent_cache lc;
    TEST_CHECK(latent_cache_open(&lc, cache1, &id, false, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(fstore_count(&lc.s) == 48, "%llu entries, want 48 (12 records in 2 buckets, flipped and not)",
               (unsigned long long)fstore_count(&lc.s));
    ic_models m;
    TEST_CHECK(ic_models_vae(&m, &c.model.tiny_dims, c.run.seed, NULL, CM_DEV_CPU, CM_F32, err, sizeof err) == 0, "%s", err);
    dataset d;
    TEST_CHECK(dataset_open(&d, data, 0, err, sizeof err) == 0, "%s", err);
    latent_tables *tb = malloc(sizeof *tb);
    latent_tables_of(&c, data, tb);
    TEST_CHECK(tb->n == 2 && tb->flips == 2, "two bucket tables (64 and 96 px), flipped and not: got %d, %d", tb->n, tb->flips);
    autograd_no_grad_push();
    int checked = 0;
    for (int t = 0; t < tb->n; t++)
        for (uint64_t r = 0; r < 2 * d.m.samples; r++) {  // each record, then each flipped
            const uint64_t id = r % d.m.samples;
            const uint8_t flip[1] = {r >= d.m.samples};
            const int *b = tb->bk[t][buckets_nearest((const int(*)[2])tb->bk[t], tb->nb[t], d.sizes[2 * id], d.sizes[2 * id + 1])];
            float *px = malloc(sizeof(float) * 3 * (size_t)b[0] * (size_t)b[1]);
            target_of(data, id, b[0], b[1], flip[0], px);
            cm_tensor *x = tensor_from_host(CM_F32, 4, (int64_t[]){1, 3, b[1], b[0]}, px, CM_DEV_CPU), *lv = NULL;
            cm_tensor *mean = vae_encode(&m.vae, x, &lv), *mom = op_concat(2, (cm_tensor *[]){mean, lv}, 1), *got;
            const int64_t ids[1] = {(int64_t)id};
            TEST_CHECK(latent_cache_lookup(&lc, d.m.hash, ids, flip, 1, b[0], b[1], &got, err, sizeof err) == 0, "%s", err);
            TEST_CHECK(got && same_bits(mom, got), "record %llu in %dx%d%s: the cached moments are the VAE's own, bit for bit",
                       (unsigned long long)id, b[0], b[1], flip[0] ? " flipped" : "");
            checked++;
            cm_tensor *tmp[] = {x, lv, mean, mom, got};
            for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tensor_release(tmp[i]);
            free(px);
        }
    TEST_CHECK(checked == 48, "%d entries compared", checked);
    {  // a target not in the cache, another bucket, another dataset: named
        cm_tensor *got;
        const int64_t gone[1] = {999}, one[1] = {1};
        TEST_CHECK(latent_cache_lookup(&lc, d.m.hash, gone, NULL, 1, 64, 64, &got, err, sizeof err) != 0 && strstr(err, "holds no entry for") &&
                   strstr(err, "record 999") && strstr(err, "cameo cache-latents"), "a target not in the cache: %s", err);
        TEST_CHECK(latent_cache_lookup(&lc, d.m.hash, one, NULL, 1, 48, 80, &got, err, sizeof err) != 0 && strstr(err, "the 48x80 target"),
                   "another bucket: %s", err);
        TEST_CHECK(latent_cache_lookup(&lc, d.m.hash ^ 1, one, NULL, 1, 64, 64, &got, err, sizeof err) != 0 && strstr(err, "holds no entry"),
                   "another dataset's ids: %s", err);
    }
    autograd_no_grad_pop();
    free(tb);
    dataset_close(&d);
    latent_cache_close(&lc);
    ic_models_free(&m);
    // another run.seed: another tiny VAE
    train_config c2 = c;
    c2.run.seed = c.run.seed + 1;
    fstore_id id2;
    TEST_CHECK(latent_cache_identity(&c2, &id2, err, sizeof err) == 0 && id2.fingerprint != id.fingerprint, "seed changes the identity");
    TEST_CHECK(latent_cache_open(&lc, cache, &id2, false, err, sizeof err) != 0 && strstr(err, "holds the outputs of") &&
               strstr(err, "run.seed 1") && strstr(err, "model.latent_cache"), "another VAE: %s", err);

    // an entry's bytes changed on disk: its checksum names it; inspect says so; --repair writes it anew
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    TEST_CHECK(!mdb_env_create(&env) && !mdb_env_set_mapsize(env, (size_t)1 << 40) && !mdb_env_open(env, cache, 0, 0644) &&
               !mdb_txn_begin(env, NULL, 0, &txn) && !mdb_dbi_open(txn, NULL, 0, &dbi) && !mdb_cursor_open(txn, dbi, &cur), "lmdb");
    MDB_val k, val;
    bool changed = false;
    uint8_t name[21] = {0};  // the changed entry's: manifest hash, record id, W, H (little-endian), flipped
    while (!changed && !mdb_cursor_get(cur, &k, &val, MDB_NEXT))
        if (k.mv_size == 16) {
            memcpy(name, (const uint8_t *)val.mv_data + 32, 21);
            uint8_t *copy = malloc(val.mv_size);
            memcpy(copy, val.mv_data, val.mv_size);
            copy[32 + 21 + 9] ^= 0x40;
            MDB_val nv = {val.mv_size, copy};
            changed = !mdb_put(txn, dbi, &k, &nv, 0);
            free(copy);
        }
    mdb_cursor_close(cur);
    TEST_CHECK(changed && !mdb_txn_commit(txn), "an entry changed");
    mdb_env_close(env);
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 1 && file_has(log, "1 of 60 entries DAMAGED") &&
               file_has(log, "fails its checksum") && file_has(log, "cache-latents CONFIG --out"), "inspect a damaged cache (%s)", log);
    {  // a step's read of it stops with the same message
        uint64_t mh = 0, rid = 0;
        for (int i = 7; i >= 0; i--) mh = mh << 8 | name[i], rid = rid << 8 | name[8 + i];
        int W = name[16] | name[17] << 8, H = name[18] | name[19] << 8;
        const int64_t ids[1] = {(int64_t)rid};
        cm_tensor *got = NULL;
        TEST_CHECK(latent_cache_open(&lc, cache, &id, false, err, sizeof err) == 0, "%s", err);
        const uint8_t flip[1] = {name[20]};
        TEST_CHECK(latent_cache_lookup(&lc, mh, ids, flip, 1, W, H, &got, err, sizeof err) != 0 && strstr(err, "fails its checksum") &&
                   strstr(err, "target of record"), "the changed entry's read names it: %s", err);
        latent_cache_close(&lc);
    }
    TEST_CHECK(test_sh("%s cache-latents %s --set data.path=%s --out %s --repair >%s 2>&1", cameo, csteps, data, cache, log) == 0 &&
               test_sh("%s cache-latents %s --set stages.2.resolution=128 --set data.path=%s --out %s --repair >>%s 2>&1", cameo, csteps,
                       data, cache, log) == 0 &&
               test_sh("%s cache-latents %s --set data.random_flip=true --set data.path=%s --out %s --repair >>%s 2>&1", cameo, csteps,
                       data, cache, log) == 0 && file_has(log, ": 1 targets added"), "cache-latents --repair rewrites the damaged entry (%s)",
               log);
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 0 && file_has(log, "verified: every entry's"),
               "after --repair the cache verifies (%s)", log);

    if (!getenv("KEEP")) test_sh("rm -rf %s", dir);
    return test_summary("e2e_latent_cache");
}
