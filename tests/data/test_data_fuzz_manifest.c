// test_data_fuzz_manifest.c — runs the fuzz_manifest.c entry over a valid manifest, its
// truncations and a few hundred mutations (no fuzzer needed).
#include <stdlib.h>
#include <string.h>
#include "data/rng.h"
#include "fuzz_manifest.c"
#include "testutil.h"

int main(void) {
    const char *good = "{\"format\":\"cameo-dataset\",\"version\":1,\"samples\":5,\"characters\":2,"
                       "\"dictionary\":{\"file\":\"meta.zdict\",\"id\":7,\"bytes\":100,\"crc32c\":5},"
                       "\"buckets\":{\"resolution\":512,\"step\":64,\"max_aspect\":2,\"table\":[[512,512,3],[576,448,2]]},"
                       "\"shards\":[{\"name\":\"shard-00000\",\"first_id\":0,\"samples\":3,\"characters\":1,\"bytes\":8192,\"crc32c\":1},"
                       "{\"name\":\"shard-00001\",\"first_id\":3,\"samples\":2,\"characters\":1,\"bytes\":8192,\"crc32c\":2}]}";
    size_t len = strlen(good);
    manifest m;
    char err[256];
    TEST_CHECK(manifest_parse(good, len, &m, "m", err, sizeof err) == 0, "seed parses: %s", err);
    manifest_free(&m);
    int runs = 0;
    for (size_t n = 0; n <= len; n++) { LLVMFuzzerTestOneInput((const uint8_t *)good, n); runs++; }
    uint64_t st = rng_key(2, 0, 0, 999);
    char *buf = malloc(len + 1);
    static const char tokens[] = "{}[]\":,-0123456789.eE tfnul\\";
    for (int k = 0; k < 500; k++) {
        memcpy(buf, good, len);
        int flips = 1 + (int)rng_below(&st, 5);
        for (int f = 0; f < flips; f++) {
            size_t at = rng_below(&st, len);
            buf[at] = k & 1 ? tokens[rng_below(&st, sizeof tokens - 1)] : (char)rng_next(&st);
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        runs++;
    }
    TEST_CHECK(runs > 500, "ran %d inputs without a crash", runs);
    free(buf);
    return test_summary("test_data_fuzz_manifest");
}
