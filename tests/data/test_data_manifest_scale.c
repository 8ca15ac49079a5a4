// test_data_manifest_scale.c — manifest.json with 40 000 shards (10M samples at 250 per shard) parses,
// and a duplicate name among them (the last one) is still found by the sorted check. The time is
// printed, not asserted (speed belongs to benchmarks): the linear parse takes ~0.2 s here, the old
// quadratic one (a list walk per shard, a pairwise name check) 11-32 s.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "data/manifest.h"
#include "testutil.h"

// a manifest of n shards of 10 samples; shard `dup` (when >= 0) takes the name of shard 0
static char *many_shards(int n, int dup, size_t *len) {
    size_t cap = (size_t)n * 128 + 256, at = 0;
    char *t = malloc(cap);
    at += (size_t)snprintf(t + at, cap - at, "{\"format\": \"cameo-dataset\", \"version\": 1, \"samples\": %d, \"characters\": 1, \"dictionary\": null, \"shards\": [",
                           n * 10);
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(t + at, cap - at, "%s{\"name\": \"shard-%07d\", \"first_id\": %d, \"samples\": 10, \"characters\": 1, \"bytes\": 8192, \"crc32c\": 0}",
                               i ? "," : "", i == dup ? 0 : i, i * 10);
    at += (size_t)snprintf(t + at, cap - at, "]}");
    *len = at;
    return t;
}

int main(void) {
    const int n = 40000;
    size_t len;
    char *t = many_shards(n, -1, &len), err[512] = "";
    manifest m;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = manifest_parse(t, len, &m, "many.json", err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    TEST_CHECK(rc == 0 && m.n_shards == n && m.samples == (uint64_t)n * 10 && m.shards[n - 1].first_id == (uint64_t)(n - 1) * 10, "parses %d shards: %s", n, err);
    printf("%d shards parsed in %.2f s\n", n, s);
    if (!rc) manifest_free(&m);
    free(t);
    t = many_shards(n, n - 1, &len);
    rc = manifest_parse(t, len, &m, "dup.json", err, sizeof err);
    TEST_CHECK(rc != 0 && strstr(err, "shard-0000000") && strstr(err, "twice"), "a duplicate shard name is named: %s", err);
    free(t);
    return test_summary("test_data_manifest_scale");
}
