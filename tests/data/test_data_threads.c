// test_data_threads.c — the loader under a thread limit (a container's pids.max, ulimit -u):
// pthread_create refused after K threads (linked with --wrap=pthread_create, extra.cmake).
// None started: loader_open fails, naming the cause, instead of loader_next waiting forever;
// some started: the loader goes on with those, says so, and closes without joining the others.
#define _GNU_SOURCE  // sched_setaffinity, CPU_SET
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include "data/loader.h"
#include "helpers.h"

static int g_allow = 1 << 30;  // pthread_create calls that succeed
static int g_created;          // pthread_create calls that succeeded

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    if (g_allow <= 0) return EAGAIN;
    g_allow--;
    g_created++;
    return __real_pthread_create(t, a, fn, arg);
}

static const char *g_ds;

// one epoch with threads = 4 of which `allow` start: 0 read it all, 1 open refused, 2 read failed
static int one_epoch(const void *allow) {
    alarm(20);  // a hang (no worker, loader_next waiting) ends the child by SIGALRM
    g_allow = *(const int *)allow;
    loader_config c = loader_config_default();
    c.path = g_ds; c.global_batch = 2; c.resolution = 64; c.bucket_step = 16; c.ref_size = 8;
    c.threads = 4; c.max_epochs = 1; c.quiet = 1;
    loader *L = loader_open(&c, NULL);
    if (!L) return 1;
    loader_batch b;
    int rc, n = 0;
    while ((rc = loader_next(L, &b)) == 0) n += b.B;
    uint64_t want = 2 * loader_batches_per_epoch(L);
    loader_close(L);
    fprintf(stderr, "read %d of %llu\n", n, (unsigned long long)want);
    return rc == 1 && (uint64_t)n == want ? 0 : 2;
}

// loaders opened one after another with 2 of 4 threads starting, as validation opens one at each
// pass: quiet ones (validation's) say it once, a loader that is not quiet (training's) once too
static int reopened(const void *arg) {
    (void)arg;
    const int quiet[3] = {1, 1, 0};
    for (int k = 0; k < 3; k++) {
        g_allow = 2;
        loader_config c = loader_config_default();
        c.path = g_ds; c.global_batch = 2; c.resolution = 64; c.bucket_step = 16; c.ref_size = 8;
        c.threads = 4; c.max_epochs = 1; c.quiet = quiet[k];
        loader *L = loader_open(&c, NULL);
        if (!L) return 1;
        loader_close(L);
    }
    return 0;
}

static int count_of(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

// threads = 0 in a process bound to one CPU (a Slurm step's or a container's cpuset): one decode
// thread, not one per online CPU of the node
static int bound_to_one(const void *arg) {
    (void)arg;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    if (sched_setaffinity(0, sizeof one, &one)) return 3;
    loader_config c = loader_config_default();
    c.path = g_ds; c.global_batch = 2; c.resolution = 64; c.bucket_step = 16; c.ref_size = 8;
    c.threads = 0; c.max_epochs = 1; c.quiet = 1;
    g_created = 0;
    loader *L = loader_open(&c, NULL);
    if (!L) return 1;
    loader_close(L);
    fprintf(stderr, "%d decode threads\n", g_created);
    return g_created == 1 ? 0 : 2;
}

int main(void) {
    g_ds = make_demo("threads", 4, 4, 48, 8);
    char log[8192];
    int none = 0, two = 2;
    int rc = run_captured(one_epoch, &none, log, sizeof log);
    TEST_CHECK(rc == 1 && strstr(log, "cannot start a decode thread") && strstr(log, "4 asked"),
               "no thread starts: loader_open refuses, naming why (rc %d; %d is SIGALRM, a hang): %s", rc, -SIGALRM, log);
    rc = run_captured(one_epoch, &two, log, sizeof log);
    TEST_CHECK(rc == 0 && strstr(log, "started 2 of 4 decode threads"), "2 of 4 threads start: the epoch is read by those (rc %d): %s", rc, log);
    rc = run_captured(reopened, NULL, log, sizeof log);
    TEST_CHECK(rc == 0 && count_of(log, "started 2 of 4 decode threads") == 2,
               "three loaders (two quiet) under a thread limit: the note once per kind, not at every open (rc %d): %s", rc, log);
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1) {
        rc = run_captured(bound_to_one, NULL, log, sizeof log);
        TEST_CHECK(rc == 0, "threads 0 bound to one CPU: one decode thread, not the online CPUs' count (rc %d): %s", rc, log);
    } else {
        fprintf(stderr, "test_data_threads: one online CPU: the affinity case is not run\n");
    }
    return test_summary("test_data_threads");
}
