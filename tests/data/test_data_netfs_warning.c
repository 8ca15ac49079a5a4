// test_data_netfs_warning.c — a dataset on a network filesystem is warned about once per process,
// however often it is opened: the validation opens its loader (and so the dataset) at every
// validation, and a run of days repeated the warning thousands of times, on every rank.
// CAMEO_FAULT_NETFS puts every path on a pretend "nfs".
#include "data/dataset.h"
#include "data/loader.h"
#include "helpers.h"

static const char *ds_a, *ds_b;

static int count(const char *log, const char *what) {
    int n = 0;
    for (const char *p = log; (p = strstr(p, what)); p++) n++;
    return n;
}

// as a run does: the stage's loader, then a validation's loader at every validation (3 here)
static int open_often(const void *arg) {
    (void)arg;
    char err[1024];
    for (int i = 0; i < 3; i++) {
        dataset d;
        if (dataset_open(&d, ds_a, 0, err, sizeof err)) return 2;
        dataset_close(&d);
    }
    loader_config c = loader_config_default();
    c.path = ds_a;
    c.resolution = 64;
    c.bucket_step = 16;
    c.ref_size = 28;
    c.global_batch = 2;
    c.threads = 1;
    c.quiet = 1;
    for (int i = 0; i < 3; i++) {
        loader *L = loader_open(&c, NULL);
        if (!L) return 3;
        loader_batch b;
        int rc = loader_next(L, &b);
        loader_close(L);
        if (rc) return 4;
    }
    dataset d;  // another dataset: its own warning
    if (dataset_open(&d, ds_b, 0, err, sizeof err)) return 5;
    dataset_close(&d);
    return 0;
}

int main(void) {
    ds_a = make_demo("a", 3, 3, 64, 0);
    ds_b = make_demo("b", 3, 3, 64, 0);
    setenv("CAMEO_FAULT_NETFS", "nfs", 1);
    static char log[65536];
    int rc = run_captured(open_often, NULL, log, sizeof log);
    TEST_CHECK(rc == 0, "opening the datasets failed (%d): %s", rc, log);
    char want_a[600], want_b[600];
    snprintf(want_a, sizeof want_a, "dataset %s is on a network filesystem (nfs)", ds_a);
    snprintf(want_b, sizeof want_b, "dataset %s is on a network filesystem (nfs)", ds_b);
    TEST_CHECK(count(log, want_a) == 1, "the first dataset opened 6 times: %d warnings (want 1):\n%s", count(log, want_a), log);
    TEST_CHECK(count(log, want_b) == 1, "the second dataset: %d warnings (want 1):\n%s", count(log, want_b), log);
    return test_summary("test_data_netfs_warning");
}
