// atomic_file.c — write to PATH.tmp, fsync, rename (atomic_file.h).
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/tensor.h"
#include "models/crc32.h"

static void af_free(af_file *f) {
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
}

int af_open(af_file *f, const char *path, bool sum, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->sum = sum;
    size_t n = strlen(path);
    f->path = strdup(path);
    f->tmp = malloc(n + 5);
    if (!f->path || !f->tmp) {
        cm_seterr(err, errlen, "%s: out of memory", path);
        af_free(f);
        return -1;
    }
    memcpy(f->tmp, path, n);
    memcpy(f->tmp + n, ".tmp", 5);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        cm_seterr(err, errlen, "%s: cannot create %s: %s", path, f->tmp, strerror(errno));
        af_free(f);
        return -1;
    }
    return 0;
}

int af_write(af_file *f, const void *p, size_t n) {
    if (f->sum && !f->err_no) f->crc = cm_crc32(f->crc, p, n);
    const uint8_t *c = p;
    while (n > 0 && !f->err_no) {
        ssize_t k = write(f->fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            f->err_no = k < 0 ? errno : EIO;
            break;
        }
        c += k, n -= (size_t)k, f->written += (uint64_t)k;
    }
    return f->err_no ? -1 : 0;
}

// the folder of path, for the fsync that makes the rename durable
static int af_fsync_dir(const char *path) {
    char *dir = strdup(path);
    if (!dir) return -1;
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int af_commit(af_file *f, af_sum *sum, char *err, size_t errlen) {
    if (sum) *sum = (af_sum){.bytes = f->written, .crc = f->crc};
    const char *step = "writing";
    int e = f->err_no;
    if (!e) {
        step = "fsync of";
        if (fsync(f->fd)) e = errno;
    }
    if (!e) {
        step = "closing";
        int c = close(f->fd);
        f->fd = -1;
        if (c) e = errno;
    }
    if (!e) {
        step = "renaming over the target";
        if (rename(f->tmp, f->path)) e = errno;
    }
    if (e) {
        cm_seterr(err, errlen, "%s: %s %s failed: %s", f->path, step, f->tmp, strerror(e));
        af_abort(f);
        return -1;
    }
    int rc = 0;
    if (af_fsync_dir(f->path)) {  // the file is complete and in place; only its durability across a crash is unsure
        cm_seterr(err, errlen, "%s: fsync of the folder failed: %s", f->path, strerror(errno));
        rc = -1;
    }
    af_free(f);
    return rc;
}

void af_abort(af_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    af_free(f);
}
