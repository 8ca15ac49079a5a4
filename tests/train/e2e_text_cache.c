// e2e_text_cache.c — the text cache (model.text_cache, `cameo cache-text`), as a user runs it and
// through its API:
//   - `cameo cache-text` stores every distinct caption of the dataset and "" (caption dropout), and a
//     second run adds none; a run killed in the middle (SIGKILL after its first batches) goes on
//     from what it committed and ends with the same entries;
//   - each stored row is bit for bit what the same encoders give for the same batch of captions;
//     bf16 entries (a GPU build's) read back as bf16, bit for bit, and as f32 beside an f32 entry;
//   - `cameo train` with the cache (no text encoders loaded) follows the run without it: every
//     logged loss and validation loss within 1e-6 relative, the adapter within 1e-4 relative RMS. Not bit for bit: a
//     caption's T5 rows differ in the last bits with the batch it is encoded in (OpenBLAS takes
//     another path for other sizes; 1.3e-6 at most in the tiny T5, threads or not), and AdamW's
//     normalised step turns such differences in near-zero gradients into whole steps (measured:
//     losses equal to 9 digits; the exported bf16 adapter 1.2e-5 relative RMS after 10 steps, its
//     largest difference one bf16 step, 4.9e-4 near 0.1). Wrong rows move
//     the losses by about 1e-3 relative (every caption dropped: 6e-4 to 3e-3), 1000x the bound;
//   - refused with a message naming the thing: a dataset the cache does not cover, an evaluation
//     prompt it lacks (which cache-text with eval on then adds), a missing cache, a cache of other
//     encoders (another run.seed for the tiny preset), a caption not in it, an entry whose bytes were
//     changed (its checksum), a folder that is not a cache;
//   - `cameo inspect CACHE` lists it and verifies every entry (exit 1 and the entry named once one is
//     damaged); `cameo cache-text --repair` then writes that entry anew;
//   - `cameo bench text-cache --tiny` prints its table (a smoke run).
// Usage: e2e_text_cache PATH/TO/cameo   (registered by tests/train/extra.cmake)
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "data/dataset.h"
#include "models/safetensors.h"
#include "e2e_helpers.h"
#include "testutil.h"
#include "train/config.h"
#include "train/models.h"
#include "train/text_cache.h"

static const char *cameo;
static char dir[64];

// the dataset's distinct captions in the order a build meets them (record order), "" left out
static char **captions_of(const char *data, int *n) {
    dataset d;
    char err[1024];
    TEST_CHECK(dataset_open(&d, data, DATASET_NO_SIZES, err, sizeof err) == 0, "%s", err);
    dataset_reader rd;
    TEST_CHECK(dataset_reader_init(&rd, &d) == 0, "reader");
    char **out = NULL;
    int k = 0;
    for (uint64_t id = 0; id < d.m.samples; id++) {
        record_view rec;
        if (dataset_get(&rd, id, &rec, err, sizeof err) != DS_OK || dataset_get_meta(&rd, &rec, err, sizeof err) != DS_OK) continue;
        for (int c = 0; c < rd.meta.n_captions; c++) {
            bool seen = !rd.meta.captions[c][0];
            for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j], rd.meta.captions[c]);
            if (seen) continue;
            out = realloc(out, (size_t)(k + 1) * sizeof *out);
            out[k++] = strdup(rd.meta.captions[c]);
        }
    }
    dataset_reader_free(&rd);
    dataset_close(&d);
    *n = k;
    return out;
}

static bool same_tensor(const cm_tensor *a, const cm_tensor *b) {
    int64_t n = tensor_numel(a);
    if (n != tensor_numel(b)) return false;
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
    tensor_copy_to_host(a, CM_F32, x);
    tensor_copy_to_host(b, CM_F32, y);
    bool same = !memcmp(x, y, (size_t)n * 4);
    free(x), free(y);
    return same;
}

