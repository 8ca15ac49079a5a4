// test_bench_ops.c — `cameo bench ops --tiny` (every table at 1/16 of the widths; no timing
// assertions): it runs through, and every row of its markdown tables has as many cells as the
// table's header (a '|' inside a cell must be escaped, or the row gets a column more). Then with
// a stand-in python3 first on PATH: the PyTorch helper is asked for this run's shapes, reps and
// threads, runs without the OMP_WAIT_POLICY cameo sets for itself, and its figures land in
// their rows.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "train/bench.h"

static char out[1 << 16];
static char tmpd[] = "/tmp/cameo-test-bench-ops-XXXXXX";

// bench_ops_main in a child with stdout in out[] (libgomp does not survive a fork: this process
// never starts OpenMP itself); its exit code
typedef struct { int argc; char **argv; } ops_args;
static int ops_child(void *p) {
    int argc = ((ops_args *)p)->argc;
    char **argv = ((ops_args *)p)->argv;
    if (!strcmp(argv[argc - 1], "--fake-python")) {  // cameo's own environment (train/main.c), then the stand-in
        char path[4096];
        snprintf(path, sizeof path, "%s:%s", tmpd, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
        setenv("PATH", path, 1);
        setenv("OMP_WAIT_POLICY", "passive", 1);
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
        argc--;
    }
    return bench_ops_main(argc, argv);
}
static int run_ops(int argc, char **argv) { return test_fork_stdout(ops_child, &(ops_args){argc, argv}, out, sizeof out); }

// the cells of a markdown table line: its unescaped '|' less one
static int cells(const char *line, const char *end) {
    int bars = 0;
    for (const char *p = line; p < end; p++)
        if (*p == '|' && (p == line || p[-1] != '\\')) bars++;
    return bars - 1;
}

int main(void) {
    char *argv[] = {"--tiny"};
    int rc = run_ops(1, argv);
    TEST_CHECK(rc == 0, "bench ops --tiny returned %d:\n%s", rc, out);
    int tables = 0, rows = 0, want = -1;
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if (*line != '|') want = -1;  // a blank line ends a table
        else if (want < 0) want = cells(line, end), tables++;
        else {
            rows++;
            TEST_CHECK(cells(line, end) == want, "a row with %d cells under a header of %d: %.*s", cells(line, end), want,
                       (int)(end - line), line);
        }
        line = *end ? end + 1 : end;
    }
    // linear + attention, adaLN, the two MLPs; rows counted with the separator lines
    TEST_CHECK(tables == 3 && rows == 3 + 1 + 1 + 1 + 2 + 1, "%d tables, %d rows:\n%s", tables, rows, out);
    TEST_CHECK(strstr(out, "| mlp_gelu_cat ([attn \\| MLP] proj_out) | B=1 L=4 C=192 H=768 |"), "the MLP rows at 1/16:\n%s", out);

    // the stand-in: logs its arguments and environment, prints 1, 2, 3 (ops) or 10, 20 (--mlp)
    TEST_CHECK(mkdtemp(tmpd) != NULL, "mkdtemp");
    char py[600], log[600];
    snprintf(py, sizeof py, "%s/python3", tmpd);
    snprintf(log, sizeof log, "%s/calls.log", tmpd);
    FILE *f = fopen(py, "w");
    TEST_CHECK(f != NULL, "write %s", py);
    if (f) {
        fprintf(f, "#!/bin/sh\necho \"args: $* | wait=${OMP_WAIT_POLICY-unset} blas=${OPENBLAS_THREAD_TIMEOUT-unset}\" >> '%s'\n"
                   "case \" $* \" in *\" --mlp \"*) echo 10; echo 20;; *) echo 1; echo 2; echo 3;; esac\n", log);
        fclose(f);
        chmod(py, 0755);
    }
    char *argv2[] = {"--tiny", "--fake-python"};
    rc = run_ops(2, argv2);
    TEST_CHECK(rc == 0, "bench ops --tiny (stand-in python3) returned %d:\n%s", rc, out);
    TEST_CHECK(strstr(out, "| linear | T=64 16->64 |") && strstr(out, "| 1.0 | ") && strstr(out, "| 2.0 | ") &&
                   strstr(out, "| attention | T=64 H=8 D=64 |") && strstr(out, "| 3.0 | ") && strstr(out, "| 20.0 |\n"),
               "the stand-in's figures are not in their rows:\n%s", out);
    static char calls[8192];
    f = fopen(log, "r");
    size_t n = f ? fread(calls, 1, sizeof calls - 1, f) : 0;
    calls[n] = 0;
    if (f) fclose(f);
    TEST_CHECK(strstr(calls, "--reps 1 --rows linear:64:16:64,linear:64:64:64,attention:64:8:64 | wait=unset blas=unset") &&
                   strstr(calls, "--reps 1 --mlp 4 --width 192 | wait=unset blas=unset"),
               "the helper must get this run's shapes and reps, in PyTorch's own environment:\n%s", calls);
    unlink(py);
    unlink(log);
    rmdir(tmpd);
    return test_summary("test_bench_ops");
}
