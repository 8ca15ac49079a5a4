// atomic_file.h — a file written whole or not at all: the bytes go to PATH.tmp, which is fsynced
// and renamed over PATH only when every write succeeded (then the folder is fsynced, so the rename
// survives a crash). A reader of PATH sees the old file or the new one, never a part.
// defines: af_file, af_open, af_write, af_commit, af_abort.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct af_file {
    int fd;              // of PATH.tmp; -1 once closed
    char *path, *tmp;    // owned
    uint64_t written;    // bytes so far
    int err_no;          // the first failed write's errno (later writes do nothing)
} af_file;

// creates PATH.tmp (truncated); 0, or -1 with "PATH: cannot create PATH.tmp: why" in err
int af_open(af_file *f, const char *path, char *err, size_t errlen);
// appends n bytes; a failure is remembered and reported by af_commit. 0, or -1
int af_write(af_file *f, const void *p, size_t n);
// fsync, close, rename over PATH, fsync of the folder; frees f. 0, or -1 with the step that
// failed in err (PATH.tmp removed, PATH untouched unless only the folder's fsync failed)
int af_commit(af_file *f, char *err, size_t errlen);
// closes and removes PATH.tmp; frees f (PATH untouched)
void af_abort(af_file *f);
