// test_data_atomic_write.c — fs_write_atomic when fsync or close of its tmp fails (simulated by
// interposing fsync/close in this executable): the error names the call that failed, the fd is
// closed (none leaks) and no PATH.tmp is left behind; the old PATH is untouched.
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "helpers.h"

static int fail_fsync, fail_close;

// the executable's definitions win over libc's for the static cameo_data library's calls
int fsync(int fd) {
    if (fail_fsync) { errno = EIO; return -1; }
    return (int)syscall(SYS_fsync, fd);
}
int close(int fd) {
    int rc = (int)syscall(SYS_close, fd);  // Linux frees the fd even when close reports an error
    if (fail_close && !rc) { errno = EIO; return -1; }
    return rc;
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void check_failure(const char *what, const char *path, const char *must) {
    char err[1024] = "", tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int before = open_fds();
    int rc = fs_write_atomic(path, "new", 3, err, sizeof err);
    int after = open_fds();
    fail_fsync = fail_close = 0;
    printf("%s -> %s\n", what, err);
    TEST_CHECK(rc != 0, "%s: fs_write_atomic fails", what);
    TEST_CHECK(strstr(err, must) != NULL, "%s: message names '%s': %s", what, must, err);
    TEST_CHECK(after == before, "%s: no fd leaked (%d open before, %d after)", what, before, after);
    struct stat st;
    TEST_CHECK(stat(tmp, &st) != 0, "%s: %s removed", what, tmp);
    size_t n = 0;
    char *old = fs_read_file(path, &n, 64);
    TEST_CHECK(old && n == 3 && !memcmp(old, "old", 3), "%s: %s still holds the old text", what, path);
    free(old);
}

int main(void) {
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/file.txt", tmp_dir());
    TEST_CHECK(fs_write_atomic(path, "old", 3, err, sizeof err) == 0, "first write: %s", err);
    fail_fsync = 1;
    check_failure("fsync fails", path, "fsync failed");
    fail_close = 1;
    check_failure("close fails", path, "close failed");
    TEST_CHECK(fs_write_atomic(path, "new", 3, err, sizeof err) == 0, "write after the failures: %s", err);
    return test_summary("data_atomic_write");
}
