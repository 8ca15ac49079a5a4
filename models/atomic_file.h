// atomic_file.h — a file written whole or not at all: the bytes go to PATH.tmp, which is fsynced
// and renamed over PATH only when every write succeeded (then the folder is fsynced, so the rename
// survives a crash). A reader of PATH sees the old file or the new one, never a part.
// The crc32 of the bytes is kept as they are written, so a manifest need not read the file back.
// defines: af_file, af_sum, af_open, af_write, af_commit, af_abort.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_file {
    int fd;              // of PATH.tmp; -1 once closed
    char *path, *tmp;    // owned
    uint64_t written;    // bytes so far
    uint32_t crc;        // their crc32 (models/crc32.h), when asked for
    bool sum;            // keep crc
    int err_no;          // the first failed write's errno (later writes do nothing)
} af_file;

typedef struct af_sum {  // what af_commit wrote: its size and crc32
    uint64_t bytes;
    uint32_t crc;
} af_sum;

// creates PATH.tmp (truncated); sum: keep the crc32 of what is written (af_commit's *sum). 0, or
// -1 with "PATH: cannot create PATH.tmp: why" in err
int af_open(af_file *f, const char *path, bool sum, char *err, size_t errlen);
// appends n bytes; a failure is remembered and reported by af_commit. 0, or -1
int af_write(af_file *f, const void *p, size_t n);
// fsync, close, rename over PATH, fsync of the folder; frees f; *sum (may be NULL) gets the
// file's size and crc32. 0, or -1 with the step that failed in err (PATH.tmp removed, PATH
// untouched unless only the folder's fsync failed)
int af_commit(af_file *f, af_sum *sum, char *err, size_t errlen);
// closes and removes PATH.tmp; frees f (PATH untouched)
void af_abort(af_file *f);
