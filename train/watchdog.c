// watchdog.c — see watchdog.h
#include "train/watchdog.h"
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *watch(void *arg) {
    watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        double now = mono_now();
        if (w->armed && now >= w->deadline) {
            // _exit: the main thread may hold any lock, and MPI may only be called from it. That
            // includes stderr's stdio lock (a progress line blocked on a pipe nobody reads), so the
            // message goes out by write(2), and only when the descriptor can take it within a second
            char msg[512];
            int n = snprintf(msg, sizeof msg, "cameo train: rank %d: %s %lld has not finished after %.0f s (run.step_timeout): a "
                             "rank, a GPU or the interconnect is stuck; stopping so that the job ends instead of waiting for "
                             "ever (resume with --resume auto)\n", w->rank, w->what ? w->what : "step", (long long)w->step + 1,
                             w->limit_s);
            if (n > (int)sizeof msg - 1) n = (int)sizeof msg - 1;
            struct pollfd pf = {.fd = STDERR_FILENO, .events = POLLOUT};
            if (n > 0 && poll(&pf, 1, 1000) == 1 && (pf.revents & POLLOUT)) {
                ssize_t rc = write(STDERR_FILENO, msg, (size_t)n);  // < PIPE_BUF: all of it or nothing
                (void)rc;
            }
            _exit(3);
        }
        // wake at the deadline, or within a second to see a new one (CLOCK_REALTIME: the condvar's clock)
        double wait = w->armed ? w->deadline - now : 1.0;
        if (wait > 1.0) wait = 1.0;
        if (wait < 0.001) wait = 0.001;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + wait;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void watchdog_start(watchdog *w, double limit_s, int rank) {
    memset(w, 0, sizeof *w);
    if (limit_s <= 0) return;
    w->limit_s = limit_s;
    w->rank = rank;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->started = pthread_create(&w->th, NULL, watch, w) == 0;
    if (!w->started) fprintf(stderr, "cameo train: warning: no watchdog thread (run.step_timeout is not enforced)\n");
}

void watchdog_arm(watchdog *w, int64_t step) { watchdog_arm_for(w, step, "step"); }

void watchdog_arm_for(watchdog *w, int64_t step, const char *what) {
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->armed = true;
    w->step = step;
    w->what = what;
    w->deadline = mono_now() + w->limit_s;
    pthread_mutex_unlock(&w->mu);
}

void watchdog_disarm(watchdog *w) {
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->armed = false;
    pthread_mutex_unlock(&w->mu);
}

void watchdog_stop(watchdog *w) {
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    w->started = false;
}
