// train_child.h — `cameo train --set S ... --quiet` (the embedded tiny config) run in a forked
// child, as the tests of a whole run need it: its exit status, its rusage (peak RSS), stderr to a
// file or dropped. libgomp does not survive a fork: the parent must not have started OpenMP.
#pragma once
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/data_cli.h"
#include "train/cli.h"

// n overrides of sets[]; log: where stderr goes (NULL: /dev/null); ru: the child's rusage (may be
// NULL). The child's exit status, -1 when it did not exit.
static inline int train_child(char (*sets)[200], int n, const char *log, struct rusage *ru) {
    char *argv[2 * 32 + 2];
    int argc = 0;
    for (int i = 0; i < n && i < 32; i++) argv[argc++] = "--set", argv[argc++] = sets[i];
    argv[argc++] = "--quiet";
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen(log ? log : "/dev/null", "w", stderr)) _exit(3);
        _exit(train_cli(argc, argv) ? 1 : 0);
    }
    int st;
    struct rusage r;
    if (pid < 0 || wait4(pid, &st, 0, &r) != pid || !WIFEXITED(st)) return -1;
    if (ru) *ru = r;
    return WEXITSTATUS(st);
}

// `cameo data demo --out OUT --characters C --per-character P --size S` in a forked child: its exit status
static inline int demo_child(const char *out, int chars, int per, int size) {
    char c[16], p[16], z[16];
    snprintf(c, sizeof c, "%d", chars), snprintf(p, sizeof p, "%d", per), snprintf(z, sizeof z, "%d", size);
    char *argv[] = {"demo", "--out", (char *)out, "--characters", c, "--per-character", p, "--size", z, NULL};
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(3);
        _exit(data_cli(9, argv) ? 1 : 0);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
