// test_data_loader_counts.c — loader_stats counts what loader_next handed out: an epoch is
// started, and its remainder dropped, when its first batch is handed out, not when the decode
// threads, prefetching, compute its order ahead of the consumer. A loader told how many batches
// will be read (max_batches: validation) decodes those and no more. A loader over a lent index
// (the validation's set, opened once a stage) reads what loader_open reads, pass after pass.
#include "data/loader.h"
#include "helpers.h"

// a and b read in step: the same batches (ids, references, crops, flips, pixels) to the end; the batches read
static int same_batches(loader *a, loader *b, const char *what) {
    loader_batch x, y;
    int n = 0, ra, rb;
    while ((ra = loader_next(a, &x)) == 0 && (rb = loader_next(b, &y)) == 0) {
        size_t tsz = (size_t)x.B * 3 * x.H * x.W, vsz = (size_t)x.B * 5 * 3 * x.R * x.R;
        int same = x.B == y.B && x.H == y.H && x.W == y.W && x.epoch == y.epoch && x.batch_index == y.batch_index &&
                   !memcmp(x.sample_ids, y.sample_ids, sizeof(int64_t) * x.B) && !memcmp(x.ref_ids, y.ref_ids, sizeof(int64_t) * x.B) &&
                   !memcmp(x.crop, y.crop, sizeof(int32_t) * 4 * x.B) && !memcmp(x.flipped, y.flipped, x.B) &&
                   !memcmp(x.paired, y.paired, x.B) && !memcmp(x.target, y.target, sizeof(float) * tsz) &&
                   !memcmp(x.ref_dino, y.ref_dino, sizeof(float) * vsz);
        TEST_CHECK(same, "%s: batch %d differs from loader_open's", what, n);
        n++;
    }
    TEST_CHECK(ra == 1 && loader_next(b, &y) == 1, "%s: both end after %d batches", what, n);
    return n;
}

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

    // a lent index keeping nb + 2 batches (into epoch 1), unpaired and mixed, rank 1 of 2: every
    // loader opened on it (two passes) reads what loader_open reads
    c.max_batches = nb + 2, c.random_flip = 1, c.prefetch = 2;
    for (int mode = LOADER_UNPAIRED; mode <= LOADER_MIXED; mode += LOADER_MIXED) {
        c.mode = (loader_mode)mode, c.world = 2, c.rank = 1;
        loader_index *X = loader_index_open(&c);
        TEST_CHECK(X && loader_index_batches(X) == nb + 2, "mode %d: the index opens, %llu batches kept", mode, (unsigned long long)nb + 2);
        if (!X) continue;
        for (int pass = 0; pass < 2; pass++) {
            loader *A = loader_open(&c, NULL), *B = loader_open_index(&c, X, NULL);
            TEST_CHECK(A && B, "mode %d pass %d: both loaders open", mode, pass);
            if (A && B) TEST_CHECK(same_batches(A, B, mode ? "mixed" : "unpaired") == (int)nb + 2, "mode %d pass %d: %llu batches", mode, pass, (unsigned long long)nb + 2);
            loader_close(A), loader_close(B);
        }
        // another order, more batches than kept, a resume: refused (a message each), the index unharmed
        loader_config o = c;
        o.seed++;
        TEST_CHECK(loader_open_index(&o, X, NULL) == NULL, "mode %d: a loader of another seed is refused", mode);
        o = c, o.max_batches++;
        TEST_CHECK(loader_open_index(&o, X, NULL) == NULL, "mode %d: more batches than kept is refused", mode);
        TEST_CHECK(loader_open_index(&c, X, &st) == NULL, "mode %d: a resume is refused", mode);
        loader_index_close(X);
    }
    return test_summary("test_data_loader_counts");
}
