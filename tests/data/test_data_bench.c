// test_data_bench.c — `cameo data bench`'s figures on a damaged dataset (no timing assertions):
// records that fail their checksum are said to be skipped and are not counted as samples (the
// decode loop's rate and its megapixels per image are per record decoded), and the loader row
// names the resolution it ran at. The metadata rows time the first --samples records, not the whole
// dataset (at 10M records their CRC pass read every image byte of it: hours).
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/dataset.h"
#include "data/tools.h"
#include "helpers.h"

static char out[1 << 16];
static const char *g_ds;
static int g_samples = 12;

// bench_run in a child with stdout in out[]; its exit code
static int bench_child(void *unused) {
    (void)unused;
    bench_options o = {.dir = g_ds, .threads = 1, .samples = g_samples, .ref_size = 16, .resolution = 128, .scale_samples = 0};
    return bench_run(&o);
}
static int run_bench(void) { return test_fork_stdout(bench_child, NULL, out, sizeof out); }

int main(void) {
    g_ds = make_demo("bench", 3, 4, 384, 100);  // 12 samples, one shard
    int hit = test_damage_records(g_ds, 3);
    TEST_CHECK(hit == 4, "damaged %d records, want 4", hit);

    // the reference: the megapixels of the records that still read
    dataset d;
    dataset_reader r;
    record_view rec;
    char err[1024];
    TEST_CHECK(dataset_open(&d, g_ds, 0, err, sizeof err) == 0, "open: %s", err);
    dataset_reader_init(&r, &d);
    double mp = 0;
    int good = 0;
    for (uint64_t i = 0; i < 12; i++)
        if (!dataset_get(&r, i, &rec, err, sizeof err)) mp += (double)rec.width * rec.height, good++;
    dataset_reader_free(&r);
    dataset_close(&d);
    TEST_CHECK(good == 8, "%d of 12 records read, want 8", good);

    int rc = run_bench();
    TEST_CHECK(rc == 0, "bench returned %d:\n%s", rc, out);
    TEST_CHECK(strstr(out, "| records skipped (checksum, decode or metadata errors) | 4 of the first 12 |"),
               "the skipped records are not reported:\n%s", out);
    char want[128];
    snprintf(want, sizeof want, "| decode-only loop, 1 thread (%.2f MP/image mean) |", mp / good / 1e6);
    TEST_CHECK(strstr(out, want), "want '%s' (per record decoded):\n%s", want, out);
    TEST_CHECK(strstr(out, "| loader, 1 threads, 128²-area targets"), "the loader row must name --resolution 128:\n%s", out);
    TEST_CHECK(strstr(out, "decode (first 12 records, 1667 passes) |"), "the metadata rows over the 12 records:\n%s", out);

    // --samples 5 of 12: the metadata rows read those 5, not every record of the dataset
    g_samples = 5;
    rc = run_bench();
    TEST_CHECK(rc == 0, "bench --samples 5 returned %d:\n%s", rc, out);
    TEST_CHECK(strstr(out, "decode (first 5 records, 4000 passes) |"), "the metadata rows must read the first --samples records only:\n%s", out);
    return test_summary("test_data_bench");
}
