// test_watchdog.c — the step watchdog ends the process (status 3, its message said) when a step
// overruns, also when the main thread is stuck inside a write to stderr (a pipe nobody reads: a
// stopped `| tee`, a log collector gone away) and so holds stdio's lock on it.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tests/testutil.h"
#include "train/watchdog.h"

// the child's exit status (128 + signal when killed), or -1 when it was still running after
// limit_s (then killed); *secs: how long it ran
static int wait_child(pid_t pid, double limit_s, double *secs) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        clock_gettime(CLOCK_MONOTONIC, &t);
        *secs = (double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0) return -2;
        if (*secs > limit_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10000);
    }
}

// child: stderr is the write end of a pipe; blocked says whether the pipe is filled first so
// that the main thread's next fprintf(stderr) blocks for ever (holding the stream's lock)
static void child(int wfd, int blocked) {
    dup2(wfd, STDERR_FILENO);
    if (blocked) {
        int fl = fcntl(STDERR_FILENO, F_GETFL);
        fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
        char junk[4096];
        memset(junk, 'x', sizeof junk);
        while (write(STDERR_FILENO, junk, sizeof junk) > 0) {}
        // a pipe may take a few bytes more than a page-size write found room for
        while (write(STDERR_FILENO, junk, 1) > 0) {}
        fcntl(STDERR_FILENO, F_SETFL, fl);
    }
    watchdog w;
    watchdog_start(&w, 0.2, 0);
    watchdog_arm(&w, 6);
    if (blocked) fprintf(stderr, "a progress line the full pipe never takes\n");
    for (;;) pause();  // the stuck step
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    for (int blocked = 0; blocked < 2; blocked++) {
        int p[2];
        TEST_CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            child(p[1], blocked);
            _exit(99);
        }
        close(p[1]);
        double secs;
        int st = wait_child(pid, 8.0, &secs);
        TEST_CHECK(st == 3, "%s: the watchdog ends the process with status 3 (got %d after %.1f s; -1: still running, killed)",
                   blocked ? "stderr blocked" : "stderr free", st, secs);
        // what reached the pipe: the message when it was free; when it was full, the message may
        // rightly be lost, the exit is what matters
        if (!blocked) {
            char buf[2048];
            ssize_t n = read(p[0], buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = 0;
            TEST_CHECK(strstr(buf, "rank 0: step 7 has not finished after") != NULL,
                       "the watchdog names the step and the limit: '%s'", buf);
        }
        close(p[0]);
    }
    return test_summary("test_watchdog");
}
