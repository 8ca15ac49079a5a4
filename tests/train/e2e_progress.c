// e2e_progress.c — what a user sees and keeps while `cameo train` runs, as real processes on the
// tiny default: the metrics lines across a resume, a closed output pipe, a second Ctrl-C, messages
// that name paths with spaces.
// Usage: e2e_progress PATH/TO/cameo   (registered by tests/train/extra.cmake)
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

static const char *cameo;
static char dir[64];

// a few steps in all: 4 + 2 + 2, a line and a checkpoint every 2
#define STEPS "--set stages.0.steps=4 --set stages.1.steps=2 --set stages.2.steps=2 --set run.keep_last=0 " \
              "--set run.ckpt_every=2 --set run.log_every=1"

// the "step" and "time" of every line of a metrics.jsonl; how many
static int read_times(const char *path, long long *step, double *time, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *s = strstr(line, "\"step\":"), *t = strstr(line, "\"time\":");
        if (!s || !t) continue;
        step[n] = atoll(s + 7);
        time[n] = atof(t + 7);
        n++;
    }
    fclose(f);
    return n;
}

// the number a file holds (an exit status written by the shell); -1 when unreadable
static int read_int(const char *path) {
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f && fscanf(f, "%d", &v) != 1) v = -1;
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2) test_skip("usage: e2e_progress PATH/TO/cameo");
    cameo = argv[1];
    snprintf(dir, sizeof dir, "/tmp/cameo-e2e-progress-XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char p[512];

    // "time" counts the run's training time on across a resume: a resume from step 4 into the same
    // folder rewrites steps 5..8 with times after step 4's, not from 0 again
    TEST_CHECK(test_sh("%s train " STEPS " --set run.out_dir=%s/t --set data.path=%s/data 2>%s/t.log && "
                       "sleep 0.3 && %s train --resume %s/t/tiny/checkpoints/step-4 --quiet 2>%s/t2.log",
                       cameo, dir, dir, dir, cameo, dir, dir) == 0, "run t and its resume from step 4 (see %s/t.log, t2.log)", dir);
    {
        long long st[32];
        double tm[32];
        snprintf(p, sizeof p, "%s/t/tiny/metrics.jsonl", dir);
        int n = read_times(p, st, tm, 32);
        TEST_CHECK(n == 8, "8 metrics lines after the resume (%d)", n);
        for (int i = 1; i < n; i++)
            TEST_CHECK(st[i] == st[i - 1] + 1 && tm[i] >= tm[i - 1], "step %lld's time %.3f follows step %lld's %.3f", st[i], tm[i],
                       st[i - 1], tm[i - 1]);
    }

    // metrics.jsonl that cannot be written (a full disk: /dev/full): said once, the training goes on
    // to its end, and the summary counts the lines left out (it named the file as if all were there)
    TEST_CHECK(test_sh("mkdir -p %s/n/tiny && ln -s /dev/full %s/n/tiny/metrics.jsonl && "
                       "%s train " STEPS " --set run.out_dir=%s/n --set data.path=%s/data 2>%s/n.log && "
                       "test \"$(grep -c 'metrics.jsonl: cannot write: No space left on device; the training goes on' %s/n.log)\" = 1 && "
                       "grep -q 'metrics: 8 log step(s) left out, their writes failed' %s/n.log && "
                       "test -f %s/n/tiny/adapter.safetensors", dir, dir, cameo, dir, dir, dir, dir, dir, dir) == 0,
               "metrics on a full disk: one warning, the count in the summary, the run ends (see %s/n.log)", dir);

    // its output closed (`cameo train 2>&1 | head -c 1`): stops as on SIGTERM, with a checkpoint of
    // the step and exit 0, where SIGPIPE ended it at its next line (status 141) with none; the
    // resume then ends the run
    TEST_CHECK(test_sh("(%s train " STEPS " --set run.ckpt_every=100 --set run.out_dir=%s/p --set data.path=%s/data; "
                       "echo $? >%s/p.rc) 2>&1 | head -c 1 >/dev/null", cameo, dir, dir, dir) == 0, "run p");
    snprintf(p, sizeof p, "%s/p.rc", dir);
    TEST_CHECK(read_int(p) == 0, "a closed output: exit 0 (status %d)", read_int(p));
    TEST_CHECK(test_sh("ls -d %s/p/tiny/checkpoints/step-* >/dev/null 2>&1", dir) == 0, "a closed output: a checkpoint was written");
    TEST_CHECK(test_sh("%s train --resume %s/p/tiny/checkpoints --quiet 2>%s/p2.log && grep -q 'done: ' %s/p2.log", cameo, dir, dir,
                       dir) == 0, "the run stopped by a closed output resumes to its end (see %s/p2.log)", dir);

    // Ctrl-C during something long (here a step that never ends: CAMEO_FAULT_HANG) says at once that
    // the run stops after the step, and a second Ctrl-C quits now (it waited for ever)
    {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "CAMEO_FAULT_HANG=0:2 exec %s train " STEPS " --set run.out_dir=%s/c --set data.path=%s/data 2>%s/c.log",
                 cameo, dir, dir, dir);
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        snprintf(p, sizeof p, "%s/c/tiny/checkpoints/step-2", dir);
        bool there = false;
        for (int t = 0; t < 60000 && !(there = access(p, F_OK) == 0); t += 5) usleep(5000);
        TEST_CHECK(there, "run c reached its checkpoint of step 2");
        usleep(100000);  // into the step that hangs
        kill(pid, SIGINT);
        usleep(300000);
        int status = 0;
        TEST_CHECK(waitpid(pid, &status, WNOHANG) == 0, "one Ctrl-C waits for the step to end");
        TEST_CHECK(test_sh("grep -q 'Ctrl-C: stopping after this step, with a checkpoint (Ctrl-C again to quit now' %s/c.log", dir) == 0,
                   "the first Ctrl-C is told at once (see %s/c.log)", dir);
        kill(pid, SIGINT);
        pid_t w = 0;
        for (int t = 0; t < 10000 && (w = waitpid(pid, &status, WNOHANG)) == 0; t += 10) usleep(10000);
        TEST_CHECK(w == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "a second Ctrl-C quits at once (%s, status %d)",
                   w == pid ? "ended" : "still running after 10 s", status);
        if (w != pid) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
    }

    if (!test_failures) test_sh("rm -rf %s", dir);
    return test_summary("e2e_progress");
}
