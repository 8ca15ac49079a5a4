// test_progress.c — the numbers and words of the progress lines (train/progress.c) as a log
// (not a TTY) shows them: a stage left early is not told as done; the rate and the ETA leave out
// the stage's slow first step.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"
#include "train/progress.h"

// the whole output of a progress written to a scratch file, into buf
static void read_back(FILE *f, char *buf, size_t cap) {
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

// a stage stopped by a signal after 34 of its 400 steps said "stage 1/3 unpaired done: 34 steps"
static void test_stage_stopped(void) {
    char path[128], out[4096];
    snprintf(path, sizeof path, "/tmp/cameo-test-progress-stop-%d.txt", (int)getpid());
    FILE *f = fopen(path, "w+");
    TEST_CHECK(f != NULL, "open %s", path);
    progress p;
    progress_init(&p, f, false, 50);
    progress_stage_begin(&p, "unpaired", 0, 3, 400, 0);
    for (int s = 1; s <= 34; s++) progress_update(&p, s, 1, 1, 1e-4, 1, 8);
    progress_stage_end(&p);
    read_back(f, out, sizeof out);
    TEST_CHECK(!strstr(out, "done"), "a stage stopped at step 34 of 400 is not 'done':\n%s", out);
    TEST_CHECK(strstr(out, "stage 1/3 unpaired stopped at step 34 of 400: 34 steps in") != NULL, "where it stopped:\n%s", out);

    // resumed at step 100 and finished: done, with the steps of this process
    f = fopen(path, "w+");
    progress_init(&p, f, false, 50);
    progress_stage_begin(&p, "paired", 1, 3, 120, 100);
    for (int s = 101; s <= 120; s++) progress_update(&p, s, 1, 1, 1e-4, 1, 8);
    progress_stage_end(&p);
    read_back(f, out, sizeof out);
    TEST_CHECK(strstr(out, "stage 2/3 paired done: 20 steps in") != NULL, "a finished stage is done:\n%s", out);
    remove(path);
}

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL); }

// "ETA 1h05m", "ETA 16m40s", "ETA 12s" in text -> seconds; -1 when none
static double eta_seconds(const char *text) {
    const char *e = strstr(text, "ETA ");
    if (!e) return -1;
    int a = 0, b = 0;
    if (sscanf(e, "ETA %dh%dm", &a, &b) == 2) return a * 3600.0 + b * 60.0;
    if (sscanf(e, "ETA %dm%ds", &a, &b) == 2) return a * 60.0 + b;
    if (sscanf(e, "ETA %ds", &a) == 1) return a;
    return -1;
}

// a first step of 1 s (the loader's start, recompute: auto's measuring step) then steps of 10 ms:
// the ETA at step 10 of 100000 was 1.09 s / 10 per step, ~3 h, where ~17 min are left; the rate
// 10 samples / 1.09 s where the steps run at 100 samples/s
static void test_eta_rate(void) {
    char path[128], out[4096];
    snprintf(path, sizeof path, "/tmp/cameo-test-progress-eta-%d.txt", (int)getpid());
    FILE *f = fopen(path, "w+");
    TEST_CHECK(f != NULL, "open %s", path);
    progress p;
    progress_init(&p, f, false, 10);
    progress_stage_begin(&p, "unpaired", 0, 3, 100000, 0);
    double rate = 0;
    for (int s = 1; s <= 10; s++) {
        sleep_ms(s == 1 ? 1000 : 10);
        rate = progress_count(&p, 1);
        if (s == 1) TEST_CHECK(rate > 0.5 && rate < 1.01, "the first step alone: its own rate (%g samples/s)", rate);
        progress_update(&p, s, 1, 1, 1e-4, 1, rate);
    }
    read_back(f, out, sizeof out);
    double eta = eta_seconds(out);
    // 99990 steps of 10 ms: 1000 s; a loaded machine oversleeps, so up to 4x that
    TEST_CHECK(eta >= 900 && eta <= 4000, "ETA from the steps after the first: %g s, want ~1000 (1 s step counted in: ~10900)\n%s", eta,
               out);
    TEST_CHECK(rate >= 25 && rate <= 101, "rate after the first step: %g samples/s, want ~100 (counted in: ~9)", rate);

    // resumed at step 500: the first step of this process is left out the same way
    f = fopen(path, "w+");
    progress_init(&p, f, false, 10);
    progress_stage_begin(&p, "paired", 1, 3, 100500, 500);
    for (int s = 501; s <= 510; s++) {
        sleep_ms(s == 501 ? 1000 : 10);
        progress_update(&p, s, 1, 1, 1e-4, 1, progress_count(&p, 1));
    }
    read_back(f, out, sizeof out);
    eta = eta_seconds(out);
    TEST_CHECK(eta >= 900 && eta <= 4000, "resumed: ETA %g s, want ~1000\n%s", eta, out);
    remove(path);
}

int main(void) {
    test_stage_stopped();
    test_eta_rate();
    return test_summary("test_progress");
}
