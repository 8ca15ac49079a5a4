// test_bench_train.c — `cameo bench train`'s memory table at tiny size (no PyTorch, no timing
// assertions): the "saved activations" row is one micro-step's tape, so the tiny stage 2 (batch 2)
// shows the same figure with grad_accum 2 as with grad_accum 1 — the gradients the first
// micro-step leaves live are the gradients row, not activations of the second. And the optimizer
// is the config's: optimizer.state_dtype and optimizer.ema reach it and its rows. adapter.freeze
// reaches the PyTorch twin (a stand-in here), and the bench compares what both held fixed.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "train/bench_train.h"

static char out[1 << 16];

// bench_train_main in a child with stdout in a file (libgomp does not survive a fork, so this
// process never starts OpenMP itself); its exit code, stdout in out[]
typedef struct { int argc; char **argv; } bench_args;
static int bench_child(void *p) { return bench_train_main(((bench_args *)p)->argc, ((bench_args *)p)->argv); }
static int run_bench(int argc, char **argv) { return test_fork_stdout(bench_child, &(bench_args){argc, argv}, out, sizeof out); }

// the MiB figure of the memory table's row that starts with `row`; -1 when absent
static double row_mib(const char *row) {
    const char *p = strstr(out, row);
    if (!p) return -1;
    p = strstr(p, " | ");
    if (!p) return -1;
    for (p += 3; *p == '*';) p++;  // a bold figure
    return atof(p);
}

