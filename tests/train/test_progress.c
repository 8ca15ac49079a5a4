// test_progress.c — the numbers and words of the progress lines (train/progress.c) as a log
// (not a TTY) shows them: a stage left early is not told as done.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void) {
    test_stage_stopped();
    return test_summary("test_progress");
}
