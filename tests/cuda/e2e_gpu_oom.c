// e2e_gpu_oom.c — running out of device memory is an error that names the allocation, the bytes
// asked and the bytes free: never a crash, never a hang. `cameo train` (one step) on the emulated
// cuda:0 (tests/cuda_emu) with the device's size capped by CUDA_EMU_MEM, at every size a bisection
// visits between "too small to set up" and "the run completes": each run must exit 0, or exit 1
// with such a message, within 120 s. The bisection's probes land in the set-up, the frozen
// encoders, the step's forward and backward, the optimizer — wherever the cap runs out.
// Usage: e2e_gpu_oom PATH/TO/cameo   (the emulator's build only: a real GPU cannot be capped)
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static char dir[] = "/tmp/cameo-gpu-oom-XXXXXX";
static const char *cameo;

// one run under a cap of kib KiB: 0 completed, 1 out of memory (message checked), -1 anything else
static int run_capped(long kib) {
    int rc = test_sh("CUDA_EMU_MEM=%ldK timeout 120 %s train --set stages.0.steps=1 --set stages.1.steps=0 "
                     "--set stages.2.steps=0 --set run.ckpt_every=0 --set data.path=%s/data --set run.device=cuda:0 "
                     "--set run.out_dir=%s/run-%ld --quiet >%s/log-%ld 2>&1",
                     kib, cameo, dir, dir, kib, dir, kib);
    char last[600] = "";
    char p[300];
    snprintf(p, sizeof p, "%s/log-%ld", dir, kib);
    FILE *f = fopen(p, "r");
    for (char line[600]; f && fgets(line, sizeof line, f);) snprintf(last, sizeof last, "%s", line);
    if (f) fclose(f);
    last[strcspn(last, "\n")] = 0;
    printf("cap %7.2f MiB: exit %d: %s\n", kib / 1024.0, rc, last);
    if (rc == 0) return 0;
    bool named = strstr(last, "out of memory") || strstr(last, "out of device memory");
    bool bytes = strstr(last, "bytes") && strstr(last, "free");
    TEST_CHECK(rc == 1 && named && bytes, "cap %ld KiB: exit %d (1 expected, 124 = hang, >128 = crash) with '%s' "
               "(an out-of-memory message naming the bytes asked and free expected; log %s)", kib, rc, last, p);
    return rc == 1 && named && bytes ? 1 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) test_skip("usage: e2e_gpu_oom PATH/TO/cameo");
    cameo = argv[1];
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    long lo = 8 << 10, hi = 96 << 10;  // KiB: below the cuBLASLt workspace alone; over twice the tiny run
    if (run_capped(hi) != 0) {
        TEST_CHECK(0, "the uncapped-enough run (%ld KiB) must complete (see %s)", hi, dir);
        return test_summary("e2e_gpu_oom");
    }
    TEST_CHECK(run_capped(lo) == 1, "%ld KiB must be too small", lo);
    while (hi - lo > 1024 && test_failures == 0) {  // to 1 MiB (7 probes: set-up, encoders, step, optimizer)
        long mid = (lo + hi) / 2;
        if (run_capped(mid) == 0) hi = mid;
        else lo = mid;
    }
    printf("the one-step tiny run needs between %.2f and %.2f MiB of device memory\n", lo / 1024.0, hi / 1024.0);
    if (test_failures == 0) test_sh("rm -rf %s", dir);
    return test_summary("e2e_gpu_oom");
}
