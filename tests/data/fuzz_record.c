// fuzz_record.c — libFuzzer entry for the record and metadata decoders:
//   clang -fsanitize=fuzzer,address -I. tests/data/fuzz_record.c data/record.c data/checksum.c -lzstd
// test_data_fuzz_record.c runs the same entry over generated inputs inside ctest.
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>
#include "data/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ZSTD_DCtx *dc;
    static record_meta m;
    static uint8_t *buf;
    static size_t cap;
    if (!dc) dc = ZSTD_createDCtx();
    char err[256];
    record_view v;
    // as a record value (with and without its CRC check)
    if (record_parse(data, size, &v, err, sizeof err) == 0 || record_parse_nocrc(data, size, &v, err, sizeof err) == 0) {
        if (v.image + v.image_len > data + size || v.meta + v.meta_len > data + size) __builtin_trap();
        if (record_meta_decompress(dc, NULL, &v, &buf, &cap, err, sizeof err) == 0) record_meta_decode(buf, v.meta_raw_len, &m, err, sizeof err);
    }
    // as raw metadata
    if (record_meta_decode(data, size, &m, err, sizeof err) == 0) {
        for (int i = 0; i < m.n_captions; i++) if (!m.captions[i]) __builtin_trap();
        if (!m.character || !m.source) __builtin_trap();
    }
    return 0;
}