int main(void) {
    double saved[2] = {-1, -1}, grads = -1;
    for (int k = 0; k < 2; k++) {
        char *argv[] = {"--stage", "2", "--steps", "2", "--warmup", "1", "--no-torch", "--set", "run.threads=1", "--set",
                        k ? "stages.2.grad_accum=1" : "stages.2.grad_accum=2"};
        int rc = run_bench((int)(sizeof argv / sizeof *argv), argv);
        TEST_CHECK(rc == 0, "bench train (grad_accum %d) returned %d:\n%s", 2 - k, rc, out);
        saved[k] = row_mib("| saved activations");
        if (!k) grads = row_mib("| adapter gradients (f32)");
    }
    TEST_CHECK(saved[0] > 0 && saved[1] > 0 && grads > 0, "rows missing: saved %.3f / %.3f, gradients %.3f", saved[0], saved[1],
               grads);
    // the same micro-batch either way: only the buckets' shapes may differ a little
    TEST_CHECK(fabs(saved[0] - saved[1]) < 0.5 * grads,
               "saved activations %.3f MiB with grad_accum 2 against %.3f with 1: the gradients (%.3f MiB) counted as activations",
               saved[0], saved[1], grads);

    // the optimizer as the config says (train/trainer.c): bf16 moments (2 x 2 B a parameter, the
    // size of the f32 gradients) and an f32 weight average (4 B), in the table and in the peak
    char *argv2[] = {"--steps", "1", "--warmup", "1", "--no-torch", "--set", "run.threads=1", "--set",
                     "optimizer.state_dtype=bf16", "--set", "optimizer.ema=0.999"};
    int rc = run_bench((int)(sizeof argv2 / sizeof *argv2), argv2);
    TEST_CHECK(rc == 0, "bench train (bf16 moments, ema) returned %d:\n%s", rc, out);
    double mom = row_mib("| AdamW m + v (bf16)"), avg = row_mib("| weight average (optimizer.ema, f32)");
    double g = row_mib("| adapter gradients (f32)"), sum = row_mib("| **sum (arithmetic)**"), peak = row_mib("| **measured peak");
    TEST_CHECK(mom > 0 && fabs(mom - g) < 0.02 && fabs(avg - g) < 0.02, "bf16 moments %.3f MiB and the average %.3f, want %.3f each:\n%s",
               mom, avg, g, out);
    TEST_CHECK(sum > 0 && peak >= sum && peak - sum < 0.5 * g, "the sum %.3f MiB must account for the peak %.3f", sum, peak);

    // as many --set overrides as given (at most 64 were taken, the 65th said "unknown argument '--set'")
    enum { N_SET = 70 };
    char *argv3[6 + 2 * N_SET] = {"--steps", "1", "--warmup", "0", "--no-torch", "--medium"};
    for (int i = 0; i < N_SET; i++) argv3[6 + 2 * i] = "--set", argv3[7 + 2 * i] = "run.threads=1";
    argv3[7 + 2 * (N_SET - 1)] = "stages.0.resolution=64";  // the last one counts, over --medium's 128
    rc = run_bench((int)(sizeof argv3 / sizeof *argv3), argv3);
    TEST_CHECK(rc == 0, "bench train with %d --set options returned %d:\n%s", N_SET, rc, out);
    TEST_CHECK(strstr(out, "1 threads") != NULL, "run.threads=1 was not applied:\n%s", out);
    TEST_CHECK(strstr(out, "FLUX 4 double") != NULL, "--medium was not applied:\n%s", out);
    const char *tgt = strstr(out, "target ");
    int tw = 0, thh = 0;
    TEST_CHECK(tgt && sscanf(tgt, "target %dx%d", &tw, &thh) == 2 && tw * thh <= 64 * 64 + 64 * 16,
               "the last --set (stages.0.resolution=64) was not applied over --medium's: target %dx%d", tw, thh);
    char *argv4[] = {"--no-torch", "--set"};
    rc = run_bench(2, argv4);
    TEST_CHECK(rc == 2, "bench train with --set last and no value returned %d, want 2", rc);
    char *argv4b[] = {"--no-torch", "--stage", "abc"};  // atoi made it stage 0
    rc = run_bench(3, argv4b);
    TEST_CHECK(rc == 2, "bench train --stage abc returned %d, want 2", rc);

    // adapter.freeze as the trainer applies it: the projector held fixed leaves only the IP
    // modules' gradients and moments (the step timed is the one `cameo train` runs)
    char *argv5[] = {"--steps", "1", "--warmup", "0", "--no-torch", "--set", "run.threads=1", "--set", "adapter.freeze=[image_proj]"};
    rc = run_bench((int)(sizeof argv5 / sizeof *argv5), argv5);
    TEST_CHECK(rc == 0, "bench train (adapter.freeze) returned %d:\n%s", rc, out);
    double w = row_mib("| adapter weights"), gf = row_mib("| adapter gradients (f32)"), mf = row_mib("| AdamW m + v (f32)");
    TEST_CHECK(w > 0 && gf > 0 && gf < 0.9 * w && fabs(mf - 2 * gf) < 0.02,
               "with image_proj frozen: gradients %.3f MiB and moments %.3f, want less than the weights %.3f (moments twice the "
               "gradients):\n%s", gf, mf, w, out);
    TEST_CHECK(strstr(out, "adapter.freeze: ") != NULL, "the table does not say what adapter.freeze held fixed:\n%s", out);
    // the dataset benchmarked is the stage's own (stages[].data) where it names one: absent, the demo
    // is generated for it (the loader opened the stage's missing path after a demo went to data.path)
    char *argv7[] = {"--steps", "1", "--warmup", "0", "--no-torch", "--set", "run.threads=1", "--set",
                     "stages.0.data=/nonexistent/cameo-stage-data"};
    rc = run_bench((int)(sizeof argv7 / sizeof *argv7), argv7);
    TEST_CHECK(rc == 0, "bench train with stages.0.data absent returned %d (want the demo generated for it):\n%s", rc, out);
    char *argv6[] = {"--steps", "1", "--warmup", "0", "--no-torch", "--set", "adapter.freeze=[no_such_part]"};
    rc = run_bench((int)(sizeof argv6 / sizeof *argv6), argv6);
    TEST_CHECK(rc == 1, "bench train with adapter.freeze naming no weight returned %d, want 1", rc);

    // recompute: auto as the trainer runs it: the first step (a warm-up here) measures with every
    // block recomputed, the timed ones recompute what fits — on the CPU's memory, none: the tape is
    // the one without recompute, not the smaller one of every block recomputed
    setenv("CAMEO_RECOMPUTE_BUDGET_MB", "4096", 1);  // whatever this machine has free
    double rsaved[3] = {-1, -1, -1};
    const char *rmode[3] = {"train.recompute=auto", "train.recompute=false", "train.recompute=true"};
    for (int k = 0; k < 3; k++) {
        char *argv7[] = {"--steps", "1", "--warmup", "1", "--no-torch", "--set", "run.threads=1", "--set", (char *)rmode[k]};
        rc = run_bench((int)(sizeof argv7 / sizeof *argv7), argv7);
        TEST_CHECK(rc == 0, "bench train (%s) returned %d:\n%s", rmode[k], rc, out);
        rsaved[k] = row_mib("| saved activations");
        if (!k) TEST_CHECK(strstr(out, "recompute: auto: the first 0 of 4 FLUX blocks recompute"), "the choice is not told:\n%s", out);
    }
    TEST_CHECK(rsaved[2] > 0 && rsaved[1] > rsaved[2] + 0.1 && fabs(rsaved[0] - rsaved[1]) < 0.05,
               "saved activations with recompute auto %.3f MiB, want those without recompute (%.3f), not all recomputed (%.3f)",
               rsaved[0], rsaved[1], rsaved[2]);
    unsetenv("CAMEO_RECOMPUTE_BUDGET_MB");

    // the PyTorch twin (a stand-in python3 printing its JSON line) is told the recompute choice and the
    // weight average; where what it says it did differs from cameo's step, the bench says its rows are
    // not like for like, where it matches it says nothing (the stand-in: all 4 blocks, ema 0.999)
    char tmpd[] = "/tmp/cameo-test-bench-train-XXXXXX", py[600], path[8192];
    TEST_CHECK(mkdtemp(tmpd) != NULL, "mkdtemp");
    snprintf(py, sizeof py, "%s/python3", tmpd);
    FILE *f = fopen(py, "w");
    TEST_CHECK(f != NULL, "write %s", py);
    if (f) {
        // it keeps its arguments (in args) and says it held 3 of 9 adapter tensors fixed, recomputed 4
        // blocks and kept an average of decay 0.999
        fprintf(f, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > %s/args\n"
                   "echo '{\"torch\": \"stand-in\", \"t_step\": 0.1, \"steps_per_s\": 10, \"samples_per_s\": 40, "
                   "\"adapter_tensors\": 9, \"adapter_tensors_held\": 3, \"params_adapter_held\": 30, \"recompute_blocks\": 4, "
                   "\"ema\": 0.999}'\n", tmpd);
        fclose(f);
        chmod(py, 0755);
    }
    const char *path0 = getenv("PATH");
    char *path_saved = strdup(path0 ? path0 : "/usr/bin:/bin");
    snprintf(path, sizeof path, "%s:%s", tmpd, path_saved);
    setenv("PATH", path, 1);
    for (int k = 0; k < 2; k++) {
        char *argv8[] = {"--steps", "1", "--warmup", "0", "--set", "run.threads=1", "--set",
                         k ? "train.recompute=false" : "train.recompute=true"};
        rc = run_bench((int)(sizeof argv8 / sizeof *argv8), argv8);
        TEST_CHECK(rc == 0 && strstr(out, "PyTorch stand-in"), "bench train with the stand-in twin returned %d:\n%s", rc, out);
        bool told = strstr(out, "PyTorch's twin 4: its forward") != NULL;
        TEST_CHECK(told == k, "recompute %s (the twin: all 4 blocks): the note on the twin's other recompute is %s:\n%s",
                   k ? "off" : "on", told ? "there" : "missing", out);
        if (!k) {
            char ap[700], args[4096] = "";
            snprintf(ap, sizeof ap, "%s/args", tmpd);
            FILE *a = fopen(ap, "r");
            if (a) args[fread(args, 1, sizeof args - 1, a)] = 0, fclose(a);
            TEST_CHECK(strstr(args, "\n--recompute\n4\n") && strstr(args, "\n--ema\n0\n"),
                       "the twin was not told the recompute choice (4 blocks) and no average:\n%s", args);
        }
    }
    for (int k = 0; k < 2; k++) {  // the same weight average, or another one
        char *argv10[] = {"--steps", "1", "--warmup", "0", "--set", "run.threads=1", "--set", "train.recompute=true", "--set",
                          k ? "optimizer.ema=0.99" : "optimizer.ema=0.999"};
        rc = run_bench((int)(sizeof argv10 / sizeof *argv10), argv10);
        bool told = strstr(out, "updates a weight average (optimizer.ema); PyTorch's keeps f32 moments and no average") != NULL;
        TEST_CHECK(rc == 0 && told == k, "optimizer.ema %s (the twin: 0.999): the note on the twin's average is %s:\n%s",
                   k ? "0.99" : "0.999", told ? "there" : "missing", out);
    }
    // adapter.freeze reaches the twin (--freeze, one per prefix), and the bench compares what each held
    char *argv9[] = {"--steps", "1", "--warmup", "0", "--set", "run.threads=1", "--set", "adapter.freeze=[image_proj, ip_adapter.1]"};
    rc = run_bench((int)(sizeof argv9 / sizeof *argv9), argv9);
    TEST_CHECK(rc == 0 && strstr(out, "PyTorch stand-in"), "bench train (adapter.freeze) with the stand-in twin returned %d:\n%s", rc, out);
    TEST_CHECK(strstr(out, "PyTorch's twin held 3 of 9 tensors (30 parameters)") != NULL,
               "the bench does not say the twin held other weights than cameo:\n%s", out);
    char args_path[700], args[4096] = "";
    snprintf(args_path, sizeof args_path, "%s/args", tmpd);
    FILE *af = fopen(args_path, "r");
    if (af) {
        size_t na = fread(args, 1, sizeof args - 1, af);
        args[na] = 0;
        fclose(af);
    }
    TEST_CHECK(strstr(args, "\n--freeze\nimage_proj\n--freeze\nip_adapter.1\n") != NULL,
               "the twin was not given adapter.freeze's prefixes (--freeze NAME each); its arguments:\n%s", args);
    unlink(args_path);
    setenv("PATH", path_saved, 1);
    free(path_saved);
    unlink(py);
    rmdir(tmpd);
    return test_summary("test_bench_train");
}
