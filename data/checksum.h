// checksum.h — CRC-32C (Castagnoli, reflected, init/xorout 0xFFFFFFFF) and a 64-bit FNV-1a hash.
#pragma once
#include <stddef.h>
#include <stdint.h>

// crc32c("123456789") == 0xE3069283. Chain: crc32c_update(crc32c_update(0, a), b) == crc32c(a||b).
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);
static inline uint32_t crc32c(const void *data, size_t n) { return crc32c_update(0, data, n); }

// CRC-32C of a whole file; returns 0 and sets *crc, *bytes, or -1 (errno set).
int crc32c_file(const char *path, uint32_t *crc, uint64_t *bytes);

// FNV-1a 64 (for manifest / bucket-table hashes in resume state)
uint64_t hash64_update(uint64_t h, const void *data, size_t n);
#define HASH64_INIT 0xcbf29ce484222325ull