int main(int argc, char **argv) {
    if (argc < 2) test_skip("usage: e2e_text_cache PATH/TO/cameo");
    cameo = argv[1];
    snprintf(dir, sizeof dir, "/tmp/cameo-tc-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *steps = "--set stages.0.steps=4 --set stages.1.steps=3 --set stages.2.steps=3 --set run.log_every=1 --quiet "
                        "--set validation.every=5 --set validation.samples=4";
    char data[128], data2[128], cache[128], log[128];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(data2, sizeof data2, "%s/data2", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    TEST_CHECK(test_sh("%s data demo --out %s --characters 4 --per-character 3 --size 64 >/dev/null 2>&1", cameo, data) == 0, "demo data");
    TEST_CHECK(test_sh("%s data demo --out %s --characters 3 --per-character 3 --size 64 --seed 5 >/dev/null 2>&1", cameo, data2) == 0,
               "second demo data");

    // a build killed after its first batches (CAMEO_FAULT_CACHE_TEXT_KILL=3: SIGKILL itself once
    // three are committed: "" alone, then captions 0-3 and 4-7), then run again: it goes on from there
    int n_caps;
    char **caps = captions_of(data, &n_caps);
    TEST_CHECK(n_caps > 8, "the demo data has %d distinct captions", n_caps);
    int rc = test_sh("CAMEO_FAULT_CACHE_TEXT_KILL=3 %s cache-text --set data.path=%s --out %s --batch 4 --quiet >%s 2>&1", cameo, data,
                cache, log);
    TEST_CHECK(rc != 0, "the killed build exits non-zero (got %d)", rc);
    TEST_CHECK(test_sh("%s cache-text --set data.path=%s --out %s --batch 4 >%s 2>&1", cameo, data, cache, log) == 0 &&
               file_has(log, "0.00 MiB a caption;") && file_has(log, "GiB free there: room for about"), "cache-text (%s)", log);
    char want[200];
    snprintf(want, sizeof want, "cache %s: %d captions added", cache, n_caps - 8);
    TEST_CHECK(file_has(log, want), "the rerun adds the %d captions the killed build had not committed (%s)", n_caps - 8, log);
    TEST_CHECK(test_sh("%s cache-text --set data.path=%s --out %s --batch 4 >%s 2>&1", cameo, data, cache, log) == 0 &&
               file_has(log, "0 captions added") && file_has(log, "1 already covered"), "a third run adds nothing");

    // training with the cache follows training without it
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/plain >/dev/null 2>%s", cameo, steps, data, dir,
                  log) == 0, "train without the cache");
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s/cached --set model.text_cache=%s >/dev/null 2>%s",
                  cameo, steps, data, dir, cache, log) == 0 && file_has(log, "the text encoders are not loaded"),
               "train with the cache (%s)", log);
    double la[16], lb[16];
    int na = test_run_losses(dir, "plain", la, 16), nb = test_run_losses(dir, "cached", lb, 16);
    TEST_CHECK(na == 10 && nb == 10, "10 logged losses each (%d, %d)", na, nb);
    for (int i = 0; i < na && i < nb; i++) TEST_NEAR(lb[i], la[i], 0, 1e-6, "loss");
    int64_t vsa[4], vsb[4];
    double va[4], vb[4];
    na = test_run_validation(dir, "plain", vsa, va, 4), nb = test_run_validation(dir, "cached", vsb, vb, 4);
    TEST_CHECK(na == 2 && nb == 2, "2 validations each (%d, %d)", na, nb);
    for (int i = 0; i < na && i < nb; i++) TEST_NEAR(vb[i], va[i], 0, 1e-6, "validation loss");
    double diff, amax, rel;
    char pa[160], pb[160];
    snprintf(pa, sizeof pa, "%s/plain/tiny/adapter.safetensors", dir);
    snprintf(pb, sizeof pb, "%s/cached/tiny/adapter.safetensors", dir);
    adapter_diff(pa, pb, &diff, &amax, &rel);
    printf("adapter after 10 steps, with the cache against without: relative RMS %.3g, max |diff| %.3g, max |w| %.3g\n", rel, diff,
           amax);
    TEST_CHECK(rel <= 1e-4, "adapter relative RMS difference %.3g > 1e-4", rel);
    // a dataset the cache does not cover
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s --set run.name=other --set model.text_cache=%s >/dev/null "
                  "2>%s", cameo, steps, data2, dir, cache, log) == 1 && file_has(log, "does not hold the captions of") &&
               file_has(log, "data2"), "a dataset the cache lacks is refused by name (%s)", log);
    TEST_CHECK(test_sh("%s train %s --set data.path=%s --set run.out_dir=%s --set run.name=nocache --set model.text_cache=%s/none "
                  ">/dev/null 2>%s", cameo, steps, data, dir, dir, log) == 1 && file_has(log, "no text cache at") &&
               file_has(log, "cameo cache-text"), "a missing cache is named with the command that builds it");

    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 0 && file_has(log, "the tiny preset's T5 and CLIP") &&
               file_has(log, "verified: every entry's") && file_has(log, "/data (12 samples"), "inspect the cache (%s)", log);
    // an evaluation prompt the cache lacks is named at the start; cache-text with eval on adds it
    char pairs[160], ref[4096];
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    TEST_CHECK(realpath("docs/examples/eval/ref-a.png", ref) != NULL, "docs/examples/eval/ref-a.png");
    FILE *pf = fopen(pairs, "w");
    TEST_CHECK(pf && fprintf(pf, "{\"ref\": \"%s\", \"prompt\": \"a prompt no record has\"}\n", ref) > 0 && !fclose(pf), "pairs");
    const char *ev = "--set eval.every=100 --set eval.steps=1 --set eval.seeds=1";
    TEST_CHECK(test_sh("%s train %s %s --set eval.pairs=%s --set data.path=%s --set run.out_dir=%s --set run.name=ev --set model.text_cache=%s "
                  ">/dev/null 2>%s", cameo, steps, ev, pairs, data, dir, cache, log) == 1 && file_has(log, "no entry for the prompt of") &&
               file_has(log, "line 1"), "an evaluation prompt not in the cache is named at the start (%s)", log);
    TEST_CHECK(test_sh("%s cache-text %s --set eval.pairs=%s --set data.path=%s --out %s >%s 2>&1", cameo, ev, pairs, data, cache, log) == 0 &&
               file_has(log, ": 1 captions added"), "cache-text adds the evaluation's prompt (%s)", log);
    // its benchmark runs (a smoke run; the figures go to docs/performance.md, not into a test)
    TEST_CHECK(test_sh("%s bench text-cache --tiny --iters 2 --dir %s >%s 2>&1", cameo, dir, log) == 0 &&
               file_has(log, "| lookup: LMDB read, CRC-32C") && file_has(log, "| memcpy of the same bytes"), "bench text-cache (%s)", log);
    // under a launcher of several ranks it refuses (each would encode every caption)
    TEST_CHECK(test_sh("OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 %s cache-text --set data.path=%s --out %s >/dev/null 2>%s", cameo,
                       data, cache, log) == 2 && file_has(log, "run it as one process"), "several ranks refused (%s)", log);
    // no folder named
    TEST_CHECK(test_sh("%s cache-text --set data.path=%s >/dev/null 2>%s", cameo, data, log) == 2 && file_has(log, "--out DIR"),
               "cache-text without a folder says how to name one");

    // through the API: rows bit for bit, and the refusals
    train_config c;
    char err[2048], set1[160];
    snprintf(set1, sizeof set1, "data.path=%s", data);
    const char *sets[] = {set1};
    TEST_CHECK(train_config_load(&c, NULL, sets, 1, err, sizeof err) == 0, "%s", err);
    text_cache_id id;
    TEST_CHECK(text_cache_identity(&c, &id, err, sizeof err) == 0, "%s", err);
    text_cache tc;
    TEST_CHECK(text_cache_open(&tc, cache, &id, false, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(text_cache_count(&tc) == (uint64_t)n_caps + 2, "%llu entries, want %d (the captions, \"\" and the prompt)",
               (unsigned long long)text_cache_count(&tc), n_caps + 2);
    TEST_CHECK(text_cache_has(&tc, "") && !text_cache_has(&tc, "a caption of no record"), "has");
    ic_text t;
    TEST_CHECK(ic_models_text(&t, &c.model.tiny_dims, c.run.seed, NULL, NULL, 0, IC_TEXT_MODEL, CM_DEV_CPU, CM_F32, err, sizeof err) == 0,
               "%s", err);
    // the batches were those of one uninterrupted build ("" alone, then captions 4 at a time in record
    // order): the killed build committed whole batches, and its rerun skips them and batches the rest
    for (int b0 = 0; b0 < n_caps; b0 += 4) {
        int B = n_caps - b0 < 4 ? n_caps - b0 : 4;
        cm_tensor *h, *p, *hc, *pc;
        ic_text_encode(&t, (const char *const *)caps + b0, B, CM_DEV_CPU, CM_F32, &h, &p);
        TEST_CHECK(text_cache_lookup(&tc, (const char *const *)caps + b0, B, &hc, &pc, err, sizeof err) == 0, "%s", err);
        TEST_CHECK(same_tensor(h, hc) && same_tensor(p, pc), "captions %d..%d: the cached rows are the encoders' own, bit for bit",
                   b0, b0 + B - 1);
        tensor_release(h), tensor_release(p), tensor_release(hc), tensor_release(pc);
    }
    cm_tensor *h, *p;
    const char *miss[] = {caps[0], "a caption of no record"};
    TEST_CHECK(text_cache_lookup(&tc, miss, 2, &h, &p, err, sizeof err) != 0 && strstr(err, "holds no entry") &&
               strstr(err, "'a caption of no record'") && strstr(err, "cameo cache-text"), "a missing caption: %s", err);
    text_cache_close(&tc);
    ic_text_free(&t);

    // another run.seed: other tiny encoders
    train_config c2 = c;
    c2.run.seed = c.run.seed + 1;
    text_cache_id id2;
    TEST_CHECK(text_cache_identity(&c2, &id2, err, sizeof err) == 0 && id2.fingerprint != id.fingerprint, "seed changes the identity");
    TEST_CHECK(text_cache_open(&tc, cache, &id2, false, err, sizeof err) != 0 && strstr(err, "holds the outputs of") &&
               strstr(err, "run.seed 1") && strstr(err, "model.text_cache"), "other encoders: %s", err);
    // a folder that is not a cache; an LMDB environment of another kind (a dataset's shard) is never written into
    TEST_CHECK(text_cache_open(&tc, data, &id, false, err, sizeof err) != 0 && strstr(err, "no text cache at"), "not a cache: %s", err);
    char shard[200];
    snprintf(shard, sizeof shard, "%s/shard-00000", data);
    TEST_CHECK(text_cache_open(&tc, shard, &id, true, err, sizeof err) != 0 && strstr(err, "not a text cache") &&
               strstr(err, "new folder"), "a shard as --out: %s", err);
    char lock[240];
    snprintf(lock, sizeof lock, "%s/lock.mdb", shard);
    TEST_CHECK(access(lock, F_OK) != 0 && test_sh("%s data verify %s >/dev/null 2>&1", cameo, data) == 0,
               "the shard is untouched (no lock file made, it verifies)");

    // an entry's bytes changed on disk: its checksum names it
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    TEST_CHECK(!mdb_env_create(&env) && !mdb_env_set_mapsize(env, (size_t)1 << 40) && !mdb_env_open(env, cache, 0, 0644) &&
               !mdb_txn_begin(env, NULL, 0, &txn) && !mdb_dbi_open(txn, NULL, 0, &dbi) && !mdb_cursor_open(txn, dbi, &cur), "lmdb");
    MDB_val k, v;
    char victim[4096] = "";
    while (!mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (k.mv_size == 16) {
            const uint8_t *e = v.mv_data;
            uint32_t cl = e[20] | e[21] << 8 | e[22] << 16 | (uint32_t)e[23] << 24;
            if (!cl) continue;
            snprintf(victim, sizeof victim, "%.*s", (int)cl, (const char *)e + 32);
            uint8_t *copy = malloc(v.mv_size);
            memcpy(copy, v.mv_data, v.mv_size);
            copy[32 + cl + 5] ^= 0x40;
            MDB_val nv = {v.mv_size, copy};
            TEST_CHECK(!mdb_put(txn, dbi, &k, &nv, 0), "rewrite");
            free(copy);
            break;
        }
    mdb_cursor_close(cur);
    TEST_CHECK(victim[0] && !mdb_txn_commit(txn), "an entry changed");
    mdb_env_close(env);
    TEST_CHECK(text_cache_open(&tc, cache, &id, false, err, sizeof err) == 0, "%s", err);
    const char *vv[] = {victim};
    TEST_CHECK(text_cache_lookup(&tc, vv, 1, &h, &p, err, sizeof err) != 0 && strstr(err, "fails its checksum"), "damaged: %s", err);
    text_cache_close(&tc);
    // `cameo inspect CACHE` reads every entry: the damaged one is named, the exit status says so
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 1 && file_has(log, "1 of ") && file_has(log, "DAMAGED") &&
               file_has(log, "fails its checksum") && file_has(log, "datasets: 1 covered"), "inspect a damaged cache (%s)", log);
    // --repair reads every caption again and writes the damaged entry anew
    TEST_CHECK(test_sh("%s cache-text %s --set eval.pairs=%s --set data.path=%s --out %s --repair >%s 2>&1", cameo, ev, pairs, data, cache,
                       log) == 0 && file_has(log, ": 1 captions added"), "cache-text --repair rewrites the damaged entry (%s)", log);
    TEST_CHECK(test_sh("%s inspect %s >%s 2>&1", cameo, cache, log) == 0 && file_has(log, "verified: every entry's"),
               "after --repair the cache verifies (%s)", log);

    // a cache built on a GPU stores bf16: read back as bf16 (bit for bit), and beside an f32 entry as f32
    // (each bf16 value widened exactly)
    char mixed[160];
    snprintf(mixed, sizeof mixed, "%s/mixed", dir);
    text_cache_id sid = {.fingerprint = 7, .dim = {3, 5, 2}};
    snprintf(sid.encoders, sizeof sid.encoders, "synthetic");
    TEST_CHECK(text_cache_open(&tc, mixed, &sid, true, err, sizeof err) == 0, "%s", err);
    cm_tensor *hb = tensor_empty(CM_BF16, 3, (int64_t[]){2, 3, 5}, CM_DEV_CPU), *qb = tensor_empty(CM_BF16, 2, (int64_t[]){2, 2}, CM_DEV_CPU);
    cm_tensor *hf = tensor_empty(CM_F32, 3, (int64_t[]){1, 3, 5}, CM_DEV_CPU), *qf = tensor_empty(CM_F32, 2, (int64_t[]){1, 2}, CM_DEV_CPU);
    tensor_fill_randn(hb, 1, 1.0), tensor_fill_randn(qb, 2, 1.0), tensor_fill_randn(hf, 3, 1.0), tensor_fill_randn(qf, 4, 1.0);
    const char *bcaps[] = {"bf16 one", "bf16 two"}, *fcaps[] = {"f32 one"}, *mcaps[] = {"bf16 two", "f32 one"};
    TEST_CHECK(text_cache_put(&tc, bcaps, 2, hb, qb, err, sizeof err) == 0 && text_cache_put(&tc, fcaps, 1, hf, qf, err, sizeof err) == 0,
               "%s", err);
    text_cache_close(&tc);
    TEST_CHECK(text_cache_open(&tc, mixed, &sid, false, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(text_cache_lookup(&tc, bcaps, 2, &h, &p, err, sizeof err) == 0 && h->dtype == CM_BF16 && p->dtype == CM_BF16 &&
               !memcmp(tensor_data(h), tensor_data(hb), 2 * 15 * 2) && !memcmp(tensor_data(p), tensor_data(qb), 2 * 2 * 2),
               "bf16 entries read back as bf16, bit for bit: %s", err);
    tensor_release(h), tensor_release(p);
    TEST_CHECK(text_cache_lookup(&tc, mcaps, 2, &h, &p, err, sizeof err) == 0 && h->dtype == CM_F32, "a mixed batch in f32: %s", err);
    float got[2][15], wantb[2][15], wantf[15];
    tensor_copy_to_host(h, CM_F32, got);
    tensor_copy_to_host(hb, CM_F32, wantb);
    tensor_copy_to_host(hf, CM_F32, wantf);
    TEST_CHECK(!memcmp(got[0], wantb[1], sizeof wantf) && !memcmp(got[1], wantf, sizeof wantf), "mixed rows exact");
    tensor_release(h), tensor_release(p);
    text_cache_close(&tc);
    cm_tensor *syn[] = {hb, qb, hf, qf};
    for (int i = 0; i < 4; i++) tensor_release(syn[i]);

    for (int i = 0; i < n_caps; i++) free(caps[i]);
    free(caps);
    if (!getenv("KEEP")) test_sh("rm -rf %s", dir);
    return test_summary("e2e_text_cache");
}
