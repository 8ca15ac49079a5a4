// test_data_tools.c — the `cameo data` tools refuse options that give no bucket table (they read
// an uninitialised table and wrote a PNG of garbage with exit 0) and name the options.
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/tools.h"
#include "helpers.h"

static const char *g_ds, *g_png;
static int show_16_64(const void *a) { (void)a; return show_run(g_ds, 0, g_png, 0, 16, 16, 64, 0); }
static int stats_16_64(const void *a) { (void)a; return stats_run(g_ds, 16, 64, 0); }
static int stats_records(void *a) { return stats_run(g_ds, 32, 16, *(const uint64_t *)a); }
static int bench_16(const void *a) {
    (void)a;
    bench_options o = {.dir = g_ds, .threads = 1, .samples = 1, .ref_size = 16, .resolution = 16, .scale_samples = 0};
    return bench_run(&o);
}

int main(void) {
    char png[600], log[8192];
    g_ds = make_demo("tools", 2, 2, 32, 100);
    snprintf(png, sizeof png, "%s/show.png", tmp_dir());
    g_png = png;
    int rc = run_captured(show_16_64, NULL, log, sizeof log);
    struct stat st;
    TEST_CHECK(rc == 1 && strstr(log, "--resolution 16") && strstr(log, "--step 64") && stat(png, &st) != 0,
               "show --resolution 16 --step 64 refused (rc %d, png %s): %s", rc, stat(png, &st) ? "absent" : "written", log);
    rc = run_captured(stats_16_64, NULL, log, sizeof log);
    TEST_CHECK(rc == 1 && strstr(log, "--resolution 16") && strstr(log, "--step 64"), "stats --resolution 16 --step 64 refused (rc %d): %s", rc, log);
    // stats reads whole records for its caption and image lines: at most --records of them, said
    // (a 10M-image dataset read whole took hours); 0, or at least the samples, reads every one
    uint64_t two = 2, all = 0;
    rc = test_fork_stdout(stats_records, &two, log, sizeof log);
    TEST_CHECK(rc == 0 && strstr(log, "records read for the lines below: 2 of 4, spread evenly") && strstr(log, "captions: 4 (2.00 per sample)"),
               "stats --records 2 of 4 samples (rc %d): %s", rc, log);
    rc = test_fork_stdout(stats_records, &all, log, sizeof log);
    TEST_CHECK(rc == 0 && !strstr(log, "records read") && strstr(log, "captions: 8 (2.00 per sample)"), "stats --records 0 (rc %d): %s", rc, log);
    rc = run_captured(bench_16, NULL, log, sizeof log);
    TEST_CHECK(rc == 1 && strstr(log, "--resolution 16"), "bench --resolution 16 refused (rc %d): %s", rc, log);
    return test_summary("test_data_tools");
}
