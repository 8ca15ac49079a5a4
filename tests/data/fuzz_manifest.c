// fuzz_manifest.c — libFuzzer entry for the manifest parser:
//   clang -fsanitize=fuzzer,address -I. tests/data/fuzz_manifest.c data/manifest.c data/checksum.c data/fsutil.c -lcjson
// test_data_fuzz_manifest.c runs the same entry over generated inputs inside ctest.
#include <stddef.h>
#include <stdint.h>
#include "data/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    manifest m;
    char err[512];
    if (manifest_parse((const char *)data, size, &m, "fuzz/manifest.json", err, sizeof err) == 0) {
        uint64_t next = 0;
        for (int i = 0; i < m.n_shards; i++) {
            if (m.shards[i].first_id != next || !m.shards[i].name[0]) __builtin_trap();
            next += m.shards[i].samples;
        }
        if (next != m.samples) __builtin_trap();
        if (m.samples) (void)manifest_shard_of(&m, m.samples - 1);
        manifest_free(&m);
    }
    return 0;
}
