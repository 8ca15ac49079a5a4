// test_data_read_special.c — fs_read_file of what is no regular file fails at once naming why:
// a FIFO without a writer (its open used to block for ever), /dev/zero (EINVAL), a folder (EISDIR).
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include "helpers.h"

int main(void) {
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmp_dir());
    TEST_CHECK(mkfifo(fifo, 0644) == 0, "mkfifo %s", fifo);
    alarm(5);  // a blocked open ends the test (SIGALRM) rather than hanging it
    size_t n = 0;
    errno = 0;
    TEST_CHECK(fs_read_file(fifo, &n, 1 << 20) == NULL && errno == EINVAL, "a FIFO refused with EINVAL (errno %d)", errno);
    errno = 0;
    TEST_CHECK(fs_read_file("/dev/zero", &n, 1 << 20) == NULL && errno == EINVAL, "/dev/zero refused with EINVAL (errno %d)", errno);
    errno = 0;
    TEST_CHECK(fs_read_file(tmp_dir(), &n, 1 << 20) == NULL && errno == EISDIR, "a folder refused with EISDIR (errno %d)", errno);
    errno = 0;
    TEST_CHECK(fs_read_file("/nonexistent/x", &n, 1 << 20) == NULL && errno == ENOENT, "a missing file: ENOENT (errno %d)", errno);
    alarm(0);
    char p[600], err[512];
    snprintf(p, sizeof p, "%s/ok.txt", tmp_dir());
    TEST_CHECK(fs_write_atomic(p, "abc", 3, err, sizeof err) == 0, "%s", err);
    char *t = fs_read_file(p, &n, 1 << 20);
    TEST_CHECK(t && n == 3 && !strcmp(t, "abc"), "a regular file reads back");
    free(t);
    return test_summary("data_read_special");
}
