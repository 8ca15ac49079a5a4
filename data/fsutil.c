// fsutil.c — see fsutil.h.
#include "data/fsutil.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

char *fs_read_file(const char *path, size_t *len, size_t max) {
    // O_NONBLOCK: a FIFO at path would block the open until a writer came; it is refused below
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st)) { int e = errno; close(fd); errno = e; return NULL; }
    if (!S_ISREG(st.st_mode)) { close(fd); errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL; return NULL; }
    FILE *f = fdopen(fd, "rb");
    if (!f) { int e = errno; close(fd); errno = e; return NULL; }
    if ((size_t)st.st_size > max) { fclose(f); errno = EFBIG; return NULL; }
    char *p = malloc((size_t)st.st_size + 1);
    if (!p) { fclose(f); errno = ENOMEM; return NULL; }
    size_t n = fread(p, 1, (size_t)st.st_size, f);
    int e = ferror(f);
    fclose(f);
    if (e) { free(p); errno = EIO; return NULL; }
    p[n] = 0;
    *len = n;
    return p;
}

int fs_append_whole(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) { snprintf(err, errlen, "%s: cannot open to append (%s)", path, strerror(errno)); return -1; }
    struct stat st;
    bool regular = !fstat(fd, &st) && S_ISREG(st.st_mode);  // not a device (/dev/full): nothing to cut
    off_t at = regular ? st.st_size : 0;
    const char *p = data;
    size_t left = len;
    int e = 0;
    while (left && !e) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) e = w < 0 ? errno : EIO;
        else p += w, left -= (size_t)w;
    }
    if (!e && fsync(fd) && errno != EINVAL) e = errno;  // EINVAL: a device or pipe without fsync
    if (e) {
        int cut = regular && left < len ? ftruncate(fd, at) : 0;
        snprintf(err, errlen, "%s: cannot append (%s)%s", path, strerror(e),
                 cut ? "; cutting the torn write off failed too" : "");
        close(fd);
        return -1;
    }
    if (close(fd)) { snprintf(err, errlen, "%s: cannot append (%s)", path, strerror(errno)); return -1; }
    return 0;
}

int fs_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fs_fsync_parent(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    return fs_fsync_path(dirname(tmp));
}

int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { snprintf(err, errlen, "%s: cannot create (%s)", tmp, strerror(errno)); return -1; }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "%s: write failed (%s)", tmp, strerror(errno));
            close(fd); unlink(tmp); return -1;
        }
        p += w; left -= (size_t)w;
    }
    // each step closes and removes the tmp on failure and names the call that failed
    if (fsync(fd)) {
        snprintf(err, errlen, "%s: fsync failed (%s)", tmp, strerror(errno));
        close(fd); unlink(tmp); return -1;
    }
    if (close(fd)) { snprintf(err, errlen, "%s: close failed (%s)", tmp, strerror(errno)); unlink(tmp); return -1; }
    if (rename(tmp, path)) { snprintf(err, errlen, "%s: rename to %s failed (%s)", tmp, path, strerror(errno)); unlink(tmp); return -1; }
    fs_fsync_parent(path);
    return 0;
}

int fs_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st)) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        fs_remove_tree(sub);
    }
    closedir(d);
    return rmdir(path);
}

int fs_mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') { *p = 0; if (mkdir(tmp, 0755) && errno != EEXIST) return -1; *p = '/'; }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
    return 0;
}

const char *fs_network_type(const char *path) {
    const char *fake = getenv("CAMEO_FAULT_NETFS");  // tests: every path on this network filesystem
    if (fake && *fake) return fake;
    struct statfs s;
    if (statfs(path, &s)) return NULL;
    switch ((unsigned long)s.f_type) {
    case 0x6969: return "nfs";
    case 0x0BD00BD0: return "lustre";
    case 0x65735546: return "fuse (glusterfs/sshfs/...)";
    case 0x517B: return "smb";
    case 0xFF534D42: return "cifs";
    case 0xFE534D42: return "smb2";
    case 0x00C36400: return "ceph";
    case 0x01021997: return "9p";
    case 0x47504653: return "gpfs";
    case 0x013111A8: return "ibrix";
    case 0x19830326: return "beegfs";
    default: return NULL;
    }
}

void fs_host_name(char *out, size_t n) {
    char h[256] = "";
    if (!n) return;
    if (gethostname(h, sizeof h - 1)) h[0] = 0;
    h[sizeof h - 1] = 0;
    size_t k = 0;
    for (; h[k] && k < 63 && k + 1 < n; k++) {
        char c = h[k];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        out[k] = ok ? c : '_';
    }
    out[k] = 0;
    if (!k) snprintf(out, n, "unknown-host");
}
