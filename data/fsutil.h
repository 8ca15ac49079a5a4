// fsutil.h — small file-system helpers: whole-file read, atomic write, fsync of a folder,
// recursive removal, network-filesystem detection.
#pragma once
#include <stddef.h>

// malloc'd contents (NUL-terminated) or NULL (errno set; EFBIG when over max)
char *fs_read_file(const char *path, size_t *len, size_t max);
// path.tmp → write → fsync → rename → fsync parent. 0 or -1 with err naming the file.
int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
// appends len bytes to path (created when missing) and fsyncs it: all of them or none. A write that
// fails part-way (ENOSPC, EFBIG) is cut back off a regular file, else its torn line would be glued
// onto the next append once space returns. 0, or -1 with err naming the file and the cause.
int fs_append_whole(const char *path, const void *data, size_t len, char *err, size_t errlen);
int fs_fsync_path(const char *path);  // open + fsync (file or folder)
int fs_fsync_parent(const char *path);
int fs_remove_tree(const char *path); // rm -r (no symlink following)
int fs_mkdirs(const char *path);      // mkdir -p
// Name of the network filesystem holding path ("nfs", "lustre", ...) or NULL when local/unknown
// (CAMEO_FAULT_NETFS=NAME in the environment: NAME for every path, the tests' network filesystem).
const char *fs_network_type(const char *path);
// This machine's host name as it goes into a file name: [A-Za-z0-9._-] kept, anything else '_',
// at most 63 characters; "unknown-host" when the system does not say. Tells the leftovers of
// builds on other nodes of a shared filesystem from this node's.
void fs_host_name(char *out, size_t n);
