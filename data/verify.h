// verify.h — check a dataset completely: manifest, dictionary, every shard's file checksum,
// every record's checksum, metadata and image, the pair and character tables, the size index.
#pragma once
#include <stdio.h>

// Prints each problem (naming the shard and sample) to `log`. decode=0 skips WebP decoding.
// Returns the number of problems (0 = intact), or -1 when the manifest cannot be read.
long verify_dataset(const char *dir, int decode, FILE *log);
