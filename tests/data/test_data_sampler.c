// test_data_sampler.c — the order: same seed same order; every sample once per epoch (minus
// the per-bucket remainder); excluded samples never; epochs and seeds differ; batches are
// single-bucket; independent of how it is computed (any resume point sees the same order).
#include <string.h>
#include "data/rng.h"
#include "data/sampler.h"
#include "testutil.h"

int main(void) {
    enum { NS = 7, NB = 3, G = 8 };
    uint64_t counts[NS] = {50, 13, 77, 1, 40, 29, 90};
    uint64_t n = 0;
    for (int i = 0; i < NS; i++) n += counts[i];
    uint8_t *bk = malloc(n);
    uint64_t per[NB] = {0}, excl = 0;
    for (uint64_t i = 0; i < n; i++) {
        bk[i] = (uint8_t)(rng_mix(i * 31 + 7) % NB);
        if (i % 17 == 5) { bk[i] = SAMPLER_EXCLUDED; excl++; }
        else per[bk[i]]++;
    }
    sampler_config c = {.n_samples = n, .n_shards = NS, .shard_count = counts, .bucket = bk, .n_buckets = NB, .global_batch = G, .seed = 11, .block = 64};
    sampler s, s2;
    TEST_CHECK(sampler_init(&s, &c) == 0, "init");
    TEST_CHECK(sampler_init(&s2, &c) == 0, "init 2");
    uint64_t want_batches = 0, want_drop = 0;
    for (int b = 0; b < NB; b++) { want_batches += per[b] / G; want_drop += per[b] % G; }
    TEST_CHECK(s.batches_per_epoch == want_batches && s.dropped_per_epoch == want_drop && s.excluded == excl, "batches %llu/%llu", (unsigned long long)s.batches_per_epoch, (unsigned long long)want_batches);
    TEST_CHECK(s.n_groups > 1, "several canonical groups (%d)", s.n_groups);
    sampler_order o = {0}, o2 = {0}, o3 = {0};
    uint8_t *seen = calloc(n, 1);
    for (uint64_t e = 0; e < 4; e++) {
        TEST_CHECK(sampler_order_epoch(&s, e, &o) == 0, "order epoch %llu", (unsigned long long)e);
        TEST_CHECK(sampler_order_epoch(&s2, e, &o2) == 0, "order again");
        TEST_CHECK(o.n_batches == s.batches_per_epoch && !memcmp(o.ids, o2.ids, sizeof(uint32_t) * o.n_batches * G), "same seed, same order (epoch %llu)", (unsigned long long)e);
        memset(seen, 0, n);
        uint64_t dup = 0, wrong_bucket = 0, excluded = 0;
        for (uint64_t k = 0; k < o.n_batches; k++)
            for (int j = 0; j < G; j++) {
                uint32_t id = o.ids[k * G + j];
                dup += seen[id]++;
                wrong_bucket += bk[id] != o.bucket[k];
                excluded += bk[id] == SAMPLER_EXCLUDED;
            }
        uint64_t missing = 0;
        for (uint64_t i = 0; i < n; i++) missing += !seen[i] && bk[i] != SAMPLER_EXCLUDED;
        TEST_CHECK(dup == 0, "no sample repeats within epoch %llu (%llu repeats)", (unsigned long long)e, (unsigned long long)dup);
        TEST_CHECK(missing == want_drop, "only the remainder is left out: %llu vs %llu", (unsigned long long)missing, (unsigned long long)want_drop);
        TEST_CHECK(wrong_bucket == 0 && excluded == 0, "single-bucket batches, no excluded samples");
        if (e > 0) TEST_CHECK(memcmp(o.ids, o3.ids, sizeof(uint32_t) * o.n_batches * G) != 0, "epoch %llu differs from the previous", (unsigned long long)e);
        sampler_order_epoch(&s, e, &o3);
    }
    // a different seed gives a different order
    c.seed = 12;
    sampler s3;
    sampler_init(&s3, &c);
    sampler_order_epoch(&s3, 0, &o2);
    sampler_order_epoch(&s, 0, &o);
    TEST_CHECK(memcmp(o.ids, o2.ids, sizeof(uint32_t) * o.n_batches * G) != 0, "different seed, different order");
    // computing epoch 3 first then 0 gives the same as 0 directly (pure function; no state)
    sampler_order_epoch(&s3, 3, &o2);
    sampler_order_epoch(&s, 0, &o3);
    TEST_CHECK(!memcmp(o.ids, o3.ids, sizeof(uint32_t) * o.n_batches * G), "order independent of history");
    sampler_order_free(&o); sampler_order_free(&o2); sampler_order_free(&o3);
    sampler_free(&s); sampler_free(&s2); sampler_free(&s3);
    free(seen); free(bk);
    return test_summary("test_data_sampler");
}
