// crc32.h — CRC-32 (ISO-HDLC: zlib's, zip's, PNG's): the checksum of checkpoint manifests, zip
// records (torch.save files) and whatever else names a crc32.
// defines: cm_crc32, cm_crc32_combine.
#pragma once
#include <stddef.h>
#include <stdint.h>

// the crc32 of buf[0, n) continuing from crc (start with 0). Slicing by 8 (~1.7 GB/s a core); a
// buffer of 32 MiB or more is cut into pieces summed on the OpenMP threads and combined — the
// same value, the multi-GB state of a checkpoint in a fraction of the time.
uint32_t cm_crc32(uint32_t crc, const void *buf, size_t n);
// the crc32 of A followed by B from crc(A), crc(B) and B's length (zlib's crc32_combine)
uint32_t cm_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
