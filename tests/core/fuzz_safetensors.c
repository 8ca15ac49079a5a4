// fuzz_safetensors.c — libFuzzer harness for the safetensors parser (st_open_memory). Every
// input must either be rejected with a message or yield entries whose bytes lie inside the input.
//
// Build and run (clang + libclang-rt-14-dev), from the repository root:
//   clang -g -O1 -std=gnu17 -fsanitize=fuzzer,address,undefined -I. tests/core/fuzz_safetensors.c
//         models/safetensors.c -lcjson -o /tmp/fuzz_st
//   mkdir -p /tmp/st_corpus && cp tests/fixtures/safetensors/*.safetensors /tmp/st_corpus/
//   /tmp/fuzz_st -max_total_time=60 -max_len=4096 /tmp/st_corpus
// st_to_tensor is never called here; the weak stand-in below lets the harness link without the
// rest of cameo_core (in ctest the real tensor_from_host, if linked, wins).
// tests/core/test_safetensors_fuzz_corpusfree.c runs this entry point in ctest without libFuzzer.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/safetensors.h"

__attribute__((weak)) cm_tensor *tensor_from_host(cm_dtype dt, int ndim, const int64_t *shape, const void *data,
                                                  cm_device dev) {
    abort();
}

static void fuzz_fail(const char *what) {
    fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    err[0] = 0;
    st_file *f = st_open_memory(data, size, "fuzz", err, sizeof err);
    if (!f) {
        if (strncmp(err, "fuzz: ", 6) != 0 || !err[6]) fuzz_fail("error message does not name the input");
        return 0;
    }
    // an accepted file: every tensor lies inside the input and tiles the data buffer
    size_t covered = 0;
    volatile uint8_t sink = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_entry *e = st_at(f, i);
        if (!e || !e->name || !e->dtype_str) fuzz_fail("st_at returned an incomplete entry");
        const uint8_t *p = e->data;
        if (p < data + 8 || p + e->nbytes > data + size) fuzz_fail("tensor bytes outside the input");
        if (e->nbytes) sink ^= p[0] ^ p[e->nbytes - 1];  // ASan checks these reads
        if (e->ndim < 0 || e->ndim > CM_MAX_DIMS) fuzz_fail("ndim out of range");
        if (st_find(f, e->name) != e) fuzz_fail("st_find does not return the listed entry");
        covered += e->nbytes;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    if (covered != size - 8 - hlen) fuzz_fail("tensors do not cover the data buffer");
    for (int i = 0; i < st_meta_count(f); i++) {
        const char *k = st_meta_key(f, i);
        if (!k || st_meta(f, k) == NULL) fuzz_fail("metadata key without value");
    }
    (void)sink;
    st_close(f);
    return 0;
}
