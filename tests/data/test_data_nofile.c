// test_data_nofile.c — a dataset holds one file descriptor per shard: with more shards than the
// soft RLIMIT_NOFILE, dataset_open raises the soft limit towards the hard one, and where the hard
// limit is too low it fails naming the shard count and `ulimit -n`.
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/dataset.h"
#include "helpers.h"

// dataset_open under a hard limit of 64 open files (its message on stderr): 0 opened, 1 refused
static int open_hard_64(const void *ds) {
    struct rlimit hard = {64, 64};
    setrlimit(RLIMIT_NOFILE, &hard);
    char err[2048];
    dataset d;
    int rc = dataset_open(&d, (const char *)ds, 0, err, sizeof err);
    if (rc) fputs(err, stderr);
    return rc == 0 ? 0 : 1;
}

int main(void) {
    char err[2048];
    const char *ds = make_demo("many-shards", 10, 8, 16, 1);  // 80 shards
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 200) test_skip("the hard RLIMIT_NOFILE is below 200");
    struct rlimit low = {64, rl.rlim_max};
    TEST_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "lower the soft limit to 64");
    dataset d;
    TEST_CHECK(dataset_open(&d, ds, 0, err, sizeof err) == 0, "80 shards under a soft limit of 64: %s", err);
    TEST_CHECK(d.m.n_shards == 80, "%d shards", d.m.n_shards);
    dataset_close(&d);
    // a hard limit too low: lowered in a child (it cannot be raised again)
    int rc = run_captured(open_hard_64, ds, err, sizeof err);
    TEST_CHECK(rc == 1 && strstr(err, "80 shards") && strstr(err, "ulimit -n"), "a hard limit of 64: %s", err);
    return test_summary("test_data_nofile");
}
