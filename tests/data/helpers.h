// helpers.h — shared by the data tests: temporary folders, small demo datasets, a child's stderr.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/build.h"
#include "data/demo.h"
#include "data/fsutil.h"
#include "testutil.h"

static char tmp_root[256];

static inline void tmp_cleanup(void) { if (tmp_root[0]) fs_remove_tree(tmp_root); }

// a fresh folder removed at exit
static inline const char *tmp_dir(void) {
    if (!tmp_root[0]) {
        snprintf(tmp_root, sizeof tmp_root, "/tmp/cameo-data-test-XXXXXX");
        if (!mkdtemp(tmp_root)) { perror("mkdtemp"); exit(1); }
        atexit(tmp_cleanup);
    }
    return tmp_root;
}

// builds a demo dataset under the temp folder; returns its path (static buffer per call slot)
static inline const char *make_demo(const char *name, int chars, int per, int size, uint64_t shard_samples) {
    static char paths[8][512];
    static int k = 0;
    char *p = paths[k++ % 8];
    snprintf(p, 512, "%s/%s", tmp_dir(), name);
    demo_options d = demo_options_default();
    d.characters = chars;
    d.per_character = per;
    d.size = size;
    build_options o = build_options_default();
    o.lossless = 1;
    o.quiet = 1;
    o.shard_samples = shard_samples;
    o.threads = 2;
    build_report r;
    char err[1024];
    if (demo_build(p, &d, &o, &r, err, sizeof err)) { fprintf(stderr, "demo build failed: %s\n", err); exit(1); }
    return p;
}

// runs fn in a child with stderr in a file (stdout dropped): its exit code (-signal when killed) and that stderr
static inline int run_captured(int (*fn)(const void *), const void *arg, char *log, size_t loglen) {
    FILE *f = tmpfile();
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(f), 2);
        if (!freopen("/dev/null", "w", stdout)) _exit(99);  // the tools' reports are not checked here
        int rc = fn(arg);
        fflush(stdout), fflush(stderr);
        _exit(rc);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    rewind(f);
    size_t n = fread(log, 1, loglen - 1, f);
    log[n] = 0;
    fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}
