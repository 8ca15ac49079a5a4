// test_stage_memory.c — a stage change gives the finished stage's memory back: the tiny training
// at 64 px then 96 px peaks (resident set) as the 96 px stage alone does, not with the 64 px
// stage's cached blocks on top (held for the rest of the run: ~20 MB here, GBs at full size).
// Each run in a forked child, its peak from wait4's rusage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/data_cli.h"
#include "testutil.h"
#include "train_child.h"

// under ASan the allocator caches nothing (autograd/alloc.c) and ASan's quarantine holds freed
// memory a while: the peaks say nothing about the cache there
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static char dir[64];

// `cameo train` with stages of `s0` and `s1` steps (64 px batch 8, 96 px batch 4) in a child; its peak RSS in KiB, -1 on failure
static long train_peak_kib(const char *name, int s0, int s1) {
    char sets[9][200];
    snprintf(sets[0], sizeof sets[0], "data.path=%s/data", dir);
    snprintf(sets[1], sizeof sets[1], "run.out_dir=%s/runs", dir);
    snprintf(sets[2], sizeof sets[2], "run.name=%s", name);
    snprintf(sets[3], sizeof sets[3], "stages.0.steps=%d", s0);
    snprintf(sets[4], sizeof sets[4], "stages.1.steps=%d", s1);
    snprintf(sets[5], sizeof sets[5], "stages.1.resolution=96");
    snprintf(sets[6], sizeof sets[6], "stages.2.steps=0");
    snprintf(sets[7], sizeof sets[7], "run.threads=1");
    snprintf(sets[8], sizeof sets[8], "stages.0.batch_size=8");
    struct rusage ru;
    if (train_child(sets, 9, NULL, &ru)) return -1;
    return ru.ru_maxrss;
}

int main(void) {
#ifdef UNDER_ASAN
    test_skip("built with AddressSanitizer: no allocator cache, and ASan's quarantine keeps freed memory");
#endif
    snprintf(dir, sizeof dir, "/tmp/cameo-stage-mem-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char out[128];
    snprintf(out, sizeof out, "%s/data", dir);
    TEST_CHECK(demo_child(out, 6, 4, 128) == 0, "cameo data demo");

    long first = train_peak_kib("first", 3, 0), second = train_peak_kib("second", 0, 3), both = train_peak_kib("both", 3, 3);
    TEST_CHECK(first > 0 && second > 0 && both > 0, "the tiny runs failed (peaks %ld, %ld, %ld KiB)", first, second, both);
    long alone = first > second ? first : second;
    printf("peak RSS: the 64 px stage alone %ld KiB, the 96 px stage alone %ld KiB, one after the other %ld KiB (+%ld)\n", first,
           second, both, both - alone);
    // without the release, the 64 px stage's cache stays beside the 96 px stage's (+20 MB or more)
    TEST_CHECK(both - alone < 4 * 1024, "the 64 px stage's memory was kept into the 96 px stage: peak %ld KiB, %ld KiB for the "
               "larger of the two alone", both, alone);
    int rc = test_summary("test_stage_memory");
    if (!rc) test_sh("rm -rf %s", dir);
    return rc;
}
