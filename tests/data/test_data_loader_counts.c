// test_data_loader_counts.c — loader_stats counts what loader_next handed out: an epoch is
// started, and its remainder dropped, when its first batch is handed out, not when the decode
// threads, prefetching, compute its order ahead of the consumer. A loader told how many batches
// will be read (max_batches: validation) decodes those and no more.
#include "data/loader.h"
#include "helpers.h"

int main(void) {
    const char *ds = make_demo("counts", 5, 5, 64, 10);  // 25 samples: a remainder at G = 4
    loader_config c = loader_config_default();
    c.path = ds; c.seed = 3; c.global_batch = 4; c.resolution = 64; c.bucket_step = 16; c.ref_size = 8;
    c.threads = 2; c.prefetch = 4; c.quiet = 1;  // endless: the prefetch runs into epoch 1
    loader *L = loader_open(&c, NULL);
    TEST_CHECK(L != NULL, "loader opens %s", ds);
    if (!L) return test_summary("test_data_loader_counts");
    uint64_t nb = loader_batches_per_epoch(L), dropped = 25 - 4 * nb;
    TEST_CHECK(nb >= 1 && dropped > 0, "%llu batches leave a remainder", (unsigned long long)nb);
    loader_batch b;
    for (uint64_t i = 0; i < nb; i++) TEST_CHECK(loader_next(L, &b) == 0 && b.epoch == 0, "batch %llu of epoch 0", (unsigned long long)i);
    loader_wait_idle(L);  // the workers decode ahead into epoch 1 (its order computed)
    loader_counts k;
    loader_stats(L, &k);
    TEST_CHECK(k.epochs_started == 1 && k.dropped_remainder == dropped, "after epoch 0 only: %llu epochs started, %llu dropped (want 1, %llu)",
               (unsigned long long)k.epochs_started, (unsigned long long)k.dropped_remainder, (unsigned long long)dropped);
    TEST_CHECK(loader_next(L, &b) == 0 && b.epoch == 1, "the first batch of epoch 1");
    loader_stats(L, &k);
    TEST_CHECK(k.epochs_started == 2 && k.dropped_remainder == 2 * dropped, "with epoch 1 begun: %llu epochs started, %llu dropped",
               (unsigned long long)k.epochs_started, (unsigned long long)k.dropped_remainder);
    loader_close(L);

    // resumed mid-epoch 3: that epoch is the first one this loader hands out
    loader_resume st = {0};
    L = loader_open(&c, NULL);
    loader_state(L, &st);
    loader_close(L);
    st.epoch = 3, st.batches_done = nb - 1;
    L = loader_open(&c, &st);
    TEST_CHECK(L && loader_next(L, &b) == 0 && b.epoch == 3, "resumed at the last batch of epoch 3");
    loader_wait_idle(L);
    loader_stats(L, &k);
    TEST_CHECK(k.epochs_started == 1 && k.dropped_remainder == dropped, "resumed: %llu epochs started, %llu dropped (want 1, %llu)",
               (unsigned long long)k.epochs_started, (unsigned long long)k.dropped_remainder, (unsigned long long)dropped);
    loader_close(L);

    // max_batches 2 of 4 samples, prefetch 4: the third loader_next ends it, and no sample past the
    // two batches went to the decode threads (validation decoded prefetch batches it never read)
    c.max_batches = 2;
    L = loader_open(&c, NULL);
    TEST_CHECK(L != NULL, "loader with max_batches opens");
    if (!L) return test_summary("test_data_loader_counts");
    for (int i = 0; i < 2; i++) TEST_CHECK(loader_next(L, &b) == 0 && b.B == 4, "batch %d of max_batches 2", i);
    TEST_CHECK(loader_next(L, &b) == 1 && loader_next(L, &b) == 1, "loader_next ends after max_batches");
    loader_wait_idle(L);  // all the prefetch would decode: before, the 5 slots' worth past batch 1
    loader_stats(L, &k);
    TEST_CHECK(k.batches == 2 && k.samples_decoded == 8, "max_batches 2: %llu batches, %llu samples decoded (want 2, 8)",
               (unsigned long long)k.batches, (unsigned long long)k.samples_decoded);
    loader_close(L);
    return test_summary("test_data_loader_counts");
}
